"""Read any spreadsheet's sheets as plain grids: values with python-calamine, structure
(hidden columns and rows, merged cells, sheet visibility) from the sheet XML.

Used for production budgets (``import-devis``) and to find the next empty rows of a workbook
before appending to it. Nothing here knows what a budget is; the grids go to
``carbonclap_xl.intake``.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carbonclap_xl.core.errors import InputFileError, WorkbookPatchError

MAX_GRID_ROWS = 20_000  # a production budget has hundreds of rows; more is not a budget


@dataclass
class SheetGrid:
    """One sheet: ``rows[r][c]`` holds the value of row ``r + 1``, column ``c + 1``; blanks
    are None. A merged range's value sits in its top-left cell only."""

    name: str
    rows: list[list[Any]]
    hidden_columns: set[int] = field(default_factory=set)  # 1-based
    hidden_rows: set[int] = field(default_factory=set)  # 1-based
    # merged ranges as (top, left, bottom, right), 1-based
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)
    visible: bool = True
    truncated: bool = False  # more than MAX_GRID_ROWS rows: the rest was not read

    def value(self, row: int, col: int) -> Any:
        """The value at 1-based (row, col), None when blank or outside the grid."""
        if 1 <= row <= len(self.rows):
            cells = self.rows[row - 1]
            if 1 <= col <= len(cells):
                return cells[col - 1]
        return None

    @property
    def width(self) -> int:
        return max((len(r) for r in self.rows), default=0)


_COL = re.compile(rb"<(?:\w+:)?col\b([^>]*)/?>")
_ATTR = re.compile(rb'\b(min|max|hidden|width)="([^"]*)"')
_ROW = re.compile(rb"<(?:\w+:)?row\b([^>]*)>")
_ROW_NUMBER = re.compile(rb'\br="(\d+)"')
_MERGE = re.compile(
    rb'<(?:\w+:)?mergeCell\b[^>]*\bref="\$?([A-Z]+)\$?(\d+)(?::\$?([A-Z]+)\$?(\d+))?"')


def _col_number(letters: bytes) -> int:
    n = 0
    for ch in letters.decode():
        n = n * 26 + ord(ch) - 64
    return n


def hidden_columns(data: bytes) -> set[int]:
    """1-based columns that ``<cols>`` hides (``hidden="1"``, or a zero width)."""
    head = data.split(b"<sheetData", 1)[0]
    out: set[int] = set()
    for m in _COL.finditer(head):
        attrs = dict(_ATTR.findall(m.group(1)))
        hidden = attrs.get(b"hidden") in (b"1", b"true")
        try:
            zero = float(attrs.get(b"width", b"1")) == 0.0
            lo, hi = int(attrs.get(b"min", b"0")), int(attrs.get(b"max", b"0"))
        except ValueError:
            continue
        if (hidden or zero) and 1 <= lo <= hi <= 16_384:
            out.update(range(lo, hi + 1))
    return out


def _structure(data: bytes) -> tuple[set[int], set[int], list[tuple[int, int, int, int]]]:
    rows: set[int] = set()
    if b"hidden=" in data:
        for m in _ROW.finditer(data):
            attrs = m.group(1)
            number = _ROW_NUMBER.search(attrs)
            if number and (b'hidden="1"' in attrs or b'hidden="true"' in attrs):
                rows.add(int(number.group(1)))
    merged = []
    for m in _MERGE.finditer(data):
        c1, r1 = _col_number(m.group(1)), int(m.group(2))
        c2 = _col_number(m.group(3)) if m.group(3) else c1
        r2 = int(m.group(4)) if m.group(4) else r1
        merged.append((min(r1, r2), min(c1, c2), max(r1, r2), max(c1, c2)))
    return hidden_columns(data), rows, merged


def _clean(value: Any) -> Any:
    if value == "" or (isinstance(value, float) and value != value):  # calamine: "" = blank
        return None
    return value


def read_sheets(path: Path) -> list[SheetGrid]:
    """Every worksheet of an .xlsx/.xlsm (values and structure), in workbook order.

    Raises InputFileError for a file that is not a readable workbook. Callers screen hostile
    packages first (``validation.safety.inspect_package``).
    """
    import python_calamine

    from carbonclap_xl.xlsx.package import sheet_parts

    where = str(path)
    try:
        with zipfile.ZipFile(path) as zf:
            parts = sheet_parts(zf)
            xml = {name: zf.read(part) for name, part in parts.items()}
    except (zipfile.BadZipFile, WorkbookPatchError, KeyError) as exc:
        raise InputFileError(where, f"classeur illisible ({exc}) ; enregistrez-le à nouveau au "
                                    "format .xlsx, ou exportez la feuille en .csv") from None
    try:
        book = python_calamine.CalamineWorkbook.from_path(where)
        visible = {m.name: str(m.visible).endswith("Visible") for m in book.sheets_metadata
                   if str(m.typ).endswith("WorkSheet")}
        grids = []
        for name in book.sheet_names:
            if name not in visible:
                continue  # chart sheets and the like hold no cells
            sheet = book.get_sheet_by_name(name)
            values = sheet.to_python(skip_empty_area=False, nrows=MAX_GRID_ROWS + 1)
            truncated = len(values) > MAX_GRID_ROWS
            rows = [[_clean(v) for v in row] for row in values[:MAX_GRID_ROWS]]
            hidden_cols, hidden_rows, merged = _structure(xml.get(name, b""))
            grids.append(SheetGrid(name, rows, hidden_cols, hidden_rows, merged,
                                   visible[name], truncated))
    except InputFileError:
        raise
    except Exception as exc:  # calamine raises its own untyped errors
        raise InputFileError(where, f"classeur illisible ({type(exc).__name__}: {exc}) ; "
                                    "enregistrez-le à nouveau au format .xlsx") from None
    return grids
