"""The write plan of a result: the cells the engine owns in a workbook, and nothing else.

Owned cells only: the computed columns of the poste sheets that were read, the computed
Production fields, the Synthèse figures and the Contrôles rows. The plan is a
``port.WritePlan``: the file adapter patches it into a copy surgically, the Excel add-in and
the LibreOffice extension write it into the open workbook.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from carbonclap_xl.core.engine import STATUS_FR, EngineResult
from carbonclap_xl.core.issues import SEVERITY_FR, Issue, Severity, counts_text
from carbonclap_xl.core.model import NATURES, POSTES
from carbonclap_xl.core.text import VALUE_MAX, shorten
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.workbook.port import CellValue, WritePlan
from carbonclap_xl.workbook.read import WorkbookData

Writes = dict[str, dict[str | tuple[int, int], CellValue]]
MESSAGE_MAX = 2_000  # a Contrôles message: templates are short, quoted values shortened


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def _str(v: Any) -> str | None:
    """Text of a result cell; None for blanks and pandas' NaN."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
        return None
    return str(v)


def line_columns(lines: Any) -> dict[str, list[CellValue]]:
    """The computed cells of result lines, column by column (layout column key -> values)."""
    def col(name: str) -> list[Any]:
        return lines[name].tolist() if name in lines else [None] * len(lines)

    sources = [None if not _str(d) else f"{d} {e} #{i}" for d, e, i in
               zip(col("source_dataset"), col("source_edition"), col("source_id"), strict=True)]
    return {
        "factor_value": [_num(v) for v in col("factor_value")],
        "factor_unit": [_str(v) for v in col("factor_unit")],
        "co2e_forecast_kg": [_num(v) for v in col("co2e_forecast_kg")],
        "co2e_final_kg": [_num(v) for v in col("co2e_final_kg")],
        "uncertainty_pct": [_num(v) for v in col("uncertainty_pct")],  # template 1.0
        "uncertainty_forecast_pct": [_num(v) for v in col("uncertainty_forecast_pct")],
        "uncertainty_final_pct": [_num(v) for v in col("uncertainty_final_pct")],
        "factor_id": [_str(v) for v in col("factor_id")],
        "source": sources,
        "status": [STATUS_FR.get(s) if _str(s) else None for s in col("status")],
    }


def _pct(part: float, whole: float) -> float | None:
    return None if not whole else 100.0 * part / whole


def synthese_writes(result: EngineResult) -> dict[str, CellValue]:
    cells: dict[str, CellValue] = {
        L.SYN_EDITION_CELL: f"Facteurs : {result.edition.name} — carbonclap_xl "
                            f"{result.product_version}",
        L.SYN_ATTRIBUTION_CELL: " ; ".join(result.edition.attributions()),
    }
    total = result.total_kg

    def block(first_row: int, items: list[tuple[Any, Any]], total_row: int) -> None:
        for i, (v, u) in enumerate(items):
            r = first_row + i
            diff = v.final - v.forecast
            cells.update({
                f"B{r}": v.forecast / 1000, f"C{r}": v.final / 1000, f"D{r}": diff / 1000,
                f"E{r}": _pct(diff, v.forecast), f"F{r}": _pct(v.forecast, total.forecast),
                f"G{r}": _pct(v.final, total.final), f"H{r}": u.forecast / 1000,
                f"I{r}": u.final / 1000,
            })
        diff = total.final - total.forecast
        cells.update({
            f"B{total_row}": total.forecast / 1000, f"C{total_row}": total.final / 1000,
            f"D{total_row}": diff / 1000, f"E{total_row}": _pct(diff, total.forecast),
            f"F{total_row}": 100.0 if total.forecast else None,
            f"G{total_row}": 100.0 if total.final else None,
            f"H{total_row}": result.uncertainty_kg.forecast / 1000,
            f"I{total_row}": result.uncertainty_kg.final / 1000,
        })

    block(L.SYN_POSTE_FIRST_ROW, [(result.by_poste[p.id], result.uncertainty_by_poste[p.id])
                                  for p in POSTES], L.SYN_POSTE_TOTAL_ROW)
    u = result.uncertainty_kg
    cells[f"B{L.SYN_POSTE_UNCERTAINTY_ROW}"] = u.forecast / 1000
    cells[f"C{L.SYN_POSTE_UNCERTAINTY_ROW}"] = u.final / 1000
    block(L.SYN_NATURE_FIRST_ROW, [(result.by_nature[n.id], result.uncertainty_by_nature[n.id])
                                   for n in NATURES], L.SYN_NATURE_TOTAL_ROW)
    for ref, value in cells.items():
        if isinstance(value, float):
            cells[ref] = _num(value)
    from carbonclap_xl.core.engine import INDICATORS

    for i, (key, (label, _attr)) in enumerate(INDICATORS.items()):
        r = L.SYN_INDICATOR_FIRST_ROW + i
        v = result.indicators.get(key)
        cells[f"A{r}"] = label
        cells[f"B{r}"] = _num(v.forecast) if v else None
        cells[f"C{r}"] = _num(v.final) if v else None
    return cells


