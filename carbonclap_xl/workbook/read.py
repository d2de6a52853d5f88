"""Read a filled workbook through the port: production data, activity lines, deviations.

The reader sees a workbook only as a ``port.SheetSource`` (a file, the open Excel book, the
open LibreOffice document), never evaluates anything (it reads the values a spreadsheet
cached and the structure: hidden rows, merges, formulas) and reports every deviation from
``layout`` as an issue located by sheet and cell.

The columns of a poste sheet are found by their header (case, accents, blanks and punctuation
aside: ``factors.match_key``). Where they are not at the layout's letters (a column inserted
among the inputs, inputs in another order) the sheet's lines are read by header and counted,
but the sheet is not written (``COLUMNS_MOVED``, once per sheet): the write plan, the live
formulas and Synthèse's ranges all name the layout's letters, and writing them there would
overwrite the user's moved columns. Where a required column cannot be found (renamed,
twice, a computed column moved among the inputs) the sheet's lines are read as not counted
(``HEADER_CHANGED``, once per sheet) and the sheet is not written either.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from carbonclap_xl.core.a1 import col_index, col_letter, parse_cell, split_ref
from carbonclap_xl.core.dates import parse_date
from carbonclap_xl.core.factors import match_key
from carbonclap_xl.core.issues import Code, Issue, make_issue
from carbonclap_xl.core.lines import LineTable
from carbonclap_xl.core.model import NATURES, Phase, ProductionInfo
from carbonclap_xl.core.numbers import arithmetic_value, fr_integer, parse_number
from carbonclap_xl.core.text import QUOTE_MAX, shorten
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
    sheets_read: set[str] = field(default_factory=set)  # poste sheets read with every column
    # at its layout letter: the only ones written
    # poste sheets read by header, counted but not written: sheet -> layout key -> letter found
    sheets_moved: dict[str, dict[str, str]] = field(default_factory=dict)
    sheets_not_counted: set[str] = field(default_factory=set)  # a required column not found:
    # their lines are read (as far as found) and counted as « non comptées »
    last_rows: dict[str, int] = field(default_factory=dict)  # sheet -> last row holding data
    control_rows: int = 0  # rows currently filled on Contrôles
    synthese_read: dict[str, Any] = field(default_factory=dict)  # Synthèse cell -> value found
    # (sheet, row) of lines whose quantity or count cell holds a date (read as its text: a
    # status formula cannot compare it with the cell, so their status stays a value)
    dated_inputs: set[tuple[str, int]] = field(default_factory=set)
    # Synthèse cells added by later versions (pending count, largest changes) that hold the
    # user's own data in this workbook: "pending", "changes" -> the cells; never written
    synthese_taken: dict[str, list[str]] = field(default_factory=dict)
    # formulas found in cells the computation owns: (sheet, cell) -> text without "="
    computed_formulas: dict[tuple[str, str], str] = field(default_factory=dict)
    nature_owned: set[str] = field(default_factory=set)  # poste sheets whose nature column
    # (layout.NATURE_COLUMN, after the line table) is ours: its header is blank or ours

    def letter(self, sheet: str, key: str) -> str:
        """The letter of a layout column in a poste sheet: where its header was found."""
        moved = self.sheets_moved.get(sheet)
        return moved[key] if moved and key in moved else self.layout.letter(key)


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
    date = parse_date(v)
    return date.isoformat() if date else None


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
    if version_text in L.SUPPORTED_TEMPLATE_VERSIONS:
        headers = _layout_of_headers(source, names)
        if headers is not None and headers is not layout:  # the version cell was retyped
            issues.append(make_issue(Code.TEMPLATE_VERSION_MISMATCH, value=version_text,
                                     expected=headers.version, sheet=L.SHEET_PRODUCTION,
                                     cell=version_field.cell))
            layout, version_text = headers, headers.version
            issues[:] = [i for i in issues if i.code is not Code.TEMPLATE_OLD]
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
        records.extend(found.records)
        data.dated_inputs.update((sheet, r) for r in found.dated_rows)
        if not found.counted:
            data.sheets_not_counted.add(sheet)
        elif found.moved is not None:
            data.sheets_moved[sheet] = found.moved
        else:
            data.sheets_read.add(sheet)
            data.last_rows[sheet] = found.last_row
            if found.nature_owned:
                data.nature_owned.add(sheet)
    if L.SHEET_SYNTHESE in names:
        syn = values(L.SHEET_SYNTHESE)
        for ref in (f"B{L.SYN_POSTE_TOTAL_ROW}", f"C{L.SYN_POSTE_TOTAL_ROW}"):
            data.synthese_read[ref] = _cell_value(syn, ref)
        syn_formulas = source.structure(L.SHEET_SYNTHESE).formulas
        data.synthese_taken = _synthese_taken(syn, syn_formulas, layout)
        kept = {ref for refs in data.synthese_taken.values() for ref in refs}
        for group, what in (("pending", "le nombre de lignes à recalculer"),
                            ("changes", "les plus grands écarts")):
            if group in data.synthese_taken:
                refs = data.synthese_taken[group]
                data.issues.append(make_issue(
                    Code.SYNTHESE_CELLS_TAKEN, value=", ".join(refs[:4]) + (
                        "…" if len(refs) > 4 else ""), expected=what,
                    sheet=L.SHEET_SYNTHESE, cell=refs[0]))
        for ref, formula in syn_formulas.items():
            if synthese_owned(ref) and ref not in kept:
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


def _layout_of_headers(source: SheetSource, names: list[str]) -> L.LineLayout | None:
    """The template version whose column headers the first poste sheet holds exactly, or
    None (no poste sheet, or headers of no version: the sheet reading reports them)."""
    sheet = next((s for s in L.POSTE_SHEETS.values() if s in names), None)
    if sheet is None:
        return None
    top = source.values(sheet, L.HEADER_ROW)
    if len(top) < L.HEADER_ROW:
        return None
    found = [_as_text(v).strip() if not _blank(v) else "" for v in top[L.HEADER_ROW - 1]]
    for layout in L.LINE_LAYOUTS.values():
        width = len(layout.columns)
        if found[:width] == [c.header for c in layout.columns]:
            return layout
    return None


def _record_columns(layout: L.LineLayout) -> list[str]:
    """The columns of a line record: poste, the inputs, sheet, row, what computed cells hold."""
    return ["poste", *[c.key for c in layout.inputs], "sheet", "row",
            *[f"read_{c.key}" for c in layout.computed]]


@dataclass
class _SheetRead:
    """What one poste sheet gave: its line records and how they may be used."""

    records: list[list[Any]]
    last_row: int
    nature_owned: bool = False
    moved: dict[str, str] | None = None  # read by header: layout key -> letter found
    counted: bool = True
    dated_rows: set[int] = field(default_factory=set)  # a number cell held a date


@dataclass
class _HeaderMatch:
    """Where a poste sheet's columns are, found by their header (``match_key``)."""

    positions: dict[str, int]  # layout key -> 0-based column index
    in_place: bool  # every column at its layout letter: read and written as always
    renamed: list[L.Column] = field(default_factory=list)  # computed headers retyped in place
    problems: list[str] = field(default_factory=list)  # what is wrong, in French
    fixes: list[str] = field(default_factory=list)  # how to fix it, in French
    cell: str = ""  # where the first problem is
    value: Any = None  # the header found there
    counted: bool = True  # False: a required column cannot be found (lines not counted)


