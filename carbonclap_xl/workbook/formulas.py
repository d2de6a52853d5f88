"""The live formulas of a computed workbook, defined once.

After every computation (``process``, the Excel ribbon, the LibreOffice extension) the cells
the engine owns are written as formulas carrying the engine's value as their cached value, so
that any client shows the engine's numbers on opening and keeps them live afterwards, without
an add-in:

- a counted line's emission cells: ``quantity × factor cell`` (× the count, once the layout
  has a ``count`` column; × the unit conversion the engine used, as a number in the formula);
  an empty quantity gives an empty cell;
- its status cell: « À recalculer » as soon as what a formula cannot follow changes (the
  activity, the unit, the data source, a quantity that is no longer a positive number), else
  the engine's status (« Vide » / « OK » following the quantities);
- Synthèse: totals, differences and shares by poste and by nature, the indicators, and a
  sentence counting the lines that await Recalculer. Uncertainties stay values: the combined
  uncertainty is not a spreadsheet formula.

A line the engine excluded (status « Erreur ») gets no emission formula: its cells stay
empty, so it counts nowhere until it is recalculated; its status formula still flags a fix.

Formulas use classic functions only (IF, ISNUMBER, AND, OR, COUNT, COUNTA, MIN, MAX, COUNTIF,
COUNTIFS, SUM, SUMIFS), which Excel and LibreOffice 7.4 both compute. Every builder here takes row
numbers and layout keys, never hard-coded letters: columns added to the layout slot in.

The same module tells whether a formula found in a computed cell is one of ours
(:func:`is_ours`): validation regenerates what this module writes and compares the tokens,
literals aside (a formula written for another activity is ours, merely stale: the values
check reports that).
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

import numpy as np

from carbonclap_xl.core.a1 import col_index, parse_cell
from carbonclap_xl.core.engine import INDICATORS, MAX_LINE_CO2E_KG, MAX_QUANTITY, STATUS_FR
from carbonclap_xl.core.model import NATURES, POSTES
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.workbook.port import ROW_MARK

STATUS_PENDING = "À recalculer"
QUANTITY_KEYS: tuple[str, ...] = ("quantity_forecast", "quantity_final")
EMISSION_OF: dict[str, str] = {"quantity_forecast": "co2e_forecast_kg",
                               "quantity_final": "co2e_final_kg"}
COUNT_KEY = "count"  # persons, vehicles, trips: E = Q × N × F when the layout has it
MAX_TEXT_LITERAL = 255  # Excel refuses longer text constants in a formula
LAST_ROW = L.MAX_LINE_ROWS  # live ranges reach every row the reader reads
ROW = ROW_MARK  # the row number in a formula template (no formula text holds a control character)
PENDING_TEXT = (" ligne(s) à recalculer : cliquez « Recalculer » (onglet Carbon'Clap) ou "
                "lancez « carbonclap-xl process ».")


# --------------------------------------------------------------------------- literals


def quote_sheet(sheet: str) -> str:
    """A sheet name as a formula prefix, always quoted: ``'Régie'!``."""
    return "'" + sheet.replace("'", "''") + "'!"


@lru_cache(maxsize=4096)
def text_literal(text: str) -> str | None:
    """``"text"`` with quotes doubled; None when a formula cannot hold it."""
    if len(text) > MAX_TEXT_LITERAL or any(ord(c) < 32 for c in text):
        return None
    return '"' + text.replace('"', '""') + '"'


def number_literal(value: float) -> str:
    """A number as formula text that reads back as the same double."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value)).upper()


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value == "") or (
        isinstance(value, float) and math.isnan(value))  # NaN: a blank of a numeric column


