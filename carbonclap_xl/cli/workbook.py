"""Workbook commands of the CLI: ``new`` and ``process``."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from pathlib import Path
from typing import Any

from carbonclap_xl.cli.common import EXIT_ISSUES, EXIT_OK, emit_json, examples, say
from carbonclap_xl.core.errors import InputFileError


def cmd_new(args: argparse.Namespace) -> int:
    from carbonclap_xl.core.atomic import require_folder
    from carbonclap_xl.intake.csv_lines import read_lines_csv
    from carbonclap_xl.intake.production import workbook_production
    from carbonclap_xl.workbook.layout import PRODUCTION_FIELDS
    from carbonclap_xl.xlsx.template import build_template, fill, save

    out = Path(args.output)
    exists = InputFileError(str(out), "existe déjà : choisissez un autre nom avec -o, ou "
                                      "--force pour le remplacer")
    if out.exists() and not args.force:
        raise exists
    if out.suffix.lower() != ".xlsx":
        raise InputFileError(str(out), "le modèle s'enregistre en .xlsx")
    require_folder(out)  # before any work: a typo in -o never creates folders
    csv_lines = read_lines_csv(Path(args.from_csv)) if args.from_csv else None
    production = workbook_production(csv_lines.header if csv_lines else (),
                                     Path(args.production) if args.production else None)
    wb = build_template()
    lines = csv_lines.lines.select(~csv_lines.excluded) if csv_lines else None
    numbers = [n for n, cut in zip(csv_lines.line_numbers, csv_lines.excluded, strict=True)
               if not cut] if csv_lines else None
    cut = len(csv_lines.issues) if csv_lines else 0
    for issue in csv_lines.issues if csv_lines else []:  # its fields may be shifted: not placed
        print(f"avertissement : {issue.message} (ligne non placée dans le classeur)",
              file=sys.stderr)
    warnings = fill(wb, lines, production, line_numbers=numbers)
    for warning in warnings:
        print(f"avertissement : {warning}", file=sys.stderr)
    try:
        save(wb, out, replace=args.force)  # never replaces a file created meanwhile
    except FileExistsError:
        raise exists from None
    total = 0 if lines is None else len(lines)
    skipped = sum("non placée" in w for w in warnings)
    reasons = [r for n, r in ((skipped, "poste inconnu"), (cut, "champs en trop")) if n]
    detail = f" ({total - skipped} ligne(s) reprises" + (
        f", {skipped + cut} non placée(s) : {', '.join(reasons)})" if reasons else ")") \
        if total + cut else ""
    print(f"Classeur créé : {out}{detail}")
    if production or csv_lines:  # made from data: say what the submission still lacks
        missing = [f.label for f in PRODUCTION_FIELDS if f.required and f.key not in production]
        print(f"Production : {len(production)} donnée(s) reprise(s)" + (
            " ; à compléter dans l'onglet Production (ou avec --production) : "
            + ", ".join(f"« {m} »" for m in missing) if missing else ", rien ne manque"))
    return EXIT_ISSUES if skipped or cut else EXIT_OK


def csv_instead_of_workbook(path: Path) -> str | None:
    """What to do with a CSV of lines given where a workbook is expected, or None when
    ``path`` does not look like one."""
    from carbonclap_xl.intake.textfile import looks_like_text_table

    if not looks_like_text_table(path):
        return None
    name = shlex.quote(str(path))
    return ("c'est un fichier CSV (texte), pas un classeur : calculez ses lignes avec "
            f"« carbonclap-xl compute {name} », ou faites-en un classeur avec "
            f"« carbonclap-xl new --from {name} -o MonFilm.xlsx » puis traitez celui-ci")


def cmd_process(args: argparse.Namespace) -> int:
    from carbonclap_xl.core.errors import HostileFile, WorkbookPatchError
    from carbonclap_xl.core.rejections import RejectionCode
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
        try:
            assessment = assess_workbook(path)
            processed = assessment.processed
        except HostileFile as exc:  # same verdict as validate; a CSV is told where to go
            hint = (csv_instead_of_workbook(path)
                    if exc.code == RejectionCode.NOT_A_WORKBOOK else None)
            if hint is None:
                raise
            raise HostileFile(exc.path, exc.code, hint) from None
        if processed.data.is_carbonclap:
            try:
                written, backup = write_processed(processed, path,
                                                  Path(args.output) if args.output else None,
                                                  in_place=args.in_place, force=args.force,
                                                  source=assessment.source)
            except WorkbookPatchError as exc:  # the result cannot go into this file
                raise as_rejection(exc, path) from None
    if args.json:
        emit_json(processed.report().to_dict(for_json=True), args.json)
    print_issues(processed.issues, sys.stderr, args.verbose)
    title = processed.data.production.title or path.name
    say(summary_text(processed.result, title=f"Bilan carbone — {title}",
                      issues=processed.issues), args.json)
    if written:
        say(f"Résultats écrits dans : {written}"
             + (f" (sauvegarde : {backup})" if args.in_place else ""), args.json)
    return EXIT_ISSUES if processed.has_errors else EXIT_OK


def cmd_upgrade(args: argparse.Namespace) -> int:
    from carbonclap_xl.core.issues import counts_text
    from carbonclap_xl.validation.safety import inspect_package
    from carbonclap_xl.workbook.layout import TEMPLATE_VERSION
    from carbonclap_xl.xlsx.files import FileSink, process_workbook
    from carbonclap_xl.xlsx.upgrade import upgrade_workbook

    path = Path(args.workbook)
    if not path.is_file():
        raise InputFileError(str(path), "fichier introuvable")
    inspect_package(path)  # refuses hostile or broken packages before any parser sees them
    report = upgrade_workbook(path, Path(args.output) if args.output else None,
                              force=args.force)
    # Recalculated at once, in the new file (ours, just written): the computed cells and the
    # live formulas take the 2.0 columns (a count, a data source per phase) instead of the
    # 1.0 formulas moved with their columns.
    processed = process_workbook(report.output)
    FileSink(report.output, report.output).apply(processed.plan())
    moved = ", ".join(report.sheets) or "aucune feuille de poste"
    elsewhere = (f" ; références mises à jour dans {report.formulas_elsewhere} autre(s) "
                 "partie(s)") if report.formulas_elsewhere else ""
    print(f"Classeur mis à niveau (modèle {report.from_version} → {TEMPLATE_VERSION}) et "
          f"recalculé : {report.output}\nColonnes déplacées dans : {moved}{elsewhere}."
          "\nNouvelles colonnes : Nombre, Source de la donnée (définitif), Incertitude déf. "
          f"({counts_text(processed.issues)} : voir l'onglet Contrôles).")
    return EXIT_OK


def register(sub: Any) -> None:
    new = sub.add_parser(
        "new", help="créer un classeur vierge (ou pré-rempli depuis un CSV)",
        description="Crée un classeur Carbon'Clap XL à remplir dans Excel ou LibreOffice.",
        epilog=examples("carbonclap-xl new -o MonFilm.xlsx",
                        "carbonclap-xl new -o MonFilm.xlsx --from lignes.csv",
                        "carbonclap-xl new -o MonFilm.xlsx --from lignes.csv "
                        "--production production.yaml")
        + "\n\nLe CSV de lignes a les colonnes de « compute » (en anglais, ou les en-têtes "
          "des feuilles :\nPoste;Activité;Quantité prévisionnelle;…). Les données de "
          "production (titre, type, phase,\nbudget, dates…) viennent de --production ou de "
          "lignes « # titre: Mon film » en tête du CSV.")
    new.add_argument("-o", "--output", default="CarbonClap.xlsx", metavar="FICHIER",
                     help="classeur à créer (défaut : CarbonClap.xlsx)")
    new.add_argument("--from", dest="from_csv", metavar="LIGNES.csv",
                     help="pré-remplir avec les lignes d'un CSV (format de « compute »)")
    new.add_argument("--production", metavar="PRODUCTION.yaml|.csv",
                     help="remplir l'onglet Production (titre, type d'œuvre, phase, budget, "
                          "dates…) depuis un fichier YAML (\u00ab\u00a0champ: "
                          "valeur\u00a0\u00bb) ou CSV (champ;valeur)")
    new.add_argument("--force", action="store_true", help="remplacer le fichier s'il existe")
    new.set_defaults(func=cmd_new)

    proc = sub.add_parser(
        "process", help="calculer un classeur rempli et écrire les résultats",
        description="Calcule le bilan d'un classeur rempli et écrit les colonnes calculées, "
                    "la Synthèse\net les Contrôles dans une copie (le reste du fichier est "
                    "gardé à l'octet près).",
        epilog=examples("carbonclap-xl process MonFilm.xlsx",
                        "carbonclap-xl process MonFilm.xlsx -o MonFilm-v2.xlsx --force",
                        "carbonclap-xl process MonFilm.xlsx --in-place",
                        "carbonclap-xl process MonFilm.xlsx --json bilan.json"))
    proc.add_argument("workbook", metavar="CLASSEUR", help="le classeur .xlsx ou .xlsm rempli")
    proc.add_argument("-o", "--output", metavar="SORTIE",
                      help="classeur résultat (défaut : <nom>-calcule.xlsx à côté)")
    proc.add_argument("--in-place", action="store_true",
                      help="écrire dans le classeur lui-même (une sauvegarde est gardée)")
    proc.add_argument("--force", action="store_true",
                      help="remplacer le classeur résultat s'il existe déjà")
    proc.add_argument("--json", metavar="FICHIER|-",
                      help="écrire le résultat en JSON (- : sur la sortie standard)")
    proc.add_argument("-v", "--verbose", action="store_true", help="afficher aussi les infos")
    proc.set_defaults(func=cmd_process)

    upg = sub.add_parser("upgrade", help="passer un classeur au modèle actuel (ses saisies, "
                                         "feuilles, commentaires et formats gardés)",
                         description="Passe un classeur du modèle 1.0 au modèle actuel en "
                                     "insérant les nouvelles colonnes ;\nl'ancien fichier "
                                     "n'est jamais modifié.",
                         epilog=examples("carbonclap-xl upgrade MonFilm.xlsx",
                                         "carbonclap-xl upgrade MonFilm.xlsx -o MonFilm-2.0.xlsx"))
    upg.add_argument("workbook", metavar="ANCIEN.xlsx", help="le classeur à mettre à niveau")
    upg.add_argument("-o", "--output", metavar="NOUVEAU",
                     help="classeur mis à niveau (défaut : <nom>-v2.xlsx à côté ; jamais "
                          "l'ancien)")
    upg.add_argument("--force", action="store_true",
                     help="remplacer le classeur de sortie s'il existe déjà")
    upg.set_defaults(func=cmd_upgrade)
