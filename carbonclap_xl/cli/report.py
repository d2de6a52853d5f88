"""Report commands of the CLI: ``report`` (HTML/PDF footprint report) and ``compare``.

matplotlib and fpdf2 (the ``report`` extra) are imported only when ``report`` runs, so
``import carbonclap_xl.cli`` stays light.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from carbonclap_xl.cli.common import (
    EXIT_ISSUES,
    EXIT_OK,
    emit_json,
    examples,
    positive_int,
    say,
)
from carbonclap_xl.core.errors import InputFileError

MISSING_EXTRA = ("le rapport a besoin de matplotlib et fpdf2 : installez "
                 "« pip install 'carbonclap_xl[report]' »")


def cmd_report(args: argparse.Namespace) -> int:
    from carbonclap_xl.report.writer import write_report

    start = time.perf_counter()
    try:
        written = write_report(Path(args.workbook), Path(args.output) if args.output else None,
                               force=args.force)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("matplotlib", "fpdf", "PIL"):
            raise InputFileError(str(args.workbook), MISSING_EXTRA) from None
        raise
    errors = written.error_count
    if errors:
        print(f"avertissement : {errors} erreur(s) dans le classeur, lignes non comptées ; "
              "le rapport les liste", file=sys.stderr)
    print(f"Rapport écrit : {written.path} ({time.perf_counter() - start:.1f} s)")
    return EXIT_ISSUES if errors else EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from carbonclap_xl.report.compare import compare, compare_text
    from carbonclap_xl.report.document import load_result

    doc_a, doc_b = load_result(args.a), load_result(args.b)
    same = True if args.same_production else None
    result = compare(doc_a, doc_b, path_a=args.a, path_b=args.b, same_production=same,
                     top=args.top)
    if args.json:
        emit_json(result, args.json)
    say(compare_text(result), args.json)
    errors = [p for p, d in ((args.a, doc_a), (args.b, doc_b))
              if (d.get("counts") or {}).get("errors")]
    for path in errors:
        print(f"avertissement : {path} contient des erreurs (lignes non comptées)",
              file=sys.stderr)
    return EXIT_ISSUES if errors else EXIT_OK


def register(sub: Any) -> None:
    rep = sub.add_parser("report", help="rapport de bilan carbone en HTML ou PDF",
                         description="Rapport en français d'un classeur (HTML autonome ou PDF "
                                     "A4) : totaux et incertitude par phase, graphiques, "
                                     "écarts, lignes les plus lourdes, indicateurs et repères, "
                                     "qualité des données, scopes, contrôles, sources.",
                         epilog=examples("carbonclap-xl report MonFilm.xlsx",
                                         "carbonclap-xl report MonFilm.xlsx -o bilan.html",
                                         "carbonclap-xl report MonFilm.xlsx -o bilan.pdf --force"))
    rep.add_argument("workbook", metavar="CLASSEUR", help="le classeur rempli (.xlsx ou .xlsm)")
    rep.add_argument("-o", "--output", metavar="RAPPORT.pdf|RAPPORT.html",
                     help="fichier à écrire, format selon l'extension "
                          "(défaut : <nom>-rapport.pdf à côté du classeur)")
    rep.add_argument("--force", action="store_true", help="remplacer le rapport s'il existe")
    rep.set_defaults(func=cmd_report)

    cmp = sub.add_parser("compare", help="comparer deux classeurs (postes, natures, lignes)",
                         description="Compare deux classeurs par poste et par nature pour "
                                     "chaque phase ; pour une même production (même titre), "
                                     "aussi les lignes apparues, disparues ou qui changent le "
                                     "plus (appariées par poste + activité + commentaire).",
                         epilog=examples("carbonclap-xl compare previsionnel.xlsx definitif.xlsx",
                                         "carbonclap-xl compare v1.xlsx v2.xlsx --json -"))
    cmp.add_argument("a", metavar="A.xlsx", help="le classeur de référence (le plus ancien)")
    cmp.add_argument("b", metavar="B.xlsx", help="le classeur comparé (le plus récent)")
    cmp.add_argument("--json", metavar="FICHIER|-", help="écrire la comparaison en JSON")
    cmp.add_argument("--same-production", action="store_true",
                     help="comparer les lignes même si les titres diffèrent")
    cmp.add_argument("--top", type=positive_int, default=10, metavar="N",
                     help="nombre de lignes « qui changent le plus » (défaut 10)")
    cmp.set_defaults(func=cmd_compare)