def _quoted(value: Any) -> str:
    """A header as the user typed it, quoted and shortened; « sans en-tête » for a blank."""
    text = "" if _blank(value) else _as_text(value).strip()
    return f"« {shorten(text, QUOTE_MAX)} »" if text else "sans en-tête"


def _match_header(header: list[Any], layout: L.LineLayout) -> _HeaderMatch:
    """Find each layout column of a poste sheet by its header."""
    keys = ["" if _blank(v) else match_key(_as_text(v)) for v in header]
    hits: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        if key:
            hits.setdefault(key, []).append(i)
    layout_keys = {match_key(c.header): c for c in layout.columns}
    found = {c.key: hits.get(match_key(c.header), []) for c in layout.columns}
    at_home = {c.key: found[c.key] == [c.index - 1] for c in layout.columns}

    def cell(index: int) -> str:
        return f"{col_letter(index + 1)}{L.HEADER_ROW}"

    def header_at(index: int) -> Any:
        value = header[index] if index < len(header) else None
        return None if _blank(value) else value

    # 1. in place (a computed header retyped where it stands is still ours: as before)
    renamed = [c for c in layout.computed if not at_home[c.key] and not found[c.key]
               and _key_at(keys, c.index - 1) not in layout_keys]
    if all(at_home[c.key] for c in layout.inputs) and all(
            at_home[c.key] or c in renamed for c in layout.computed):
        match = _HeaderMatch({c.key: c.index - 1 for c in layout.columns}, True, renamed)
        if renamed:
            match.problems = [f"{_quoted(header_at(c.index - 1))} en {c.letter} au lieu de "
                              f"« {c.header} »" for c in renamed]
            match.fixes = ["rétablissez " + ", ".join(f"« {c.header} »" for c in renamed)]
            match.cell, match.value = f"{renamed[0].letter}{L.HEADER_ROW}", \
                header_at(renamed[0].index - 1)
        return match
    match = _HeaderMatch({k: v[0] for k, v in found.items() if len(v) == 1}, False)

    def problem(text: str, fix: str, index: int) -> None:
        if not match.cell:
            match.cell, match.value = cell(index), header_at(index)
        match.problems.append(text)
        if fix not in match.fixes:
            match.fixes.append(fix)

    # 2. a required column missing or twice: the lines cannot be read
    if not any(keys):
        problem(f"ligne {L.HEADER_ROW} vide", f"recopiez la ligne {L.HEADER_ROW} d'une feuille "
                "de poste du modèle (« carbonclap-xl new »)", 0)
        match.counted = False
        return match
    for c in layout.columns:
        where = found[c.key]
        if len(where) > 1:
            letters = ", ".join(col_letter(i + 1) for i in where)
            problem(f"« {c.header} » {len(where)} fois ({letters})",
                    f"gardez une seule colonne « {c.header} »", where[1])
        elif not where:
            what = "colonne calculée" if c.computed else "colonne"
            instead = header_at(c.index - 1)
            seen = "" if _blank(instead) or _key_at(keys, c.index - 1) in layout_keys else \
                f" ({_quoted(instead)} en {c.letter})"
            problem(f"{what} « {c.header} » introuvable{seen}",
                    f"rétablissez l'en-tête « {c.header} »", c.index - 1)
    if match.problems:
        match.counted = False
        return match
    # 3. every column found once: the computed ones must follow the inputs, in their order
    pos = match.positions
    last_input = max(pos[c.key] for c in layout.inputs)
    computed_at = [pos[c.key] for c in layout.computed]
    misplaced = [c for c in layout.computed if pos[c.key] < last_input]
    if misplaced or computed_at != sorted(computed_at):
        c = misplaced[0] if misplaced else next(
            c for c, a, b in zip(layout.computed, computed_at, sorted(computed_at), strict=True)
            if a != b)
        problem(f"colonne calculée « {c.header} » déplacée en {col_letter(pos[c.key] + 1)}",
                "remettez les colonnes grisées après les colonnes de saisie, dans l'ordre du "
                "modèle", pos[c.key])
        match.counted = False
        return match
    # 4. readable by header: say what moved, once
    ours = set(pos.values())
    nature_at = max(computed_at) + 1
    inserted = [i for i in range(max(computed_at)) if i not in ours]
    for i in inserted:
        problem(f"colonne {_quoted(header_at(i))} insérée en {col_letter(i + 1)}",
                f"supprimez la colonne {col_letter(i + 1)} ou placez-la après la colonne "
                f"{col_letter(nature_at + 1)} (Nature)", i)
    inputs_at = [pos[c.key] for c in layout.inputs]
    if inputs_at != sorted(inputs_at):
        order = sorted(layout.inputs, key=lambda c: pos[c.key])
        c = next(a for a, b in zip(order, layout.inputs, strict=True) if a is not b)
        problem(f"colonnes de saisie dans un autre ordre (« {c.header} » en "
                f"{col_letter(pos[c.key] + 1)})",
                "remettez les colonnes dans l'ordre du modèle ("
                + ", ".join(c.header for c in layout.inputs) + ")", pos[c.key])
    if not match.problems:  # the computed block alone moved right: a column before it
        c = layout.computed[0]
        problem(f"colonnes calculées décalées (« {c.header} » en "
                f"{col_letter(pos[c.key] + 1)} au lieu de {c.letter})",
                "supprimez les colonnes ajoutées avant les colonnes grisées", pos[c.key])
    return match


