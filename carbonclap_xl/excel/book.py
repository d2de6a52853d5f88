"""The open Excel workbook as the workbook port: a source of sheet values, a sink of plans.

Works on an ``xlwings.Book`` (``xw.Book.caller()`` when a ribbon button runs) through the
small part of xlwings' object model listed below, so the tests drive it with a stand-in:

- ``book.sheets`` (iterate, ``[name]``), ``book.fullname``, ``book.app`` (``screen_updating``,
  ``calculation``);
- ``sheet.name``, ``sheet.used_range``, ``sheet.range(first[, last])``, ``sheet.api``
  (protection: ``ProtectContents``, ``Unprotect()``, ``Protect(...)`` on Windows;
  ``protect_contents``, ``unprotect()``, ``protect_worksheet()`` on macOS);
- ``range.row``, ``range.column``, ``range.shape``, ``range.options(ndim=2).value``,
  ``range.formula`` (read and write), ``range.value = [[...]]``, ``range.clear_contents()``.

Nothing here imports xlwings: the object is handed in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

from carbonclap_xl.workbook import layout as L
from carbonclap_xl.workbook.port import Formula, SheetStructure, WritePlan

# sheets whose formulas the reader asks for (the others: values only)
_SCANNED = frozenset((*L.POSTE_SHEETS.values(), L.SHEET_PRODUCTION, L.SHEET_SYNTHESE))
# what Excel must not parse in a text written by .value/.formula (a formula, a number, a
# date, TRUE...): a leading apostrophe makes it text, and is not part of the value
_TEXT_PREFIX = "'"


def _grid(value: Any) -> list[list[Any]]:
    """xlwings gives a scalar for one cell, a list for one row or column, else a list of
    lists (``options(ndim=2)`` avoids most of it; this covers the rest)."""
    if not isinstance(value, list | tuple):
        return [[value]]
    if value and not isinstance(value[0], list | tuple):
        return [list(value)]
    return [list(row) for row in value]


class XlwingsSource:
    """The open book read through the port: each sheet's used range, padded from A1."""

    def __init__(self, book: Any, every_formula: bool = False) -> None:
        """``every_formula``: read the formulas of every sheet (Vérifier looks for DDE and
        external links everywhere), not only those the reader needs."""
        self.book = book
        self.every_formula = every_formula
        self._values: dict[str, list[list[Any]]] = {}
        self._formulas: dict[str, dict[str, str]] = {}

    @property
    def name(self) -> str:
        return str(self.book.fullname)

    def sheet_names(self) -> list[str]:
        return [sheet.name for sheet in self.book.sheets]

    def _read(self, sheet: str) -> list[list[Any]]:
        if sheet not in self._values:
            used = self.book.sheets[sheet].used_range
            rows = _grid(used.options(ndim=2).value)
            top, left = used.row - 1, used.column - 1
            padded = [[None] * (left + len(row)) for row in rows]
            for r, row in enumerate(rows):
                padded[r][left:] = row
            self._values[sheet] = [[] for _ in range(top)] + padded
        return self._values[sheet]

    def values(self, sheet: str, nrows: int | None = None) -> list[list[Any]]:
        rows = self._read(sheet)
        return rows if nrows is None else rows[:nrows]

    def structure(self, sheet: str) -> SheetStructure:
        if sheet not in _SCANNED and not self.every_formula:
            return SheetStructure()
        if sheet not in self._formulas:
            used = self.book.sheets[sheet].used_range
            found: dict[str, str] = {}
            for r, row in enumerate(_grid(used.formula), start=used.row):
                for c, text in enumerate(row, start=used.column):
                    if isinstance(text, str) and text.startswith("=") and len(text) > 1:
                        found[f"{_letters(c)}{r}"] = text[1:]
            self._formulas[sheet] = found
        return SheetStructure(formulas=dict(self._formulas[sheet]))

    def used_rows(self, sheet: str) -> int:
        rows = self._read(sheet)
        for n in range(len(rows), 0, -1):
            if any(v not in (None, "") for v in rows[n - 1]):
                return n
        return 0