def literal(value: Any) -> str | None:
    """The formula literal equal to a cell holding ``value`` as read (a blank cell equals
    ``""``); None for what a formula cannot compare exactly (dates, long texts)."""
    if _blank(value):
        return '""'
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, numbers.Real):
        return number_literal(float(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        return text_literal(value)
    return None


def is_plain_number(value: Any) -> bool:
    """A quantity cell a formula reads as the engine did: blank, or a finite number."""
    if _blank(value):
        return True
    if isinstance(value, bool | np.bool_):
        return False
    return isinstance(value, numbers.Real) and math.isfinite(value)


# --------------------------------------------------------------------------- line cells


@dataclass(frozen=True)
class LineCells:
    """The columns line formulas refer to, by key, in one template version's layout."""

    letters: Mapping[str, str]
    inputs: tuple[str, ...]  # the input keys, in layout order

    @property
    def has_count(self) -> bool:
        return COUNT_KEY in self.letters

    @property
    def compared(self) -> tuple[str, ...]:
        """Inputs a formula cannot follow: their change flags the line."""
        return tuple(k for k in self.inputs
                     if k not in (*QUANTITY_KEYS, COUNT_KEY, "comment"))

    @property
    def numeric(self) -> tuple[str, ...]:
        """Inputs the formulas multiply by."""
        return tuple(k for k in self.inputs if k in (*QUANTITY_KEYS, COUNT_KEY))

    @cached_property
    def _status_parts(self) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...],
                                     str, str]:
        """What status formulas share, rows as :data:`ROW` and the shown status as ``\1``: the
        inputs compared on live lines, on other lines, the live check, the live result."""
        numbers = ",".join(f"{self.letters[k]}{ROW}" for k in self.numeric)
        # text in a number cell, a negative or absurd number, a count of 0: what the engine
        # would report
        check = (f"COUNTA({numbers})>COUNT({numbers}),MIN({numbers})<0,"
                 f"MAX({numbers})>{number_literal(MAX_QUANTITY)}")
        if self.has_count:
            n = f"{self.letters[COUNT_KEY]}{ROW}"
            check += f",AND(ISNUMBER({n}),{n}<=0)"
        # a line over the engine's ceiling is an error there (QUANTITY_ABSURD), not counted
        emissions = ",".join(f"{self.letters[k]}{ROW}" for k in EMISSION_OF.values())
        check += f",MAX({emissions})>{number_literal(MAX_LINE_CO2E_KG)}"
        quantities = ",".join(f"{self.letters[k]}{ROW}" for k in QUANTITY_KEYS)
        shown = f'IF(COUNT({quantities})=0,{text_literal(STATUS_FR["empty"])},\1)'
        return (tuple((k, self.letters[k]) for k in self.compared),
                tuple((k, self.letters[k]) for k in self.inputs if k != "comment"),
                check, shown)


@lru_cache(maxsize=8)
def line_cells(layout: L.LineLayout = L.CURRENT_LAYOUT) -> LineCells:
    """The formula columns of ``layout`` (the current template version by default)."""
    return LineCells({c.key: c.letter for c in (*layout.columns, layout.nature)},
                     tuple(c.key for c in layout.inputs))


def emission_formula(row: int, quantity_key: str, conversion: float,
                     cells: LineCells | None = None) -> str:
    """``IF(ISNUMBER(B5),B5*((I5*0.001)*IF(ISNUMBER(E5),E5,1)),"")``: the quantity × the
    factor cell × the conversion the engine used (left out when it is 1) × the count (blank:
    1); empty without a quantity.

    The product is grouped as the engine computes it, ``Q × ((F × conversion) × N)``, so a
    recalculation gives the engine's number to the last bit."""
    return emission_template(quantity_key, conversion, cells).replace(ROW, str(row))



def emission_template(quantity_key: str, conversion: float,
                      cells: LineCells | None = None) -> str:
    """:func:`emission_formula` with :data:`ROW` for its row number: one text per column and
    conversion, which every line fills in with its row."""
    lay = cells or line_cells()
    q = f"{lay.letters[quantity_key]}{ROW}"
    factor = f"{lay.letters['factor_value']}{ROW}"
    per_unit = factor if conversion == 1 else f"({factor}*{number_literal(conversion)})"
    if lay.has_count:
        n = f"{lay.letters[COUNT_KEY]}{ROW}"
        per_unit = f"({per_unit}*IF(ISNUMBER({n}),{n},1))"
    return f'IF(ISNUMBER({q}),{q}*{per_unit},"")'