def _key_at(keys: list[str], index: int) -> str:
    return keys[index] if index < len(keys) else ""


_NATURE_IDS = frozenset(n.id for n in NATURES)


def _synthese_taken(rows: list[list[Any]], formulas: dict[str, str],
                    layout: L.LineLayout = L.CURRENT_LAYOUT) -> dict[str, list[str]]:
    """The Synthèse cells of later versions that hold the user's data (see WorkbookData)."""
    from carbonclap_xl.workbook.formulas import PENDING_TEXT, same_formula, synthese_formulas

    taken: dict[str, list[str]] = {}
    ref = L.SYN_PENDING_CELL
    value = _cell_value(rows, ref)
    ours = (ref in formulas and same_formula(formulas[ref], synthese_formulas(layout)[ref])) or (
        ref not in formulas and (value is None or str(value).endswith(PENDING_TEXT)))
    if not ours and (value is not None or ref in formulas):
        taken["pending"] = [ref]
    title = f"A{L.SYN_CHANGES_TITLE_ROW}"
    if _cell_value(rows, title) != L.SYN_CHANGES_TITLE:
        cols = [col_letter(i) for i in range(1, len(L.SYN_CHANGES_HEADERS) + 1)]
        block = [f"{c}{r}" for r in range(L.SYN_CHANGES_TITLE_ROW,
                                          L.SYN_CHANGES_FIRST_ROW + L.SYN_CHANGES_COUNT)
                 for c in cols]
        used = [ref for ref in block if _cell_value(rows, ref) is not None or ref in formulas]
        if used:
            taken["changes"] = used
    return taken