def _letters(col: int) -> str:
    from carbonclap_xl.core.a1 import col_letter

    return col_letter(col)


def _excel_cell(value: Any) -> Any:
    """A plan value as Excel must receive it: text protected from parsing, a formula with
    its ``=``, None as empty."""
    if isinstance(value, Formula):
        return "=" + value.text
    if value is None:
        return ""
    if isinstance(value, str) and value:
        return _TEXT_PREFIX + value
    return value


def column_runs(cells: dict[tuple[int, int], Any]) -> list[tuple[int, int, list[Any]]]:
    """The cells of one sheet as runs of consecutive rows of one column: (column, first
    row, values), in column then row order."""
    runs: list[tuple[int, int, list[Any]]] = []
    for row, col in sorted(cells, key=lambda k: (k[1], k[0])):
        last = runs[-1] if runs else None
        if last and last[0] == col and last[1] + len(last[2]) == row:
            last[2].append(cells[(row, col)])
        else:
            runs.append((col, row, [cells[(row, col)]]))
    return runs


class SheetProtection:
    """Unprotect a sheet for the time of a write, then protect it again as the template
    does (no password; formats, rows, sorting and filters left to the user)."""

    WINDOWS_OPTIONS: ClassVar[dict[str, bool]] = {
        "DrawingObjects": True, "Contents": True, "Scenarios": True,
        "AllowFormattingColumns": True, "AllowFormattingRows": True, "AllowInsertingRows": True,
        "AllowDeletingRows": True, "AllowSorting": True, "AllowFiltering": True}

    @staticmethod
    def is_protected(sheet: Any) -> bool:
        api = sheet.api
        if hasattr(api, "ProtectContents"):  # Windows (COM)
            return bool(api.ProtectContents)
        return bool(api.protect_contents.get())  # macOS (appscript)

    @classmethod
    @contextlib.contextmanager
    def lifted(cls, sheet: Any) -> Iterator[None]:
        protected = cls.is_protected(sheet)
        api = sheet.api
        if protected:
            if hasattr(api, "Unprotect"):
                api.Unprotect()
            else:
                api.unprotect()
        try:
            yield
        finally:
            if protected:
                if hasattr(api, "Protect"):
                    api.Protect(**cls.WINDOWS_OPTIONS)
                else:
                    api.protect_worksheet(contents=True)


class XlwingsSink:
    """Applies a write plan to the open book: per sheet, the clears, then one write per run
    of consecutive cells of a column (``.value`` for values, ``.formula`` when the run holds
    a formula), with screen updating and automatic calculation paused."""

    def __init__(self, book: Any) -> None:
        self.book = book
        self.writes = 0  # block writes made (the tests and the bench read it)

    def apply(self, plan: WritePlan) -> None:
        app = self.book.app
        screen, calculation = app.screen_updating, app.calculation
        app.screen_updating = False
        app.calculation = "manual"
        try:
            for name in plan.sheets():
                sheet = self.book.sheets[name]
                with SheetProtection.lifted(sheet):
                    for ref in plan.clear.get(name, []):
                        sheet.range(ref).clear_contents()
                    for col, row, values in column_runs(plan.sheet_cells(name)):
                        self._write(sheet, col, row, values)
        finally:
            app.calculation = calculation
            app.screen_updating = screen

    def _write(self, sheet: Any, col: int, row: int, values: list[Any]) -> None:
        target = sheet.range((row, col), (row + len(values) - 1, col))
        block = [[_excel_cell(v)] for v in values]
        if any(isinstance(v, Formula) for v in values):
            target.formula = block
        else:
            target.value = block
        self.writes += 1


__all__ = ["SheetProtection", "XlwingsSink", "XlwingsSource", "column_runs"]
