"""A stand-in for the small part of xlwings' object model the Excel adapter uses, backed by a
real workbook file loaded with openpyxl (formulas and cached values), behaving as Excel does
where it matters here:

- a write into a protected sheet raises (Excel refuses it);
- a text written through ``.value`` / ``.formula`` is parsed as typed: ``=…`` becomes a
  formula, a leading apostrophe makes the rest text;
- a formula cell reads as its cached value (the file's; None for formulas written here:
  the stand-in does not calculate).

Every block write is logged, so the tests can count them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl

from carbonclap_xl.core.a1 import col_letter, parse_cell


class ProtectedSheetError(RuntimeError):
    pass


class App:
    def __init__(self) -> None:
        self.screen_updating = True
        self.calculation = "automatic"
        self.status_bar: str | bool = False
        self.alerts: list[str] = []
        self.answers: list[Any] = []  # what the InputBox returns, in order
        self.api = self
        self.pid = 0

    def alert(self, prompt: str, title: str | None = None, *_: Any) -> str:
        self.alerts.append(prompt)
        return "ok"

    def InputBox(self, prompt: str, title: str = "", default: str = "") -> Any:
        self.alerts.append(prompt)
        return self.answers.pop(0) if self.answers else False


class _SheetApi:
    def __init__(self, sheet: Sheet) -> None:
        self._sheet = sheet

    @property
    def ProtectContents(self) -> bool:
        return self._sheet.protected

    def Unprotect(self) -> None:
        self._sheet.protected = False

    def Protect(self, **options: Any) -> None:
        self._sheet.protected = True
        self._sheet.protect_options = options


class _CellApi:
    def __init__(self, locked: bool) -> None:
        self.Locked = locked


class Sheet:
    def __init__(self, book: Book, formulas: Any, cached: Any) -> None:
        self.book = book
        self.name = formulas.title
        self.protected = bool(formulas.protection.sheet)
        self.protect_options: dict[str, Any] = {}
        self.cells: dict[tuple[int, int], tuple[Any, str | None]] = {}  # value, formula
        self.unlocked_columns = {col_index(k) for k, d in formulas.column_dimensions.items()
                                 if d.protection is not None and d.protection.locked is False}
        for row in formulas.iter_rows():
            for cell in row:
                if cell.value is None:
                    continue
                key = (cell.row, cell.column)
                if isinstance(cell.value, str) and cell.value.startswith("=") and \
                        cell.data_type == "f":
                    self.cells[key] = (cached.cell(*key).value, cell.value)
                else:
                    self.cells[key] = (cell.value, None)
        self.api = _SheetApi(self)

    @property
    def used_range(self) -> Range:
        if not self.cells:
            return Range(self, 1, 1, 1, 1)
        rows = [r for r, _ in self.cells]
        cols = [c for _, c in self.cells]
        return Range(self, min(rows), min(cols), max(rows), max(cols))

    def range(self, first: Any, last: Any = None) -> Range:
        if isinstance(first, str):
            a, _, b = first.partition(":")
            (r1, c1), (r2, c2) = parse_cell(a), parse_cell(b or a)  # type: ignore[misc]
            return Range(self, r1, c1, r2, c2)
        r1, c1 = first
        r2, c2 = last if last is not None else first
        return Range(self, r1, c1, r2, c2)

    def grid(self) -> dict[str, Any]:
        """Every non-empty cell: its formula when it has one, else its value."""
        return {f"{col_letter(c)}{r}": (formula if formula else value)
                for (r, c), (value, formula) in self.cells.items()
                if value not in (None, "") or formula}


def col_index(letters: str) -> int:
    from carbonclap_xl.core.a1 import col_index as index

    return index(letters)


class Range:
    def __init__(self, sheet: Sheet, r1: int, c1: int, r2: int, c2: int) -> None:
        self.sheet, self.row, self.column = sheet, r1, c1
        self.last_row, self.last_column = r2, c2
        self._ndim: int | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (self.last_row - self.row + 1, self.last_column - self.column + 1)

    def options(self, ndim: int | None = None, **_: Any) -> Range:
        r = Range(self.sheet, self.row, self.column, self.last_row, self.last_column)
        r._ndim = ndim
        return r

    def __getitem__(self, index: int) -> Range:
        _rows, cols = self.shape
        r, c = divmod(index, cols)
        return Range(self.sheet, self.row + r, self.column + c, self.row + r, self.column + c)

    @property
    def api(self) -> _CellApi:
        return _CellApi(self.column not in self.sheet.unlocked_columns)

    def _keys(self) -> list[list[tuple[int, int]]]:
        return [[(r, c) for c in range(self.column, self.last_column + 1)]
                for r in range(self.row, self.last_row + 1)]

    def _shaped(self, grid: list[list[Any]]) -> Any:
        if self._ndim == 2:
            return grid
        if self.shape == (1, 1):
            return grid[0][0]
        return grid

    @property
    def value(self) -> Any:
        def shown(key: tuple[int, int]) -> Any:
            value = self.sheet.cells.get(key, (None, None))[0]
            return None if value == "" else value

        return self._shaped([[shown(k) for k in row] for row in self._keys()])

    @value.setter
    def value(self, data: Any) -> None:
        self._set(data)

    @property
    def formula(self) -> Any:
        def text(key: tuple[int, int]) -> str:
            value, formula = self.sheet.cells.get(key, (None, None))
            return formula or ("" if value is None else str(value))

        grid = [[text(k) for k in row] for row in self._keys()]
        return grid[0][0] if self.shape == (1, 1) else tuple(tuple(r) for r in grid)

    @formula.setter
    def formula(self, data: Any) -> None:
        self._set(data)

    def _check_writable(self) -> None:
        locked = any(c not in self.sheet.unlocked_columns
                     for c in range(self.column, self.last_column + 1))
        if self.sheet.protected and locked:
            raise ProtectedSheetError(f"{self.sheet.name} is protected")

    def _set(self, data: Any) -> None:
        self._check_writable()
        grid = data if isinstance(data, list) else [[data]]
        for row, values in zip(self._keys(), grid, strict=True):
            for key, typed in zip(row, values, strict=True):
                self.sheet.cells[key] = _as_typed(typed)
        self.sheet.book.writes.append((self.sheet.name, self.row, self.column, self.shape))

    def clear_contents(self) -> None:
        self._check_writable()
        for row in self._keys():
            for key in row:
                self.sheet.cells.pop(key, None)


def _as_typed(typed: Any) -> tuple[Any, str | None]:
    """What Excel stores for a value typed into a cell."""
    if isinstance(typed, str):
        if typed.startswith("'"):
            return typed[1:], None
        if typed.startswith("=") and len(typed) > 1:
            return None, typed
        if typed == "":
            return None, None
    return typed, None


class Sheets(list[Sheet]):
    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            for sheet in self:
                if sheet.name == key:
                    return sheet
            raise KeyError(key)
        return super().__getitem__(key)


class Book:
    def __init__(self, path: Path) -> None:
        self.fullname = str(path)
        self.name = path.name
        formulas = openpyxl.load_workbook(path)
        cached = openpyxl.load_workbook(path, data_only=True)
        self.sheets = Sheets(Sheet(self, ws, cached[ws.title]) for ws in formulas.worksheets)
        self.app = App()
        self.selection: Range | None = None
        self.writes: list[tuple[str, int, int, tuple[int, int]]] = []


class FakeUi:
    """A ``Ui`` that records what it says and answers from a script."""

    def __init__(self, answers: list[Any] | None = None) -> None:
        self.alerts: list[str] = []
        self.statuses: list[str | None] = []
        self.answers = list(answers or [])
        self.asked: list[str] = []

    def alert(self, text: str, title: str = "") -> None:
        self.alerts.append(text)

    def status(self, text: str | None) -> None:
        self.statuses.append(text)

    def ask(self, prompt: str, title: str = "", default: str = "") -> str | None:
        self.asked.append(prompt)
        return self.answers.pop(0) if self.answers else None

    def choose(self, prompt: str, options: Any, title: str = "") -> str | None:
        self.asked.append(prompt)
        answer = self.answers.pop(0) if self.answers else None
        return options[answer] if isinstance(answer, int) else answer
