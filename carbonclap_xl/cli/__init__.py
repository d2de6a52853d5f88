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
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from carbonclap_xl import __version__
from carbonclap_xl.cli import (
    activities,
    addin,
    devis,
    libreoffice,
    lines,
    report,
    service,
    validate,
    workbook,
)
from carbonclap_xl.cli.common import EXIT_OK, EXIT_UNREADABLE, FrenchParser, examples
from carbonclap_xl.core.errors import CarbonClapError


def build_parser() -> argparse.ArgumentParser:
    parser = FrenchParser(
        prog="carbonclap-xl",
        description="Bilan carbone d'une production audiovisuelle (film, série, documentaire, "
                    "publicité)\ncalculé dans son classeur budgétaire, prévisionnel et "
                    "définitif (facteurs ADEME Base Empreinte).",
        epilog=examples("carbonclap-xl new -o MonFilm.xlsx",
                        "carbonclap-xl process MonFilm.xlsx",
                        "carbonclap-xl validate depots/*.xlsx --csv synthese.csv",
                        "carbonclap-xl COMMANDE -h     (l'aide d'une commande)"))
    parser.add_argument("--version", action="version", version=f"carbonclap-xl {__version__}",
                        help="afficher la version et quitter")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMANDE",
                                title="commandes ")
    for module in (lines, activities, workbook, devis, validate, report, addin, libreoffice,
                   service):
        module.register(sub)
    return parser


# OSError numbers users meet, in French (anything else: its symbolic name)
_OS_ERRORS_FR = {
    "ENOENT": "introuvable (fichier ou dossier)", "EACCES": "accès refusé (droits)",
    "EPERM": "opération non permise", "EISDIR": "c'est un dossier",
    "ENOTDIR": "un élément du chemin n'est pas un dossier", "ENOSPC": "disque plein",
    "EROFS": "système de fichiers en lecture seule", "EDQUOT": "quota disque dépassé",
    "EFBIG": "fichier trop gros (limite de taille atteinte)", "EEXIST": "existe déjà",
    "ENAMETOOLONG": "nom de fichier trop long", "ELOOP": "trop de liens symboliques",
    "EIO": "erreur d'entrée-sortie du disque",
}


def main(argv: Sequence[str] | None = None) -> int:
    from carbonclap_xl.core.text import printable

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CarbonClapError as exc:
        print(printable(f"erreur : {exc}"), file=sys.stderr)
        return EXIT_UNREADABLE
    except BrokenPipeError:  # e.g. `carbonclap-xl factors list | head`
        return EXIT_OK
    except OSError as exc:  # a path that cannot be written or read: the user's to fix
        name = errno.errorcode.get(exc.errno or 0, "")
        reason = _OS_ERRORS_FR.get(name, f"erreur système {name or type(exc).__name__}")
        where = f"{exc.filename} : " if exc.filename else ""
        print(printable(f"erreur : {where}{reason}"), file=sys.stderr)
        return EXIT_UNREADABLE


def run(argv: Sequence[str] | None = None) -> NoReturn:
    """The console script and ``python -m carbonclap_xl``: :func:`main`, then the process
    ends without tearing its modules and objects down one by one (about 25 ms after a
    5,000-line workbook, paid at every click in Excel). The exit handlers still run
    (openpyxl's temporary files, the sandbox's workers), then the output is flushed; while a
    thread still runs, or when ``main`` raises (``SystemExit`` for a wrong argument), the
    process ends the usual way."""
    code = main(argv)
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)  # the usual exit waits for the thread
    import atexit

    atexit._run_exitfuncs()  # what the interpreter would run at exit, in the same order
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # a reader gone, or a stream closed: as main does
        pass
    os._exit(code)


if __name__ == "__main__":
    run()