def status_formula(row: int, read: Mapping[str, Any], live: bool, status_text: str,
                   cells: LineCells | None = None) -> str | None:
    """The status cell of a computed line, or None when its inputs cannot be compared.

    ``read``: the input cells as the engine read them. A live line (its emissions are
    formulas) is flagged when an input a formula cannot follow differs, or a quantity is no
    longer blank or a positive number; otherwise it shows « Vide » or ``status_text`` as its
    quantities are blank or not. Any other line is flagged as soon as any input differs
    (a fix of a line in error, say), and shows ``status_text`` until then."""
    template = status_template(read, live, status_text, cells)
    return None if template is None else template.replace(ROW, str(row))


def status_template(read: Mapping[str, Any], live: bool, status_text: str,
                    cells: LineCells | None = None) -> str | None:
    """:func:`status_formula` with :data:`ROW` for its row number: lines with the same
    inputs share it."""
    lay = cells or line_cells()
    compared, every, check, live_shown = lay._status_parts
    tests = []
    for key, letter in compared if live else every:
        lit = literal(read.get(key))
        if lit is None:
            return None
        tests.append(f"{letter}{ROW}<>{lit}")
    shown = text_literal(status_text)
    if shown is None:
        return None
    if live:
        tests.append(check)
        shown = live_shown.replace("\1", shown)
    return f"IF(OR({','.join(tests)}),{_PENDING_LITERAL},{shown})"


def status_keys(live: bool, cells: LineCells | None = None) -> tuple[str, ...]:
    """The inputs a status formula compares (``status_template`` reads no other)."""
    compared, every, _check, _shown = (cells or line_cells())._status_parts
    return tuple(key for key, _letter in (compared if live else every))


_PENDING_LITERAL = text_literal(STATUS_PENDING)


# --------------------------------------------------------------------------- Synthèse


def _poste_range(sheet: str, letter: str) -> str:
    return f"{quote_sheet(sheet)}{letter}{L.FIRST_DATA_ROW}:{letter}{LAST_ROW}"


def _block(first_row: int, rows: list[tuple[str, str]], total_row: int) -> dict[str, str]:
    """Formulas of one Synthèse block: ``rows`` are (forecast, final) expressions in kg."""
    out: dict[str, str] = {}
    t = total_row
    for i, (forecast, final) in enumerate(rows):
        r = first_row + i
        out[f"B{r}"] = f"{forecast}/1000"
        out[f"C{r}"] = f"{final}/1000"
    for r in [*range(first_row, first_row + len(rows)), t]:
        out[f"D{r}"] = f"C{r}-B{r}"
        out[f"E{r}"] = f'IF(B{r}=0,"",D{r}/B{r}*100)'
        if r == t:
            out[f"F{r}"] = f'IF(B{r}=0,"",100)'
            out[f"G{r}"] = f'IF(C{r}=0,"",100)'
        else:
            out[f"F{r}"] = f'IF(B${t}=0,"",B{r}/B${t}*100)'
            out[f"G{r}"] = f'IF(C${t}=0,"",C{r}/C${t}*100)'
    last = first_row + len(rows) - 1
    out[f"B{t}"] = f"SUM(B{first_row}:B{last})"
    out[f"C{t}"] = f"SUM(C{first_row}:C{last})"
    return out


def indicator_formulas() -> dict[str, tuple[str, str]]:
    """Indicator id -> (forecast, final) formulas, over Synthèse's totals and the
    Production cell that gives the denominator (blank or not positive: empty)."""
    out = {}
    total = L.SYN_POSTE_TOTAL_ROW
    for key, (_label, attr) in INDICATORS.items():
        cell = quote_sheet(L.SHEET_PRODUCTION) + L.FIELD_BY_KEY[attr].cell
        denominator = f"({cell}/60)" if attr == "duration_min" else cell
        scale = "*1000" if key.startswith("kg") else ""
        pair = tuple(f'IF(AND(ISNUMBER({cell}),{cell}>0),{col}{total}{scale}/{denominator},"")'
                     for col in "BC")
        out[key] = (pair[0], pair[1])
    return out


def pending_count_formula(sheets: Iterable[str] | None = None,
                          layout: L.LineLayout = L.CURRENT_LAYOUT) -> str:
    """How many lines await Recalculer: statuses « À recalculer », and lines with an
    activity and no status (typed since the last computation)."""
    status, activity = layout.letter("status"), layout.letter("activity")
    terms = []
    for sheet in sheets or L.POSTE_SHEETS.values():
        terms.append(f"COUNTIF({_poste_range(sheet, status)},{text_literal(STATUS_PENDING)})")
        terms.append(f'COUNTIFS({_poste_range(sheet, activity)},"<>",'
                     f'{_poste_range(sheet, status)},"")')
    return "+".join(terms)


