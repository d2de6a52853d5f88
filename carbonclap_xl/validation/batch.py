"""Server-side validation of submitted workbooks, hostile files included.

    carbonclap-xl validate FILE... [--json FILE|-] [--csv FILE] [--phase forecast|final]
                                   [--jobs N]

Nothing in a submission is trusted: the package is inspected before any parser sees it
(``safety``), parsing runs in a pool of reused worker processes with memory and time limits
(``sandbox``), the footprint is recomputed from the typed quantities (cached results and
formulas are never used as results), and every rule below is checked, all problems collected.
A hostile or broken file costs one worker and one line of report, never the batch.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbonclap_xl.core.issues import Code, Issue, make_issue, severity_counts
from carbonclap_xl.core.model import Phase
from carbonclap_xl.workbook.rules import fmt, stale_issues

# A formula that launches a program (DDE) or calls code: never evaluated, always reported.
_DDE = re.compile(r"(^|[^A-Za-z0-9_.])[A-Za-z0-9_.]+\s*\|\s*'|\b(DDE|DDEAUTO|CALL|REGISTER|"
                  r"REGISTER\.ID|EXEC|WEBSERVICE|FILTERXML|RTD)\s*\(", re.IGNORECASE)
_EXTERNAL = re.compile(r"\[[^\]]+\][^!]*!|'[^']*\[[^\]]+\][^']*'!")


def formula_issues(path: Path, sheets: dict[str, str]) -> list[Issue]:
    """DDE-like and external-reference formulas anywhere in the workbook (never evaluated)."""
    from carbonclap_xl.xlsx.sheetscan import has_formulas, scan_sheet

    issues: list[Issue] = []
    with zipfile.ZipFile(path) as zf:
        for sheet, part in sheets.items():
            try:
                data = zf.read(part)
            except KeyError:
                continue
            if not has_formulas(data):
                continue
            for ref, formula in scan_sheet(data).formulas.items():
                if _DDE.search(formula):
                    issues.append(make_issue(Code.FORMULA_DDE, value=f"={formula}"[:200],
                                             sheet=sheet, cell=ref))
                elif _EXTERNAL.search(formula):
                    issues.append(make_issue(Code.EXTERNAL_LINK, value=f"={formula}"[:200],
                                             sheet=sheet, cell=ref))
    return issues


# Why a file is rejected (exit 2): the safety gate's codes, the sandbox's, the reader's.
REJECTION_CODES: dict[str, str] = {
    "FILE_NOT_FOUND": "Chemin introuvable, ou qui n'est pas un fichier.",
    "EMPTY_FILE": "Fichier vide (0 octet).",
    "FILE_TOO_LARGE": "Fichier plus gros que la limite (50 Mo).",
    "ENCRYPTED": "Classeur protégé par un mot de passe à l'ouverture.",
    "LEGACY_XLS": "Ancien format Excel 97-2003 (.xls) : à enregistrer en .xlsx.",
    "ODS_FILE": "Classeur OpenDocument (.ods) renommé : à enregistrer en .xlsx.",
    "NOT_A_WORKBOOK": "Pas un classeur Excel (CSV, HTML, PDF, document Word renommé, .xlsb…).",
    "CORRUPT_ZIP": "Archive tronquée ou endommagée (répertoire absent, CRC faux, doublons).",
    "ZIP_BOMB": "Décompression anormale : trop de parties, partie ou total trop gros, taux de "
                "compression suspect (décidé sur le répertoire, sans décompresser).",
    "PATH_TRAVERSAL": "Chemin de partie ou de relation qui sort du classeur (../, /, \\, C:).",
    "XML_ENTITY": "Déclaration DOCTYPE ou ENTITY dans une partie XML (bombe d'entités, entité "
                  "externe).",
    "SHEET_TOO_LARGE": "Onglet déclaré ou utilisé au-delà des limites (200 000 lignes, 1 000 "
                       "colonnes, 2 000 000 cellules), p. ex. A1:XFD1048576.",
    "CORRUPT_WORKBOOK": "Zip sain mais classeur incohérent (XML invalide, partie absente).",
    "INPUT_FILE_ERROR": "Classeur illisible par le lecteur de valeurs.",
    "TIMEOUT": "Analyse plus longue que la limite (30 s par défaut) : processus arrêté.",
    "MEMORY": "Analyse au-delà de la mémoire autorisée (1 Go par défaut).",
    "WORKER_CRASHED": "Le processus d'analyse est mort (p. ex. abandon de python-calamine) : "
                      "fichier rejeté, le lot continue.",
    "INTERNAL_ERROR": "Défaut du programme (à signaler) : le fichier est rejeté, le lot continue.",
}


def rejections_markdown() -> str:
    rows = ["| code | motif |", "|---|---|"]
    rows += [f"| `{code}` | {text} |" for code, text in REJECTION_CODES.items()]
    return "\n".join(rows) + "\n"


# --------------------------------------------------------------------------- one file


def validate_file(item: tuple[str, str | None]) -> dict[str, Any]:
    """Validate one file; runs inside a sandbox worker. Raises HostileFile to reject it."""
    from carbonclap_xl.validation.safety import inspect_package
    from carbonclap_xl.xlsx.files import process_workbook

    path_text, phase_text = item
    path = Path(path_text)
    phase = Phase(phase_text) if phase_text else None
    report = inspect_package(path)
    processed = process_workbook(path, expected_phase=phase)
    issues = list(processed.issues)
    if report.macros:
        issues.append(make_issue(Code.MACROS_FOUND, value=", ".join(report.macros)[:300]))
    if report.external_links:
        issues.append(make_issue(Code.EXTERNAL_LINK, value=", ".join(report.external_links)))
    issues += formula_issues(path, report.sheets)
    if processed.data.is_carbonclap:
        issues += stale_issues(processed)
    doc = processed.to_dict(lines=False)
    doc["issues"] = [i.to_dict() for i in issues]
    doc["counts"].update(severity_counts(issues))
    doc["phase"] = str(phase or processed.data.production.phase or "") or None
    doc["status"] = "errors" if doc["counts"]["errors"] else "ok"
    doc["file"] = str(path)
    return doc


def rejected(path: str, code: str, reason: str) -> dict[str, Any]:
    return {"file": path, "status": "rejected", "rejection": {"code": code, "reason": reason},
            "issues": [], "counts": {"errors": 0, "warnings": 0, "infos": 0}}


@dataclass
class BatchOptions:
    phase: str | None = None
    jobs: int = 2
    timeout_s: float = 30.0
    memory_mb: int = 1024


def _warm_worker() -> None:
    """Import what parsing needs once per worker, before the memory cap is measured."""
    import pandas  # noqa: F401
    import python_calamine  # noqa: F401

    from carbonclap_xl.core import engine  # noqa: F401
    from carbonclap_xl.core.factors import load_edition
    from carbonclap_xl.validation import safety  # noqa: F401
    from carbonclap_xl.workbook import pipeline  # noqa: F401

    load_edition()


def validate_paths(paths: list[str], options: BatchOptions) -> Iterator[dict[str, Any]]:
    """One report per path, in input order; hostile files become ``rejected`` reports."""
    from carbonclap_xl.validation.sandbox import WorkerPool

    # more workers than files or processors only costs memory (~270 MB each) and start-up
    jobs = max(1, min(options.jobs, len(paths), os.cpu_count() or 1))
    with WorkerPool(jobs=jobs, memory_mb=options.memory_mb,
                    timeout_s=options.timeout_s, initializer=_warm_worker) as pool:
        items = [(str(p), options.phase) for p in paths]
        missing = {p for p, _ in items if not Path(p).is_file()}
        reports = pool.map(validate_file, [i for i in items if i[0] not in missing])
        for path_text, _phase in items:
            if path_text in missing:
                yield rejected(path_text, "FILE_NOT_FOUND",
                               "fichier introuvable (ou ce n'est pas un fichier)")
                continue
            outcome = next(reports)
            path = outcome.item[0]
            if outcome.error_code is None:
                yield outcome.value
            else:
                yield rejected(path, outcome.error_code, _rejection_reason(path, outcome))


def _rejection_reason(path: str, outcome: Any) -> str:
    reason = str(outcome.error)
    prefix = f"{path} : "
    if reason.startswith(prefix):
        reason = reason[len(prefix):]
    if outcome.error_code in ("WORKER_CRASHED", "MEMORY", "TIMEOUT"):
        reason = (f"le fichier n'a pas pu être analysé sans risque ({reason}) : "
                  "ré-enregistrez-le au format .xlsx depuis Excel ou LibreOffice")
    return re.sub(r"\s*\[[A-Z_]+\]$", "", reason)


# --------------------------------------------------------------------------- CLI

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


def _print_report(doc: dict[str, Any], verbose: bool) -> None:
    name = doc["file"]
    if doc["status"] == "rejected":
        r = doc["rejection"]
        print(f"REJETÉ   {name} : {r['reason']} [{r['code']}]")
        return
    c = doc["counts"]
    head = "ERREURS " if doc["status"] == "errors" else "OK      "
    total = doc["total_kgco2e"]
    print(f"{head} {name} : {c['errors']} erreur(s), {c['warnings']} avertissement(s) ; "
          f"prévisionnel {fmt(total['forecast'] / 1000)} t, définitif "
          f"{fmt(total['final'] / 1000)} t")
    for issue in doc["issues"]:
        if issue["severity"] == "info" and not verbose:
            continue
        where = f"{issue['sheet']}!{issue['cell']}" if issue.get("cell") else (
            issue.get("sheet") or "classeur")
        print(f"    {issue['severity']:<8} {issue['code']:<26} {where:<16} {issue['message']}")


def cmd_validate(args: argparse.Namespace) -> int:
    from carbonclap_xl.cli import _emit_json

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
            stdout, sys.stdout = sys.stdout, out
            try:
                _print_report(doc, args.verbose)
            finally:
                sys.stdout = stdout
    if progress:
        print(file=sys.stderr)
        stdout, sys.stdout = sys.stdout, out
        try:
            for doc in reports:
                if doc["status"] != "ok":
                    _print_report(doc, False)
        finally:
            sys.stdout = stdout
    counts = {s: sum(d["status"] == s for d in reports) for s in ("ok", "errors", "rejected")}
    print(f"{len(reports)} fichier(s) : {counts['ok']} conforme(s), {counts['errors']} avec "
          f"erreurs, {counts['rejected']} rejeté(s).", file=out)
    computed = next((d for d in reports if d.get("attribution")), None)
    if computed:  # the numbers shown carry their sources' attribution
        print(f"Facteurs : {computed['factor_edition']['name']} — "
              + " ; ".join(computed["attribution"]), file=out)
    if args.json:
        _emit_json({"files": reports, "summary": counts}, args.json)
    if args.csv:
        with open(args.csv, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=SUMMARY_COLUMNS)
            writer.writeheader()
            writer.writerows(summary_row(d) for d in reports)
    if counts["rejected"]:
        return 2
    return 1 if counts["errors"] else 0


def register(sub: Any) -> None:
    val = sub.add_parser("validate", help="valider des classeurs déposés (sans Excel, sans "
                                          "leur faire confiance)")
    val.add_argument("files", nargs="+", metavar="FICHIER")
    val.add_argument("--json", metavar="FICHIER|-", help="un rapport JSON par fichier")
    val.add_argument("--csv", metavar="FICHIER", help="tableau récapitulatif du lot")
    val.add_argument("--phase", choices=[p.value for p in Phase],
                     help="phase attendue (défaut : celle déclarée dans le classeur)")
    val.add_argument("--jobs", type=int, default=2,
                     help="processus d'analyse (défaut 2 ; au plus un par processeur)")
    val.add_argument("--timeout", type=float, default=30.0, help="secondes par fichier")
    val.add_argument("--memory-mb", type=int, default=1024, help="mémoire par fichier (Mo)")
    val.add_argument("-v", "--verbose", action="store_true", help="afficher aussi les infos")
    val.set_defaults(func=cmd_validate)

