"""Server-side validation of submitted workbooks, hostile files included (the
``validate`` command's engine room; its CLI is ``cli/validate.py``).

Nothing in a submission is trusted: the package is inspected before any parser sees it
(``safety``), parsing runs in a pool of reused worker processes with memory and time limits
(``sandbox``), the footprint is recomputed from the typed quantities (cached results and
formulas are never used as results), and every rule below is checked, all problems collected.
A hostile or broken file costs one worker and one line of report, never the batch.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbonclap_xl.core.issues import Code, Issue, make_issue
from carbonclap_xl.core.model import Phase
from carbonclap_xl.core.result import Rejection, Report
from carbonclap_xl.validation.codes import RejectionCode
from carbonclap_xl.workbook.rules import computed_cell_issues

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
            issues += dangerous_formula_issues(sheet, scan_sheet(data).formulas)
    return issues


def dangerous_formula_issues(sheet: str, formulas: dict[str, str]) -> list[Issue]:
    """DDE-like and external-reference formulas among one sheet's ``cell -> formula``."""
    issues = []
    for ref, formula in formulas.items():
        if _DDE.search(formula):
            issues.append(make_issue(Code.FORMULA_DDE, value=f"={formula}"[:200],
                                     sheet=sheet, cell=ref))
        elif _EXTERNAL.search(formula):
            issues.append(make_issue(Code.EXTERNAL_LINK, value=f"={formula}"[:200],
                                     sheet=sheet, cell=ref))
    return issues


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
        issues += computed_cell_issues(processed)
    phase_text = str(phase or processed.data.production.phase or "") or None
    return processed.report(lines=False, issues=issues, file=str(path),
                            phase=phase_text).to_dict()


def rejected(path: str, code: str, reason: str) -> dict[str, Any]:
    return Report(None, [], file=path, rejection=Rejection(code, reason)).to_dict()


@dataclass
class BatchOptions:
    phase: str | None = None
    jobs: int = 2
    timeout_s: float = 30.0
    memory_mb: int = 1024


def _warm_worker() -> None:
    """Import what parsing needs once per worker, before the memory cap is measured."""
    from carbonclap_xl.core import engine  # noqa: F401
    from carbonclap_xl.core.factors import load_edition
    from carbonclap_xl.validation import safety  # noqa: F401
    from carbonclap_xl.workbook import rules  # noqa: F401
    from carbonclap_xl.xlsx import files  # noqa: F401  (python-calamine, lxml)

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
                yield rejected(path_text, RejectionCode.FILE_NOT_FOUND,
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
    if outcome.error_code in (RejectionCode.WORKER_CRASHED, RejectionCode.MEMORY,
                              RejectionCode.TIMEOUT):
        reason = (f"le fichier n'a pas pu être analysé sans risque ({reason}) : "
                  "ré-enregistrez-le au format .xlsx depuis Excel ou LibreOffice")
    return re.sub(r"\s*\[[A-Z_]+\]$", "", reason)