@lru_cache(maxsize=4)
def synthese_formulas(layout: L.LineLayout = L.CURRENT_LAYOUT) -> dict[str, str]:
    """Every live formula of Synthèse, cell -> text (no ``=``): the template holds them, and
    every computation writes them again with the engine's values cached."""
    fc, fin = (layout.letter(k) for k in ("co2e_forecast_kg", "co2e_final_kg"))
    nature = layout.nature.letter
    by_poste = [(f"SUM({_poste_range(p.sheet, fc)})", f"SUM({_poste_range(p.sheet, fin)})")
                for p in POSTES]
    out = _block(L.SYN_POSTE_FIRST_ROW, by_poste, L.SYN_POSTE_TOTAL_ROW)

    def by_nature(letter: str, nature_id: str) -> str:
        terms = [f"SUMIFS({_poste_range(p.sheet, letter)},{_poste_range(p.sheet, nature)},"
                 f'"{nature_id}")' for p in POSTES]
        return "(" + "+".join(terms) + ")"

    out.update(_block(L.SYN_NATURE_FIRST_ROW, [(by_nature(fc, n.id), by_nature(fin, n.id))
                                               for n in NATURES], L.SYN_NATURE_TOTAL_ROW))
    for i, (forecast, final) in enumerate(indicator_formulas().values()):
        r = L.SYN_INDICATOR_FIRST_ROW + i
        out[f"B{r}"], out[f"C{r}"] = forecast, final
    n = pending_count_formula(layout=layout)
    out[L.SYN_PENDING_CELL] = f'IF(({n})=0,"",({n})&{text_literal(PENDING_TEXT)})'
    return out


def pending_text(count: int) -> str:
    """What Synthèse's pending cell shows for ``count`` lines awaiting Recalculer."""
    return "" if count == 0 else f"{count}{PENDING_TEXT}"


def synthese_owned(ref: str) -> bool:
    """True for a Synthèse cell the computation writes (values or formulas)."""
    cell = parse_cell(ref)
    if cell is None:
        return False
    row, col = cell
    if ref in (L.SYN_EDITION_CELL, L.SYN_ATTRIBUTION_CELL, L.SYN_PENDING_CELL):
        return True
    last_col = len(L.SYN_HEADERS)
    blocks = ((L.SYN_POSTE_FIRST_ROW, L.SYN_POSTE_UNCERTAINTY_ROW),
              (L.SYN_NATURE_FIRST_ROW, L.SYN_NATURE_TOTAL_ROW))
    if any(a <= row <= b for a, b in blocks):
        return 2 <= col <= last_col
    if L.SYN_CHANGES_TITLE_ROW <= row < L.SYN_CHANGES_FIRST_ROW + L.SYN_CHANGES_COUNT:
        return col <= len(L.SYN_CHANGES_HEADERS)
    first = L.SYN_INDICATOR_FIRST_ROW
    return first <= row < first + L.SYN_INDICATOR_COUNT and col <= 3


# --------------------------------------------------------------------------- reading back

_TOKEN = re.compile(r"""
    (?P<string>"(?:[^"]|"")*")
  | (?P<ref>(?:(?:'(?:[^']|'')+'|[^\W\d][\w.]*)!)?
            \$?[A-Za-z]{1,3}\$?\d+(?::\$?[A-Za-z]{1,3}\$?\d+)?)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][\w.]*)
  | (?P<op><>|<=|>=|[-+*/^&=<>(),;:%!{}])
  | (?P<space>\s+)
  | (?P<other>.)
""", re.VERBOSE)
_ROW_DIGITS = re.compile(r"(?<=[A-Za-z$])\d+(?!\d)")  # the row number of a reference
_REF_PART = re.compile(r"\$?([A-Za-z]{1,3})\$?(\d+)")


