"""``carbonclap-xl factors list`` and ``carbonclap-xl compute``: the catalogue and the
engine on a CSV of lines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from carbonclap_xl.cli.common import EXIT_ISSUES, EXIT_OK, emit_json, examples, say

PROGRESS_MIN_BYTES = 1_000_000  # a CSV of lines this large (~10,000 lines) shows a bar


def cmd_factors_list(args: argparse.Namespace) -> int:
    from carbonclap_xl.core.factors import load_edition
    from carbonclap_xl.core.numbers import fr_general

    edition = load_edition()
    factors = edition.search(args.search)
    if args.catalogue:
        ids = {a.factor.id for a in edition.activities.values()}
        factors = [f for f in factors if f.id in ids]
    factors = sorted(factors, key=lambda f: f.status != "valid")  # valid ones first
    rows = [{"id": f.id, "label_fr": f.label_fr, "label_en": f.label_en, "value": f.value,
             "unit": f.unit, "uncertainty_pct": f.uncertainty_pct, "status": f.status,
             "source_dataset": f.source_dataset, "source_edition": f.source_edition,
             "source_id": f.source_id, "category": f.category, "location": f.location}
            for f in factors]
    if args.json:
        emit_json({"factor_edition": edition.name, "attribution": edition.attributions(),
                    "count": len(rows), "factors": rows}, "-")
        return EXIT_OK
    for r in rows:
        u = "" if r["uncertainty_pct"] is None else f" ±{fr_general(r['uncertainty_pct'])} %"
        archived = " [archivé]" if r["status"] != "valid" else ""
        where = f" ({r['location']})" if r["location"] else ""
        print(f"{r['id']:<22} {fr_general(r['value']):>12} kgCO2e/{r['unit']:<18}{u:<9} "
              f"{r['label_fr']}{where}{archived}")
    print(f"{len(rows)} facteur(s). {edition.credit()}", file=sys.stderr)
    return EXIT_OK


def cmd_factors_sources(args: argparse.Namespace) -> int:
    """The sources of the factors with their full attribution and licence: the detail that
    the one-line credit closing the other commands points to."""
    from carbonclap_xl.core.factors import load_edition

    edition = load_edition()
    sources = [{"key": s.key, "dataset": s.dataset, "edition": s.edition,
                "publisher": s.publisher, "licence": s.licence, "attribution": s.attribution}
               for s in edition.sources.values()]
    if args.json:
        emit_json({"factor_edition": edition.name, "attribution": edition.attributions(),
                   "sources": sources}, "-")
        return EXIT_OK
    print(f"Édition des facteurs : {edition.name}")
    for s in sources:
        print(f"\n{s['key']} — {s['dataset']}, édition {s['edition']} ({s['publisher']})\n"
              f"  licence : {s['licence']}\n  attribution : {s['attribution']}")
    return EXIT_OK


def cmd_compute(args: argparse.Namespace) -> int:
    from carbonclap_xl.cli.progress import Progress
    from carbonclap_xl.core.engine import compute
    from carbonclap_xl.core.factors import load_edition
    from carbonclap_xl.core.issues import group_issues
    from carbonclap_xl.core.numbers import fr_integer
    from carbonclap_xl.intake.csv_lines import read_lines_csv
    from carbonclap_xl.report.terminal import print_issues, summary_text

    path = Path(args.lines)
    large = path.is_file() and path.stat().st_size >= PROGRESS_MIN_BYTES
    # a large file: its stages on a bar (stderr, interactive terminals only)
    with Progress.on(sys.stderr, 3 if args.json else 2, "lecture du CSV", wanted=large) as bar:
        csv_lines = read_lines_csv(path)
        bar.advance(label=f"calcul de {fr_integer(len(csv_lines.lines))} lignes")
        result = compute(csv_lines.lines, load_edition(), excluded=csv_lines.excluded)
        issues = sorted([*csv_lines.issues, *result.issues],
                        key=lambda i: (i.line if i.line is not None else len(result.lines),
                                       str(i.field)))
        # as every door shows them: the first 100 of a code, then one that counts the rest
        result.issues = group_issues(issues, locate=csv_lines.locate)
        bar.advance(label="écriture du JSON")
        if args.json:
            emit_json(result.to_dict(for_json=True), args.json)
            bar.advance()
    print_issues(result.issues, sys.stderr, args.verbose)
    say(summary_text(result, title=f"Bilan carbone — {args.lines}"), args.json)
    return EXIT_ISSUES if result.has_errors else EXIT_OK


def register(sub: Any) -> None:
    factors = sub.add_parser(
        "factors", help="facteurs d'émission (toutes les sources)",
        description="Les facteurs d'émission de l'édition livrée (Base Empreinte, DESNZ, …).")
    fsub = factors.add_subparsers(dest="factors_command", required=True, metavar="ACTION",
                                  title="actions ")
    flist = fsub.add_parser(
        "list", help="lister ou chercher des facteurs",
        description="Liste les facteurs d'émission, valides d'abord.",
        epilog=examples('carbonclap-xl factors list --search "gazole non routier"',
                        "carbonclap-xl factors list --catalogue --json > facteurs.json"))
    flist.add_argument("--json", action="store_true", help="JSON sur la sortie standard")
    flist.add_argument("--search", metavar="TEXTE", help="mots à chercher (libellé, id)")
    flist.add_argument("--catalogue", action="store_true",
                       help="seulement les facteurs du catalogue d'activités")
    flist.set_defaults(func=cmd_factors_list)
    fsources = fsub.add_parser(
        "sources", help="les sources des facteurs, leur licence et leur attribution complète",
        description="Les sources des facteurs de l'édition livrée, avec le texte complet de "
                    "leur attribution et de leur licence\n(celui que reprennent la Synthèse, "
                    "les rapports et le JSON).",
        epilog=examples("carbonclap-xl factors sources",
                        "carbonclap-xl factors sources --json"))
    fsources.add_argument("--json", action="store_true", help="JSON sur la sortie standard")
    fsources.set_defaults(func=cmd_factors_sources)

    comp = sub.add_parser(
        "compute", help="calculer un fichier de lignes CSV",
        description="Calcule le bilan d'un CSV de lignes (colonnes poste, activity, "
                    "quantity_forecast,\nquantity_final, unit, count, data_source, comment, "
                    "ou les en-têtes des feuilles :\nPoste;Activité;Quantité prévisionnelle;"
                    "…) sans classeur. Un poste se nomme par son id\n(regie) ou par sa "
                    "feuille (Régie).",
        epilog=examples("carbonclap-xl compute lignes.csv",
                        "carbonclap-xl compute lignes.csv --json resultat.json",
                        "carbonclap-xl compute lignes.csv --json - | jq .total_kgco2e"))
    comp.add_argument("lines", metavar="LIGNES.csv", help="le fichier CSV des lignes")
    comp.add_argument("--json", metavar="FICHIER|-",
                      help="écrire le résultat en JSON (- : sur la sortie standard)")
    comp.add_argument("-v", "--verbose", action="store_true", help="afficher aussi les infos")
    comp.set_defaults(func=cmd_compute)
