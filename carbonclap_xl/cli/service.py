"""Service commands of the CLI: ``serve`` (the validation web service) and ``consolidate``.

The web stack (fastapi, uvicorn, python-multipart: the ``service`` extra) is imported only by
``carbonclap_xl.service.app``, and that only when ``serve`` runs, so ``import
carbonclap_xl.cli`` never needs it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from carbonclap_xl.cli.common import (
    EXIT_OK,
    EXIT_UNREADABLE,
    add_csv_format,
    examples,
    positive_float,
    positive_int,
)
from carbonclap_xl.core.errors import InputFileError

MISSING_EXTRA = ("erreur : le service web demande des paquets en plus : "
                 "pip install 'carbonclap_xl[service]'")


def cmd_serve(args: argparse.Namespace) -> int:
    from carbonclap_xl.service.config import ServiceConfig, is_loopback, read_token

    try:
        from carbonclap_xl.service.app import serve
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] in ("fastapi", "uvicorn", "starlette",
                                                   "python_multipart", "multipart", "anyio"):
            print(MISSING_EXTRA, file=sys.stderr)
            return EXIT_UNREADABLE
        raise
    for name, value, low in (("--workers", args.workers, 1), ("--port", args.port, 0),
                             ("--memory-mb", args.memory_mb, 1)):
        if value < low:
            raise InputFileError(name, f"doit valoir au moins {low}")
    if not args.max_upload_mb > 0 or not args.timeout > 0:
        raise InputFileError("--max-upload-mb/--timeout", "doivent être positifs")
    token = read_token(args.token_file)
    storage = Path(args.storage) if args.storage else None
    if storage is not None and storage.exists() and not storage.is_dir():
        raise InputFileError(str(storage), "n'est pas un dossier")
    config = ServiceConfig(host=args.host, port=args.port, workers=args.workers, token=token,
                           storage=storage, max_upload_mb=args.max_upload_mb,
                           timeout_s=args.timeout, memory_mb=args.memory_mb)
    if not is_loopback(args.host) and token is None:
        print("attention : service exposé hors de cette machine sans jeton d'accès ; "
              "définissez CARBONCLAP_XL_TOKEN ou --token-file (voir docs/deploy.md)",
              file=sys.stderr)
    print(f"Carbon'Clap XL : http://{_url_host(args.host)}:{args.port}/ "
          f"({args.workers} processus d'analyse, {'jeton exigé' if token else 'sans jeton'}"
          f"{', dépôts conservés dans ' + str(storage) if storage else ''})", file=sys.stderr)
    serve(config, args.log_level)
    return EXIT_OK


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def cmd_consolidate(args: argparse.Namespace) -> int:
    from carbonclap_xl.core.csvout import CSV_FORMATS
    from carbonclap_xl.service.consolidate import collect, rows_from_report, write_dataset

    out = Path(args.output)
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise InputFileError(str(out), "la sortie doit être un fichier .csv ou .parquet")
    rows: list[dict[str, Any]] = []
    counts = {"ok": 0, "errors": 0, "rejected": 0}
    for doc in collect(args.inputs, jobs=args.jobs, phase=args.phase):
        status = doc.get("status")
        if status in counts:
            counts[status] += 1
        rows.extend(rows_from_report(doc))
    write_dataset(rows, out, CSV_FORMATS[args.csv_format])
    submissions = counts["ok"] + counts["errors"]
    print(f"{out} : {len(rows)} ligne(s) pour {submissions} dépôt(s)"
          + (f" ({counts['errors']} avec erreurs)" if counts["errors"] else "")
          + (f" ; {counts['rejected']} rejeté(s), sans chiffres, ignoré(s)"
             if counts["rejected"] else "") + ".")
    return EXIT_OK


def register(sub: Any) -> None:
    serve = sub.add_parser(
        "serve", help="service web de validation (page de dépôt + API JSON)",
        description="Démarre le service de validation : une page de dépôt en français et une "
                    "API JSON\n(les classeurs sont analysés dans des processus à part, "
                    "limités en mémoire et en temps).",
        epilog=examples("carbonclap-xl serve",
                        "carbonclap-xl serve --port 8080 --workers 4 --token-file jeton.txt",
                        "carbonclap-xl serve --storage depots/"))
    serve.add_argument("--host", default="127.0.0.1",
                       help="adresse d'écoute (défaut 127.0.0.1 : cette machine seulement)")
    serve.add_argument("--port", type=positive_int, default=8000, help="port (défaut 8000)")
    serve.add_argument("--workers", type=positive_int, default=2, metavar="N",
                       help="processus d'analyse en parallèle (défaut 2 ; ~300 Mo chacun)")
    serve.add_argument("--token-file", metavar="FICHIER",
                       help="jeton exigé sur /api/* (sinon $CARBONCLAP_XL_TOKEN, sinon aucun)")
    serve.add_argument("--storage", metavar="DOSSIER",
                       help="conserver les dépôts acceptés et leur rapport (défaut : rien)")
    serve.add_argument("--max-upload-mb", type=positive_float, default=20.0, metavar="MO",
                       help="taille maximale d'un envoi en Mo (défaut 20)")
    serve.add_argument("--timeout", type=positive_float, default=30.0, metavar="SECONDES",
                       help="temps maximal par fichier (défaut 30)")
    serve.add_argument("--memory-mb", type=positive_int, default=1024, metavar="MO",
                       help="mémoire maximale par fichier en Mo (défaut 1024)")
    serve.add_argument("--log-level", default="info",
                       choices=["critical", "error", "warning", "info", "debug"],
                       help="niveau du journal (défaut info)")
    serve.set_defaults(func=cmd_serve)

    cons = sub.add_parser(
        "consolidate", help="jeu de données : une ligne par dépôt × poste × phase (rapports "
                            "JSON ou classeurs)",
        description="Rassemble des rapports de validation (JSON) ou des classeurs en un jeu de "
                    "données pour les statistiques d'un financeur.",
        epilog=examples("carbonclap-xl consolidate rapport.json -o donnees.csv",
                        "carbonclap-xl consolidate depots/*.xlsx -o donnees.parquet",
                        "carbonclap-xl consolidate rapport.json -o donnees.csv --csv-format "
                        "plain"))
    cons.add_argument("inputs", nargs="+", metavar="RAPPORT.json|CLASSEUR.xlsx",
                      help="rapports de « validate --json » ou classeurs")
    cons.add_argument("-o", "--output", required=True, metavar="DONNEES.csv|.parquet",
                      help="fichier à écrire (.csv ou .parquet)")
    add_csv_format(cons, "du CSV (pas du Parquet)")
    cons.add_argument("--phase", choices=["forecast", "final"],
                      help="phase attendue pour les classeurs validés ici")
    cons.add_argument("--jobs", type=positive_int, default=2, metavar="N",
                      help="processus d'analyse (classeurs)")
    cons.set_defaults(func=cmd_consolidate)
