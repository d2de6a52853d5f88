"""``python -m carbonclap_xl.cli`` runs the command line."""

from carbonclap_xl.cli import run

run()
