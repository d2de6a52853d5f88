"""Write a few owned cells into a user's .xlsx/.xlsm and leave the rest of the package alone.

openpyxl's load-then-save rewrites every part and loses what it does not model (x14 data
validations, shapes, the ribbon relationship, cached values). :func:`patch_workbook` instead
edits the XML of the sheets it writes to, in place, and copies every other zip member byte for
byte (same name, order, compression method and timestamp).

Behaviour in one table (see the function docstring for details):

========================  =====================================================================
value                     cell written as
========================  =====================================================================
``str``                   inline string (``t="inlineStr"``): ``sharedStrings.xml`` untouched;
                          characters XML cannot carry and literal ``_xHHHH_`` escaped as Excel does
``int`` / ``float``       number ``<v>``, shortest repr that round-trips; NaN/inf refused
``bool``                  ``t="b"``
``None``                  value and formula removed; the element stays if it carries a style
``port.Formula``          ``<f>`` with its text, then its cached value as ``<v>`` (text:
                          ``t="str"``; None: no ``<v>``, the client computes it); the
                          calculation chain is dropped (Excel rebuilds it)
========================  =====================================================================
"""

from __future__ import annotations

import os
import re
import struct
import zipfile
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

from lxml import etree

from carbonclap_xl.core.a1 import (
    KNOWN_COLUMNS,
    MAX_COL,
    MAX_ROW,
    column_number,
)
from carbonclap_xl.core.atomic import atomic_file
from carbonclap_xl.core.errors import WorkbookPatchError, close_matches, did_you_mean
from carbonclap_xl.workbook.port import CellBlock
from carbonclap_xl.xlsx.cellxml import (
    _VALUE_ATTRIBUTES,
    _XML_SPACE,
    CellKey,
    CellValue,
    _Area,
    _cell_ref,
    _ColumnStyles,
    _Encoded,
    _encoded,
    _get,
    _grown,
    _in_spans,
    _parse_area,
    _parse_cell,
    _plan,
    _row_style_attribute,
    _SheetPlan,
    _Value,
    _value_markup,
    _where,
    _xml_attribute,
    _xml_text,
    _xml_unescape,
    column_index,
    column_letters,
)
from carbonclap_xl.xlsx.package import (
    REL_CALC_CHAIN,
    drop_part,
    find_member,
    local_name,
    parse_xml,
    read_rels,
    serialize_xml,
    sheet_parts,
    workbook_part,
)
from carbonclap_xl.xlsx.rowsplice import splice_sheet
from carbonclap_xl.xlsx.zipread import member_is_link, read_member

KnownParts = Mapping[str, tuple[bytes, bool]]  # part -> (its XML, whether lxml has parsed it)

# --------------------------------------------------------------------------- formulas

_REF_CELL_RE = re.compile(r"^(\$?)([A-Za-z]{1,3})(\$?)([0-9]{1,7})$")
_REF_COL_RE = re.compile(r"^(\$?)([A-Za-z]{1,3})$")
_REF_ROW_RE = re.compile(r"^(\$?)([0-9]{1,7})$")


def _shift_row(absolute: str, row: int, delta: int) -> str | None:
    if absolute:
        return f"${row}"
    row += delta
    return str(row) if 1 <= row <= MAX_ROW else None


def _shift_col(absolute: str, col: int, delta: int) -> str | None:
    if absolute:
        return "$" + column_letters(col)
    col += delta
    return column_letters(col) if 1 <= col <= MAX_COL else None


def _translate_reference(text: str, d_row: int, d_col: int) -> str | None:
    """Shift the relative parts of one reference token; None when it would leave the grid."""
    prefix, bang, ref = text.rpartition("!")
    if "[" in ref or "]" in ref:
        return text  # structured reference (Table1[Col]): position-independent text
    spill = ref.endswith("#")
    if spill:
        ref = ref[:-1]
    pieces = ref.split(":")
    rows = [m for m in map(_REF_ROW_RE.match, pieces) if m]
    cols = [m for m in map(_REF_COL_RE.match, pieces) if m and column_index(m.group(2)) <= MAX_COL]
    out: list[str | None] = []
    if len(pieces) == 2 and len(rows) == 2:  # whole rows, 3:5
        out = [_shift_row(m.group(1), int(m.group(2)), d_row) for m in rows]
    elif len(pieces) == 2 and len(cols) == 2:  # whole columns, A:C
        out = [_shift_col(m.group(1), column_index(m.group(2)), d_col) for m in cols]
    else:
        for piece in pieces:
            m = _REF_CELL_RE.match(piece)
            col = column_index(m.group(2)) if m else 0
            row = int(m.group(4)) if m else 0
            if m is None or not (1 <= col <= MAX_COL and 1 <= row <= MAX_ROW):
                out.append(piece)  # a defined name (names outside the grid are legal)
                continue
            new_col = _shift_col(m.group(1), col, d_col)
            new_row = _shift_row(m.group(3), row, d_row)
            out.append(None if new_col is None or new_row is None else new_col + new_row)
    if any(piece is None for piece in out):
        return None
    return prefix + bang + ":".join(p for p in out if p is not None) + ("#" if spill else "")


