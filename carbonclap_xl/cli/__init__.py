"""The ``carbonclap-xl`` command line: one ``main()``.

Exit codes: 0 no error-level issue; 1 error-level issues in the user's data; 2 the input
cannot be read (one clear French line on stderr, no traceback). A bug in this program still
shows its traceback (exit 1), so that it gets reported.

Each command group lives in its own module with a ``register(sub)`` function; registering
imports nothing heavy (a click in Excel starts a fresh interpreter): each command imports
what it needs when it runs.
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Sequence

from carbonclap_xl import __version__
from carbonclap_xl.cli import addin, lines, validate, workbook
from carbonclap_xl.cli.common import EXIT_OK, EXIT_UNREADABLE
from carbonclap_xl.core.errors import CarbonClapError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carbonclap-xl",
        description="Bilan carbone d'une production audiovisuelle depuis son classeur.")
    parser.add_argument("--version", action="version", version=f"carbonclap-xl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (lines, workbook, validate, addin):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CarbonClapError as exc:
        print(f"erreur : {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    except BrokenPipeError:  # e.g. `carbonclap-xl factors list | head`
        return EXIT_OK
    except OSError as exc:  # a path that cannot be written or read: the user's to fix
        reason = {"ENOENT": "introuvable (fichier ou dossier)", "EACCES": "accès refusé (droits)",
                  "EISDIR": "c'est un dossier", "ENOTDIR": "un élément du chemin n'est pas un "
                  "dossier", "ENOSPC": "disque plein", "EROFS": "système de fichiers en "
                  "lecture seule"}.get(errno.errorcode.get(exc.errno or 0, ""),
                                       exc.strerror or str(exc))
        where = f"{exc.filename} : " if exc.filename else ""
        print(f"erreur : {where}{reason}", file=sys.stderr)
        return EXIT_UNREADABLE


if __name__ == "__main__":
    raise SystemExit(main())
