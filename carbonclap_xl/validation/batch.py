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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbonclap_xl.core.model import Phase
from carbonclap_xl.core.rejections import RejectionCode
from carbonclap_xl.core.result import Rejection, Report

# --------------------------------------------------------------------------- one file


def validate_file(item: tuple[str, str | None]) -> dict[str, Any]:
    """Validate one file; runs inside a sandbox worker. Raises HostileFile to reject it.

    The verdict is ``verdict.assess_workbook``'s, the one ``process`` gives, with the write
    of the result checked (not kept) and stale computed cells reported."""
    from carbonclap_xl.validation.verdict import assess_workbook

    path_text, phase_text = item
    phase = Phase(phase_text) if phase_text else None
    processed = assess_workbook(Path(path_text), phase, stale=True, check_write=True).processed
    phase_text = str(phase or processed.data.production.phase or "") or None
    return processed.report(lines=False, file=path_text, phase=phase_text).to_dict()


def rejected(path: str, code: str, reason: str) -> dict[str, Any]:
    return Report(None, [], file=path, rejection=Rejection(code, reason)).to_dict()


@dataclass
class BatchOptions:
    phase: str | None = None
    jobs: int = 2
    timeout_s: float = 30.0
    memory_mb: int = 1024


def warm_worker() -> None:
    """Import what parsing needs once per worker, before the memory cap is measured."""
    from carbonclap_xl.core import engine  # noqa: F401
    from carbonclap_xl.core.factors import load_edition
    from carbonclap_xl.validation import safety, verdict  # noqa: F401
    from carbonclap_xl.workbook import pipeline  # noqa: F401
    from carbonclap_xl.xlsx import files  # noqa: F401

    load_edition()


def validate_paths(paths: list[str], options: BatchOptions) -> Iterator[dict[str, Any]]:
    """One report per path, in input order; hostile files become ``rejected`` reports."""
    from carbonclap_xl.validation.sandbox import WorkerPool

    # more workers than files or processors only costs memory (~270 MB each) and start-up
    jobs = max(1, min(options.jobs, len(paths), os.cpu_count() or 1))
    with WorkerPool(jobs=jobs, memory_mb=options.memory_mb,
                    timeout_s=options.timeout_s, initializer=warm_worker) as pool:
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
                              RejectionCode.TIMEOUT, RejectionCode.REPORT_TOO_LARGE):
        reason = (f"le fichier n'a pas pu être analysé sans risque ({reason}) : "
                  "ré-enregistrez-le au format .xlsx depuis Excel ou LibreOffice")
    return re.sub(r"\s*\[[A-Z_]+\]$", "", reason)