def translate_formula(formula: str, d_row: int, d_col: int) -> str | None:
    """The formula ``formula`` (as stored in ``<f>``, no leading '=') moved by ``d_row`` rows and
    ``d_col`` columns, relative references shifted as Excel's fill does; None when the formula
    cannot be tokenised losslessly or a reference would leave the grid."""
    from openpyxl.formula.tokenizer import Token, Tokenizer, TokenizerError

    try:
        tokens = Tokenizer("=" + formula).items
    except TokenizerError:
        return None
    if "".join(token.value for token in tokens) != formula:
        return None
    out: list[str] = []
    for token in tokens:
        if token.type == Token.OPERAND and token.subtype == Token.RANGE:
            shifted = _translate_reference(token.value, d_row, d_col)
            if shifted is None:
                return None
            out.append(shifted)
        else:
            out.append(token.value)
    return "".join(out)


# --------------------------------------------------------------------------- one sheet
#
# How written cells get into the sheet. Building each <c>, <v>, <is> and <t> element and each
# attribute through lxml costs a Python call apiece, about ten per cell. Instead, each run of
# consecutive written cells of a row is removed from the tree (new cells are never added to
# it) and one placeholder element stands for the run; once the sheet is serialized, each
# placeholder is replaced by the markup of its cells, written exactly as lxml writes elements
# (same attribute order, same escaping). Clearing and the rare cell that cannot be written as
# text (an attribute in a namespace) are edits of the tree.


class _Row:
    """A ``<row>`` element with its ``<c>`` children indexed by column (kept sorted)."""

    __slots__ = ("cells", "cols", "element")

    def __init__(self, element: etree._Element) -> None:
        self.element = element
        self.cols: list[int] = []
        self.cells: list[etree._Element] = []


class _Runs:
    """The markup of runs of written cells, and the placeholders that stand for them."""

    def __init__(self) -> None:
        self._name = f"carbonclap-{os.urandom(8).hex()}-"  # no sheet holds such an element
        self._placeholder = re.compile(rb"<" + self._name.encode() + rb"([0-9]+)/>")
        self.runs: list[list[str]] = []

    def start(self, row: etree._Element) -> tuple[etree._Element, list[str]]:
        """A new run in ``row``: its placeholder (for the caller to put in place) and the list
        that takes the markup of its cells."""
        run: list[str] = []
        self.runs.append(run)
        return row.makeelement(f"{self._name}{len(self.runs) - 1}"), run

    def splice(self, xml: bytes, part: str) -> bytes:
        """``xml`` (the serialized sheet) with each placeholder replaced by its run."""
        pieces = self._placeholder.split(xml)  # text, run number, text, run number, ..., text
        numbers = [int(n) for n in pieces[1::2]]
        if sorted(numbers) != list(range(len(self.runs))):  # cannot happen: fail loudly
            raise WorkbookPatchError(part, "cellules écrites égarées à la sérialisation")
        for at, number in enumerate(numbers, start=1):
            pieces[2 * at - 1] = "".join(self.runs[number]).encode()
        return b"".join(pieces)


def _declares_namespaces_in_cells(data: bytes) -> bool:
    """True unless ``data`` (a worksheet part) certainly has no namespace declaration inside
    ``<sheetData>``: a cell declaring one must stay an element (its declaration would be lost)."""
    start, end = data.find(b"sheetData"), data.rfind(b"sheetData")
    return start < 0 or data.find(b"xmlns", start, end) >= 0


