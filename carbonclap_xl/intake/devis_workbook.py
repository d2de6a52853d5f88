"""Put imported budget lines into a workbook: a new one, or an existing one without
rewriting it.

- ``write_new`` builds the standard template and fills it (openpyxl writes fresh files well);
- ``read_existing`` + ``append_into`` add lines to a workbook the producer already filled: the
  poste sheets are read with python-calamine (``xlsx.budget``) to find their next empty rows
  and the lines already there, then only the new cells are written by ``xlsx.patch`` (every
  other part of the file is kept byte for byte), after a backup copy, atomically.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carbonclap_xl.core.errors import InputFileError
from carbonclap_xl.core.factors import FactorEdition
from carbonclap_xl.core.model import LINE_COLUMNS
from carbonclap_xl.intake.devis import (
    DUPLICATE,
    IMPORTED,
    BudgetAnalysis,
    line_record,
    match_previous_import,
)
from carbonclap_xl.intake.devis_mapping import DevisMapping
from carbonclap_xl.intake.double_counting import double_counting, mark_duplicate
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.xlsx.budget import SheetGrid, read_sheets


@dataclass
class ExistingWorkbook:
    path: Path
    lines: list[dict[str, Any]]  # LINE_COLUMNS + sheet, row
    next_row: dict[str, int]  # poste -> first free row


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def read_existing(path: Path) -> ExistingWorkbook:
    """The lines of a Carbon'Clap XL workbook and the next free row of each poste sheet."""
    where = str(path)
    if not path.is_file():
        raise InputFileError(where, "classeur introuvable")
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        raise InputFileError(where, "--into attend un classeur .xlsx ou .xlsm")
    grids = {g.name: g for g in read_sheets(path)}
    production = grids.get(L.SHEET_PRODUCTION)
    marker = production.value(1, 1) if production else None
    if marker != L.WORKBOOK_MARKER:
        raise InputFileError(where, "ce n'est pas un classeur Carbon'Clap XL (Production!A1) : "
                                    "créez-en un avec -o NOUVEAU.xlsx")
    headers = [c.header for c in L.INPUT_COLUMNS]
    out = ExistingWorkbook(path, [], {})
    for poste, sheet in L.POSTE_SHEETS.items():
        grid = grids.get(sheet)
        if grid is None:
            raise InputFileError(where, f"feuille « {sheet} » absente : le classeur ne suit plus "
                                        "le modèle")
        found = [str(grid.value(L.HEADER_ROW, i) or "").strip()
                 for i in range(1, len(headers) + 1)]
        if found != headers:
            raise InputFileError(where, f"feuille « {sheet} » : en-têtes de la ligne "
                                        f"{L.HEADER_ROW} modifiés ; rien n'y est écrit pour ne "
                                        "pas mélanger les colonnes")
        out.next_row[poste] = _next_row(grid)
        for r in range(L.FIRST_DATA_ROW, len(grid.rows) + 1):
            cells = [grid.value(r, i) for i in range(1, len(L.INPUT_COLUMNS) + 1)]
            if all(_blank(v) for v in cells):
                continue
            line = {"poste": poste, **{c.key: v for c, v in zip(L.INPUT_COLUMNS, cells,
                                                                  strict=True)},
                    "sheet": sheet, "row": r}
            out.lines.append(line)
    return out


def prepare_lines(analysis: BudgetAnalysis, existing: ExistingWorkbook | None,
                  edition: FactorEdition, mapping: DevisMapping
                  ) -> tuple[list[dict[str, Any]], int]:
    """The lines to write for the imported rows of ``analysis``, and how many rows came back
    with other amounts than a previous import: rows already in ``existing`` are skipped, and
    a line whose spending the workbook holds as physical data is marked (not counted)."""
    changed = match_previous_import(analysis.rows, existing.lines) if existing else 0
    imported = analysis.of(IMPORTED)
    records = [line_record(r, analysis, edition) for r in imported]
    before = existing.lines if existing is not None else []
    combined = [*before, *records]
    for index, reason in double_counting(combined, edition, mapping,
                                         candidates=range(len(before), len(combined))):
        at = index - len(before)
        imported[at].decision, imported[at].why = DUPLICATE, reason
        records[at] = mark_duplicate(records[at], reason)
    return records, changed


def _next_row(grid: SheetGrid) -> int:
    """The row after the last one holding anything in the line columns (inputs or results)."""
    width = len(L.LINE_COLUMNS_LAYOUT)
    last = L.FIRST_DATA_ROW - 1
    for r in range(len(grid.rows), L.FIRST_DATA_ROW - 1, -1):
        if any(not _blank(grid.value(r, c)) for c in range(1, width + 1)):
            last = r
            break
    return last + 1


def backup_path(path: Path) -> Path:
    """A backup name beside ``path`` that no file has yet."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.stem}.sauvegarde-{stamp}{path.suffix}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}.sauvegarde-{stamp}-{n}{path.suffix}")
    return candidate


def append_into(existing: ExistingWorkbook, records: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``records`` in the next free rows of their poste sheets; returns the backup."""
    from carbonclap_xl.xlsx.patch import patch_workbook

    writes: dict[str, dict[tuple[int, int], Any]] = {}
    next_row = dict(existing.next_row)
    for record in records:
        poste = str(record["poste"])
        sheet = L.POSTE_SHEETS[poste]
        row = next_row[poste]
        next_row[poste] += 1
        cells = writes.setdefault(sheet, {})
        for index, column in enumerate(L.INPUT_COLUMNS, start=1):
            value = record.get(column.key)
            if value is not None and value != "":
                cells[(row, index)] = value
    path = existing.path
    backup = backup_path(path)
    with open(path, "rb") as original, open(backup, "xb") as copy:  # never overwrites
        shutil.copyfileobj(original, copy)
    shutil.copystat(path, backup)
    patch_workbook(path, path, writes)  # through a temporary file and os.replace
    return backup


def write_new(path: Path, records: Sequence[Mapping[str, Any]],
              production: Mapping[str, Any]) -> list[str]:
    """A fresh standard workbook holding ``records``; returns the template's warnings."""
    from carbonclap_xl.xlsx.template import build_template, save

    wb = build_template()
    warnings = _fill(wb, records, production)
    save(wb, path)
    return warnings


def _fill(wb: Any, records: Sequence[Mapping[str, Any]],
          production: Mapping[str, Any]) -> list[str]:
    """The one call that hands lines to ``template.fill``."""
    from carbonclap_xl.core.lines import LineTable
    from carbonclap_xl.xlsx.template import fill

    table = LineTable.from_records([{k: r.get(k) for k in LINE_COLUMNS} for r in records],
                                   LINE_COLUMNS)
    return fill(wb, table, production)
