"""The optional storage folder (``serve --storage DIR``): accepted submissions kept.

One folder per submission, named by the server (UTC time + random id): the workbook as
received (``classeur.xlsx`` / ``.xlsm``) and its report (``report.json``), each written to a
temporary name and renamed when complete. Rejected uploads are never kept. Nothing is kept
when no storage folder is configured.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPORT = "report.json"


class Storage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def keep(self, workbook: Path, report: dict[str, Any]) -> str:
        """Keep one accepted submission; returns its id."""
        now = dt.datetime.now(dt.UTC)
        ident = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(6)}"
        folder = self.root / ident
        folder.mkdir(mode=0o700)
        try:
            _atomic_copy(workbook, folder / f"classeur{workbook.suffix.lower()}")
            doc = {**report, "submission": {"id": ident, "received_at": now.isoformat()}}
            text = json.dumps(doc, ensure_ascii=False, indent=1, allow_nan=False, default=str)
            _atomic_write(folder / REPORT, text.encode("utf-8"))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return ident

    def reports(self) -> Iterator[dict[str, Any]]:
        """Every kept report, oldest first (a half-written submission has no report yet)."""
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            path = folder / REPORT
            if path.is_file():
                try:
                    yield json.loads(path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_copy(src: Path, dst: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as source:
            shutil.copyfileobj(source, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