class _SheetPatcher:
    def __init__(self, sheet: str, part: str, tree: etree._ElementTree, data: bytes) -> None:
        self.sheet = sheet
        self.part = part
        self.root = tree.getroot()
        if local_name(self.root) != "worksheet":
            raise WorkbookPatchError(
                _where(sheet), f"{part} n'est pas une feuille de calcul (feuille graphique ?)"
            )
        ns = etree.QName(self.root).namespace
        self.tag: Callable[[str], str] = (lambda n: f"{{{ns}}}{n}") if ns else (lambda n: n)
        sheet_data = self.root.find(self.tag("sheetData"))
        if sheet_data is None:
            raise WorkbookPatchError(part, "élément <sheetData> absent")
        self.sheet_data = sheet_data
        self.changed = False
        self.formulas_removed = False
        self.extent: list[int] | None = None  # top, left, bottom, right of the written cells
        self.runs = _Runs()
        self._render_cells = not _declares_namespaces_in_cells(data)
        self._row_tag = self.tag("row")
        self._c_tag = self.tag("c")
        self._f_tag = self.tag("f")
        self._v_tag = self.tag("v")
        self._is_tag = self.tag("is")
        self._t_tag = self.tag("t")
        self._ext_tag = self.tag("extLst")
        self._rows: dict[int, etree._Element] = {}
        self._indexed: dict[int, _Row] = {}
        previous = 0
        for element in sheet_data.iterchildren(self._row_tag):
            r = element.get("r")
            if r is None:
                number = previous + 1
                element.set("r", str(number))
            elif r.isascii() and r.isdigit() and 1 <= int(r) <= MAX_ROW:
                number = int(r)
            else:
                raise WorkbookPatchError(part, f"numéro de ligne invalide « {r} »")
            if number <= previous:
                raise WorkbookPatchError(part, f"ligne {number} en double ou hors d'ordre")
            self._rows[number] = element
            previous = number
        self._row_numbers = list(self._rows)
        # The rows holding a formula (any <f>: a superset is harmless): only their cells need
        # looking for one when they lose their value.
        self._formula_rows: set[etree._Element | None] = set()
        for formula in sheet_data.iter(self._f_tag):
            cell = formula.getparent()
            self._formula_rows.add(cell.getparent() if cell is not None else None)
        self._attributes: dict[tuple[str, str], str] = {}  # (name, value) -> ' name="value"'
        col_specs: list[tuple[int, int, str | None]] = []
        for cols in self.root.iterchildren(self.tag("cols")):
            for col in cols.iterchildren(self.tag("col")):
                with suppress(TypeError, ValueError):
                    col_specs.append((int(col.get("min")), int(col.get("max")), col.get("style")))
        self._column_styles = _ColumnStyles(col_specs)

    # -- indexing

    def _index(self, number: int) -> _Row:
        row = self._indexed.get(number)
        if row is not None:
            return row
        row = _Row(self._rows[number])
        row.cells = cells = list(row.element.iterchildren(self._c_tag))
        suffix = str(number)
        cut = -len(suffix)
        refs = list(map(_get, cells, repeat("r", len(cells))))
        # The usual row first: every reference present, in this row, its letters already
        # known, the columns ascending. Anything else goes through the careful loop below.
        if None not in refs:
            with suppress(KeyError):
                cols = [KNOWN_COLUMNS[r[:cut]] for r in refs if r.endswith(suffix)]
                if len(cols) == len(refs) and all(map(int.__lt__, cols, cols[1:])):
                    row.cols = cols
                    self._indexed[number] = row
                    return row
        previous = 0
        for cell, r in zip(cells, refs, strict=True):
            col = KNOWN_COLUMNS.get(r[:cut]) if r is not None and r.endswith(suffix) else None
            if col is None:
                col = self._column_of(cell, r, number, previous)
            if col <= previous:
                raise WorkbookPatchError(
                    self.part, f"cellule {_cell_ref(number, col)} en double ou hors d'ordre"
                )
            row.cols.append(col)
            previous = col
        self._indexed[number] = row
        return row

    def _column_of(self, cell: etree._Element, r: str | None, number: int, previous: int) -> int:
        """The column of a cell of row ``number`` whose reference ``r`` is missing (the cell
        follows the previous one: its reference is written) or not yet in the cache."""
        if r is None:
            col = previous + 1
            cell.set("r", _cell_ref(number, col))
            return col
        suffix = str(number)
        col = column_number(r[: len(r) - len(suffix)]) if r.endswith(suffix) else None
        if col is None:
            raise WorkbookPatchError(
                self.part, f"référence « {r} » invalide dans la ligne {number}"
            )
        return col

    def _position(self, cell: etree._Element) -> tuple[int, int]:
        r = cell.get("r")
        if r is None:  # r is optional: index the row, which writes it
            row = cell.getparent()
            self._index(int(row.get("r")))
            r = cell.get("r")
        parsed = _parse_cell(r)
        if parsed is None:
            raise WorkbookPatchError(self.part, f"référence de cellule invalide « {r} »")
        return parsed

    def _new_row(self, number: int) -> _Row:
        element = etree.SubElement(self.sheet_data, self._row_tag)
        element.set("r", str(number))
        at = bisect_left(self._row_numbers, number)
        if at < len(self._row_numbers):
            self._rows[self._row_numbers[at]].addprevious(element)
        self._row_numbers.insert(at, number)
        self._rows[number] = element
        row = _Row(element)
        self._indexed[number] = row
        return row

    # -- formulas

    def check_formulas(self, plan: _SheetPlan) -> None:
        """Keep shared and array formulas consistent with the cells the plan overwrites."""
        f_tag = self.tag("f")
        shared: dict[str, list[etree._Element]] = {}
        masters: dict[str, etree._Element] = {}
        arrays: list[etree._Element] = []
        for formula in self.sheet_data.iter(f_tag):
            kind = formula.get("t")
            if kind == "shared" and formula.get("si") is not None:
                si = formula.get("si")
                shared.setdefault(si, []).append(formula)
                if formula.get("ref") is not None:
                    masters[si] = formula
            elif kind in ("array", "dataTable"):
                arrays.append(formula)
        for si, master in masters.items():
            master_cell = self._position(master.getparent())
            if not plan.touches(master_cell):
                continue
            remaining: list[tuple[tuple[int, int], etree._Element]] = []
            for formula in shared[si]:
                if formula is master:
                    continue
                cell = self._position(formula.getparent())
                if not plan.touches(cell):
                    remaining.append((cell, formula))
            if remaining:
                self._promote(master_cell, master, sorted(remaining, key=lambda item: item[0]))
        for formula in arrays:
            self._check_array(plan, formula)

    def _promote(
        self,
        master_cell: tuple[int, int],
        master: etree._Element,
        remaining: list[tuple[tuple[int, int], etree._Element]],
    ) -> None:
        """The master of a shared formula is overwritten but other cells of its group are not:
        hand the formula to the first remaining cell (or to each, when the rest is not a
        rectangle hanging from that cell)."""
        text = master.text or ""
        extra = {k: v for k, v in master.attrib.items() if k not in ("t", "ref", "si")}
        (first_row, first_col), _ = remaining[0]
        area = _Area(first_row, first_col, first_row, first_col)
        for (row, col), _ in remaining:
            area = area.union(_Area(row, col, row, col))
        targets = [remaining[0]] if (area.top, area.left) == (first_row, first_col) else remaining
        for (row, col), formula in targets:
            moved = translate_formula(text, row - master_cell[0], col - master_cell[1])
            if moved is None:
                others = ", ".join(_cell_ref(*cell) for cell, _ in remaining[:5])
                raise WorkbookPatchError(
                    _where(self.sheet, _cell_ref(*master_cell)),
                    f"cette cellule porte la formule partagée « ={text} » dont dépendent "
                    f"d'autres cellules non écrites ({others}…) et elle ne peut pas être "
                    "recopiée sans risque : écrivez aussi ces cellules ou retirez la formule",
                )
            formula.text = moved
            formula.attrib.update(extra)
            if len(targets) == 1:
                formula.set("ref", str(area))
            else:
                for key in ("t", "si", "ref"):
                    formula.attrib.pop(key, None)
        self.changed = True

    def _check_array(self, plan: _SheetPlan, formula: etree._Element) -> None:
        """An array (or data-table) formula must be overwritten whole or not at all."""
        master_cell = self._position(formula.getparent())
        area = _parse_area(formula.get("ref") or "")
        if area is None or area == _Area(*master_cell, *master_cell):
            return
        master_touched = plan.touches(master_cell)
        written_rows, written_cols = plan.written_rows()
        cells: set[tuple[int, int]] = set()
        for row_numbers, cols_of in (
            (self._row_numbers, lambda n: self._index(n).cols),
            (written_rows, written_cols.__getitem__),
        ):
            lo = bisect_left(row_numbers, area.top)
            hi = bisect_right(row_numbers, area.bottom)
            for number in row_numbers[lo:hi]:
                cols = cols_of(number)
                start = bisect_left(cols, area.left)
                stop = bisect_right(cols, area.right)
                cells.update((number, col) for col in cols[start:stop])
        cells.discard(master_cell)
        for cell in sorted(cells):
            if plan.touches(cell) != master_touched:
                raise WorkbookPatchError(
                    _where(self.sheet, _cell_ref(*cell)),
                    f"la cellule fait partie de la formule matricielle {area} (en "
                    f"{_cell_ref(*master_cell)}) : écrivez ou effacez toute la plage ou rien",
                )

    # -- edits

    def _strip(self, cell: etree._Element) -> None:
        """Remove the cell's value and formula (children, ``t``, ``cm``, ``vm``); keep ``s``."""
        if len(cell):
            if self._formula_rows and cell.find(self._f_tag) is not None:
                self.formulas_removed = True
            del cell[:]
            self.changed = True
        names = cell.keys()
        if "t" in names or "cm" in names or "vm" in names:
            attrib = cell.attrib
            for name in _VALUE_ATTRIBUTES:
                if name in attrib:
                    del attrib[name]
            self.changed = True

    def _empty(self, row: _Row, at: int) -> None:
        """Clear the cell at index ``at`` of ``row``; drop its element unless it has a style."""
        cell = row.cells[at]
        self._strip(cell)
        if cell.get("s") is None:
            row.element.remove(cell)
            del row.cols[at]
            del row.cells[at]
            self.changed = True

    def _fill(self, cell: etree._Element, value: _Encoded | float) -> None:
        """Write ``value`` into existing ``cell`` through the tree (a cell :meth:`_render`
        cannot write)."""
        value = _encoded(value)
        self._strip(cell)
        if value.type is not None:
            cell.set("t", value.type)
        if value.formula is not None:
            etree.SubElement(cell, self._f_tag).text = _xml_unescape(value.formula)
            if value.type or value.text:
                etree.SubElement(cell, self._v_tag).text = value.text
        elif value.type == "inlineStr":
            text = etree.SubElement(etree.SubElement(cell, self._is_tag), self._t_tag)
            text.set(_XML_SPACE, "preserve")
            text.text = value.text
        else:
            etree.SubElement(cell, self._v_tag).text = value.text

    def _render(
        self, cell: etree._Element, value: _Encoded | float, p: str, formulas: bool
    ) -> str | None:
        """The markup of existing ``cell`` once written ``value``, then its tail: the cell as
        :meth:`_fill` leaves it. None when it cannot be written as text (an attribute in a
        namespace, or namespaces declared among the cells)."""
        if not self._render_cells:
            return None
        markup = f"<{p}c"
        for name, text in cell.items():
            if name == "r":
                markup += f' r="{text}"'  # checked by _index: letters and digits
            elif name in _VALUE_ATTRIBUTES:
                continue
            elif name[0] == "{":
                return None
            else:
                attribute = self._attributes.get((name, text))
                if attribute is None:
                    attribute = f' {name}="{_xml_attribute(text)}"'
                    self._attributes[name, text] = attribute
                markup += attribute
        if formulas and not self.formulas_removed and cell.find(self._f_tag) is not None:
            self.formulas_removed = True
        inner, tail = cell.text, cell.tail
        markup += _value_markup(value, p, _xml_text(inner) if inner else "")
        return f"{markup}</{p}c>{_xml_text(tail)}" if tail else f"{markup}</{p}c>"

    def check_rows(self, plan: _SheetPlan) -> None:
        """Index every existing row the plan clears or writes: what :meth:`apply` refuses
        (a cell out of order, an invalid reference), found without editing anything; and
        whether it would remove a formula (``formulas_removed``)."""
        numbers: set[int] = set(plan.rows)
        for area in plan.clear:
            lo = bisect_left(self._row_numbers, area.top)
            hi = bisect_right(self._row_numbers, area.bottom)
            numbers.update(self._row_numbers[lo:hi])
        for number in sorted(numbers):
            if number not in self._rows:
                continue
            row = self._index(number)
            if row.element not in self._formula_rows or self.formulas_removed:
                continue
            written = plan.rows.get(number, {})
            for col, cell in zip(row.cols, row.cells, strict=True):
                touched = col in written or any(a.top <= number <= a.bottom
                                                and a.left <= col <= a.right for a in plan.clear)
                if touched and cell.find(self._f_tag) is not None:
                    self.formulas_removed = True
                    break

    def apply(self, plan: _SheetPlan) -> None:
        """The plan's clears, then its writes, one row at a time.

        The result is that of clearing each range in turn (each existing cell loses its value
        and formula, and goes unless it has a style), then writing each cell in turn (its value
        replaced, its style kept; a new cell takes its column's style, else its row's; None
        empties the cell like a clear).
        """
        areas = plan.clear
        touched: set[int] = set()
        for area in areas:
            lo = bisect_left(self._row_numbers, area.top)
            hi = bisect_right(self._row_numbers, area.bottom)
            numbers = self._row_numbers[lo:hi]
            for number in numbers:  # a malformed row is reported in the order clears meet it
                self._index(number)
            touched.update(numbers)
        no_writes: dict[int, _Value] = {}
        for number in sorted(touched.union(plan.rows)):
            clears = [(a.left, a.right) for a in areas if a.top <= number <= a.bottom]
            self._patch_row(number, clears, plan.rows.get(number, no_writes))

    def _patch_row(
        self, number: int, clears: list[tuple[int, int]], written: dict[int, _Value]
    ) -> None:
        """Clear the columns ``clears`` (left, right) of row ``number``, then write ``written``
        (column -> value)."""
        if number in self._rows:
            row = self._index(number)
        elif any(value is not None for value in written.values()):
            row = self._new_row(number)
        else:
            return
        self._indexed.pop(number)  # the row changes: index it afresh if ever needed again
        cols, cells = row.cols, row.cells
        # 1. Cells that go. A cleared cell written next keeps its element if it has a style:
        #    the write strips it anyway (without a style, it goes and the write makes a new one).
        for left, right in clears:
            lo = bisect_left(cols, left)
            hi = bisect_right(cols, right)
            for at in range(hi - 1, lo - 1, -1):
                if written.get(cols[at]) is None or cells[at].get("s") is None:
                    self._empty(row, at)
        if written:
            self._write_row(number, row, sorted(written.items()))

    def _write_row(self, number: int, row: _Row, writes: list[tuple[int, _Value]]) -> None:
        """Write ``writes`` into the cells left in ``row``, in column order: each run of
        consecutive written cells (existing or new) becomes one placeholder. A placeholder
        stays put when the cell it was put before goes afterwards (a None written further on),
        as a new cell would."""
        cols, cells, element = row.cols, row.cells, row.element
        prefix = element.prefix
        p = f"{prefix}:" if prefix else ""
        suffix = str(number)
        formulas = element in self._formula_rows
        # Only <c> children (no comment, no extLst): a run may go on past an existing cell.
        plain = len(element) == len(cols)
        row_style: str | None = None  # read with the first new cell, like spans
        spans: str | None = None
        column_style = self._column_styles.attribute
        count = len(cols)
        at = 0  # index in ``cols`` of the first cell not before the current column
        run: list[str] | None = None
        follows = -1  # index in ``cols`` of the cell right after the current run (-1: none)
        first = last = 0  # the first and last columns written
        for col, value in writes:
            while at < count and cols[at] < col:
                at += 1
            if value is None:
                if at < count and cols[at] == col:
                    self._empty(row, at)  # its element may go: ``cols`` and ``cells`` shrink
                    count = len(cols)
                    run = None
                continue
            first = first or col
            last = col
            if at < count and cols[at] == col:  # an existing cell
                cell = cells[at]
                markup = self._render(cell, value, p, formulas)
                if markup is None:
                    self._fill(cell, value)
                    run = None
                elif run is not None and follows == at:
                    run.append(markup)
                    element.remove(cell)
                else:
                    placeholder, run = self.runs.start(element)
                    run.append(markup)
                    element.replace(cell, placeholder)
                at += 1
                follows = at if plain else -1
                continue
            if run is None or follows != at:  # a new cell, where no run goes on
                placeholder, run = self.runs.start(element)
                if at < count:
                    cells[at].addprevious(placeholder)
                else:
                    ext = None if plain else element.find(self._ext_tag)
                    if ext is None:
                        element.append(placeholder)
                    else:
                        ext.addprevious(placeholder)
            follows = at
            if row_style is None:
                row_style = _row_style_attribute(element.get("customFormat"), element.get("s"))
                spans = element.get("spans")
            style = column_style(col)
            run.append(
                f'<{p}c r="{column_letters(col)}{suffix}"{style or row_style}'
                f"{_value_markup(value, p)}</{p}c>"
            )
            if spans is not None and not _in_spans(spans, col):
                del element.attrib["spans"]
                spans = None
        if not first:
            return
        self.changed = True
        self.extent = _grown(self.extent, number, first, last)

    def update_dimension(self) -> None:
        if self.extent is None:
            return
        dimension = self.root.find(self.tag("dimension"))
        if dimension is None:
            return
        current = _parse_area(dimension.get("ref", ""))
        if current is None:
            return
        wanted = current.union(_Area(*self.extent))
        if wanted != current:
            dimension.set("ref", str(wanted))


