"""Make the report of one workbook and write it, atomically, next to it or where asked.

``write_report`` is the entry point the CLI, the Excel ribbon's **Rapport** and the
LibreOffice extension call. matplotlib and fpdf2 (the ``report`` extra) are imported here,
lazily, only when a report is made.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbonclap_xl.core.atomic import write_atomic as core_write_atomic
from carbonclap_xl.core.errors import InputFileError

FORMATS = {".html": "html", ".htm": "html", ".pdf": "pdf"}


@dataclass
class WrittenReport:
    path: Path
    format: str
    doc: dict[str, Any]  # the result document the report was made from

    @property
    def error_count(self) -> int:
        return int((self.doc.get("counts") or {}).get("errors") or 0)


def default_output(workbook: Path, fmt: str = "pdf") -> Path:
    """``<nom>-rapport.pdf`` beside the workbook."""
    return workbook.with_name(f"{workbook.stem}-rapport.{fmt}")


def check_output(path: Path, force: bool) -> str:
    """The format of ``path``; refuses an unknown extension, a folder, or an existing file
    without ``force`` — before any work is done."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputFileError(str(path), "extension inconnue : le rapport s'écrit en .pdf ou "
                                        ".html")
    if path.is_dir():
        raise InputFileError(str(path), "c'est un dossier : donnez un nom de fichier")
    from carbonclap_xl.core.atomic import require_folder

    require_folder(path)  # a missing folder is refused, never created (before any work)
    if path.exists() and not force:
        raise InputFileError(str(path), "existe déjà : --force pour le remplacer, ou -o AUTRE")
    return fmt


def write_atomic(path: Path, data: bytes, force: bool = False) -> None:
    """Write through a private temporary file in the same folder, then a rename
    (``core.atomic``): a reader never sees half a report, and an interrupted run leaves the
    old file intact. Without ``force`` an existing report is never replaced, even one that
    appears while we work."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    try:
        core_write_atomic(path, data, replace=force)
    except FileExistsError:
        raise InputFileError(str(path), "existe déjà : --force pour le remplacer") from None


def render(doc: dict[str, Any], fmt: str) -> bytes:
    """The report of a result document, as HTML (UTF-8) or PDF bytes."""
    from carbonclap_xl.report.charts import report_charts
    from carbonclap_xl.report.document import build_model

    model = build_model(doc)
    charts = report_charts(model)
    if fmt == "html":
        from carbonclap_xl.report.html import render_html

        return render_html(model, charts).encode("utf-8")
    from carbonclap_xl.report.pdf import render_pdf

    return render_pdf(model, charts)


def write_report(workbook: str | Path, output: str | Path | None = None, *,
                 force: bool = False) -> WrittenReport:
    """Compute ``workbook`` and write its report to ``output`` (format from the extension;
    default ``<nom>-rapport.pdf`` beside the workbook)."""
    from carbonclap_xl.report.document import load_result

    workbook = Path(workbook)
    out = Path(output) if output else default_output(workbook)
    fmt = check_output(out, force)
    if out.exists() and workbook.exists() and os.path.samefile(out, workbook):
        raise InputFileError(str(out), "la sortie serait le classeur lui-même : -o AUTRE")
    doc = load_result(workbook)
    write_atomic(out, render(doc, fmt), force=force)
    return WrittenReport(out, fmt, doc)
