"""The write plan of a result: the cells the engine owns in a workbook, and nothing else.

Owned cells only: the computed columns of the poste sheets that were read (and their nature
column), the computed Production fields, the Synthèse figures and the Contrôles rows.
Emission, status and Synthèse cells are the live formulas of ``formulas``, each carrying the
engine's value as its cached value. The plan is a
``port.WritePlan``: the file adapter patches it into a copy surgically, the Excel add-in and
the LibreOffice extension write it into the open workbook.
"""

from __future__ import annotations

import math
from operator import itemgetter
from typing import Any

import numpy as np

from carbonclap_xl.core.engine import STATUS_FR, EngineResult
from carbonclap_xl.core.issues import SEVERITY_FR, Code, Issue, Severity, counts_text
from carbonclap_xl.core.model import NATURES, POSTES
from carbonclap_xl.core.numbers import fr_integer
from carbonclap_xl.core.text import VALUE_MAX, shorten
from carbonclap_xl.workbook import formulas as F
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.workbook.port import CellBlock, CellValue, Formula, FormulaColumn, WritePlan
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


def _numbers(values: list[Any]) -> list[float | None]:
    """:func:`_num` of each value (a float column's finite numbers kept as they are)."""
    isfinite = math.isfinite
    return [v if type(v) is float and isfinite(v) else _num(v) for v in values]


def _texts(values: list[Any]) -> list[str | None]:
    """:func:`_str` of each value (a text kept as it is)."""
    return [v if type(v) is str and v else _str(v) for v in values]


def _plain_numbers(values: list[Any]) -> list[bool]:
    """``formulas.is_plain_number`` of each value (a float or a blank at once: NaN is a
    blank of a numeric column, an infinity is not plain)."""
    isinf = math.isinf
    return [v is None or (not isinf(v) if type(v) is float else F.is_plain_number(v))
            for v in values]


def line_columns(lines: Any, live: bool = False, other_warnings: Any = None,
                 layout: L.LineLayout = L.CURRENT_LAYOUT,
                 dated: set[tuple[str, int]] | None = None
                 ) -> dict[str, list[CellValue] | FormulaColumn]:
    """The computed cells of result lines, column by column (layout column key -> values).

    ``live``: emission and status columns become ``port.FormulaColumn`` (the formulas of
    ``formulas``, templates the lines share, carrying the engine's values), and the nature
    column is filled; ``other_warnings`` marks the lines with a warning other than a
    missing quantity (their status once filled is « À vérifier »)."""
    def col(name: str) -> list[Any]:
        return lines[name].tolist() if name in lines else [None] * len(lines)

    sources = [None if not _str(d) else f"{d} {e} #{i}" for d, e, i in
               zip(col("source_dataset"), col("source_edition"), col("source_id"), strict=True)]
    out: dict[str, list[CellValue] | FormulaColumn] = {
        "factor_value": _numbers(col("factor_value")),
        "factor_unit": _texts(col("factor_unit")),
        "co2e_forecast_kg": _numbers(col("co2e_forecast_kg")),
        "co2e_final_kg": _numbers(col("co2e_final_kg")),
        "uncertainty_pct": _numbers(col("uncertainty_pct")),  # template 1.0
        "uncertainty_forecast_pct": _numbers(col("uncertainty_forecast_pct")),
        "uncertainty_final_pct": _numbers(col("uncertainty_final_pct")),
        "factor_id": _texts(col("factor_id")),
        "source": sources,
        "status": [STATUS_FR.get(s) if _str(s) else None for s in col("status")],
    }
    if live:
        _live_cells(lines, out, other_warnings, F.line_cells(layout), dated or set())
    return out


_COUNTED = ("ok", "warning", "empty")


