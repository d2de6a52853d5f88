"""A cell as sheet XML: references and areas, values encoded as lxml would write them, and
the validated plan of one sheet's writes. Shared by the tree patcher (``patch``) and the
row splicer (``rowsplice``)."""

from __future__ import annotations

import math
import numbers
import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from lxml import etree

from carbonclap_xl.core.a1 import MAX_COL, MAX_ROW, cell_ref, col_index, col_letter, parse_cell
from carbonclap_xl.core.errors import WorkbookPatchError
from carbonclap_xl.workbook.port import CellBlock, Formula, FormulaColumn

CellValue = str | int | float | bool | Formula | None
CellKey = str | tuple[int, int]  # "B7", or (row, column) numbers: (7, 2)

MAX_TEXT_LENGTH = 32_767  # Excel's limit for the text of one cell
MAX_FORMULA_LENGTH = 8_192  # Excel's limit for the text of one formula
_EXACT_INT_LIMIT = 2**53  # beyond this, an int is not exactly representable as a double

_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
_CELL_RE = re.compile(r"^\$?([A-Za-z]{1,3})\$?([0-9]{1,7})$")
_COL_RE = re.compile(r"^\$?([A-Za-z]{1,3})$")
_ROW_RE = re.compile(r"^\$?([0-9]{1,7})$")
# Excel escapes characters XML cannot carry as _xHHHH_, so a literal "_xHHHH_" must itself be
# escaped (as _x005F_xHHHH_) to read back unchanged.
_LITERAL_ESCAPE_RE = re.compile(r"_(x[0-9A-Fa-f]{4}_)")
_XML_ILLEGAL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_TRUE = ("1", "true")
_DIGITS = "0123456789"
_VALUE_ATTRIBUTES = ("t", "cm", "vm")  # what a cell loses with its value (its ``s`` stays)
_get = etree._Element.get  # map(_get, elements, names): one attribute of many elements


# --------------------------------------------------------------------------- references


column_letters = col_letter  # public names kept for the patcher's callers
column_index = col_index
_cell_ref = cell_ref
_parse_cell = parse_cell


@dataclass(frozen=True)
class _Area:
    """A rectangle of cells, bounds included."""

    top: int
    left: int
    bottom: int
    right: int

    def __contains__(self, cell: tuple[int, int]) -> bool:
        row, col = cell
        return self.top <= row <= self.bottom and self.left <= col <= self.right

    def union(self, other: _Area) -> _Area:
        return _Area(
            min(self.top, other.top),
            min(self.left, other.left),
            max(self.bottom, other.bottom),
            max(self.right, other.right),
        )

    def __str__(self) -> str:
        first = _cell_ref(self.top, self.left)
        if (self.top, self.left) == (self.bottom, self.right):
            return first
        return f"{first}:{_cell_ref(self.bottom, self.right)}"


def _parse_area(text: str) -> _Area | None:
    """'A5:F2000', 'B3', whole columns 'A:C' or whole rows '5:10'; None if malformed."""
    first, sep, last = text.strip().partition(":")
    if not sep:
        cell = _parse_cell(first)
        return None if cell is None else _Area(cell[0], cell[1], cell[0], cell[1])
    a, b = _parse_cell(first), _parse_cell(last)
    if a is not None and b is not None:
        return _Area(min(a[0], b[0]), min(a[1], b[1]), max(a[0], b[0]), max(a[1], b[1]))
    col_a, col_b = _COL_RE.match(first), _COL_RE.match(last)
    if col_a and col_b:
        left, right = sorted((column_index(col_a.group(1)), column_index(col_b.group(1))))
        return _Area(1, left, MAX_ROW, right) if right <= MAX_COL else None
    row_a, row_b = _ROW_RE.match(first), _ROW_RE.match(last)
    if row_a and row_b:
        top, bottom = sorted((int(row_a.group(1)), int(row_b.group(1))))
        return _Area(top, 1, bottom, MAX_COL) if top >= 1 and bottom <= MAX_ROW else None
    return None


class _ColumnStyles:
    """What a new cell takes from its column: the ``style`` of the ``<col>`` (min, max,
    style) spec holding it, as ``' s="…"'``; None when it has none (its row's style then
    applies, :func:`_row_style_attribute`)."""

    def __init__(self, specs: Iterable[tuple[int, int, str | None]]) -> None:
        self._specs = sorted(specs, key=lambda spec: (spec[0], spec[1], spec[2] or ""))
        self._mins = [spec[0] for spec in self._specs]
        self._attributes: dict[int, str | None] = {}

    def attribute(self, col: int) -> str | None:
        if col not in self._attributes:
            at = bisect_right(self._mins, col) - 1
            style = self._specs[at][2] if at >= 0 and col <= self._specs[at][1] else None
            self._attributes[col] = (f' s="{_xml_attribute(style)}"'
                                     if style and style != "0" else None)
        return self._attributes[col]