@lru_cache(maxsize=8192)  # Synthèse's formulas are the same text in every workbook
def _tokens(text: str, base_row: int | None) -> tuple[tuple[str, str], ...]:
    """Tokens of a formula, spelled as any client may save it: names upper-cased without
    Excel's ``_xlfn.`` prefix, sheet names unquoted, ``$`` dropped, numbers as doubles.
    With ``base_row``, literals become placeholders and row numbers offsets from it."""
    out: list[tuple[str, str]] = []
    for m in _TOKEN.finditer(text.lstrip("=")):
        kind = m.lastgroup or "other"
        value = m.group()
        if kind == "space":
            continue
        if kind == "string":
            value = "" if base_row is not None else value[1:-1].replace('""', '"')
            kind = "literal" if base_row is not None else kind
        elif kind == "number":
            value = "" if base_row is not None else repr(float(value))
            kind = "literal" if base_row is not None else kind
        elif kind == "name":
            value = value.upper().removeprefix("_XLFN.")
            if value in ("TRUE", "FALSE") and base_row is not None:
                kind, value = "literal", ""
        if kind == "literal" and out and out[-1][0] == "op" and out[-1][1] in ("-", "+") \
                and (len(out) == 1 or (out[-2][0] == "op" and out[-2][1] not in (")", "%"))):
            out.pop()  # a signed number is one literal: B5<>-1 has the shape of B5<>""
        elif kind == "ref":
            sheet, bang, cells = value.rpartition("!")
            if sheet.startswith("'"):
                sheet = sheet[1:-1].replace("''", "'")
            parts = []
            for letters, digits in _REF_PART.findall(cells):
                row = int(digits) - base_row if base_row is not None else int(digits)
                parts.append(f"{letters.upper()}{'@' if base_row is not None else ''}{row}")
            value = sheet.upper() + bang + ":".join(parts)
        out.append((kind, value))
    return tuple(out)


def same_formula(a: str, b: str) -> bool:
    """True when two formula texts are the same formula as spreadsheets save it."""
    return _tokens(a, None) == _tokens(b, None)


@lru_cache(maxsize=64)
def _line_shapes(key: str, layout: L.LineLayout) -> frozenset[tuple[tuple[str, str], ...]]:
    """Every shape of formula the computation writes in a line column (rows as offsets)."""
    row, cells = L.FIRST_DATA_ROW, line_cells(layout)
    shapes: set[tuple[tuple[str, str], ...]] = set()
    if key in EMISSION_OF.values():
        quantity = next(q for q, e in EMISSION_OF.items() if e == key)
        for conversion in (1.0, 0.5):
            shapes.add(_tokens(emission_formula(row, quantity, conversion, cells), row))
    elif key == "status":
        for live in (True, False):
            text = status_formula(row, {}, live, STATUS_FR["ok"], cells)
            if text is not None:
                shapes.add(_tokens(text, row))
    return frozenset(shapes)


def is_ours(sheet: str, ref: str, text: str,
            layout: L.LineLayout = L.CURRENT_LAYOUT) -> bool:
    """True when ``text``, found in computed cell ``sheet!ref``, is a formula this module
    writes there (for any line inputs: literals are not compared)."""
    cell = parse_cell(ref)
    if cell is None:
        return False
    row, col = cell
    if sheet == L.SHEET_SYNTHESE:
        expected = synthese_formulas(layout).get(ref)
        return expected is not None and same_formula(text, expected)
    if sheet in L.POSTE_SHEETS.values() and row >= L.FIRST_DATA_ROW:
        key = next((k for k, letter in line_cells(layout).letters.items()
                    if col_index(letter) == col), None)
        if key is None:
            return False
        # the same formula on every row reads the same once its row is 1: one cached shape
        # per column (and per conversion or set of literals), not one tokenisation per line
        here = str(row)
        at_row_1 = _ROW_DIGITS.sub(lambda m: "1" if m.group() == here else m.group(), text)
        return _tokens(at_row_1, 1) in _line_shapes(key, layout)
    return False


__all__ = ["EMISSION_OF", "QUANTITY_KEYS", "STATUS_PENDING", "LineCells", "emission_formula",
           "indicator_formulas", "is_ours", "is_plain_number", "literal", "pending_text",
           "same_formula", "status_formula", "synthese_formulas", "synthese_owned"]