def controles_writes(issues: list[Issue], previous_rows: int) -> tuple[dict[str, CellValue],
                                                                        list[str]]:
    cells: dict[str, CellValue] = {}
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    ranked = sorted(issues, key=lambda i: order[i.severity])
    for n, issue in enumerate(ranked):
        r = L.CTRL_FIRST_ROW + n
        cells.update({  # the user's text shortened: a cell holds 32,767 characters at most
            f"A{r}": SEVERITY_FR[issue.severity], f"B{r}": str(issue.code),
            f"C{r}": None if issue.sheet is None else shorten(issue.sheet, VALUE_MAX),
            f"D{r}": None if issue.cell is None else shorten(issue.cell, VALUE_MAX),
            f"E{r}": None if issue.value is None else shorten(str(issue.value), VALUE_MAX),
            f"F{r}": shorten(issue.message, MESSAGE_MAX),
        })
    cells[L.CTRL_SUMMARY_CELL] = counts_text(issues)
    clear = []
    if previous_rows > len(ranked):
        clear.append(f"A{L.CTRL_FIRST_ROW + len(ranked)}:F{L.CTRL_FIRST_ROW + previous_rows}")
    return cells, clear


def result_plan(data: WorkbookData, result: EngineResult, issues: list[Issue]) -> WritePlan:
    """Every owned cell to write, and the ranges to clear first."""
    writes, clear = _result_writes(data, result, issues)
    plan = WritePlan(clear=clear)
    for sheet, cells in writes.items():
        plan.update(sheet, cells)
    return plan


def _result_writes(data: WorkbookData, result: EngineResult,
                   issues: list[Issue]) -> tuple[Writes, dict[str, list[str]]]:
    writes: Writes = {}
    clear: dict[str, list[str]] = {}
    layout = data.layout  # the columns of the workbook's own template version
    first, last = layout.computed[0].letter, layout.computed[-1].letter
    for sheet in data.sheets_read:
        end = max(data.last_rows.get(sheet, 0), L.FIRST_DATA_ROW)
        clear[sheet] = [f"{first}{L.FIRST_DATA_ROW}:{last}{end}"]
        writes[sheet] = {}
    lines = result.lines
    if "sheet" in lines:
        lines = lines.select(np.isin(lines["sheet"], list(writes)))
        sheets, rows = lines["sheet"].tolist(), [int(r) for r in lines["row"].tolist()]
        values_by_key = line_columns(lines)
        for spec in layout.computed:
            column, values = spec.index, values_by_key[spec.key]
            for sheet, r, value in zip(sheets, rows, values, strict=True):
                if value is not None:  # blanks: the computed area was cleared just before
                    writes[sheet][(r, column)] = value
    if L.SHEET_PRODUCTION in data.sheet_names:
        writes[L.SHEET_PRODUCTION] = {L.FIELD_BY_KEY["factor_edition"].cell: result.edition.name}
    if L.SHEET_SYNTHESE in data.sheet_names:
        writes[L.SHEET_SYNTHESE] = synthese_writes(result)
    if L.SHEET_CONTROLES in data.sheet_names:
        cells, ctrl_clear = controles_writes(issues, data.control_rows)
        writes[L.SHEET_CONTROLES] = cells
        if ctrl_clear:
            clear[L.SHEET_CONTROLES] = ctrl_clear
    return writes, clear
