"""The file adapter of the workbook port: a workbook on disk as a source, a copy as a sink.

``FileSource`` reads cached values with python-calamine and structure (hidden rows, merges,
formulas) from the sheet XML; ``FileSink`` applies a write plan with the surgical patcher
(``xlsx.patch``), so every part the engine does not own comes back byte-identical. The
output policy of ``process`` lives here too: never overwrite the input unless in place (and
then after a backup), never replace an earlier output unless forced.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import python_calamine

from carbonclap_xl.core.errors import InputFileError
from carbonclap_xl.core.factors import FactorEdition
from carbonclap_xl.core.model import Phase
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.workbook.pipeline import Processed, compute_workbook
from carbonclap_xl.workbook.port import SheetStructure, WritePlan
from carbonclap_xl.workbook.read import WorkbookData, read_workbook
from carbonclap_xl.xlsx.package import sheet_parts
from carbonclap_xl.xlsx.patch import patch_workbook
from carbonclap_xl.xlsx.sheetscan import scan_sheet

# sheets whose structure (hidden rows, merges, formulas) the reader asks for
_SCANNED = frozenset((*L.POSTE_SHEETS.values(), L.SHEET_PRODUCTION, L.SHEET_SYNTHESE))


class FileSource:
    """A workbook file read through the port (values: calamine; structure: the XML)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputFileError(str(self.path), "fichier introuvable")
        try:
            with zipfile.ZipFile(self.path) as zf:
                parts = sheet_parts(zf)
                self._xml = {name: zf.read(part) for name, part in parts.items()
                             if name in _SCANNED}
        except zipfile.BadZipFile:
            raise InputFileError(str(self.path), "ce n'est pas un classeur .xlsx/.xlsm (zip "
                                                 "illisible)") from None
        try:
            self._book = python_calamine.CalamineWorkbook.from_path(str(self.path))
        except Exception as exc:  # calamine raises its own untyped errors
            raise InputFileError(str(self.path), f"classeur illisible ({type(exc).__name__}: "
                                 f"{exc}) ; enregistrez-le à nouveau au format .xlsx") from None
        self._structures: dict[str, SheetStructure] = {}

    @property
    def name(self) -> str:
        return str(self.path)

    def sheet_names(self) -> list[str]:
        return list(self._book.sheet_names)

    def values(self, sheet: str, nrows: int | None = None) -> list[list[Any]]:
        try:
            return self._book.get_sheet_by_name(sheet).to_python(skip_empty_area=False,
                                                                  nrows=nrows)
        except Exception as exc:  # calamine raises its own untyped errors
            raise InputFileError(str(self.path), f"feuille « {sheet} » illisible ({exc}) ; "
                                 "enregistrez le classeur à nouveau depuis Excel ou "
                                 "LibreOffice") from None

    def structure(self, sheet: str) -> SheetStructure:
        if sheet not in self._structures:
            xml = self._xml.get(sheet)
            self._structures[sheet] = scan_sheet(xml) if xml is not None else SheetStructure()
        return self._structures[sheet]

    def used_rows(self, sheet: str) -> int:
        try:
            return int(self._book.get_sheet_by_name(sheet).height)
        except Exception:  # calamine raises its own untyped errors
            return len(self.values(sheet))


class FileSink:
    """Applies a write plan to a copy of ``src`` saved as ``dst`` (``dst`` may be ``src``):
    written through a temporary file and a rename, never half-written."""

    def __init__(self, src: Path | str, dst: Path | str) -> None:
        self.src, self.dst = Path(src), Path(dst)

    def apply(self, plan: WritePlan) -> None:
        patch_workbook(self.src, self.dst, plan.cells, plan.clear)  # formulas with cached values


def read_file(path: Path | str) -> WorkbookData:
    return read_workbook(FileSource(path))


def process_workbook(path: Path | str, edition: FactorEdition | None = None,
                     expected_phase: Phase | None = None) -> Processed:
    """The pipeline on a workbook file (nothing written)."""
    return compute_workbook(read_file(path), edition, expected_phase)


def default_output(path: Path) -> Path:
    return path.with_name(f"{path.stem}-calcule{path.suffix}")


def backup_path(path: Path) -> Path:
    """A backup name beside ``path`` that no file has yet."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.stem}.sauvegarde-{stamp}{path.suffix}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}.sauvegarde-{stamp}-{n}{path.suffix}")
    return candidate


def write_processed(processed: Processed, src: Path, dst: Path | None,
                    in_place: bool = False, force: bool = False) -> tuple[Path, Path | None]:
    """Write the results; returns (output path, backup path). Never overwrites the source
    unless ``in_place``, and then only after a backup copy, atomically; never replaces an
    existing output unless ``force``."""
    src = Path(src)
    backup = None
    if in_place:
        dst = src
        backup = backup_path(src)
        with open(src, "rb") as original, open(backup, "xb") as copy:  # never overwrites
            shutil.copyfileobj(original, copy)
        shutil.copystat(src, backup)
    else:
        dst = Path(dst) if dst else default_output(src)
        if dst.exists() and os.path.samefile(dst, src):
            raise InputFileError(str(dst), "la sortie serait le fichier d'entrée : utilisez "
                                           "--in-place (une sauvegarde est gardée) ou -o AUTRE")
        if dst.exists() and not force:
            raise InputFileError(str(dst), "existe déjà : --force pour le remplacer, ou -o "
                                           "AUTRE")
        if dst.is_dir():
            raise InputFileError(str(dst), "c'est un dossier : donnez un nom de fichier")
        if dst.suffix.lower() != src.suffix.lower():
            raise InputFileError(str(dst), f"la sortie doit garder l'extension {src.suffix} "
                                           "du classeur d'entrée")
        dst.parent.mkdir(parents=True, exist_ok=True)
    FileSink(src, dst).apply(processed.plan())
    return dst, backup
