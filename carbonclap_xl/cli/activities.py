"""``carbonclap-xl activities list``: the activity catalogue as the workbook's dropdowns show
it, best match first (``core.catalogue``). Light: no numpy, no engine."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from carbonclap_xl.cli.common import EXIT_OK, emit_json, examples
from carbonclap_xl.core.model import POSTE_IDS


def _row(match: Any) -> dict[str, Any]:
    a, f = match.activity, match.activity.factor
    return {"id": a.id, "label_fr": a.label_fr, "unit": a.unit, "entry": match.entry,
            "count_unit": match.entry.split(" × ", 1)[1], "postes": list(a.postes),
            "nature": a.nature, "factor_id": f.id, "value": f.value, "factor_unit": f.unit,
            "uncertainty_pct": f.uncertainty_pct, "note": a.note,
            "source": f"{f.source_dataset} {f.source_edition}"}


def cmd_activities_list(args: argparse.Namespace) -> int:
    from carbonclap_xl.core.catalogue import RANK_NAMES, rank_activities
    from carbonclap_xl.core.factors import load_edition
    from carbonclap_xl.core.numbers import fr_general

    edition = load_edition()
    matches = rank_activities(edition.activities.values(), args.search, args.poste)
    rows = [_row(m) for m in matches]
    if args.json:
        if args.search:
            for row, m in zip(rows, matches, strict=True):
                row["match"] = RANK_NAMES[m.rank]
        emit_json({"factor_edition": edition.name, "attribution": edition.attributions(),
                   "search": args.search, "poste": args.poste, "count": len(rows),
                   "activities": rows}, "-")
        return EXIT_OK
    for r in rows:
        u = "" if r["uncertainty_pct"] is None else f" ±{fr_general(r['uncertainty_pct'])} %"
        print(f"{r['label_fr']}\n    {r['id']} — saisie : {r['entry']} — "
              f"{fr_general(r['value'])} kgCO2e/{r['factor_unit']}{u} ({r['factor_id']}) — "
              f"{', '.join(r['postes'])} · {r['nature']}"
              + (f"\n    {r['note']}" if r["note"] else ""))
    found = f"{len(rows)} activité(s)" + (f" pour « {args.search} »" if args.search else "")
    print(f"{found}. {edition.credit()}", file=sys.stderr)
    return EXIT_OK


def register(sub: Any) -> None:
    acts = sub.add_parser("activities", help="le catalogue des activités (les listes du "
                                             "classeur)",
                          description="Les activités que proposent les listes du classeur.")
    asub = acts.add_subparsers(dest="activities_command", required=True, metavar="ACTION",
                               title="actions ")
    alist = asub.add_parser("list", help="lister les activités, la meilleure correspondance "
                                         "d'abord",
                            epilog=examples('carbonclap-xl activities list --search "tgv"',
                                            "carbonclap-xl activities list --poste regie",
                                            'carbonclap-xl activities list --search "repas '
                                            'vegetarien" --json'))
    alist.add_argument("--search", metavar="TEXTE",
                       help="mots à chercher (libellé, identifiant, note ; accents et "
                            "majuscules indifférents, fautes de frappe tolérées)")
    alist.add_argument("--poste", choices=POSTE_IDS, help="seulement les activités du poste")
    alist.add_argument("--json", action="store_true", help="JSON sur la sortie standard")
    alist.set_defaults(func=cmd_activities_list)