def _row_style_attribute(custom_format: str | None, style: str | None) -> str:
    """``' s="…"'`` for a new cell that takes its row's style: the row's ``s`` when
    ``customFormat`` is set ("" otherwise)."""
    if custom_format in _TRUE and style and style != "0":
        return f' s="{_xml_attribute(style)}"'
    return ""


@lru_cache(maxsize=256)
def _parse_spans(spans: str) -> tuple[tuple[int, int], ...]:
    """'1:5 7:9' -> ((1, 5), (7, 9)); a span that does not parse is left out."""
    parsed: list[tuple[int, int]] = []
    for span in spans.split():
        low, _, high = span.partition(":")
        with suppress(ValueError):
            parsed.append((int(low), int(high or low)))
    return tuple(parsed)


def _in_spans(spans: str, col: int) -> bool:
    return any(low <= col <= high for low, high in _parse_spans(spans))


def _grown(extent: list[int] | None, row: int, first: int, last: int) -> list[int]:
    """``extent`` (top, left, bottom, right of the cells written so far) grown to hold row
    ``row``'s columns ``first`` to ``last``."""
    if extent is None:
        return [row, first, row, last]
    extent[0] = min(extent[0], row)
    extent[1] = min(extent[1], first)
    extent[2] = max(extent[2], row)
    extent[3] = max(extent[3], last)
    return extent


def _where(sheet: str, ref: str | None = None) -> str:
    """How a message names a sheet or a cell: Bilan, 'Saisie 2024'!B7."""
    quoted = (
        sheet
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", sheet)
        else ("'" + sheet.replace("'", "''") + "'")
    )
    if ref is None:
        return f"feuille {quoted}"
    return f"{quoted}!{ref}"


# --------------------------------------------------------------------------- values


class _Encoded(NamedTuple):
    """A value ready for the XML: the cell's ``t`` attribute (None for a number), its text, and
    that text escaped as element content."""

    type: str | None
    text: str
    xml: str
    formula: str | None = None  # a formula's text escaped as element content; ``text`` and
    # ``xml`` are then its cached value ("" with type None: no cached value)


def _number(text: str) -> _Encoded:
    return _Encoded(None, text, text)  # digits, '.', 'e', '+', '-': nothing to escape


def _inline_string(text: str) -> _Encoded:
    return _Encoded("inlineStr", text, _xml_text(text))


_TRUE_ENCODED = _Encoded("b", "1", "1")
_FALSE_ENCODED = _Encoded("b", "0", "0")


def _xml_text(text: str) -> str:
    """``text`` as element content, escaped exactly as lxml serializes it (UTF-8 output)."""
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _xml_unescape(markup: str) -> str:
    """The text :func:`_xml_text` escaped."""
    return (markup.replace("&lt;", "<").replace("&gt;", ">").replace("&#13;", "\r")
            .replace("&amp;", "&"))


def _xml_attribute(value: str) -> str:
    """``value`` as a double-quoted attribute value, escaped exactly as lxml serializes it."""
    return _xml_text(value).replace('"', "&quot;").replace("\t", "&#9;").replace("\n", "&#10;")


# A write as the plan keeps it: None empties the cell; a float (finite, of type float exactly)
# is written as its repr, kept as the caller gave it (most values are floats: this saves an
# object per cell); anything else is encoded.
_Value = _Encoded | float | None


def _encoded(value: _Encoded | float) -> _Encoded:
    return _number(repr(value)) if isinstance(value, float) else value


def _value_markup(value: _Encoded | float, p: str, text: str = "") -> str:
    """The end of a written cell's start tag (its ``t`` attribute), then ``text`` (markup of
    what precedes the cell's children) and the ``<v>`` or ``<is>`` element holding ``value``,
    tags prefixed with ``p``."""
    if isinstance(value, float):
        return f">{text}<{p}v>{value!r}</{p}v>"
    if value.formula is not None:
        kind = f' t="{value.type}"' if value.type else ""
        cached = f"<{p}v>{value.xml}</{p}v>" if value.type or value.text else ""
        return f"{kind}>{text}<{p}f>{value.formula}</{p}f>{cached}"
    if value.type == "inlineStr":
        return f' t="inlineStr">{text}<{p}is><{p}t xml:space="preserve">{value.xml}</{p}t></{p}is>'
    if value.type is None:
        return f">{text}<{p}v>{value.xml}</{p}v>"
    return f' t="{value.type}">{text}<{p}v>{value.xml}</{p}v>'


def _escape_text(text: str) -> str:
    text = _LITERAL_ESCAPE_RE.sub(r"_x005F_\1", text)
    return _XML_ILLEGAL_RE.sub(lambda m: f"_x{ord(m.group()):04X}_", text)


