"""``carbonclap-xl libreoffice …``: build, check and install the LibreOffice extension, and
``exchange``, the command the extension itself runs (docs/libreoffice.md)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from carbonclap_xl.cli.common import (
    EXIT_ISSUES,
    EXIT_OK,
    EXIT_UNREADABLE,
    examples,
    write_atomic,
)
from carbonclap_xl.core.errors import CarbonClapError, InputFileError


def cmd_build(args: argparse.Namespace) -> int:
    from carbonclap_xl.libreoffice.build import oxt_bytes

    out = Path(args.output)
    if out.suffix.lower() != ".oxt":
        raise InputFileError(str(out), "une extension LibreOffice s'enregistre en .oxt")
    write_atomic(out, oxt_bytes())
    print(f"Extension créée : {out}")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from carbonclap_xl.libreoffice.check import check_oxt

    path = Path(args.oxt)
    if not path.is_file():
        raise InputFileError(str(path), "fichier introuvable")
    result = check_oxt(path)
    if result.commands:
        print(result.table())
    for problem in result.problems:
        print(f"problème : {problem}", file=sys.stderr)
    print("Extension complète : chaque commande atteint son gestionnaire." if not
          result.problems else f"{len(result.problems)} lien(s) manquant(s).")
    return EXIT_ISSUES if result.problems else EXIT_OK


def cmd_install(args: argparse.Namespace) -> int:
    import json
    import tempfile

    from carbonclap_xl.libreoffice import install
    from carbonclap_xl.libreoffice.build import oxt_bytes

    config = Path(args.config) if args.config else install.config_path()
    settings = install.config_document(install.read_config(config))
    start = time.perf_counter()
    if not args.config_only:
        with tempfile.TemporaryDirectory(prefix="carbonclap-oxt-") as tmp:
            if args.oxt:
                oxt = Path(args.oxt)
                if not oxt.is_file():
                    raise InputFileError(str(oxt), "fichier introuvable")
            else:
                oxt = Path(tmp) / "CarbonClap.oxt"
                oxt.write_bytes(oxt_bytes())
            done = install.install_extension(oxt, Path(args.profile) if args.profile else None)
        where = f"profil {done.profile}" if done.profile else "profil LibreOffice de l'utilisateur"
        print(f"Extension Carbon'Clap installée ({where}, via {done.route}, "
              f"{time.perf_counter() - start:.1f} s).")
    config.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(config, (json.dumps(settings, ensure_ascii=False, indent=2) + "\n").encode())
    print(f"Configuration : {config}\n  commande : {' '.join(settings['command'])}")
    if not args.config_only:
        print("Redémarrez LibreOffice : le menu et la barre d'outils « Carbon'Clap » "
              "apparaissent dans Calc.")
    return EXIT_OK


def cmd_exchange(args: argparse.Namespace) -> int:
    """One request of the extension on stdin, its answer on stdout. A request that cannot
    be answered gives ``{"version", "error"}`` (shown to the user) and exit 2; a bug keeps
    its traceback on stderr (the extension logs it) and exits 1."""
    import orjson

    from carbonclap_xl.core.errors import ExchangeError
    from carbonclap_xl.core.result import dumps
    from carbonclap_xl.libreoffice.exchange import respond
    from carbonclap_xl.workbook.port import EXCHANGE_VERSION

    try:
        try:
            request = orjson.loads(sys.stdin.buffer.read())
        except orjson.JSONDecodeError as exc:
            raise ExchangeError(f"Requête de l'extension illisible (JSON invalide : {exc})."
                                ) from None
        answer = respond(request)
        for path, data in answer.outputs.items():
            write_atomic(path, data)
    except (CarbonClapError, OSError) as exc:
        reason = str(exc)
        if isinstance(exc, OSError) and not isinstance(exc, CarbonClapError):
            reason = (f"Écriture impossible : {exc.filename or ''} ({exc.strerror or exc}) ; "
                      "le classeur n'a pas été modifié.")
        sys.stdout.buffer.write(dumps({"version": EXCHANGE_VERSION, "error": reason}))
        sys.stdout.flush()
        print(f"erreur : {reason}", file=sys.stderr)
        return EXIT_UNREADABLE
    sys.stdout.buffer.write(dumps(answer.doc, indent=False))
    sys.stdout.flush()
    return EXIT_OK


def register(sub: Any) -> None:
    lo = sub.add_parser("libreoffice", help="l'extension Carbon'Clap pour LibreOffice Calc",
                        description="Construit, vérifie et installe l'extension LibreOffice "
                                    "(menu et barre d'outils Carbon'Clap).")
    losub = lo.add_subparsers(dest="libreoffice_command", required=True, metavar="ACTION",
                              title="actions ")
    build = losub.add_parser("build", help="construire l'extension (.oxt)",
                             epilog=examples("carbonclap-xl libreoffice build",
                                             "carbonclap-xl libreoffice build -o CC.oxt"))
    build.add_argument("-o", "--output", default="CarbonClap.oxt", metavar="FICHIER.oxt",
                       help="fichier à écrire (défaut : CarbonClap.oxt)")
    build.set_defaults(func=cmd_build)

    check = losub.add_parser("check", help="vérifier qu'une extension relie chaque commande "
                                           "du menu et de la barre d'outils à son gestionnaire",
                             epilog=examples("carbonclap-xl libreoffice check CarbonClap.oxt"))
    check.add_argument("oxt", metavar="FICHIER.oxt", help="l'extension à vérifier")
    check.set_defaults(func=cmd_check)

    inst = losub.add_parser("install", help="installer l'extension pour cet utilisateur et "
                                            "enregistrer le carbonclap-xl qu'elle appelle "
                                            "(LibreOffice fermé)",
                            epilog=examples("carbonclap-xl libreoffice install",
                                            "carbonclap-xl libreoffice install --config-only"))
    inst.add_argument("--oxt", metavar="FICHIER.oxt",
                      help="une extension déjà construite (défaut : construite à la volée)")
    inst.add_argument("--profile", metavar="DOSSIER",
                      help="un profil LibreOffice précis (défaut : celui de l'utilisateur)")
    inst.add_argument("--config", metavar="FICHIER",
                      help="le fichier de configuration à écrire (défaut : "
                           "libreoffice.json du dossier de configuration de carbonclap-xl)")
    inst.add_argument("--config-only", action="store_true",
                      help="seulement enregistrer la commande à appeler (extension ajoutée "
                           "à la main : Outils > Gestionnaire des extensions)")
    inst.set_defaults(func=cmd_install)

    exch = losub.add_parser("exchange", help="(utilisé par l'extension) une requête JSON sur "
                                             "l'entrée standard, la réponse sur la sortie",
                            epilog=examples("carbonclap-xl libreoffice exchange < requete.json"))
    exch.set_defaults(func=cmd_exchange)
