"""``carbonclap-xl import-devis``: a production budget into monetary lines of a workbook."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from carbonclap_xl.cli.common import (
    EXIT_ISSUES,
    EXIT_OK,
    add_csv_format,
    examples,
    positive_float,
    positive_int,
)
from carbonclap_xl.core.errors import InputFileError


def cmd_import_devis(args: argparse.Namespace) -> int:
    from carbonclap_xl.core.csvout import CSV_FORMATS
    from carbonclap_xl.core.factors import load_edition
    from carbonclap_xl.intake.devis import (
        FINAL,
        FORECAST,
        NOT_PLACED,
        Options,
        analyse_budget,
        euros,
    )
    from carbonclap_xl.intake.devis_mapping import load_mapping
    from carbonclap_xl.intake.devis_report import summary, write_report
    from carbonclap_xl.intake.devis_workbook import (
        append_into,
        prepare_lines,
        read_existing,
        write_new,
    )

    source = Path(args.devis)
    output = Path(args.output) if args.output else None
    into = Path(args.into) if args.into else None
    if output and into:
        raise InputFileError(str(output), "choisissez -o (nouveau classeur) ou --into "
                                          "(classeur existant), pas les deux")
    if output is not None:
        if output.suffix.lower() != ".xlsx":
            raise InputFileError(str(output), "le nouveau classeur s'enregistre en .xlsx")
        if output.exists() and not args.force:
            raise InputFileError(str(output), "existe déjà : --force pour le remplacer, --into "
                                              "pour y ajouter les lignes, ou -o AUTRE")
    if not source.exists():
        raise InputFileError(str(source), "fichier introuvable")
    from carbonclap_xl.validation.safety import inspect_package

    for package in (source, into):  # hostile or broken packages, before any parser sees them
        if package is not None and package.is_file() and package.suffix.lower() in (
                ".xlsx", ".xlsm"):
            inspect_package(package)
    edition = load_edition()
    mapping = load_mapping(Path(args.mapping) if args.mapping else None, edition)
    options = Options(sheet=args.sheet, header_row=args.header_row,
                      forecast_column=args.forecast_column, final_column=args.final_column,
                      layout=args.layout, ttc_rate=args.ttc)
    analysis = analyse_budget(source, options, mapping, edition)

    existing = read_existing(into) if into is not None else None
    records, changed = prepare_lines(analysis, existing, edition, mapping)

    for line in summary(analysis, verbose=args.verbose):
        print(line)
    if args.report:
        write_report(analysis, Path(args.report), CSV_FORMATS[args.csv_format])
        print(f"Rapport ligne à ligne : {args.report}")
    if output is not None:
        production: dict[str, Any] = {}
        total = analysis.grand_total or {}
        budget = total.get(FORECAST) or total.get(FINAL)
        if budget:
            production["budget_keur"] = round(budget / 1000, 3)
        if len(analysis.phases) == 1:
            production["phase"] = analysis.phases[0]
        for warning in write_new(output, records, production):
            print(f"avertissement : {warning}", file=sys.stderr)
        extra = (f" ; budget total {euros(budget)} repris dans Production" if budget else "")
        print(f"Classeur créé : {output} ({len(records)} ligne(s){extra})")
    elif existing is not None:
        if records:
            backup = append_into(existing, records)
            print(f"Lignes ajoutées à {into} : {len(records)} (sauvegarde : {backup})")
        else:
            print(f"Rien à ajouter à {into} : classeur inchangé")
    else:
        print("Aucun classeur écrit : ajoutez -o NOUVEAU.xlsx ou --into CLASSEUR.xlsx.")
    if output is not None or existing is not None:
        print("Étape suivante : carbonclap-xl process "
              f"{output or into} pour calculer le bilan.")
    placed_nowhere = len(analysis.of(NOT_PLACED))
    if placed_nowhere:
        print(f"{placed_nowhere} ligne(s) non placée(s) : à saisir en données physiques ou à "
              "classer (liste ci-dessus).", file=sys.stderr)
    if changed:
        print(f"{changed} ligne(s) déjà importée(s) avec d'autres montants : le classeur ne "
              "suit plus ce devis (liste ci-dessus).", file=sys.stderr)
    return EXIT_ISSUES if placed_nowhere or changed else EXIT_OK


def register(sub: Any) -> None:
    cmd = sub.add_parser(
        "import-devis", help="importer un devis de production (structure CNC) en lignes "
                             "monétaires",
        description="Lit un devis (.xlsx, .xlsm ou .csv) au format CNC (devis détaillé long "
                    "métrage ou grille TV en 10 catégories), reconnaît l'en-tête, les colonnes "
                    "de montants, les sous-totaux et les chapitres sans émissions propres, et "
                    "écrit les lignes en € HT dans les postes du classeur. Sans -o ni --into, "
                    "affiche seulement ce qui serait importé.",
        epilog=examples("carbonclap-xl import-devis devis.xlsx",
                        "carbonclap-xl import-devis devis.xlsx -o MonFilm.xlsx",
                        "carbonclap-xl import-devis devis.csv --into MonFilm.xlsx",
                        "carbonclap-xl import-devis devis.xlsx -o MonFilm.xlsx --final-column "
                        "aucune"))
    cmd.add_argument("devis", metavar="DEVIS", help="le devis : .xlsx, .xlsm ou .csv")
    target = cmd.add_mutually_exclusive_group()
    target.add_argument("-o", "--output", metavar="NOUVEAU.xlsx",
                        help="créer un nouveau classeur avec les lignes du devis")
    target.add_argument("--into", metavar="CLASSEUR.xlsx",
                        help="ajouter les lignes à un classeur existant (une sauvegarde est "
                             "gardée ; seules les nouvelles cellules sont écrites)")
    cmd.add_argument("--force", action="store_true",
                     help="remplacer le fichier de -o s'il existe déjà")
    cmd.add_argument("--sheet", metavar="FEUILLE", help="la feuille du devis (défaut : celle "
                                                        "qui a le plus de lignes de montant)")
    cmd.add_argument("--header-row", type=positive_int, metavar="N",
                     help="numéro de la ligne d'en-tête (défaut : détectée)")
    cmd.add_argument("--forecast-column", metavar="COLONNE",
                     help="colonne du montant prévisionnel (devis) : lettre, nom, ou « aucune »")
    cmd.add_argument("--final-column", metavar="COLONNE",
                     help="colonne du coût final (réalisé) : lettre, nom, ou « aucune »")
    cmd.add_argument("--layout", choices=("film", "tv"),
                     help="structure du devis : film (chapitres 1–9 et sous-chapitres à deux "
                          "chiffres) ou tv (10 catégories) ; défaut : détectée")
    cmd.add_argument("--ttc", type=positive_float, metavar="TAUX",
                     help="les montants sont TTC : les diviser par 1 + TAUX/100 (ex. 20)")
    cmd.add_argument("--mapping", metavar="FICHIER.yaml",
                     help="votre table de correspondance, appliquée avant celle fournie "
                          "(voir docs/devis.md)")
    cmd.add_argument("--report", metavar="DECISIONS.csv",
                     help="écrire la décision prise pour chaque ligne du devis")
    add_csv_format(cmd, "de --report")
    cmd.add_argument("-v", "--verbose", action="store_true",
                     help="lister toutes les lignes (importées, non placées…)")
    cmd.set_defaults(func=cmd_import_devis)