@lru_cache(maxsize=1024)
def _cached_text(text: str) -> tuple[str, str]:
    """A formula's cached text, escaped as a value and as element content (a few distinct
    texts, « OK », « À vérifier »…, over thousands of status cells)."""
    escaped = _escape_text(text)
    return escaped, _xml_text(escaped)


def _encode_formula(value: Formula, sheet: str, cell: tuple[int, int]) -> _Encoded:
    """A formula (text without ``=``) and its cached value."""
    text = value.text
    if not text or text[0] == "=" or len(text) > MAX_FORMULA_LENGTH or (
            not text.isprintable() and _XML_ILLEGAL_RE.search(text)):
        raise WorkbookPatchError(
            _where(sheet, _cell_ref(*cell)),
            f"formule invalide « {text[:80]} » (sans « = », {MAX_FORMULA_LENGTH} caractères au "
            "plus, sans caractère de contrôle)",
        )
    markup = _xml_text(text) if ("&" in text or "<" in text or ">" in text or "\r" in text) \
        else text
    cached = value.cached
    if cached is None:
        return _Encoded(None, "", "", markup)
    if type(cached) is float and math.isfinite(cached):  # the common case, without _encode
        number = repr(cached)
        return _Encoded(None, number, number, markup)
    if isinstance(cached, str):
        return _Encoded("str", *_cached_text(cached), markup)
    encoded = _encode(cached, sheet, cell)
    assert encoded is not None
    return encoded._replace(formula=markup)


def _encode(value: object, sheet: str, cell: tuple[int, int]) -> _Encoded | None:
    if value is None:
        return None
    if isinstance(value, Formula):
        return _encode_formula(value, sheet, cell)
    if isinstance(value, bool):
        return _TRUE_ENCODED if value else _FALSE_ENCODED
    if isinstance(value, str):
        if len(value) > MAX_TEXT_LENGTH:
            raise WorkbookPatchError(
                _where(sheet, _cell_ref(*cell)),
                f"texte de {len(value)} caractères, Excel en accepte {MAX_TEXT_LENGTH} au plus",
            )
        return _inline_string(_escape_text(value))
    if isinstance(value, numbers.Integral):
        integer = int(value)
        if abs(integer) <= _EXACT_INT_LIMIT:
            return _number(str(integer))
        try:
            value = float(integer)
        except OverflowError:
            raise WorkbookPatchError(
                _where(sheet, _cell_ref(*cell)),
                f"nombre {integer} hors de la plage des nombres d'Excel",
            ) from None
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise WorkbookPatchError(
                _where(sheet, _cell_ref(*cell)),
                f"valeur {number!r} : Excel n'accepte que des nombres finis (ni NaN ni infini)",
            )
        return _number(repr(number))
    raise WorkbookPatchError(
        _where(sheet, _cell_ref(*cell)),
        f"type {type(value).__name__} non pris en charge : écrivez un texte, un nombre, un booléen "
        "ou None (une date s'écrit comme son numéro de série Excel)",
    )


def _encode_cached(
    value: object, sheet: str, cell: tuple[int, int], texts: dict[str, _Encoded | None]
) -> _Value:
    """:func:`_encode`, with shortcuts for the common types; a text is encoded once per call of
    :func:`_plan` however many cells repeat it."""
    if type(value) is float and math.isfinite(value):  # not a subclass: numpy's repr differs
        return value
    if type(value) is str:
        encoded = texts.get(value)
        if encoded is None:
            encoded = texts[value] = _encode(value, sheet, cell)  # raises for a text too long
        return encoded
    if type(value) is Formula:  # emission and status cells: thousands of them
        return _encode_formula(value, sheet, cell)
    return _encode(value, sheet, cell)


@dataclass
class _SheetPlan:
    rows: dict[int, dict[int, _Value]]  # row -> column -> value (None: empty the cell)
    clear: list[_Area]
    formulas: bool = False  # formulas are written: the calculation chain must go
    _index: tuple[list[int], dict[int, list[int]]] | None = None
    blocks: list[CellBlock] = field(default_factory=list)  # checked, not yet encoded

    def expand_blocks(self, sheet: str) -> None:
        """Encode the blocks' cells into ``rows``, one by one (what the tree patcher
        writes); values are checked as single cells are."""
        texts: dict[str, _Encoded | None] = {}
        isfinite = math.isfinite
        for block in self.blocks:
            for (row, col), value in block.cells().items():
                written = self.rows.setdefault(row, {})
                if type(value) is float and isfinite(value):
                    written[col] = value
                else:
                    written[col] = _encode_cached(value, sheet, (row, col), texts)
        self.blocks = []
        self._index = None

    def touches(self, cell: tuple[int, int]) -> bool:
        """True when the patch overwrites or clears ``cell`` (its value and formula go)."""
        written = self.rows.get(cell[0])
        return (written is not None and cell[1] in written) or any(
            cell in area for area in self.clear
        )

    def written_rows(self) -> tuple[list[int], dict[int, list[int]]]:
        """The rows the plan writes to, ascending, and each row's columns, ascending."""
        if self._index is None:
            numbers = sorted(self.rows)
            self._index = (numbers, {number: sorted(self.rows[number]) for number in numbers})
        return self._index