@dataclass
class _SheetResult:
    data: bytes | None  # None: nothing changed, keep the original bytes
    formulas_removed: bool


def _still_the_same(zin: zipfile.ZipFile, part: str, known: KnownParts | None
                    ) -> tuple[bytes | None, bool]:
    """``known[part]`` when its XML is still the archive's member (same size and CRC-32);
    (None, False) otherwise."""
    xml, parsed = known.get(part, (None, False)) if known else (None, False)
    info = zin.NameToInfo.get(part)
    if xml is None or info is None or info.file_size != len(xml) or zlib.crc32(xml) != info.CRC:
        return None, False
    return xml, parsed


def _patch_sheet(sheet: str, part: str, data: bytes, plan: _SheetPlan,
                 check: bool = False, parsed: bool = False) -> _SheetResult:
    """``parsed``: lxml has read ``data`` already (its refusals are behind us)."""
    tree = None if parsed else parse_xml(data, part)  # malformed, too deep: refused here
    if tree is None or local_name(tree.getroot()) == "worksheet":
        spliced = splice_sheet(sheet, data, plan)  # the usual sheet: its text, row by row
        if spliced is not None:
            return _SheetResult(None if check else spliced.data, spliced.formulas_removed)
    if tree is None:
        tree = parse_xml(data, part)
    return _patch_tree(sheet, part, data, tree, plan, check)


