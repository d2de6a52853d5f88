"""Make the report of one workbook and write it, atomically, next to it or where asked.

``write_report`` is the entry point the CLI, the Excel ribbon's **Rapport** and the
LibreOffice extension call. matplotlib and fpdf2 (the ``report`` extra) are imported here,
lazily, only when a report is made.
"""

from __future__ import annotations

import errno
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbonclap_xl.core.atomic import new_file_mode
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
    """Write through a private temporary file in the same folder, then a rename: a reader
    never sees half a report, and an interrupted run leaves the old file intact."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists()
                 else new_file_mode(path.parent))
        if not force and path.exists():  # appeared while we worked
            raise InputFileError(str(path), "existe déjà : --force pour le remplacer")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