def _plan(
    writes: Mapping[str, Mapping[CellKey, CellValue]],
    clear: Mapping[str, Sequence[str]] | None,
    blocks: Mapping[str, Sequence[CellBlock]] | None = None,
) -> dict[str, _SheetPlan]:
    """Validate every reference and value before any file is opened."""
    plans: dict[str, _SheetPlan] = {}
    for sheet, ranges in (clear or {}).items():
        if isinstance(ranges, str):
            ranges = [ranges]
        areas: list[_Area] = []
        for text in ranges:
            area = _parse_area(text) if isinstance(text, str) else None
            if area is None:
                raise WorkbookPatchError(
                    _where(sheet),
                    f"plage à effacer invalide « {text} » (attendu par exemple « A5:F2000 »)",
                )
            areas.append(area)
        plans.setdefault(sheet, _SheetPlan({}, [])).clear.extend(areas)
    texts: dict[str, _Encoded | None] = {}
    isfinite = math.isfinite
    for sheet, cells in writes.items():
        sheet_plan = plans.setdefault(sheet, _SheetPlan({}, []))
        rows = sheet_plan.rows
        formulas = False
        for ref, value in cells.items():
            if isinstance(ref, tuple):  # (row, column) numbers: no text to parse
                cell = ref if (len(ref) == 2 and 1 <= ref[0] <= MAX_ROW
                               and 1 <= ref[1] <= MAX_COL) else None
            else:
                cell = _parse_cell(ref) if isinstance(ref, str) else None
            if cell is None:
                raise WorkbookPatchError(
                    _where(sheet),
                    f"référence de cellule invalide « {ref} » (attendu par exemple « B7 », "
                    f"colonnes A à XFD, lignes 1 à {MAX_ROW})",
                )
            number, col = cell
            row = rows.get(number)
            if row is None:
                row = rows[number] = {}
            elif col in row:
                raise WorkbookPatchError(_where(sheet, _cell_ref(number, col)),
                                         "cellule écrite deux fois")
            if type(value) is float and isfinite(value):  # most cells: kept as they are
                row[col] = value
                continue
            encoded = row[col] = _encode_cached(value, sheet, cell, texts)
            if not formulas and isinstance(encoded, _Encoded) and encoded.formula is not None:
                formulas = sheet_plan.formulas = True
    for sheet, sheet_blocks in (blocks or {}).items():
        sheet_plan = plans.setdefault(sheet, _SheetPlan({}, []))
        for block in sheet_blocks:
            _check_block(sheet, block, sheet_plan)
            sheet_plan.blocks.append(block)
            if any(isinstance(v, FormulaColumn) and any(t is not None for t in v.templates)
                   for v in block.columns.values()):
                sheet_plan.formulas = True
    return plans


def _check_block(sheet: str, block: CellBlock, plan: _SheetPlan) -> None:
    """A block's rows and columns are in the grid, ascending, its columns as long as its
    rows, and none of its cells is written by the plan already."""
    rows = block.rows
    if not all(type(r) is int for r in rows) or (rows and not (
            rows[0] >= 1 and rows[-1] <= MAX_ROW and all(map(int.__lt__, rows, rows[1:])))):
        raise WorkbookPatchError(_where(sheet), "bloc de cellules invalide : lignes hors de la "
                                 f"grille (1 à {MAX_ROW}) ou pas en ordre croissant")
    for col, values in block.columns.items():
        lengths = ({len(values.templates), len(values.cached)}
                   if isinstance(values, FormulaColumn) else {len(values)})
        if type(col) is not int or not 1 <= col <= MAX_COL or lengths != {len(rows)}:
            raise WorkbookPatchError(_where(sheet), f"bloc de cellules invalide : colonne {col} "
                                     f"hors de la grille ou de longueur autre que {len(rows)}")
    taken = set(rows)
    written = [(r, c) for r in taken.intersection(plan.rows) for c in plan.rows[r]
               if c in block.columns]
    for other in plan.blocks:
        shared = block.columns.keys() & other.columns.keys()
        if shared:
            written += [(r, min(shared)) for r in taken.intersection(other.rows)]
    if written:
        raise WorkbookPatchError(_where(sheet, _cell_ref(*min(written))),
                                 "cellule écrite deux fois")
