"""The footprint summary a funder asks for, written next to the workbook.

For now it is the JSON document of ``process --json`` (``core.result``); the HTML/PDF report
replaces :func:`write_report` without changing its callers (the Excel ribbon's « Rapport »,
the LibreOffice extension).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

REPORT_SUFFIX = "-bilan.json"


def report_path(workbook: Path | str) -> Path:
    """Where the report of ``workbook`` goes: ``<name>-bilan.json`` beside it."""
    path = Path(workbook)
    return path.with_name(f"{path.stem}{REPORT_SUFFIX}")


def write_report(path: Path | str, processed: Any) -> Path:
    """Write the report of ``processed`` (a ``pipeline.Processed``) at ``path``, atomically
    (a temporary file in the same folder, then a rename). Returns the path written."""
    from carbonclap_xl.core.result import dumps

    target = Path(path)
    data = dumps(processed.report().to_dict(for_json=True))
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=".cc-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(name, 0o666 & ~umask)
        os.replace(name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return target


__all__ = ["REPORT_SUFFIX", "report_path", "write_report"]