def _patch_tree(sheet: str, part: str, data: bytes, tree: etree._ElementTree,
                plan: _SheetPlan, check: bool = False) -> _SheetResult:
    """The sheet patched through its lxml tree: every case, each cell one step."""
    plan.expand_blocks(sheet)
    patcher = _SheetPatcher(sheet, part, tree, data)
    patcher.check_formulas(plan)
    if check:  # every refusal of apply() comes from indexing the rows it touches
        patcher.check_rows(plan)
        return _SheetResult(None, patcher.formulas_removed)
    patcher.apply(plan)
    patcher.update_dimension()
    if not patcher.changed:
        return _SheetResult(None, False)
    xml = serialize_xml(tree, data)
    if patcher.runs.runs:
        xml = patcher.runs.splice(xml, part)
    return _SheetResult(xml, patcher.formulas_removed)


# --------------------------------------------------------------------------- the package


def _calc_chain_edits(zf: zipfile.ZipFile) -> tuple[str | None, dict[str, bytes]]:
    """Drop the calculation chain (Excel rebuilds it): its member name and the new bytes of
    the workbook rels and content types; (None, {}) when the workbook has none."""
    wb_part = workbook_part(zf)
    for rel in read_rels(zf, wb_part):
        if rel.is_type(REL_CALC_CHAIN) and not rel.external:
            member = find_member(zf, rel.target)
            return member, drop_part(zf, member or rel.target, wb_part)
    return None, {}


