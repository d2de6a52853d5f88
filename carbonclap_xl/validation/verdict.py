"""The one verdict on a submitted workbook file, whichever door it came through.

``process`` (the producer's command), ``validate`` (the funder's batch, inside a sandbox worker)
and the HTTP service all call :func:`assess_workbook`: the same safety gate, the same reader,
engine and rules, the same package checks (macros, external links, formulas that call
programs), the same folding of repeated issues, the same severities. A file is therefore

- **rejected** (exit 2) with one :class:`~carbonclap_xl.core.errors.HostileFile` whose ``code``
  is a ``RejectionCode`` — by the gate, by the reader, or because the result could not be
  written into it (``validate`` runs that write without keeping it: ``check_write``);
- otherwise **errors** (exit 1) or **ok** (exit 0) from the severities of its issues.

The only difference allowed is ``stale``: ``validate`` reports computed cells that differ from
a fresh computation (warnings: they never change the verdict); ``process`` rewrites them.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from carbonclap_xl.core.errors import (
    CarbonClapError,
    HostileFile,
    InputFileError,
    WorkbookPatchError,
)
from carbonclap_xl.core.issues import Code, Issue, make_issue
from carbonclap_xl.core.model import Phase
from carbonclap_xl.core.rejections import RejectionCode, rejection_code
from carbonclap_xl.core.text import shorten
from carbonclap_xl.validation.safety import Limits, PackageReport, inspect_package
from carbonclap_xl.workbook.pipeline import Processed
from carbonclap_xl.workbook.rules import dangerous_formula_issues

if TYPE_CHECKING:
    from carbonclap_xl.xlsx.files import FileSource

__all__ = ["Assessment", "as_rejection", "assess_workbook", "formula_issues", "package_issues"]

_SEND_XLSX = "ouvrez-le dans Excel, enregistrez-le au format .xlsx et renvoyez-le."


@dataclass
class Assessment:
    """What :func:`assess_workbook` found in a file it did not reject."""

    path: Path
    package: PackageReport
    processed: Processed  # its issues are the complete, folded list every report shows
    source: FileSource | None = None  # the reading of the file (its XML is reused to write)

    @property
    def status(self) -> str:
        return "errors" if self.processed.has_errors else "ok"


def assess_workbook(path: Path | str, phase: Phase | None = None, *, stale: bool = False,
                    check_write: bool = False, limits: Limits | None = None) -> Assessment:
    """Gate, read, compute, every rule; raises HostileFile (a rejection, with its code).

    ``check_write``: also run the patch of the result into the file without writing it, so
    that a file ``process`` could not write is rejected here too (the validator's setting).
    """
    from carbonclap_xl.workbook.pipeline import compute_workbook
    from carbonclap_xl.workbook.read import read_workbook
    from carbonclap_xl.xlsx.files import FileSource, check_writable

    path = require_file(path)
    try:
        package = inspect_package(path, limits or Limits())
        source = FileSource(path)  # its sheets are scanned once, for these rules and the reader
        extra = package_issues(package) + formula_issues(path, package.sheets, source)
        processed = compute_workbook(read_workbook(source), expected_phase=phase,
                                     package_issues=extra, stale=stale)
        if check_write and processed.data.is_carbonclap:
            check_writable(processed, path, source)
    except HostileFile:
        raise
    except CarbonClapError as exc:
        raise as_rejection(exc, path) from None
    return Assessment(path, package, processed, source)


def require_file(path: Path | str) -> Path:
    """``path`` if it names a file, else its FILE_NOT_FOUND rejection."""
    path = Path(path)
    if not path.is_file():
        raise HostileFile(str(path), RejectionCode.FILE_NOT_FOUND.value,
                          "fichier introuvable (ou ce n'est pas un fichier)")
    return path


def as_rejection(exc: CarbonClapError, path: Path | str) -> HostileFile:
    """The rejection an error reading or patching ``path`` stands for, one French sentence."""
    if isinstance(exc, HostileFile):
        return exc
    code = rejection_code(exc)
    if isinstance(exc, WorkbookPatchError):
        reason = (f"Le classeur est endommagé ({shorten(exc.part, 120)} : {exc.reason}) : "
                  + _SEND_XLSX)
    elif isinstance(exc, InputFileError):
        reason = exc.reason
    else:
        reason = str(exc)
    return HostileFile(str(path), code.value, reason)


def package_issues(package: PackageReport) -> list[Issue]:
    """Macros and external links found in the package (reported; never run, never followed)."""
    issues: list[Issue] = []
    if package.macros:
        issues.append(make_issue(Code.MACROS_FOUND, value=", ".join(package.macros)))
    if package.external_links:
        issues.append(make_issue(Code.EXTERNAL_LINK, value=", ".join(package.external_links)))
    return issues


def formula_issues(path: Path, sheets: dict[str, str],
                   source: FileSource | None = None) -> list[Issue]:
    """DDE-like and external-reference formulas anywhere in the workbook (never evaluated;
    the rule is ``workbook.rules.dangerous_formula_issues``, shared with LibreOffice). The
    sheets ``source`` scans for its reader are taken from it (a processed poste sheet holds
    thousands of formulas: parsed once)."""
    from carbonclap_xl.xlsx.files import scan_sheet_of
    from carbonclap_xl.xlsx.sheetscan import has_formulas
    from carbonclap_xl.xlsx.zipread import read_member

    formulas: dict[str, dict[str, str]] = {}
    with zipfile.ZipFile(path) as zf:
        for sheet, part in sheets.items():
            if source is not None and source.scans(sheet):
                found = source.structure(sheet).formulas
                if found:
                    formulas[sheet] = found
                continue
            if part not in zf.NameToInfo:
                continue
            data = read_member(zf, part, where=str(path))
            if has_formulas(data):
                formulas[sheet] = scan_sheet_of(path, sheet, data).formulas
    return dangerous_formula_issues(formulas)
