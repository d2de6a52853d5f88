"""``carbonclap-xl validate``: validate submitted workbooks in a sandbox, print and export
the verdicts."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any, TextIO

from carbonclap_xl.cli.common import emit_json, examples, positive_float, positive_int
from carbonclap_xl.core.issues import SEVERITY_FR, Severity
from carbonclap_xl.core.model import Phase
from carbonclap_xl.core.numbers import fr_number as fmt
from carbonclap_xl.core.result import batch_document

SUMMARY_COLUMNS = ("file", "status", "code", "title", "phase", "total_forecast_kgco2e",
                   "total_final_kgco2e", "errors", "warnings", "reason", "factor_edition",
                   "attribution")


def summary_row(doc: dict[str, Any]) -> dict[str, Any]:
    production = doc.get("workbook", {}).get("production", {})
    totals = doc.get("total_kgco2e", {})
    rejection = doc.get("rejection") or {}
    return {"file": doc["file"], "status": doc["status"], "code": rejection.get("code", ""),
            "title": production.get("title") or "", "phase": doc.get("phase") or "",
            "total_forecast_kgco2e": totals.get("forecast", ""),
            "total_final_kgco2e": totals.get("final", ""),
            "errors": doc["counts"]["errors"], "warnings": doc["counts"]["warnings"],
            "reason": rejection.get("reason", ""),
            "factor_edition": doc.get("factor_edition", {}).get("name", ""),
            "attribution": " ; ".join(doc.get("attribution", []))}


def _print_report(doc: dict[str, Any], verbose: bool, out: TextIO) -> None:
    name = doc["file"]
    if doc["status"] == "rejected":
        r = doc["rejection"]
        print(f"REJETÉ   {name} : {r['reason']} [{r['code']}]", file=out)
        return
    c = doc["counts"]
    head = "ERREURS " if doc["status"] == "errors" else "OK      "
    total = doc["total_kgco2e"]
    print(f"{head} {name} : {c['errors']} erreur(s), {c['warnings']} avertissement(s) ; "
          f"prévisionnel {fmt(total['forecast'] / 1000)} t, définitif "
          f"{fmt(total['final'] / 1000)} t", file=out)
    for issue in doc["issues"]:
        if issue["severity"] == "info" and not verbose:
            continue
        where = f"{issue['sheet']}!{issue['cell']}" if issue.get("cell") else (
            issue.get("sheet") or "classeur")
        severity = SEVERITY_FR.get(Severity(issue["severity"]), issue["severity"])
        print(f"    {severity:<13} {issue['code']:<26} {where:<16} {issue['message']}",
              file=out)


def cmd_validate(args: argparse.Namespace) -> int:
    from carbonclap_xl.validation.batch import BatchOptions, validate_paths

    paths = list(args.files)
    options = BatchOptions(phase=args.phase, jobs=args.jobs, timeout_s=args.timeout,
                           memory_mb=args.memory_mb)
    reports: list[dict[str, Any]] = []
    progress = sys.stderr.isatty() and len(paths) > 1 and args.json != "-"
    out = sys.stderr if args.json == "-" else sys.stdout
    for n, doc in enumerate(validate_paths(paths, options), start=1):
        reports.append(doc)
        if progress:
            print(f"\r[{n}/{len(paths)}] {Path(doc['file']).name[:60]:<60}", end="",
                  file=sys.stderr, flush=True)
        if not progress or args.verbose:
            _print_report(doc, args.verbose, out)
    if progress:
        print(file=sys.stderr)
        for doc in reports:
            if doc["status"] != "ok":
                _print_report(doc, False, out)
    document = batch_document(reports)
    counts = document["summary"]
    print(f"{len(reports)} fichier(s) : {counts['ok']} conforme(s), {counts['errors']} avec "
          f"erreurs, {counts['rejected']} rejeté(s).", file=out)
    computed = next((d for d in reports if d.get("attribution")), None)
    if computed:  # the numbers shown carry their sources' attribution
        print(f"Facteurs : {computed['factor_edition']['name']} — "
              + " ; ".join(computed["attribution"]), file=out)
    if args.json:
        emit_json(document, args.json)
    if args.csv:
        with open(args.csv, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=SUMMARY_COLUMNS)
            writer.writeheader()
            writer.writerows(summary_row(d) for d in reports)
    if counts["rejected"]:
        return 2
    return 1 if counts["errors"] else 0


def register(sub: Any) -> None:
    val = sub.add_parser(
        "validate", help="valider des classeurs déposés (sans Excel, sans leur faire confiance)",
        description="Valide des classeurs déposés : chaque fichier est inspecté puis analysé "
                    "dans un processus\nà part, limité en mémoire et en temps ; le bilan est "
                    "recalculé depuis les quantités saisies.",
        epilog=examples("carbonclap-xl validate depot.xlsx",
                        "carbonclap-xl validate depots/*.xlsx --jobs 2 --json rapport.json "
                        "--csv synthese.csv",
                        "carbonclap-xl validate depots/*.xlsx --phase final"))
    val.add_argument("files", nargs="+", metavar="FICHIER", help="classeurs à valider")
    val.add_argument("--json", metavar="FICHIER|-",
                     help="un rapport JSON par fichier (- : sur la sortie standard)")
    val.add_argument("--csv", metavar="FICHIER", help="tableau récapitulatif du lot")
    val.add_argument("--phase", choices=[p.value for p in Phase],
                     help="phase attendue (défaut : celle déclarée dans le classeur)")
    val.add_argument("--jobs", type=positive_int, default=2, metavar="N",
                     help="processus d'analyse (défaut 2 ; au plus un par processeur)")
    val.add_argument("--timeout", type=positive_float, default=30.0, metavar="SECONDES",
                     help="temps maximal par fichier (défaut 30)")
    val.add_argument("--memory-mb", type=positive_int, default=1024, metavar="MO",
                     help="mémoire maximale par fichier en Mo (défaut 1024)")
    val.add_argument("-v", "--verbose", action="store_true", help="afficher aussi les infos")
    val.set_defaults(func=cmd_validate)
