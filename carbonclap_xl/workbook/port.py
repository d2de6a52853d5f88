"""The workbook port: how the pipeline sees a workbook, wherever it lives.

Reading goes through a :class:`SheetSource` (sheet names, cached values, structure); writing
is a :class:`WritePlan` (ranges to clear, then cells to set) that a :class:`PlanSink` applies.
Three adapters implement the port: the file adapter (``xlsx.files``: python-calamine values
and a surgical zip patch), the Excel add-in (``excel``: xlwings on the open book) and the
LibreOffice extension (``libreoffice``: UNO on the open document, through the JSON exchange
below). The plan never assumes a file: cells are (row, column) numbers and plain values.

The JSON exchange (``plan_to_json`` / ``plan_from_json``, ``source_to_json`` /
``source_from_json``) is versioned (``EXCHANGE_VERSION``) and documented in
``docs/architecture.md``; front ends written in other languages can speak it. Dates travel
as spreadsheet serial numbers (days since 1899-12-30, the 1900 date system) and each sheet
lists the cells that hold one (``"dates"``), as a spreadsheet knows them from their number
format; ``source_from_json`` turns them back into ``date``/``datetime``/``time``.
"""

from __future__ import annotations

import datetime as dt
import math
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Protocol

from carbonclap_xl.core.a1 import cell_ref, parse_cell

EXCHANGE_VERSION = 1


@dataclass(frozen=True)
class Formula:
    """A formula to write (``text`` without its leading ``=``) with the value the engine
    computed for it, stored as the cell's cached value so that every client shows the
    engine's number before (or without) recalculating."""

    text: str
    cached: float | str | None = None


CellValue = str | int | float | bool | Formula | None

ROW_MARK = "\0"  # where a formula template takes its row number (no formula holds a NUL)


@dataclass(frozen=True)
class FormulaColumn:
    """One column of a :class:`CellBlock` holding formulas: row ``i`` gets
    ``templates[i]`` with its row number for :data:`ROW_MARK` and ``cached[i]`` as its cached
    value; where ``templates[i]`` is None it gets the plain value ``cached[i]`` (None: the
    cell is emptied). Thousands of lines share a few templates: no text per cell until a
    sink writes it."""

    templates: list[str | None]
    cached: list[float | str | None]

    def value(self, i: int, row: int) -> CellValue:
        template = self.templates[i]
        if template is None:
            return self.cached[i]
        return Formula(template.replace(ROW_MARK, str(row)), self.cached[i])


@dataclass(frozen=True)
class CellBlock:
    """The same columns over many rows, column by column: the computed cells of thousands
    of lines without an object per cell. Column ``number`` of row ``rows[i]`` gets
    ``columns[number][i]`` (None: the cell is emptied), or the formula of a
    :class:`FormulaColumn`. ``rows`` ascend."""

    rows: list[int]
    columns: dict[int, list[CellValue] | FormulaColumn]

    def cells(self) -> dict[tuple[int, int], CellValue]:
        """The block as single cells (what a sink that does not write blocks needs)."""
        out: dict[tuple[int, int], CellValue] = {}
        for col, values in self.columns.items():
            if isinstance(values, FormulaColumn):
                for i, row in enumerate(self.rows):
                    out[row, col] = values.value(i, row)
            else:
                out.update(zip(zip(self.rows, repeat(col)), values, strict=True))
        return out


@dataclass
class SheetStructure:
    """What values alone do not say about a sheet."""

    hidden_rows: set[int] = field(default_factory=set)
    merged: list[str] = field(default_factory=list)  # "A5:C5"
    formulas: dict[str, str] = field(default_factory=dict)  # "B7" -> formula text, no "="


class SheetSource(Protocol):
    """A workbook to read: a file, an open Excel book, an open LibreOffice document."""

    @property
    def name(self) -> str:
        """How messages name the workbook (a path or a document title)."""
        ...

    def sheet_names(self) -> list[str]:
        ...

    def values(self, sheet: str, nrows: int | None = None) -> list[list[Any]]:
        """Cached cell values from A1, row by row (blank cells: None or ""). Numbers are
        float or int, dates datetime/date, booleans bool; no formula is evaluated."""
        ...

    def structure(self, sheet: str) -> SheetStructure:
        ...

    def used_rows(self, sheet: str) -> int:
        """Number of rows of the sheet's used area (0 when empty)."""
        ...


