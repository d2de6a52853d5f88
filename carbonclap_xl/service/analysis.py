"""Parsing uploads inside the validation sandbox, from a multi-threaded server.

``WorkerPool.map`` refuses a second concurrent ``map()`` on one pool ("un seul map() à la fois
par WorkerPool"; measured: 3 of 4 threads failed), and a pool started per request costs about
1.5 s of process start and warm-up against about 55 ms for a file on a warm worker. So the
service keeps **one single-worker pool per analysis slot**, for the life of the server
process: a request borrows a whole pool, maps its one file, and gives the pool back. A pool's
worker is reused while it stays healthy; a timeout, a crash or the memory cap costs that
worker, and the pool starts a fresh one on its next use.

The functions run in the workers (``validate_upload``, ``process_upload``) are module-level
so that the sandbox can pickle them; they never run in the server process.
"""

from __future__ import annotations

import queue
import re
import threading
from pathlib import Path
from typing import Any

from carbonclap_xl.validation.batch import rejected, validate_file
from carbonclap_xl.validation.sandbox import Outcome, SandboxError, WorkerPool

# The HTTP status of a rejected upload: 413 too large, 415 not a workbook at all (or one we
# cannot read whatever is inside), 500 only for a defect of this program; 422 otherwise
# (unsafe, broken, too costly to analyse).
REJECTION_STATUS: dict[str, int] = {
    "FILE_TOO_LARGE": 413,
    "NOT_A_WORKBOOK": 415,
    "LEGACY_XLS": 415,
    "ODS_FILE": 415,
    "INTERNAL_ERROR": 500,
}


def rejection_status(code: str) -> int:
    return REJECTION_STATUS.get(code, 422)


# --------------------------------------------------------------------------- worker side


def warm_worker() -> None:
    """Import what parsing and writing need once per worker, before the memory cap."""
    from carbonclap_xl.validation.batch import warm_worker as warm_validation
    from carbonclap_xl.workbook import plan  # noqa: F401

    warm_validation()


def validate_upload(item: tuple[str, str | None]) -> dict[str, Any]:
    """The ``validate`` command's report for one file (raises HostileFile to reject it)."""
    return validate_file(item)


def process_upload(item: tuple[str, str, str | None]) -> dict[str, Any]:
    """The validation report, and the processed workbook written to ``dst`` when the file is
    a Carbon'Clap XL workbook; ``{"report": ..., "written": bool}``."""
    from carbonclap_xl.core.model import Phase
    from carbonclap_xl.xlsx.files import process_workbook, write_processed

    src, dst, phase = item
    report = validate_file((src, phase))
    processed = process_workbook(Path(src), expected_phase=Phase(phase) if phase else None)
    written = False
    if processed.data.is_carbonclap:
        write_processed(processed, Path(src), Path(dst), force=True)
        written = True
    return {"report": report, "written": written}


# --------------------------------------------------------------------------- server side


class Analyzer:
    """``workers`` single-worker sandbox pools, borrowed one per request (thread-safe)."""

    def __init__(self, workers: int, timeout_s: float, memory_mb: int) -> None:
        self.workers = workers
        self._options = {"jobs": 1, "timeout_s": timeout_s, "memory_mb": memory_mb,
                         "initializer": warm_worker}
        self._idle: queue.SimpleQueue[WorkerPool] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._pools: list[WorkerPool] = []
        self._closed = False
        try:
            for _ in range(workers):
                pool = WorkerPool(**self._options)
                self._pools.append(pool)
                self._idle.put(pool)
        except BaseException:
            self.close()
            raise

    @property
    def idle(self) -> int:
        return self._idle.qsize()

    def run(self, fn: Any, item: Any) -> Outcome[Any]:
        """``fn(item)`` in a sandbox worker; blocks until a pool is free. Raises SandboxError
        (or OSError) when no worker can be started: the pool is then replaced."""
        pool = self._idle.get()
        try:
            try:
                return next(iter(pool.map(fn, [item])))
            except ValueError:  # closed after a failed replacement: replace it now
                pool = self._replace(pool)
                return next(iter(pool.map(fn, [item])))
        except SandboxError:
            pool = self._replace(pool)
            raise
        finally:
            self._idle.put(pool)  # a closed pool if its replacement failed: retried next time

    def _replace(self, pool: WorkerPool) -> WorkerPool:
        pool.close()
        fresh = WorkerPool(**self._options)
        with self._lock:
            if self._closed:
                fresh.close()
                return pool
            self._pools[self._pools.index(pool)] = fresh
        return fresh

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for pool in self._pools:
                pool.close()


# --------------------------------------------------------------------------- reports


def report_from(outcome: Outcome[Any], display: str, secret_paths: list[str]) -> dict[str, Any]:
    """The published report of one upload: the sandbox's value, or a ``rejected`` report;
    the server's temporary paths replaced by the client's (cleaned) file name."""
    if outcome.error_code is None:
        value = outcome.value
        doc = value["report"] if isinstance(value, dict) and "written" in value else value
    else:
        doc = rejected(display, outcome.error_code, _reason(outcome, secret_paths))
    doc = _scrub(doc, [(p, display) for p in secret_paths])
    doc["file"] = display
    if isinstance(doc.get("workbook"), dict):
        doc["workbook"]["path"] = display
    return doc


def _reason(outcome: Outcome[Any], paths: list[str]) -> str:
    reason = str(outcome.error or "")
    for path in paths:
        reason = reason.removeprefix(f"{path} : ")
    if outcome.error_code in ("WORKER_CRASHED", "MEMORY", "TIMEOUT"):
        reason = (f"le fichier n'a pas pu être analysé sans risque ({reason}) : "
                  "ré-enregistrez-le au format .xlsx depuis Excel ou LibreOffice")
    if outcome.error_code == "INTERNAL_ERROR":
        reason = "défaut du programme pendant l'analyse (à signaler) : le fichier est rejeté"
    return re.sub(r"\s*\[[A-Z_]+\]$", "", reason)


def _scrub(doc: Any, replacements: list[tuple[str, str]]) -> Any:
    """Every string of ``doc`` with the server's paths replaced (they are not the client's
    business, and a report must not reveal the server's layout)."""
    if isinstance(doc, str):
        for old, new in replacements:
            if old in doc:
                doc = doc.replace(old, new)
        return doc
    if isinstance(doc, dict):
        return {k: _scrub(v, replacements) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_scrub(v, replacements) for v in doc]
    return doc
