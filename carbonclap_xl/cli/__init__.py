"""The ``carbonclap-xl`` command line: one ``main()``.

Exit codes: 0 no error-level issue; 1 error-level issues in the user's data; 2 the input
cannot be read (one clear French line on stderr, no traceback). A bug in this program still
shows its traceback (exit 1), so that it gets reported.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from carbonclap_xl import __version__
from carbonclap_xl.core.errors import CarbonClapError

EXIT_OK, EXIT_ISSUES, EXIT_UNREADABLE = 0, 1, 2


def finite(doc: Any) -> Any:
    """``doc`` with every NaN or infinite float replaced by None (JSON has no such numbers)."""
    if isinstance(doc, float):
        return doc if math.isfinite(doc) else None
    if isinstance(doc, dict):
        return {k: finite(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [finite(v) for v in doc]
    return doc


def _emit_json(doc: Any, target: str) -> None:
    text = json.dumps(finite(doc), ensure_ascii=False, indent=1, allow_nan=False, default=str)
    if target == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(target).write_text(text + "\n", encoding="utf-8")


def _say(text: str, json_target: str | None) -> None:
    """Human output goes to stdout, or stderr when stdout carries the JSON."""
    print(text, file=sys.stderr if json_target == "-" else sys.stdout)


# --------------------------------------------------------------------------- commands


def cmd_factors_list(args: argparse.Namespace) -> int:
    from carbonclap_xl.core.factors import load_edition

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
        _emit_json({"factor_edition": edition.name, "attribution": edition.attributions(),
                    "count": len(rows), "factors": rows}, "-")
        return EXIT_OK
    for r in rows:
        u = "" if r["uncertainty_pct"] is None else f" ±{r['uncertainty_pct']:g} %"
        archived = " [archivé]" if r["status"] != "valid" else ""
        where = f" ({r['location']})" if r["location"] else ""
        print(f"{r['id']:<22} {r['value']:>12g} kgCO2e/{r['unit']:<18}{u:<9} "
              f"{r['label_fr']}{where}{archived}")
    print(f"{len(rows)} facteur(s). " + " ; ".join(edition.attributions()), file=sys.stderr)
    return EXIT_OK


def cmd_compute(args: argparse.Namespace) -> int:
    from carbonclap_xl.core.engine import compute
    from carbonclap_xl.core.factors import load_edition
    from carbonclap_xl.intake.csv_lines import locate_csv, read_lines_csv
    from carbonclap_xl.report.terminal import print_issues, summary_text

    frame = read_lines_csv(Path(args.lines))
    result = compute(frame, load_edition())
    result.issues = [locate_csv(i) for i in result.issues]
    if args.json:
        _emit_json(result.to_dict(), args.json)
    print_issues(result.issues, sys.stderr, args.verbose)
    _say(summary_text(result, title=f"Bilan carbone — {args.lines}"), args.json)
    return EXIT_ISSUES if result.has_errors else EXIT_OK


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carbonclap-xl",
        description="Bilan carbone d'une production audiovisuelle depuis son classeur.")
    parser.add_argument("--version", action="version", version=f"carbonclap-xl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    factors = sub.add_parser("factors", help="facteurs d'émission")
    fsub = factors.add_subparsers(dest="factors_command", required=True)
    flist = fsub.add_parser("list", help="lister les facteurs")
    flist.add_argument("--json", action="store_true", help="JSON sur la sortie standard")
    flist.add_argument("--search", metavar="TEXTE", help="mots à chercher (libellé, id)")
    flist.add_argument("--catalogue", action="store_true",
                       help="seulement les facteurs du catalogue d'activités")
    flist.set_defaults(func=cmd_factors_list)

    comp = sub.add_parser("compute", help="calculer un fichier de lignes CSV")
    comp.add_argument("lines", metavar="LIGNES.csv")
    comp.add_argument("--json", metavar="FICHIER|-", help="écrire le résultat en JSON")
    comp.add_argument("-v", "--verbose", action="store_true", help="afficher aussi les infos")
    comp.set_defaults(func=cmd_compute)

    _add_workbook_commands(sub)
    from carbonclap_xl.cli import devis; devis.register(sub)  # noqa: E702, I001
    return parser


def _add_workbook_commands(sub: Any) -> None:
    """Commands of the workbook layer, registered when that layer is installed."""
    try:
        from carbonclap_xl.cli import workbook as commands
    except ImportError:
        return
    commands.register(sub)


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
