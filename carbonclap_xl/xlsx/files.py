"""The file adapter of the workbook port: a workbook on disk as a source, a copy as a sink.

``FileSource`` reads cached values with python-calamine and structure (hidden rows, merges,
formulas) from the sheet XML; ``FileSink`` applies a write plan with the surgical patcher
(``xlsx.patch``), so every part the engine does not own comes back byte-identical. The
output policy of ``process`` lives here too: never overwrite the input unless in place (and
then after a backup), never replace an earlier output unless forced.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import python_calamine
from lxml import etree

from carbonclap_xl.core.a1 import col_index
from carbonclap_xl.core.atomic import (
    atomic_file,
    fit_name,
    rename_synced,
    require_folder,
    temp_name,
)
from carbonclap_xl.core.errors import InputFileError
from carbonclap_xl.core.factors import FactorEdition
from carbonclap_xl.core.issues import Issue
from carbonclap_xl.core.model import Phase
from carbonclap_xl.core.text import shorten
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.workbook.pipeline import Processed, compute_workbook
from carbonclap_xl.workbook.port import SheetStructure, WritePlan
from carbonclap_xl.workbook.read import WorkbookData, read_workbook
from carbonclap_xl.xlsx.package import sheet_parts, xml_error_fr
from carbonclap_xl.xlsx.patch import check_patch, patch_workbook
from carbonclap_xl.xlsx.sheetscan import parses_sheet, scan_sheet
from carbonclap_xl.xlsx.zipread import read_member

# sheets whose structure (hidden rows, merges, formulas) the reader asks for
_SCANNED = frozenset((*L.POSTE_SHEETS.values(), L.SHEET_PRODUCTION, L.SHEET_SYNTHESE))


_CELL = re.compile(rb"<c\b([^>]*?)(?:/>|>(.*?)</c>)", re.DOTALL)
_REF = re.compile(rb'\br="([A-Z]{1,3})([0-9]+)"')
_VALUE = re.compile(rb"<v>([^<]*)</v>")


def _put_errors(rows: list[list[Any]], xml: bytes) -> None:
    """Error cells (``t="e"``: « #REF! », « #N/A »…) as their text, where calamine gives a
    blank: a quantity, a count or an activity that is an error is then reported, never read
    as empty (or as a count of 1)."""
    for attrs, body in _CELL.findall(xml):
        if b't="e"' not in attrs or not body:
            continue
        ref, value = _REF.search(attrs), _VALUE.search(body)
        if ref is None or value is None:
            continue
        r, c = int(ref.group(2)) - 1, col_index(ref.group(1).decode()) - 1
        if r < len(rows) and c < len(rows[r]) and rows[r][c] in ("", None):
            rows[r][c] = value.group(1).decode("utf-8", "replace") or "#ERREUR"


class FileSource:
    """A workbook file read through the port (values: calamine; structure: the XML)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputFileError(str(self.path), "fichier introuvable")
        try:
            with zipfile.ZipFile(self.path) as zf:
                parts = sheet_parts(zf)
                self._parts = {name: part for name, part in parts.items() if name in _SCANNED}
                self._xml = {name: read_member(zf, part, where=str(self.path))
                             for name, part in self._parts.items()}
        except zipfile.BadZipFile:
            raise InputFileError(str(self.path), "ce n'est pas un classeur .xlsx/.xlsm (zip "
                                                 "illisible)") from None
        try:
            self._book = python_calamine.CalamineWorkbook.from_path(str(self.path))
        except Exception as exc:  # calamine raises its own untyped errors
            raise InputFileError(str(self.path), f"classeur illisible ({type(exc).__name__}: "
                                 f"{exc}) ; enregistrez-le à nouveau au format .xlsx") from None
        self._structures: dict[str, SheetStructure] = {}
        self._calamine_sheets: dict[str, Any] = {}
        self._parsed: set[str] = set()  # the sheets whose XML lxml has read

    @property
    def name(self) -> str:
        return str(self.path)

    def sheet_names(self) -> list[str]:
        return list(self._book.sheet_names)

    def values(self, sheet: str, nrows: int | None = None) -> list[list[Any]]:
        try:
            rows = self._sheet(sheet).to_python(skip_empty_area=False, nrows=nrows)
        except Exception as exc:  # calamine raises its own untyped errors
            raise InputFileError(str(self.path), f"feuille « {sheet} » illisible ({exc}) ; "
                                 "enregistrez le classeur à nouveau depuis Excel ou "
                                 "LibreOffice") from None
        xml = self._xml.get(sheet)
        if xml is not None and b't="e"' in xml:
            _put_errors(rows, xml)
        return rows

    def _sheet(self, sheet: str) -> Any:
        """calamine's sheet, parsed once (the reader reads a poste sheet's header, then the
        sheet)."""
        found = self._calamine_sheets.get(sheet)
        if found is None:
            found = self._calamine_sheets[sheet] = self._book.get_sheet_by_name(sheet)
        return found

    def known_parts(self) -> dict[str, tuple[bytes, bool]]:
        """The XML of the sheets read, and whether lxml has parsed it (part name -> (XML,
        parsed)): what a :class:`FileSink` writing into a copy of the same file need not
        inflate, or parse, again."""
        return {self._parts[sheet]: (xml, sheet in self._parsed)
                for sheet, xml in self._xml.items()}

    def scans(self, sheet: str) -> bool:
        """Whether ``structure`` reads this sheet's XML (the sheets the reader needs)."""
        return sheet in self._xml

    def structure(self, sheet: str) -> SheetStructure:
        if sheet not in self._structures:
            xml = self._xml.get(sheet)
            self._structures[sheet] = (scan_sheet_of(self.path, sheet, xml) if xml is not None
                                       else SheetStructure())
            if xml is not None and parses_sheet(xml):
                self._parsed.add(sheet)
        return self._structures[sheet]

    def used_rows(self, sheet: str) -> int:
        try:
            return int(self._sheet(sheet).height)
        except Exception:  # calamine raises its own untyped errors
            return len(self.values(sheet))


class FileSink:
    """Applies a write plan to a copy of ``src`` saved as ``dst`` (``dst`` may be ``src``):
    written through a temporary file and a rename, never half-written."""

    def __init__(self, src: Path | str, dst: Path | str, replace: bool = True,
                 source: FileSource | None = None) -> None:
        self.src, self.dst = Path(src), Path(dst)
        self.replace = replace  # False: an existing dst is never replaced (FileExistsError)
        self.source = source  # the reading of ``src`` the plan came from: its XML is reused

    def apply(self, plan: WritePlan) -> None:
        # formulas are written with their cached values
        patch_workbook(self.src, self.dst, plan.cells, plan.clear, blocks=plan.blocks,
                       replace=self.replace, known=self._known())

    def _known(self) -> dict[str, tuple[bytes, bool]] | None:
        if self.source is None or self.source.path.resolve() != self.src.resolve():
            return None
        return self.source.known_parts()


def scan_sheet_of(path: Path, sheet: str, xml: bytes) -> SheetStructure:
    """``sheetscan.scan_sheet`` of one sheet of ``path``; XML that lxml refuses (malformed,
    nested deeper than 256 levels) is an InputFileError, as calamine's failures are."""
    try:
        return scan_sheet(xml)
    except etree.XMLSyntaxError as exc:
        raise InputFileError(str(path), f"feuille « {shorten(sheet)} » illisible (XML : "
                             f"{xml_error_fr(exc)}) ; enregistrez le classeur à nouveau depuis "
                             "Excel ou LibreOffice") from None


def read_file(path: Path | str) -> WorkbookData:
    return read_workbook(FileSource(path))


def process_workbook(path: Path | str, edition: FactorEdition | None = None,
                     expected_phase: Phase | None = None, *,
                     package_issues: Sequence[Issue] = (), stale: bool = False) -> Processed:
    """The pipeline on a workbook file (nothing written)."""
    return compute_workbook(read_file(path), edition, expected_phase,
                            package_issues=package_issues, stale=stale)


def check_writable(processed: Processed, src: Path | str,
                   source: FileSource | None = None) -> None:
    """Raise what ``write_processed`` would raise while patching ``src`` with this result
    (WorkbookPatchError), writing nothing."""
    plan = processed.plan()
    known = source.known_parts() if source is not None else None
    check_patch(Path(src), plan.cells, plan.clear, blocks=plan.blocks, known=known)


def default_output(path: Path) -> Path:
    return path.with_name(fit_name(path.stem, f"-calcule{path.suffix}"))


def backup_path(path: Path, n: int = 1) -> Path:
    """The ``n``-th backup name beside ``path`` for now (cut to fit a file name's 255 bytes)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    extra = "" if n == 1 else f"-{n}"
    return path.with_name(fit_name(path.stem, f".sauvegarde-{stamp}{extra}{path.suffix}"))


@contextmanager
def locked_for_update(path: Path) -> Iterator[Path]:
    """Hold an exclusive lock on the workbook ``path`` for a read-then-rewrite (``process
    --in-place``); yields the real file (a symbolic link is followed: the link stays a link).
    A second update of the same file meanwhile gets one French line instead of a race."""
    real = Path(os.path.realpath(path))
    if not real.is_file():
        raise InputFileError(str(path), "fichier introuvable")
    if os.name == "nt":  # no flock on Windows: the update is still atomic, not exclusive
        yield real
        return
    import fcntl

    fd = os.open(real, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputFileError(str(path), "est déjà en cours de traitement par un autre "
                                 "« process --in-place » : attendez qu'il finisse, puis "
                                 "relancez") from None
        if os.fstat(fd).st_ino != os.stat(real).st_ino:  # replaced between open and lock
            raise InputFileError(str(path), "vient d'être remplacé par un autre traitement : "
                                 "relancez")
        yield real
    finally:
        os.close(fd)


def _backup(real: Path) -> Path:
    """A backup of ``real`` under a new name, complete or absent: a hard link (instant, no
    copy) where the file system has them, else an atomic copy."""
    for n in range(1, 1000):
        candidate = backup_path(real, n)
        try:
            os.link(real, candidate)
            return candidate
        except FileExistsError:
            continue
        except OSError:
            pass  # no hard links here: copy
        try:
            with open(real, "rb") as original, atomic_file(candidate, replace=False) as copy:
                shutil.copyfileobj(original, copy)
            shutil.copystat(real, candidate)
            return candidate
        except FileExistsError:
            continue
    raise InputFileError(str(real), "impossible de nommer la sauvegarde (trop de sauvegardes "
                                    "dans la même seconde)")


def write_processed(processed: Processed, src: Path, dst: Path | None,
                    in_place: bool = False, force: bool = False,
                    source: FileSource | None = None) -> tuple[Path, Path | None]:
    """Write the results; returns (output path, backup path). Never overwrites the source
    unless ``in_place``, and then only after a backup, atomically; never replaces an existing
    output unless ``force`` (even one created meanwhile). Every file is complete or absent:
    a failure (full disk, kill) leaves the original and no partial output; the hidden
    temporaries a killed run leaves are removed by the next run (``core.atomic``).

    ``in_place`` writes through a symbolic link to its target (the link stays a link; the
    backup goes beside the target); call it inside :func:`locked_for_update`."""
    src = Path(src)
    if in_place:
        real = Path(os.path.realpath(src))
        staged = real.with_name(temp_name())  # a temporary: cleaned if this run is killed
        try:
            FileSink(real, staged, source=source).apply(processed.plan())
            backup = _backup(real)
            rename_synced(staged, real)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(staged)
            raise
        return src, backup
    dst = Path(dst) if dst else default_output(src)
    if dst.exists() and os.path.samefile(dst, src):
        raise InputFileError(str(dst), "la sortie serait le fichier d'entrée : utilisez "
                                       "--in-place (une sauvegarde est gardée) ou -o AUTRE")
    if dst.exists() and not force:
        raise InputFileError(str(dst), "existe déjà : --force pour le remplacer, ou -o AUTRE")
    if dst.is_dir():
        raise InputFileError(str(dst), "c'est un dossier : donnez un nom de fichier")
    if dst.suffix.lower() != src.suffix.lower():
        raise InputFileError(str(dst), f"la sortie doit garder l'extension {src.suffix} "
                                       "du classeur d'entrée")
    require_folder(dst)  # a missing folder is refused, never created
    try:
        FileSink(src, dst, replace=force, source=source).apply(processed.plan())
    except FileExistsError:  # created by someone else while we computed
        raise InputFileError(str(dst), "existe déjà : --force pour le remplacer, ou -o "
                                       "AUTRE") from None
    return dst, None
