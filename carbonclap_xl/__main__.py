"""``python -m carbonclap_xl`` runs the command line."""

from carbonclap_xl.cli import run

run()