def _strip_zip64_extra(extra: bytes) -> bytes:
    """The extra field without its ZIP64 record (zipfile writes its own when needed)."""
    out = b""
    at = 0
    while at + 4 <= len(extra):
        header_id, size = struct.unpack("<HH", extra[at : at + 4])
        if at + 4 + size > len(extra):
            return b""  # malformed: drop the whole extra field rather than copy garbage
        if header_id != 0x0001:
            out += extra[at : at + 4 + size]
        at += 4 + size
    return out


def _copy_info(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    copy = zipfile.ZipInfo(info.filename, info.date_time)
    copy.compress_type = info.compress_type
    copy.comment = info.comment
    copy.extra = _strip_zip64_extra(info.extra)
    copy.create_system = info.create_system
    copy.external_attr = info.external_attr
    copy.internal_attr = info.internal_attr
    return copy


_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip local file header, 30 bytes
REWRITE_LEVEL = 3  # deflate level of rewritten sheets: 2x faster than 6 on 4 MB of XML


def _copy_raw(zin: zipfile.ZipFile, zout: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    """Copy an unchanged member's compressed bytes as they are (no inflate, no deflate).

    Returns False, having written nothing, for what this plain path does not handle (data
    descriptors, ZIP64, encryption, an unexpected header): the caller then re-writes the
    member's content through zipfile.
    """
    if (info.flag_bits & 0x09 or info.file_size >= zipfile.ZIP64_LIMIT
            or info.compress_size >= zipfile.ZIP64_LIMIT
            or info.header_offset >= zipfile.ZIP64_LIMIT or zout.fp is None
            or zin.fp is None or zout.fp.tell() >= zipfile.ZIP64_LIMIT):
        return False
    zin.fp.seek(info.header_offset)
    header = zin.fp.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        return False
    name_length, extra_length = _LOCAL_HEADER.unpack(header)[-2:]
    zin.fp.seek(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)
    data = zin.fp.read(info.compress_size)
    if len(data) != info.compress_size:
        return False
    copy = _copy_info(info)
    copy.CRC = info.CRC
    copy.compress_size = info.compress_size
    copy.file_size = info.file_size
    copy.flag_bits = info.flag_bits & 0x0800  # keep only "name is UTF-8"
    _append_raw(zout, copy, data)
    return True


def _append_raw(zout: zipfile.ZipFile, entry: zipfile.ZipInfo, data: bytes) -> None:
    """Write a member whose compressed bytes, CRC and sizes are known (in ``entry``)."""
    assert zout.fp is not None
    entry.header_offset = zout.fp.tell()
    zout.fp.write(entry.FileHeader(zip64=False))
    zout.fp.write(data)
    zout.filelist.append(entry)
    zout.NameToInfo[entry.filename] = entry
    zout.start_dir = zout.fp.tell()  # where zipfile writes the central directory on close


def _deflate(data: bytes) -> tuple[int, bytes]:
    """(CRC-32, raw deflate at ``REWRITE_LEVEL``): the bytes zipfile writes for ``data``."""
    compressor = zlib.compressobj(REWRITE_LEVEL, zlib.DEFLATED, -15)
    return zlib.crc32(data), compressor.compress(data) + compressor.flush()


def _deflate_all(parts: dict[str, bytes]) -> dict[str, tuple[int, bytes]]:
    """:func:`_deflate` of each part, the larger half by bytes in a second thread (zlib lets
    go of the interpreter while it works: two cores, about half the time); the thread is
    done when this returns."""
    import threading

    names = sorted(parts, key=lambda name: -len(parts[name]))
    half = sum(len(d) for d in parts.values()) / 2
    theirs: list[str] = []
    taken = 0
    for name in names:  # a greedy split by size
        if not theirs or taken + len(parts[name]) <= half:
            theirs.append(name)
            taken += len(parts[name])
    done: dict[str, tuple[int, bytes]] = {}
    failed: list[BaseException] = []

    def work() -> None:
        try:
            for name in theirs:
                done[name] = _deflate(parts[name])
        except BaseException as exc:  # re-raised in the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=work, name="carbonclap-deflate")
    worker.start()
    try:
        mine = {name: _deflate(parts[name]) for name in names if name not in theirs}
    finally:
        worker.join()
    if failed:
        raise failed[0]
    return {**done, **mine}


def _deflated_member(zin: zipfile.ZipFile, name: str) -> bool:
    info = zin.NameToInfo.get(name)
    return info is not None and info.compress_type == zipfile.ZIP_DEFLATED


def _write_package(
    zin: zipfile.ZipFile, src: Path, dst: Path, replaced: dict[str, bytes], dropped: set[str],
    replace: bool = True,
) -> None:
    mode = os.stat(dst if dst.exists() else src).st_mode & 0o7777
    with atomic_file(dst, replace=replace, mode=mode) as handle:  # never half-written
        zout = zipfile.ZipFile(handle, "w", allowZip64=True)
        try:
            zout.comment = zin.comment
            deflated = _deflate_all({name: data for name, data in replaced.items()
                                     if _deflated_member(zin, name)})
            for info in zin.infolist():
                if info.filename in dropped:
                    continue
                data = replaced.get(info.filename)
                if data is None and _copy_raw(zin, zout, info):
                    continue
                if data is None:
                    zout.writestr(_copy_info(info), read_member(zin, info))
                elif info.filename in deflated and len(data) < zipfile.ZIP64_LIMIT \
                        and zout.fp is not None and zout.fp.tell() < zipfile.ZIP64_LIMIT:
                    entry = _copy_info(info)
                    entry.CRC, compressed = deflated[info.filename]
                    entry.compress_size, entry.file_size = len(compressed), len(data)
                    _append_raw(zout, entry, compressed)
                else:  # a rewritten part: a faster deflate level (about +18 % in size)
                    zout.writestr(_copy_info(info), data, compresslevel=REWRITE_LEVEL)
            zout.close()
        finally:
            zout.fp = None  # after a failure (full disk), no second write from ZipFile.__del__


# For other writers of the package (``xlsx.upgrade``): the same copy-unchanged-members-raw
# package writer and calculation-chain removal.
write_package = _write_package
calc_chain_edits = _calc_chain_edits


def patch_workbook(
    src: Path,
    dst: Path,
    writes: Mapping[str, Mapping[CellKey, CellValue]],
    clear: Mapping[str, Sequence[str]] | None = None,
    *,
    blocks: Mapping[str, Sequence[CellBlock]] | None = None,
    replace: bool = True,
    known: KnownParts | None = None,
) -> None:
    """Write ``writes`` (sheet -> {"B7": value}) into a copy of ``src`` saved as ``dst``.

    A cell may also be keyed by its (row, column) numbers, ``(7, 2)`` for B7, which spares
    formatting and parsing references when writing thousands of cells.

    ``clear`` (sheet -> ["A5:F2000", ...]; whole columns "A:C" and rows "5:10" also work) is
    applied first: every existing cell in those ranges loses its value and formula and keeps
    its style (a cell left with no style is removed). Then each write replaces the cell's value
    and formula, keeping its ``s`` style; a new cell takes its column's style, else its row's
    (``customFormat="1"``). Writing None empties the cell like ``clear``.

    Only the sheets whose XML actually changes are rewritten; every other zip member is copied
    with the same name, order, compression method, timestamp and bytes. When a formula is
    removed, ``xl/calcChain.xml`` is dropped with its relationship and content-type override
    (Excel rebuilds it silently). When the master cell of a shared formula is overwritten while
    other cells of the group are not, the formula moves to the next cell of the group.

    Cached results of formulas elsewhere are not recomputed: Excel and LibreOffice show them
    until the next recalculation.

    ``known`` (part name -> (XML, whether lxml has parsed it)) holds sheets already read
    from ``src`` (``xlsx.files.FileSource`` did, for the plan): a part whose bytes still
    match the archive's (size and CRC-32) is not inflated again, nor parsed again if lxml
    has read it.

    ``dst`` is written through ``core.atomic.atomic_file`` (a temporary file in its folder,
    fsynced, then renamed): it is never half-written, and ``src`` may be ``dst``; with
    ``replace=False`` an existing ``dst`` is never replaced (FileExistsError). Raises
    WorkbookPatchError (and writes nothing) for an unknown sheet, a bad reference, a value
    Excel cannot hold (NaN, inf, text over 32,767 characters), or a package that cannot be
    patched safely.
    """
    _patch_package(Path(src), Path(dst), writes, clear, blocks, replace, known)


def check_patch(
    src: Path,
    writes: Mapping[str, Mapping[CellKey, CellValue]],
    clear: Mapping[str, Sequence[str]] | None = None,
    *,
    blocks: Mapping[str, Sequence[CellBlock]] | None = None,
    known: KnownParts | None = None,
) -> None:
    """Everything :func:`patch_workbook` does and refuses, without writing anything: the
    validator's way of giving the verdict ``process`` would give."""
    _patch_package(Path(src), None, writes, clear, blocks, known=known)


def _patch_package(
    src: Path,
    dst: Path | None,
    writes: Mapping[str, Mapping[CellKey, CellValue]],
    clear: Mapping[str, Sequence[str]] | None,
    blocks: Mapping[str, Sequence[CellBlock]] | None = None,
    replace: bool = True,
    known: KnownParts | None = None,
) -> None:
    plans = _plan(writes, clear, blocks)
    try:
        with zipfile.ZipFile(src) as zin:
            for info in zin.infolist():
                if member_is_link(info):  # unzip would recreate it as a link: never copied
                    raise WorkbookPatchError(info.filename[:120], "lien symbolique ou fichier "
                                             "spécial dans l'archive, refusé")
            parts = sheet_parts(zin)
            for sheet in plans:
                if sheet not in parts:
                    available = ", ".join(f"« {name} »" for name in parts)
                    reason = f"feuille « {sheet} » introuvable ; feuilles du classeur : {available}"
                    suggestions = close_matches(sheet, parts)
                    if suggestions:
                        reason += " ; " + did_you_mean(suggestions)
                    raise WorkbookPatchError(src.name, reason)
            replaced: dict[str, bytes] = {}
            formulas_removed = False
            for sheet, plan in plans.items():  # (dst None: checked, nothing kept)
                part = parts[sheet]
                data, parsed = _still_the_same(zin, part, known)
                result = _patch_sheet(sheet, part, read_member(zin, part) if data is None
                                      else data, plan, parsed=parsed,
                                      check=dst is None)
                if result.data is not None:
                    replaced[part] = result.data
                formulas_removed |= result.formulas_removed or bool(plan.formulas)
            dropped: set[str] = set()
            if formulas_removed:
                calc_chain, edits = _calc_chain_edits(zin)
                if calc_chain is not None:
                    dropped.add(calc_chain)
                replaced.update(edits)
            if dst is not None:
                _write_package(zin, src, dst, replaced, dropped, replace)
    except zipfile.BadZipFile as exc:
        raise WorkbookPatchError(src.name, f"archive zip illisible ({exc})") from exc
    except NotImplementedError as exc:  # a member compressed with a method zipfile lacks
        raise WorkbookPatchError(src.name, f"archive zip non prise en charge ({exc})") from exc