def _live_cells(lines: Any, out: dict[str, list[CellValue] | FormulaColumn],
                other_warnings: Any, layout: F.LineCells, dated: set[tuple[str, int]]) -> None:
    """Turn ``out``'s emission and status columns into ``port.FormulaColumn`` (in place),
    add natures.

    Formulas are templates (``formulas.ROW`` for the row number): one per quantity column
    and conversion for emissions, one per distinct set of compared inputs for statuses;
    each line only points at its template."""
    n = len(lines)
    read = {k: (lines[k].tolist() if k in lines else [None] * n) for k in layout.inputs}
    status, rows = lines["status"].tolist(), [int(r) for r in lines["row"].tolist()]
    conversion, factor = lines["conversion"].tolist(), lines["factor_value"].tolist()
    natures = lines["nature"].tolist()
    sheets = lines["sheet"].tolist() if dated and "sheet" in lines else []
    warned = [False] * n if other_warnings is None else list(other_warnings)
    numeric = layout.numeric
    emission_keys = [(q, F.EMISSION_OF[q]) for q in F.QUANTITY_KEYS]
    status_keys = {live: [read[k] for k in F.status_keys(live, layout)]
                   for live in (True, False)}
    emission_templates: dict[tuple[str, float], str] = {}
    status_templates: dict[tuple[Any, ...], str | None] = {}
    natures_out: list[CellValue] = [None] * n
    out["nature"] = natures_out
    emission_cached = {e: out[e] for _, e in emission_keys}
    emission_formulas: dict[str, list[str | None]] = {e: [None] * n for _, e in emission_keys}
    status_cached = out["status"]
    status_formulas: list[str | None] = [None] * n
    # a numeric column holds only numbers and blanks (NaN): every cell is plain
    plain = [_plain_numbers(read[k]) for k in numeric
             if not (k in lines and lines[k].dtype.kind in "fiu")]
    all_plain = list(map(all, zip(*plain, strict=True))) if plain else [True] * n
    isfinite = math.isfinite
    for i in range(n):
        state = status[i]
        if not (type(state) is str and state) and not _str(state):
            continue
        counted = state in _COUNTED
        live = (counted and all_plain[i] and isfinite(conversion[i]) and isfinite(factor[i]))
        if counted:
            nature = natures[i]
            natures_out[i] = nature if type(nature) is str and nature else _str(nature)
        if live:
            for quantity, emission in emission_keys:
                template = emission_templates.get((quantity, conversion[i]))
                if template is None:
                    template = emission_templates[quantity, conversion[i]] = \
                        F.emission_template(quantity, conversion[i], layout)
                emission_formulas[emission][i] = template
                if emission_cached[emission][i] is None:
                    emission_cached[emission][i] = ""
            shown = STATUS_FR["warning"] if warned[i] else STATUS_FR["ok"]
        else:
            shown = STATUS_FR[state]
        # 1, 1.0 and True are equal keys but not equal literals: the type is in the key
        key = (live, shown, *((type(c[i]), c[i]) for c in status_keys[live]))
        if key in status_templates:
            text = status_templates[key]
        else:
            inputs = {k: read[k][i] for k in layout.inputs}
            text = status_templates[key] = F.status_template(inputs, live, shown, layout)
        if text is not None and not (dated and (sheets[i], rows[i]) in dated):
            status_formulas[i] = text
            status_cached[i] = STATUS_FR[state]
    for _, emission in emission_keys:
        out[emission] = FormulaColumn(emission_formulas[emission], emission_cached[emission])
    out["status"] = FormulaColumn(status_formulas, status_cached)


def _pct(part: float, whole: float) -> float | None:
    return None if not whole else 100.0 * part / whole