@dataclass
class WritePlan:
    """Cells to write, per sheet: ``clear`` ranges first, then ``cells`` and ``blocks``
    (no cell is in both, nor in two blocks)."""

    cells: dict[str, dict[tuple[int, int], CellValue]] = field(default_factory=dict)
    clear: dict[str, list[str]] = field(default_factory=dict)
    blocks: dict[str, list[CellBlock]] = field(default_factory=dict)

    def add_block(self, sheet: str, block: CellBlock) -> None:
        self.blocks.setdefault(sheet, []).append(block)

    def sheets(self) -> list[str]:
        """Every sheet the plan clears or writes, in the order they come."""
        return list(dict.fromkeys([*self.clear, *self.cells, *self.blocks]))

    def sheet_cells(self, sheet: str) -> dict[tuple[int, int], CellValue]:
        """Every cell the plan writes in ``sheet``, blocks included."""
        cells = dict(self.cells.get(sheet, {}))
        for block in self.blocks.get(sheet, []):
            cells.update(block.cells())
        return cells

    def expanded(self) -> WritePlan:
        """The same plan with its blocks as single cells."""
        return WritePlan({s: self.sheet_cells(s) for s in self.sheets()
                          if s in self.cells or s in self.blocks},
                         {s: list(r) for s, r in self.clear.items()})

    def set(self, sheet: str, ref: str | tuple[int, int], value: CellValue) -> None:
        key = ref if isinstance(ref, tuple) else _key(ref)
        self.cells.setdefault(sheet, {})[key] = value

    def update(self, sheet: str, cells: Mapping[str | tuple[int, int], CellValue]) -> None:
        target = self.cells.setdefault(sheet, {})
        for ref, value in cells.items():
            target[ref if isinstance(ref, tuple) else _key(ref)] = value

    def get(self, sheet: str, ref: str | tuple[int, int]) -> CellValue:
        key = ref if isinstance(ref, tuple) else _key(ref)
        if key in self.cells.get(sheet, {}):
            return self.cells[sheet][key]
        row, col = key
        for block in self.blocks.get(sheet, []):
            values = block.columns.get(col)
            if values is not None:
                at = bisect_left(block.rows, row)
                if at < len(block.rows) and block.rows[at] == row:
                    return (values.value(at, row) if isinstance(values, FormulaColumn)
                            else values[at])
        return None

    def cell_count(self) -> int:
        return sum(len(c) for c in self.cells.values()) + sum(
            len(b.rows) * len(b.columns) for blocks in self.blocks.values() for b in blocks)


def _key(ref: str) -> tuple[int, int]:
    cell = parse_cell(ref)
    if cell is None:
        raise ValueError(f"référence de cellule invalide : {ref}")
    return cell


class PlanSink(Protocol):
    """Where a write plan goes: a copy of a file, the open book, the open document."""

    def apply(self, plan: WritePlan) -> None:
        ...


# --------------------------------------------------------------------------- JSON exchange


