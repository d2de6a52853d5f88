"""Read a filled workbook through the port: production data, activity lines, deviations.

The reader sees a workbook only as a ``port.SheetSource`` (a file, the open Excel book, the
open LibreOffice document), never evaluates anything (it reads the values a spreadsheet
cached and the structure: hidden rows, merges, formulas) and reports every deviation from
``layout`` as an issue located by sheet and cell. Sheets whose headers were changed are not
read (and so never written): the user's data there is left alone.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carbonclap_xl.core.a1 import col_index, col_letter, parse_cell, split_ref
from carbonclap_xl.core.issues import Code, Issue, make_issue
from carbonclap_xl.core.lines import LineTable
from carbonclap_xl.core.model import Phase, ProductionInfo
from carbonclap_xl.core.numbers import arithmetic_value, fr_integer, parse_number
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.workbook.formulas import synthese_owned
from carbonclap_xl.workbook.port import SheetSource, SheetStructure


@dataclass
class WorkbookData:
    name: str  # the source's name: a path, a document title
    sheet_names: list[str]
    production: ProductionInfo
    production_raw: dict[str, Any]
    lines: LineTable  # input columns + "sheet", "row" (+ "read_<computed key>" values)
    issues: list[Issue]
    template_version: str | None = None
    layout: L.LineLayout = L.CURRENT_LAYOUT  # the poste-sheet columns of that version
    is_carbonclap: bool = True
    sheets_read: set[str] = field(default_factory=set)  # poste sheets whose lines were read
    last_rows: dict[str, int] = field(default_factory=dict)  # sheet -> last row holding data
    control_rows: int = 0  # rows currently filled on Contrôles
    synthese_read: dict[str, Any] = field(default_factory=dict)  # Synthèse cell -> value found
    # formulas found in cells the computation owns: (sheet, cell) -> text without "="
    computed_formulas: dict[tuple[str, str], str] = field(default_factory=dict)
    nature_owned: set[str] = field(default_factory=set)  # poste sheets whose nature column
    # (layout.NATURE_COLUMN, after the line table) is ours: its header is blank or ours


def _blank(v: Any) -> bool:
    return v is None or v == "" or (isinstance(v, float) and math.isnan(v))


def _as_text(v: Any) -> str:
    if isinstance(v, dt.datetime | dt.date):
        return v.strftime("%d/%m/%Y")
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _cell_value(rows: list[list[Any]], ref: str) -> Any:
    col, row = split_ref(ref)
    r, c = row - 1, col_index(col) - 1
    if r < len(rows) and c < len(rows[r]):
        v = _not_nan(rows[r][c])
        return None if _blank(v) else v
    return None


def _not_nan(v: Any) -> Any:
    """A cell holding NaN (``<v>NaN</v>``: no spreadsheet writes it, a crafted file can) is
    not empty: it reads as the text ``NaN``, which every rule then reports as not a number."""
    return "NaN" if isinstance(v, float) and math.isnan(v) else v


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or _blank(v):
        return None
    if isinstance(v, int | float):
        return float(v) if math.isfinite(v) else None
    value, unit = parse_number(str(v))
    return None if unit else value  # "2,9 M€" is not 2.9 k€: the validator reports it


def _date(v: Any) -> str | None:
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, str) and v.strip():
        for fmt in ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y"):
            try:
                return dt.datetime.strptime(v.strip(), fmt).date().isoformat()
            except ValueError:
                continue
    return None


def production_info(raw: dict[str, Any]) -> ProductionInfo:
    phase = raw.get("phase")
    phase_id = L.PHASE_CHOICES.get(str(phase).strip().capitalize()) if phase else None
    return ProductionInfo(
        title=None if _blank(raw.get("title")) else str(raw["title"]).strip(),
        work_type=None if _blank(raw.get("work_type")) else str(raw["work_type"]).strip(),
        producer=None if _blank(raw.get("producer")) else str(raw["producer"]).strip(),
        phase=Phase(phase_id) if phase_id else None,
        budget_keur=_number(raw.get("budget_keur")),
        shooting_days=_number(raw.get("shooting_days")),
        episodes=_number(raw.get("episodes")),
        duration_min=_number(raw.get("duration_min")),
        start_date=_date(raw.get("start_date")),
        end_date=_date(raw.get("end_date")),
        factor_edition=None if _blank(raw.get("factor_edition")) else str(raw["factor_edition"]),
    )


def read_workbook(source: SheetSource) -> WorkbookData:
    """Everything the engine and the writer need from a workbook."""
    names = list(source.sheet_names())
    issues: list[Issue] = []
    empty = LineTable.from_rows([], _record_columns(L.CURRENT_LAYOUT))

    def values(sheet: str, nrows: int | None = None) -> list[list[Any]]:
        return source.values(sheet, nrows)

    # identify the workbook
    prod_rows = values(L.SHEET_PRODUCTION) if L.SHEET_PRODUCTION in names else []
    marker = _cell_value(prod_rows, L.PRODUCTION_MARKER_CELL) if prod_rows else None
    if marker != L.WORKBOOK_MARKER:
        found = (f"feuille « {L.SHEET_PRODUCTION} » absente" if not prod_rows
                 else f"{L.SHEET_PRODUCTION}!{L.PRODUCTION_MARKER_CELL} vaut « {marker or ''} »")
        issues.append(make_issue(Code.NOT_CARBONCLAP_WORKBOOK, value=found,
                                 sheet=L.SHEET_PRODUCTION, cell=L.PRODUCTION_MARKER_CELL))
        return WorkbookData(source.name, names, ProductionInfo(), {}, empty, issues,
                            is_carbonclap=False)
    version_field = L.FIELD_BY_KEY["template_version"]
    version = _cell_value(prod_rows, version_field.cell)
    version_text = None if version is None else _as_text(version)
    if isinstance(version, int | float):  # a spreadsheet stored "1.0" as a number
        version_text = next((v for v in L.SUPPORTED_TEMPLATE_VERSIONS
                             if float(v) == float(version)), version_text)
    if version_text not in L.SUPPORTED_TEMPLATE_VERSIONS:
        issues.append(make_issue(Code.TEMPLATE_VERSION, value=version_text or "vide",
                                 sheet=L.SHEET_PRODUCTION, cell=version_field.cell,
                                 expected=", ".join(L.SUPPORTED_TEMPLATE_VERSIONS)))
    elif version_text != L.TEMPLATE_VERSION:
        issues.append(make_issue(Code.TEMPLATE_OLD, value=version_text,
                                 sheet=L.SHEET_PRODUCTION, cell=version_field.cell,
                                 expected=L.TEMPLATE_VERSION))
    layout = L.line_layout(version_text)
    raw = {f.key: _cell_value(prod_rows, f.cell) for f in L.PRODUCTION_FIELDS}
    data = WorkbookData(source.name, names, production_info(raw), raw, empty, issues,
                        template_version=version_text, layout=layout)

    for sheet in L.SHEET_ORDER:
        if sheet not in names:
            issues.append(make_issue(Code.SHEET_MISSING, value=sheet, sheet=sheet))
    known_headers = [[c.header for c in v.inputs] for v in L.LINE_LAYOUTS.values()]
    for sheet in names:  # a copied poste sheet ("Régie (2)") is not read: say so
        if sheet in L.SHEET_ORDER:
            continue
        top = values(sheet, nrows=L.HEADER_ROW)
        if len(top) == L.HEADER_ROW and any(
                [str(v).strip() for v in top[-1][:len(headers)]] == headers
                for headers in known_headers):
            issues.append(make_issue(Code.SHEET_NOT_READ, value=sheet, sheet=sheet,
                                     cell=f"A{L.HEADER_ROW}"))
    records: list[list[Any]] = []
    for poste, sheet in L.POSTE_SHEETS.items():
        if sheet not in names:
            continue
        found = _read_poste_sheet(values(sheet), poste, sheet, source.structure(sheet), issues,
                                  data.computed_formulas, layout)
        if found is not None:
            data.sheets_read.add(sheet)
            records.extend(found[0])
            data.last_rows[sheet] = found[1]
            if found[2]:
                data.nature_owned.add(sheet)
    if L.SHEET_SYNTHESE in names:
        syn = values(L.SHEET_SYNTHESE)
        for ref in (f"B{L.SYN_POSTE_TOTAL_ROW}", f"C{L.SYN_POSTE_TOTAL_ROW}"):
            data.synthese_read[ref] = _cell_value(syn, ref)
        for ref, formula in source.structure(L.SHEET_SYNTHESE).formulas.items():
            if synthese_owned(ref):
                data.computed_formulas[(L.SHEET_SYNTHESE, ref)] = formula
    computed_fields = {f.cell for f in L.PRODUCTION_FIELDS if f.kind == "computed"}
    for ref, formula in source.structure(L.SHEET_PRODUCTION).formulas.items():
        if ref in computed_fields:
            data.computed_formulas[(L.SHEET_PRODUCTION, ref)] = formula
    if L.SHEET_CONTROLES in names:
        height = source.used_rows(L.SHEET_CONTROLES)
        data.control_rows = max(0, height - L.CTRL_FIRST_ROW + 1)
    data.lines = LineTable.from_rows(records, _record_columns(layout))
    data.lines["row"] = data.lines["row"].astype(np.int64)
    return data


def _record_columns(layout: L.LineLayout) -> list[str]:
    """The columns of a line record: poste, the inputs, sheet, row, what computed cells hold."""
    return ["poste", *[c.key for c in layout.inputs], "sheet", "row",
            *[f"read_{c.key}" for c in layout.computed]]


def _read_poste_sheet(rows: list[list[Any]], poste: str, sheet: str, scan: SheetStructure,
                      issues: list[Issue], computed_formulas: dict[tuple[str, str], str],
                      layout: L.LineLayout = L.CURRENT_LAYOUT
                      ) -> tuple[list[list[Any]], int, bool] | None:
    """The line records of one poste sheet, its last used row and whether its nature column
    is ours; None when its headers were changed (the sheet is then neither read nor
    written). Formulas found in computed cells go into ``computed_formulas``."""
    read_columns = len(layout.columns)
    row_slot = _record_columns(layout).index("row")
    header = rows[L.HEADER_ROW - 1] if len(rows) >= L.HEADER_ROW else []
    if all(_blank(v) for v in header[:read_columns]):
        issues.append(make_issue(Code.HEADER_CHANGED, value="(ligne vide)",
                                 expected=", ".join(c.header for c in layout.columns),
                                 sheet=sheet, cell=f"A{L.HEADER_ROW}"))
        return None
    changed = False
    for i, column in enumerate(layout.columns):
        found = header[i] if i < len(header) else ""
        if str(found).strip() != column.header:
            changed = changed or not column.computed
            issues.append(make_issue(Code.HEADER_CHANGED, value=found, expected=column.header,
                                     sheet=sheet, cell=f"{column.letter}{L.HEADER_ROW}"))
    if changed:
        return None
    nature = layout.nature
    nature_at = nature.index - 1
    nature_header = header[nature_at] if nature_at < len(header) else None
    nature_owned = _blank(nature_header) or str(nature_header).strip() == nature.header
    for i in range(read_columns, len(header)):
        if i == nature_at and nature_owned:
            continue
        if not _blank(header[i]):
            issues.append(make_issue(Code.COLUMN_EXTRA, value=header[i], sheet=sheet,
                                     cell=f"{col_letter(i + 1)}{L.HEADER_ROW}"))
    for ref in scan.merged:  # only merges that cover cells of the table (A:N, data rows)
        first, _, last = ref.partition(":")
        corners = [parse_cell(first), parse_cell(last or first)]
        if None in corners:
            continue  # outside the grid: no reader materialises it
        (r1, c1), (r2, c2) = corners  # type: ignore[misc]
        if max(r1, r2) >= L.FIRST_DATA_ROW and min(c1, c2) <= read_columns:
            issues.append(make_issue(Code.CELL_MERGED, value=ref, sheet=sheet, cell=first))
    n_inputs = len(layout.inputs)
    # a date is not a number: the engine reports it
    number_slots = [i for i, c in enumerate(layout.inputs)
                    if c.key in ("quantity_forecast", "quantity_final", "count")]
    records: list[list[Any]] = []
    last_row = L.FIRST_DATA_ROW - 1
    for r, row in enumerate(rows[L.FIRST_DATA_ROW - 1:L.MAX_LINE_ROWS], start=L.FIRST_DATA_ROW):
        cells = row[:read_columns]
        if len(cells) < read_columns:
            cells = cells + [""] * (read_columns - len(cells))
        if all(v == "" or v is None for v in cells):
            continue
        last_row = r
        if all(v == "" or v is None for v in cells[:n_inputs]):
            continue  # computed leftovers of a deleted line: not a line, cleared on write
        cells = [None if v == "" or v is None else _not_nan(v) for v in cells]  # "" = empty
        for i in number_slots:
            if isinstance(cells[i], dt.date | dt.datetime | dt.time):
                cells[i] = _as_text(cells[i])
        records.append([poste, *cells[:n_inputs], sheet, r, *cells[n_inputs:]])
    if len(rows) > L.MAX_LINE_ROWS:
        last_row = len(rows)
        beyond = next((r for r in range(L.MAX_LINE_ROWS, len(rows))
                       if not all(_blank(v) for v in rows[r][:read_columns])), None)
        if beyond is not None:
            issues.append(make_issue(Code.ROWS_BEYOND_LIMIT, value=f"ligne {beyond + 1}",
                                     expected=fr_integer(L.MAX_LINE_ROWS),
                                     sheet=sheet, cell=f"A{beyond + 1}"))
    line_rows = {rec[row_slot] for rec in records}
    for row in sorted(scan.hidden_rows & line_rows):
        issues.append(make_issue(Code.ROW_HIDDEN, value=row, sheet=sheet, cell=f"A{row}"))
    # formulas matter where they feed the computation: activity, quantities, unit, count
    by_key = layout.by_key
    input_letters = {by_key[k].letter for k in ("activity", "quantity_forecast",
                                                "quantity_final", "unit", "count")
                     if k in by_key}
    quantity_letters = {by_key[k].letter for k in ("quantity_forecast", "quantity_final",
                                                   "count") if k in by_key}
    by_row = {rec[row_slot]: rec for rec in records}
    slots = {c.letter: i + 1 for i, c in enumerate(layout.inputs)}  # record position
    computed_letters = {c.letter for c in layout.computed}
    if nature_owned:
        computed_letters.add(nature.letter)
    for ref, formula in scan.formulas.items():
        cell = parse_cell(ref)
        if cell is None:
            continue  # a reference outside the grid: no value is read there
        row, col = cell[0], col_letter(cell[1])
        if row >= L.FIRST_DATA_ROW and col in computed_letters:
            computed_formulas[(sheet, f"{col}{row}")] = formula
        if row < L.FIRST_DATA_ROW or col not in input_letters:
            continue
        value = arithmetic_value(formula) if col in quantity_letters else None
        if value is not None:
            if row not in by_row:  # only a formula on that row: still a line, to report
                by_row[row] = [poste, *[None] * n_inputs, sheet, row,
                               *[None] * len(layout.computed)]
                records.append(by_row[row])
            by_row[row][slots[col]] = value  # computed here, never taken from the cache
            continue
        cached = _cell_value(rows, ref)
        code = Code.FORMULA_NO_VALUE if cached is None else Code.FORMULA_IN_INPUT
        if code is Code.FORMULA_NO_VALUE or row in line_rows:
            issues.append(make_issue(code, value=f"={formula}", sheet=sheet, cell=ref))
    records.sort(key=lambda rec: rec[row_slot])  # rows added for formula-only lines
    return records, last_row, nature_owned


def locate(issue: Issue, lines: LineTable, layout: L.LineLayout = L.CURRENT_LAYOUT) -> Issue:
    """An engine issue (line index, field) located at its sheet and cell."""
    if issue.line is None or issue.sheet is not None:
        return issue
    sheet = lines["sheet"][issue.line]
    row = int(lines["row"][issue.line])
    by_key = layout.by_key
    column = by_key.get(issue.field or "activity", by_key["activity"])
    return issue.located(sheet, f"{column.letter}{row}", row)