def synthese_writes(result: EngineResult, data: WorkbookData | None = None,
                    live: bool = False, pending: int = 0) -> dict[str, CellValue]:
    """Synthèse's cells: the engine's numbers, as the live formulas of ``formulas`` (with
    those numbers cached) when ``live``; uncertainties always as values."""
    cells: dict[str, CellValue] = {
        L.SYN_EDITION_CELL: f"Facteurs : {result.edition.name} — carbonclap_xl "
                            f"{result.product_version}",
        L.SYN_ATTRIBUTION_CELL: " ; ".join(result.edition.attributions()),
        L.SYN_PENDING_CELL: None,
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
    taken = data.synthese_taken if data is not None else {}
    if "changes" not in taken:
        cells.update(changes_writes(result))
    if "pending" in taken:
        del cells[L.SYN_PENDING_CELL]
    for ref, value in cells.items():
        if isinstance(value, float):
            cells[ref] = _num(value)
    from carbonclap_xl.core.engine import INDICATORS

    plain_denominator = set()
    for i, (key, (label, attr)) in enumerate(INDICATORS.items()):
        r = L.SYN_INDICATOR_FIRST_ROW + i
        v = result.indicators.get(key)
        cells[f"A{r}"] = label
        cells[f"B{r}"] = _num(v.forecast) if v else None
        cells[f"C{r}"] = _num(v.final) if v else None
        raw = data.production_raw.get(attr) if data is not None else None
        if F.is_plain_number(raw):  # a formula reads it as the engine did
            plain_denominator.update((f"B{r}", f"C{r}"))
    if live:
        indicator_cells = {f"{c}{L.SYN_INDICATOR_FIRST_ROW + i}" for c in "BC"
                           for i in range(len(INDICATORS))}
        layout = data.layout if data is not None else L.CURRENT_LAYOUT
        for ref, text in F.synthese_formulas(layout).items():
            if ref in indicator_cells and ref not in plain_denominator:
                continue
            if ref not in cells:  # a cell holding the user's data (``synthese_taken``)
                continue
            cached = F.pending_text(pending) if ref == L.SYN_PENDING_CELL else cells.get(ref)
            cells[ref] = Formula(text, "" if cached is None else cached)
    return cells


def largest_changes(result: EngineResult) -> list[tuple[str, float, float]]:
    """(label, forecast kg, final kg) of the postes and natures whose footprint changed from
    forecast to final, largest change first (at most ``SYN_CHANGES_COUNT``); only when both
    phases have a footprint (a forecast alone has nothing to compare)."""
    if not (result.total_kg.forecast and result.total_kg.final):
        return []
    items = [*((f"Poste : {p.label_fr}", result.by_poste[p.id]) for p in POSTES),
             *((f"Nature : {n.label_fr}", result.by_nature[n.id]) for n in NATURES)]
    changed = [(label, v.forecast, v.final) for label, v in items if v.final != v.forecast]
    changed.sort(key=lambda item: -abs(item[2] - item[1]))
    return changed[:L.SYN_CHANGES_COUNT]


def changes_writes(result: EngineResult) -> dict[str, CellValue]:
    """Synthèse's « plus grands écarts » block: its title, headers and rows (blank rows
    below the changes found)."""
    cells: dict[str, CellValue] = {f"A{L.SYN_CHANGES_TITLE_ROW}": L.SYN_CHANGES_TITLE}
    cols = "ABCDE"
    for col, header in zip(cols, L.SYN_CHANGES_HEADERS, strict=True):
        cells[f"{col}{L.SYN_CHANGES_HEADER_ROW}"] = header
    changes = largest_changes(result)
    for i in range(L.SYN_CHANGES_COUNT):
        r = L.SYN_CHANGES_FIRST_ROW + i
        if i < len(changes):
            label, forecast, final = changes[i]
            row: tuple[CellValue, ...] = (label, forecast / 1000, final / 1000,
                                          (final - forecast) / 1000,
                                          _pct(final - forecast, forecast))
        else:
            row = (None,) * len(cols)
        cells.update({f"{c}{r}": v for c, v in zip(cols, row, strict=True)})
    return cells


def lines_text(result: EngineResult) -> str:
    """« 12 ligne(s), 3 non comptée(s) » : what Contrôles' summary says of the lines."""
    return (f"{fr_integer(len(result.lines))} ligne(s), {fr_integer(result.excluded_lines)} "
            "non comptée(s)")


def controles_writes(issues: list[Issue], previous_rows: int,
                     result: EngineResult | None = None) -> tuple[dict[str, CellValue],
                                                                  list[str]]:
    """Contrôles' rows, and its summary (the lines counted and not, when ``result`` is
    given, then the issues by severity)."""
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
    cells[L.CTRL_SUMMARY_CELL] = (f"{lines_text(result)} ; " if result is not None else "") \
        + counts_text(issues)
    clear = []
    if previous_rows > len(ranked):
        clear.append(f"A{L.CTRL_FIRST_ROW + len(ranked)}:F{L.CTRL_FIRST_ROW + previous_rows}")
    return cells, clear


def result_plan(data: WorkbookData, result: EngineResult, issues: list[Issue]) -> WritePlan:
    """Every owned cell to write, and the ranges to clear first."""
    writes, clear, blocks = _result_writes(data, result, issues)
    plan = WritePlan(clear=clear)
    for sheet, cells in writes.items():
        plan.update(sheet, cells)
    for sheet, block in blocks:
        plan.add_block(sheet, block)
    return plan


def _result_writes(data: WorkbookData, result: EngineResult, issues: list[Issue]
                   ) -> tuple[Writes, dict[str, list[str]], list[tuple[str, CellBlock]]]:
    writes: Writes = {}
    clear: dict[str, list[str]] = {}
    blocks: list[tuple[str, CellBlock]] = []
    layout = data.layout  # the columns of the workbook's own template version
    first, last = layout.computed[0].letter, layout.computed[-1].letter
    for sheet in data.sheets_read:
        end = max(data.last_rows.get(sheet, 0), L.FIRST_DATA_ROW)
        stop = layout.nature.letter if sheet in data.nature_owned else last
        clear[sheet] = [f"{first}{L.FIRST_DATA_ROW}:{stop}{end}"]
        writes[sheet] = {}
        if sheet in data.nature_owned:
            writes[sheet][f"{layout.nature.letter}{L.HEADER_ROW}"] = layout.nature.header
    # Synthèse's formulas need every poste sheet read, with its nature column
    live = set(L.POSTE_SHEETS.values()) <= data.sheets_read <= data.nature_owned
    lines = result.lines
    pending = 0
    if "sheet" in lines:
        warned = np.zeros(len(lines), dtype=bool)
        for issue in result.issues:
            if issue.line is not None and issue.severity is Severity.WARNING \
                    and issue.code is not Code.QUANTITY_MISSING:
                warned[issue.line] = True
        keep = np.isin(lines["sheet"], list(writes))
        lines, warned = lines.select(keep), warned[keep]
        columns = line_columns(lines, True, warned, layout,  # lines are live on their own
                               data.dated_inputs)
        nature_values = columns.pop("nature", None)
        by_column = {spec.index: columns[spec.key] for spec in layout.computed}
        sheets = np.asarray(lines["sheet"], dtype=object)
        rows = np.asarray(lines["row"]).astype(np.int64)
        for sheet in writes:
            at = np.flatnonzero(sheets == sheet)
            if not len(at):
                continue
            at = at[np.argsort(rows[at], kind="stable")]
            block = {c: _take(v, at) for c, v in by_column.items()}
            if nature_values is not None and sheet in data.nature_owned:
                block[layout.nature.index] = _take(nature_values, at)
            blocks.append((sheet, CellBlock(rows[at].tolist(), block)))
        pending = sum(1 for a, s in zip(lines["activity"].tolist(), lines["status"].tolist(),
                                        strict=True) if _str(a) and not _str(s))
    if L.SHEET_PRODUCTION in data.sheet_names:
        writes[L.SHEET_PRODUCTION] = {L.FIELD_BY_KEY["factor_edition"].cell: result.edition.name}
    if L.SHEET_SYNTHESE in data.sheet_names:
        writes[L.SHEET_SYNTHESE] = synthese_writes(result, data, live, pending)
    if L.SHEET_CONTROLES in data.sheet_names:
        cells, ctrl_clear = controles_writes(issues, data.control_rows, result)
        writes[L.SHEET_CONTROLES] = cells
        if ctrl_clear:
            clear[L.SHEET_CONTROLES] = ctrl_clear
    return writes, clear, blocks


def _take(values: list[CellValue] | FormulaColumn, at: Any) -> list[CellValue] | FormulaColumn:
    """The values of ``values`` at positions ``at``."""
    if isinstance(values, FormulaColumn):
        return FormulaColumn(_take(values.templates, at), _take(values.cached, at))
    if len(at) == 1:
        return [values[int(at[0])]]
    return list(itemgetter(*at.tolist())(values))


def controles_plan(data: WorkbookData, issues: list[Issue],
                   result: EngineResult | None = None) -> WritePlan:
    """Only the Contrôles rows (what Vérifier writes)."""
    plan = WritePlan()
    if L.SHEET_CONTROLES in data.sheet_names:
        cells, ctrl_clear = controles_writes(issues, data.control_rows, result)
        plan.update(L.SHEET_CONTROLES, cells)
        if ctrl_clear:
            plan.clear[L.SHEET_CONTROLES] = ctrl_clear
    return plan
