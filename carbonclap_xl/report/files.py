"""What the « Rapport » buttons write next to the workbook (the Excel ribbon, the LibreOffice
extension): the footprint report ``<nom>-rapport.pdf`` and the machine-readable summary
``<nom>-bilan.json`` (the document of ``process --json``), both made from one computation.

The PDF needs the ``report`` extra (matplotlib, fpdf2). Without it the summary is still
written and the answer says how to get the PDF: a button never fails for a missing extra.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUMMARY_SUFFIX = "-bilan.json"
REPORT_SUFFIX = "-rapport.pdf"
_EXTRA_MODULES = ("matplotlib", "fpdf", "PIL")
MISSING_EXTRA = ("le rapport PDF a besoin de matplotlib et fpdf2 : installez "
                 "« pip install 'carbonclap_xl[report]' »")


def summary_path(workbook: Path | str) -> Path:
    """``<nom>-bilan.json`` beside ``workbook``."""
    path = Path(workbook)
    return path.with_name(f"{path.stem}{SUMMARY_SUFFIX}")


def report_path(workbook: Path | str) -> Path:
    """``<nom>-rapport.pdf`` beside ``workbook``."""
    path = Path(workbook)
    return path.with_name(f"{path.stem}{REPORT_SUFFIX}")


@dataclass
class ReportFiles:
    """The files of one « Rapport », by path, and why the PDF is missing when it is."""

    files: dict[Path, bytes] = field(default_factory=dict)
    missing_pdf: str | None = None  # a French sentence when the PDF could not be made

    @property
    def paths(self) -> list[Path]:
        return list(self.files)


def report_files(workbook: Path | str, processed: Any) -> ReportFiles:
    """The summary and the PDF report of ``processed`` (a ``pipeline.Processed``) for
    ``workbook``, rendered in memory (nothing written)."""
    from carbonclap_xl.core.result import dumps
    from carbonclap_xl.report.writer import render

    workbook = Path(workbook)
    out = ReportFiles()
    summary = processed.report(file=str(workbook)).to_dict(for_json=True)
    out.files[summary_path(workbook)] = dumps(summary)
    try:
        out.files[report_path(workbook)] = render(processed.to_dict(), "pdf")
    except ModuleNotFoundError as exc:
        if not exc.name or exc.name.split(".")[0] not in _EXTRA_MODULES:
            raise
        out.missing_pdf = MISSING_EXTRA
    return out


def write_report(workbook: Path | str, processed: Any) -> ReportFiles:
    """Render and write the « Rapport » files beside ``workbook``, each atomically (replacing
    the previous ones). Returns what was written."""
    from carbonclap_xl.core.atomic import write_atomic

    made = report_files(workbook, processed)
    for path, data in made.files.items():
        write_atomic(path, data)
    return made


def written_text(made: ReportFiles) -> str:
    """The French sentence a button shows once the files are written."""
    text = "Rapport écrit : " + " ; ".join(str(p) for p in made.paths)
    return text + (f"\n({made.missing_pdf})" if made.missing_pdf else "")


__all__ = ["MISSING_EXTRA", "REPORT_SUFFIX", "SUMMARY_SUFFIX", "ReportFiles", "report_files",
           "report_path", "summary_path", "write_report", "written_text"]