def _holds_natures_only(rows: list[list[Any]], at: int, scan: SheetStructure,
                        letter: str) -> bool:
    """True when the column after the line table holds nothing but what the calculation
    writes there: blanks and nature ids, no formula."""
    if any(ref.startswith(letter) and (cell := parse_cell(ref)) is not None
           and cell[0] >= L.FIRST_DATA_ROW and col_letter(cell[1]) == letter
           for ref in scan.formulas):
        return False
    for row in rows[L.FIRST_DATA_ROW - 1:]:
        if at < len(row) and not _blank(row[at]) and row[at] not in _NATURE_IDS:
            return False
    return True


def _lines_phrase(n: int, counted: bool) -> str:
    """« ses 12 lignes sont comptées », « sa ligne n'est pas comptée »…"""
    if n == 0:
        return "aucune ligne n'y est saisie"
    if counted:
        return "sa ligne est comptée" if n == 1 else f"ses {fr_integer(n)} lignes sont comptées"
    return "sa ligne n'est pas comptée" if n == 1 else \
        f"ses {fr_integer(n)} lignes ne sont pas comptées"


def _read_poste_sheet(rows: list[list[Any]], poste: str, sheet: str, scan: SheetStructure,
                      issues: list[Issue], computed_formulas: dict[tuple[str, str], str],
                      layout: L.LineLayout = L.CURRENT_LAYOUT) -> _SheetRead:
    """The line records of one poste sheet, its last used row, whether its nature column
    is ours and how its lines may be used (``_SheetRead``). Formulas found in computed
    cells go into ``computed_formulas`` (only for a sheet read in place: the others are not
    written)."""
    read_columns = len(layout.columns)
    n_inputs = len(layout.inputs)
    row_slot = _record_columns(layout).index("row")
    header = rows[L.HEADER_ROW - 1] if len(rows) >= L.HEADER_ROW else []
    match = _match_header(header, layout)
    pos = match.positions
    letters = {k: col_letter(i + 1) for k, i in pos.items()}
    if match.in_place:
        if match.renamed:
            issues.append(make_issue(
                Code.HEADER_CHANGED, value=match.value, sheet=sheet, cell=match.cell,
                problem=" ; ".join(match.problems), fix=" ; ".join(match.fixes),
                lines="la colonne reste écrite par le calcul"))
        take: list[int] | None = None  # the first read_columns cells, as they are
        span = read_columns
    elif match.counted:
        take = [pos[c.key] for c in layout.inputs]
        span = max(pos.values()) + 1
    else:  # what was found; a row with anything outside the computed columns is a line
        computed_found = {pos[c.key] for c in layout.computed if c.key in pos}
        take = [pos.get(c.key, -1) for c in layout.inputs]
        span = max(read_columns, len(header))
        content = [i for i in range(span) if i not in computed_found]
    records: list[list[Any]] = []
    dated_rows: set[int] = set()
    last_row = L.FIRST_DATA_ROW - 1
    # a date is not a number: the engine reports it
    number_slots = [i for i, c in enumerate(layout.inputs)
                    if c.key in ("quantity_forecast", "quantity_final", "count")]
    n_computed = len(layout.computed)
    for r, row in enumerate(rows[L.FIRST_DATA_ROW - 1:L.MAX_LINE_ROWS], start=L.FIRST_DATA_ROW):
        if take is None:
            cells = row[:read_columns]
            if len(cells) < read_columns:
                cells = cells + [""] * (read_columns - len(cells))
            if cells.count(None) + cells.count("") == read_columns:  # all blank
                continue
            last_row = r
            inputs = cells[:n_inputs]
            if inputs.count(None) + inputs.count("") == n_inputs:
                continue  # computed leftovers of a deleted line: not a line, cleared on write
        else:
            width = len(row)
            cells = [row[i] if 0 <= i < width else None for i in take]
            if match.counted:
                if all(v == "" or v is None for v in cells):
                    continue
            elif all(_blank(row[i]) for i in content if i < width):
                continue
            last_row = r
            cells += [None] * n_computed  # not written: its computed cells are not read
        cells = [None if v is None or v == "" else v if not isinstance(v, float) or v == v
                 else "NaN" for v in cells]  # "" = empty; NaN: see ``_not_nan``
        for i in number_slots:
            if isinstance(cells[i], dt.date | dt.datetime | dt.time):
                cells[i] = _as_text(cells[i])
                dated_rows.add(r)
        records.append([poste, *cells[:n_inputs], sheet, r, *cells[n_inputs:]])
    if not match.in_place:
        code = Code.COLUMNS_MOVED if match.counted else Code.HEADER_CHANGED
        issues.append(make_issue(code, value=match.value, sheet=sheet, cell=match.cell,
                                 problem=" ; ".join(match.problems),
                                 fix=" ; ".join(match.fixes),
                                 lines=_lines_phrase(len(records), match.counted)))
        if not match.counted:
            return _SheetRead(records, last_row, counted=False)
    nature = layout.nature
    nature_at = nature.index - 1 if match.in_place else span
    nature_header = header[nature_at] if nature_at < len(header) else None
    nature_owned = _blank(nature_header) or match_key(_as_text(nature_header)) == \
        match_key(nature.header)
    taken = nature_owned and not _holds_natures_only(rows, nature_at, scan, nature.letter)
    if taken:  # the user's data sits there (a workbook made before the column existed)
        nature_owned = False
        issues.append(make_issue(Code.NATURE_COLUMN_TAKEN, value=nature.letter, sheet=sheet,
                                 cell=f"{nature.letter}{L.HEADER_ROW}"))
    for i in range(span, len(header)):
        if i == nature_at and (nature_owned or taken):
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
        if max(r1, r2) >= L.FIRST_DATA_ROW and min(c1, c2) <= span:
            issues.append(make_issue(Code.CELL_MERGED, value=ref, sheet=sheet, cell=first))
    if len(rows) > L.MAX_LINE_ROWS:
        last_row = len(rows)
        beyond = next((r for r in range(L.MAX_LINE_ROWS, len(rows))
                       if not all(_blank(v) for v in rows[r][:span])), None)
        if beyond is not None:
            issues.append(make_issue(Code.ROWS_BEYOND_LIMIT, value=f"ligne {beyond + 1}",
                                     expected=fr_integer(L.MAX_LINE_ROWS),
                                     sheet=sheet, cell=f"A{beyond + 1}"))
    line_rows = {rec[row_slot] for rec in records}
    for row in sorted(scan.hidden_rows & line_rows):
        issues.append(make_issue(Code.ROW_HIDDEN, value=row, sheet=sheet, cell=f"A{row}"))
    # formulas matter where they feed the computation: activity, quantities, unit, count
    input_letters = {letters[k] for k in ("activity", "quantity_forecast", "quantity_final",
                                          "unit", "count") if k in letters}
    quantity_letters = {letters[k] for k in ("quantity_forecast", "quantity_final", "count")
                        if k in letters}
    by_row = {rec[row_slot]: rec for rec in records}
    slots = {letters[c.key]: i + 1 for i, c in enumerate(layout.inputs)}  # record position
    computed_letters: set[str] = set()
    if match.in_place:  # a sheet not written keeps whatever its computed cells hold
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
                by_row[row] = [poste, *[None] * n_inputs, sheet, row, *[None] * n_computed]
                records.append(by_row[row])
            by_row[row][slots[col]] = value  # computed here, never taken from the cache
            continue
        cached = _cell_value(rows, ref)
        code = Code.FORMULA_NO_VALUE if cached is None else Code.FORMULA_IN_INPUT
        if code is Code.FORMULA_NO_VALUE or row in line_rows:
            issues.append(make_issue(code, value=f"={formula}", sheet=sheet, cell=ref))
    records.sort(key=lambda rec: rec[row_slot])  # rows added for formula-only lines
    if match.in_place:
        return _SheetRead(records, last_row, nature_owned, dated_rows=dated_rows)
    return _SheetRead(records, last_row, moved=letters, dated_rows=dated_rows)


def locate(issue: Issue, lines: LineTable, layout: L.LineLayout = L.CURRENT_LAYOUT,
           moved: dict[str, dict[str, str]] | None = None) -> Issue:
    """An engine issue (line index, field) located at its sheet and cell (``moved``: the
    letters found in sheets read by header, ``WorkbookData.sheets_moved``)."""
    if issue.line is None or issue.sheet is not None:
        return issue
    sheet = lines["sheet"][issue.line]
    row = int(lines["row"][issue.line])
    by_key = layout.by_key
    key = issue.field if issue.field in by_key else "activity"
    letters = moved.get(sheet) if moved else None
    letter = letters[key] if letters and key in letters else by_key[key].letter
    return issue.located(sheet, f"{letter}{row}", row)
