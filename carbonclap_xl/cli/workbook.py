"""Workbook commands of the CLI: ``new`` and ``process``."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from carbonclap_xl.cli.common import EXIT_ISSUES, EXIT_OK, emit_json, say
from carbonclap_xl.core.errors import InputFileError


def cmd_new(args: argparse.Namespace) -> int:
    from carbonclap_xl.intake.csv_lines import read_lines_csv
    from carbonclap_xl.xlsx.template import build_template, fill, save

    out = Path(args.output)
    exists = InputFileError(str(out), "existe déjà : choisissez un autre nom avec -o, ou "
                                      "--force pour le remplacer")
    if out.exists() and not args.force:
        raise exists
    if out.suffix.lower() != ".xlsx":
        raise InputFileError(str(out), "le modèle s'enregistre en .xlsx")
    wb = build_template()
    lines = read_lines_csv(Path(args.from_csv)) if args.from_csv else None
    warnings = fill(wb, lines)
    for warning in warnings:
        print(f"avertissement : {warning}", file=sys.stderr)
    try:
        save(wb, out, replace=args.force)  # never replaces a file created meanwhile
    except FileExistsError:
        raise exists from None
    total = 0 if lines is None else len(lines)
    skipped = sum("non placée" in w for w in warnings)
    detail = f" ({total - skipped} ligne(s) reprises" + (
        f", {skipped} non placée(s) : poste inconnu)" if skipped else ")") if total else ""
    print(f"Classeur créé : {out}{detail}")
    return EXIT_ISSUES if skipped else EXIT_OK


def cmd_process(args: argparse.Namespace) -> int:
    from carbonclap_xl.core.errors import WorkbookPatchError
    from carbonclap_xl.report.terminal import print_issues, summary_text
    from carbonclap_xl.validation.verdict import as_rejection, assess_workbook, require_file
    from carbonclap_xl.xlsx.files import locked_for_update, write_processed

    path = Path(args.workbook)
    if args.in_place and args.output:
        raise InputFileError(str(path), "choisissez --in-place ou -o, pas les deux")
    require_file(path)
    written = backup = None
    # --in-place: no other update of this file between our reading and our writing
    with locked_for_update(path) if args.in_place else contextlib.nullcontext():
        # the verdict validate gives: gate before any parser, same rules, same rejections
        processed = assess_workbook(path).processed
        if processed.data.is_carbonclap:
            try:
                written, backup = write_processed(processed, path,
                                                  Path(args.output) if args.output else None,
                                                  in_place=args.in_place, force=args.force)
            except WorkbookPatchError as exc:  # the result cannot go into this file
                raise as_rejection(exc, path) from None
    if args.json:
        emit_json(processed.to_dict(), args.json)
    print_issues(processed.issues, sys.stderr, args.verbose)
    title = processed.data.production.title or path.name
    say(summary_text(processed.result, title=f"Bilan carbone — {title}",
                      issues=processed.issues), args.json)
    if written:
        say(f"Résultats écrits dans : {written}"
             + (f" (sauvegarde : {backup})" if args.in_place else ""), args.json)
    return EXIT_ISSUES if processed.has_errors else EXIT_OK


def register(sub: Any) -> None:
    new = sub.add_parser("new", help="créer un classeur vierge (ou pré-rempli depuis un CSV)")
    new.add_argument("-o", "--output", default="CarbonClap.xlsx", metavar="FICHIER")
    new.add_argument("--from", dest="from_csv", metavar="LIGNES.csv",
                     help="pré-remplir avec les lignes d'un CSV (format de « compute »)")
    new.add_argument("--force", action="store_true", help="remplacer le fichier s'il existe")
    new.set_defaults(func=cmd_new)

    proc = sub.add_parser("process", help="calculer un classeur rempli et écrire les résultats")
    proc.add_argument("workbook", metavar="CLASSEUR")
    proc.add_argument("-o", "--output", metavar="SORTIE",
                      help="classeur résultat (défaut : <nom>-calcule.xlsx à côté)")
    proc.add_argument("--in-place", action="store_true",
                      help="écrire dans le classeur lui-même (une sauvegarde est gardée)")
    proc.add_argument("--force", action="store_true",
                      help="remplacer le classeur résultat s'il existe déjà")
    proc.add_argument("--json", metavar="FICHIER|-", help="écrire le résultat en JSON")
    proc.add_argument("-v", "--verbose", action="store_true", help="afficher aussi les infos")
    proc.set_defaults(func=cmd_process)