def _json_value(value: CellValue) -> Any:
    if isinstance(value, Formula):
        return {"formula": "=" + value.text, "value": _json_value(value.cached)}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def plan_to_json(plan: WritePlan, message: str | None = None,
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The plan as the exchange document: ``{"version", "clear": {sheet: ["A5:N20"]},
    "cells": {sheet: [[row, col, value], ...]}}``; a formula is ``{"formula": "=…",
    "value": cached}``; rows and columns count from 1."""
    flat = plan.expanded()
    doc: dict[str, Any] = {
        "version": EXCHANGE_VERSION,
        "clear": {s: list(r) for s, r in flat.clear.items()},
        "cells": {s: [[r, c, _json_value(v)] for (r, c), v in sorted(cells.items())]
                  for s, cells in flat.cells.items()},
    }
    if message is not None:
        doc["message"] = message
    if extra:
        doc.update(extra)
    return doc


def plan_from_json(doc: Mapping[str, Any]) -> WritePlan:
    if doc.get("version") != EXCHANGE_VERSION:
        raise ValueError(f"version d'échange {doc.get('version')!r} inconnue "
                         f"(attendue : {EXCHANGE_VERSION})")
    plan = WritePlan(clear={s: list(r) for s, r in doc.get("clear", {}).items()})
    for sheet, cells in doc.get("cells", {}).items():
        for row, col, value in cells:
            if isinstance(value, dict):
                value = Formula(str(value["formula"]).lstrip("="), value.get("value"))
            plan.set(sheet, (int(row), int(col)), value)
    return plan


@dataclass
class MemorySource:
    """A source held in memory: what the LibreOffice extension sends over the exchange, and
    a stand-in for tests."""

    name: str
    sheets: dict[str, list[list[Any]]]
    structures: dict[str, SheetStructure] = field(default_factory=dict)

    def sheet_names(self) -> list[str]:
        return list(self.sheets)

    def values(self, sheet: str, nrows: int | None = None) -> list[list[Any]]:
        rows = self.sheets[sheet]
        return rows if nrows is None else rows[:nrows]

    def structure(self, sheet: str) -> SheetStructure:
        return self.structures.get(sheet) or SheetStructure()

    def used_rows(self, sheet: str) -> int:
        rows = self.sheets.get(sheet, [])
        for n in range(len(rows), 0, -1):
            if any(v not in (None, "") for v in rows[n - 1]):
                return n
        return 0


_EPOCH = dt.datetime(1899, 12, 30)  # serial 0 of the 1900 date system (Excel, LibreOffice)


def date_to_serial(value: dt.date | dt.datetime | dt.time) -> float:
    """A date, date-time or time as a spreadsheet serial number."""
    if isinstance(value, dt.time):
        return (value.hour * 3600 + value.minute * 60 + value.second
                + value.microsecond / 1e6) / 86400
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    delta = value.replace(tzinfo=None) - _EPOCH
    return delta.days + delta.seconds / 86400 + delta.microseconds / 86400e6


def serial_to_date(serial: float) -> dt.date | dt.datetime | dt.time:
    """A spreadsheet serial number as a ``date`` (whole days), ``time`` (under one day) or
    ``datetime``, rounded to the millisecond as spreadsheets show it."""
    moment = _EPOCH + dt.timedelta(milliseconds=round(serial * 86400e3))
    if 0 <= serial < 1:
        return moment.time()
    if moment.time() == dt.time(0):
        return moment.date()
    return moment


def _cells(ref: str, rows: int | None = None, cols: int | None = None
           ) -> list[tuple[int, int]]:
    """The cells of ``ref``, within ``rows`` × ``cols`` when given (an area can name the
    whole sheet: only the cells that hold values are listed)."""
    first, _, last = ref.partition(":")
    start, end = _key(first), _key(last or first)
    r_end = end[0] if rows is None else min(end[0], rows)
    c_end = end[1] if cols is None else min(end[1], cols)
    return [(r, c) for r in range(start[0], r_end + 1) for c in range(start[1], c_end + 1)]


def source_to_json(source: SheetSource) -> dict[str, Any]:
    """A source as the exchange document (what a front end sends): values and structure,
    dates as serial numbers listed in ``"dates"``."""
    sheets = {}
    for name in source.sheet_names():
        s = source.structure(name)
        values, dates = [], []
        for r, row in enumerate(source.values(name), start=1):
            out = list(row)
            for c, v in enumerate(out):
                if isinstance(v, dt.date | dt.datetime | dt.time):
                    out[c] = date_to_serial(v)
                    dates.append(cell_ref(r, c + 1))
            values.append(out)
        sheets[name] = {"values": values, "dates": dates,
                        "hidden_rows": sorted(s.hidden_rows), "merged": list(s.merged),
                        "formulas": dict(s.formulas)}
    return {"version": EXCHANGE_VERSION, "name": source.name, "sheets": sheets}


def source_from_json(doc: Mapping[str, Any]) -> MemorySource:
    """The exchange document as a source; keys other than ``version``, ``name`` and
    ``sheets`` (a front end's request: command, path, active cell…) are ignored here."""
    if doc.get("version") != EXCHANGE_VERSION:
        raise ValueError(f"version d'échange {doc.get('version')!r} inconnue "
                         f"(attendue : {EXCHANGE_VERSION})")
    sheets: dict[str, list[list[Any]]] = {}
    structures: dict[str, SheetStructure] = {}
    for name, sheet in doc.get("sheets", {}).items():
        rows = [list(r) for r in sheet.get("values", [])]
        width = max((len(r) for r in rows), default=0)
        for ref in sheet.get("dates", []):
            for r, c in _cells(str(ref), len(rows), width):
                if r <= len(rows) and c <= len(rows[r - 1]):
                    v = rows[r - 1][c - 1]
                    if isinstance(v, int | float) and not isinstance(v, bool) \
                            and math.isfinite(v) and -693594 <= v <= 2958465:
                        rows[r - 1][c - 1] = serial_to_date(float(v))
        sheets[name] = rows
        structures[name] = SheetStructure({int(r) for r in sheet.get("hidden_rows", [])},
                                          [str(m) for m in sheet.get("merged", [])],
                                          {str(k): str(v).lstrip("=") for k, v in
                                           sheet.get("formulas", {}).items()})
    return MemorySource(str(doc.get("name", "classeur")), sheets, structures)


__all__ = ["EXCHANGE_VERSION", "ROW_MARK", "CellBlock", "CellValue", "Formula",
           "FormulaColumn", "MemorySource", "PlanSink", "SheetSource", "SheetStructure",
           "WritePlan", "date_to_serial", "plan_from_json",
           "plan_to_json", "serial_to_date", "source_from_json", "source_to_json"]
