"""Write a sheet's plan into its XML text, row by row, without building a tree.

The tree patcher (``patch``) parses a sheet, edits its rows and serialises it again: every
cell costs a few Python steps, and a processed 5,000-line workbook holds 50,000 computed
cells. This module does the same edits on the text of the usual sheet (what Excel,
LibreOffice and openpyxl write): the rows the plan does not touch are kept as they are, byte
for byte; each touched row is written again from its cells; a block's columns
(``port.CellBlock``) are rendered column by column, a few string operations a cell; a run
of consecutive line rows written for the first time (a workbook filled from a CSV or saved
by LibreOffice: no ``spans``) is checked and joined in one go (``_Splicer.fresh_rows``).

Anything unusual sends the whole sheet back to the tree patcher, which handles every case and
gives every refusal (:func:`splice_sheet` returns None): another encoding than UTF-8, a
DOCTYPE, comments, CDATA or processing instructions, a root other than ``<worksheet>``,
single quotes before the rows, namespace declarations or prefixed elements among the cells,
formulas with a type (shared, array, data table), a row or cell without its reference, out
of order or beyond the grid, whitespace or anything but cells around a touched cell, a row's
``<extLst>``. The caller has had lxml read the sheet (what lxml refuses is refused before).
The result is the tree patcher's, as XML (``tests/test_rowsplice.py`` compares both on random
sheets and plans after canonicalisation): same cells, attributes, styles, spans and
dimension, and the same formula flag (the calculation chain goes when a formula does).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from carbonclap_xl.core.a1 import MAX_COL, MAX_ROW, column_number
from carbonclap_xl.workbook.port import ROW_MARK, CellBlock, Formula, FormulaColumn
from carbonclap_xl.xlsx.cellxml import (
    MAX_FORMULA_LENGTH,
    _Area,
    _cached_text,
    _ColumnStyles,
    _encode_cached,
    _Encoded,
    _grown,
    _in_spans,
    _parse_area,
    _row_style_attribute,
    _SheetPlan,
    _Value,
    _value_markup,
    _xml_text,
    column_letters,
)

_NAME = r"[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?"
_ATTRIBUTE = re.compile(rf'\s+({_NAME})="([^"<]*)"')
_ATTRIBUTES = re.compile(rf'(?:\s+{_NAME}="[^"<]*")*\s*')
_ROW_NUMBER = re.compile(rb'\sr="([1-9][0-9]{0,6})"')
_ROW_FIRST_NUMBER = re.compile(rb'<row r="([1-9][0-9]{0,6})"')
_CELL_REF_BYTES = re.compile(rb'<c r="([A-Z]{1,3})([0-9]{1,7})"')
_CELL_REF = re.compile(_CELL_REF_BYTES.pattern.decode())  # the same, on text
_ANY_CELL = re.compile(r"<c[\s/>]")
_HEADS = re.compile(r'<c r="([A-Z]{1,3})[0-9]{1,7}"( s="[0-9]{1,9}")?'
                    r'(?: t="[A-Za-z]{1,9}")?(/>|><)')
_SIMPLE_CELL = re.compile(r'(<c r="[A-Z]{1,3}[0-9]{1,7}"(?: s="([0-9]{1,9})")?)'
                          r'(?: t="[A-Za-z]{1,9}")?(/?)>')
_SPANS = re.compile(r'\sspans="([^"]*)"')
_TYPED_FORMULA = re.compile(rb"<f\s[^>]*\bt\s*=")
_PREFIXED_TAG = re.compile(rb"</?[A-Za-z_][\w.-]*:")
_FORMULA_TAG = re.compile(r"<f[\s/>]")
_DIMENSION = re.compile(r'(<dimension\b[^>]*?\sref=")([^"]*)(")')
_DECLARATION_ENCODING = re.compile(rb"""<\?xml[^>]*encoding=["']([^"']*)["']""")
_VALUE_NAMES = frozenset(("t", "cm", "vm"))
_AFTER_ROW_NAME = (b" ", b"\t", b"\r", b"\n", b"/", b">")
_FLOATS = frozenset((float, type(None)))
_UNUSUAL = re.compile(rb"<[!?]")
# consecutive fresh line rows spliced at once: at least MIN (fewer: one by one), at most MAX
# (a run with an odd row goes row by row: a run's checks cost its length once)
FRESH_RUN_MIN, FRESH_RUN_MAX = 8, 256

Write = tuple[int, str | None, str | None]  # column, value markup + "</c>" (None: empty), cell


@dataclass
class Spliced:
    data: bytes | None  # None: nothing changed
    formulas_removed: bool


class _Unusual(Exception):  # an internal signal: it never leaves this module
    """The sheet leaves the usual shape: the tree patcher takes it."""


def splice_sheet(sheet: str, data: bytes, plan: _SheetPlan) -> Spliced | None:
    """``data`` (a worksheet part lxml has parsed) with ``plan`` applied; None when the sheet
    is not of the usual shape (the caller patches the tree). Raises what the tree patcher
    raises for a value a cell cannot hold."""
    if not _usual(data):
        return None
    start = data.find(b"<sheetData>")
    end = data.rfind(b"</sheetData>")
    if start < 0 or end < start or data.count(b"<sheetData") != 1:
        return None
    start += len(b"<sheetData>")
    body = data[start:end]
    head_bytes = data[:start]
    # a worksheet (not a dialog sheet), its columns and dimension in double quotes, no
    # namespace declared or prefix used among the cells
    if b"<worksheet" not in head_bytes or b"='" in head_bytes or b"xmlns" in body \
            or _PREFIXED_TAG.search(body):
        return None
    head = head_bytes.decode("utf-8")
    try:
        splicer = _Splicer(sheet, head, plan)
        new_body = splicer.body(body)
    except _Unusual:
        return None
    if not splicer.changed:
        return Spliced(None, splicer.formulas_removed)
    return Spliced(splicer.dimension(head).encode("utf-8") + new_body + data[end:],
                   splicer.formulas_removed)


def _usual(data: bytes) -> bool:
    if not data.startswith(b"<"):
        return False  # a byte order mark or leading space: let the tree patcher read it
    after = 0
    if data.startswith(b"<?xml"):
        declared = _DECLARATION_ENCODING.match(data[:200])
        if declared and declared.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
            return False
        after = 2
    # comments, CDATA, a DOCTYPE, processing instructions; shared, array and data-table
    # formulas (any formula with a type: a superset)
    return _UNUSUAL.search(data, after) is None and _TYPED_FORMULA.search(data) is None


class _Splicer:
    def __init__(self, sheet: str, head: str, plan: _SheetPlan) -> None:
        self.sheet = sheet
        self.plan = plan
        self.changed = False
        self.formulas_removed = False
        self.extent: list[int] | None = None  # top, left, bottom, right of the written cells
        self.column_style = _ColumnStyles(_column_specs(head)).attribute
        self.text_tails: dict[str, str | None] = {}
        self.columns_of: dict[str, int] = {}  # column letters -> number, for this sheet
        self.columns_of_bytes: dict[bytes, int] = {}
        self.texts: dict[str, _Encoded | None] = {}
        self.blocks = [_RenderedBlock(self, block) for block in plan.blocks]

    def text_tail(self, text: str, row: int, col: int) -> str | None:
        """The value markup of a text (checked, escaped), once per distinct text."""
        tail = self.text_tails[text] = _tail(_encode_cached(text, self.sheet, (row, col),
                                                            self.texts))
        return tail

    # -- the rows

    def body(self, body: bytes) -> bytes:
        """The rows of ``<sheetData>`` with the plan applied: untouched rows as they are."""
        plan = self.plan
        areas = plan.clear
        single = plan.rows
        block_rows: dict[int, list[tuple[_RenderedBlock, int]]] = {}
        for block in self.blocks:
            for i, row in enumerate(block.rows):
                block_rows.setdefault(row, []).append((block, i))
        wanted = set(single).union(block_rows)  # rows written (maybe new)
        # rows one block alone writes, nothing else: a run of them may be spliced at once
        alone = {row for row, entries in block_rows.items() if len(entries) == 1}.difference(
            single)
        pieces: list[bytes] = []
        kept_from = 0  # start of the original text not yet copied
        previous = 0
        new_rows = sorted(wanted)
        next_new = 0  # index in new_rows of the first row not yet met
        last_end = 0
        find = body.find
        while True:
            at = find(b"<row", last_end)
            if at < 0:
                break
            if at != last_end and not body[last_end:at].isspace():
                raise _Unusual  # text or another element between rows
            close = find(b">", at)
            if close < 0 or body[at + 4:at + 5] not in _AFTER_ROW_NAME:
                raise _Unusual  # <rows…>, or the text ends
            if body[close - 1] == 47:  # "/": an empty row
                attributes, content, end = body[at + 4:close - 1], b"", close + 1
            else:
                end = find(b"</row>", close)
                if end < 0:
                    raise _Unusual
                attributes, content, end = body[at + 4:close], body[close + 1:end], end + 6
            last_end = end
            if attributes.startswith(b' r="') and (quote := attributes.find(b'"', 4)) > 4 \
                    and attributes[4:quote].isdigit() and attributes[4] != 48:  # not "0…"
                number = int(attributes[4:quote])
            else:
                number_match = _ROW_NUMBER.search(attributes)
                if number_match is None:
                    raise _Unusual
                number = int(number_match.group(1))
            if number <= previous or number > MAX_ROW:
                raise _Unusual  # the tree patcher tells which row
            previous = number
            while next_new < len(new_rows) and new_rows[next_new] < number:
                missing = new_rows[next_new]
                next_new += 1
                new_row = self.new_row(missing, self.writes(missing, single, block_rows))
                if new_row:
                    pieces.append(body[kept_from:at])
                    kept_from = at
                    pieces.append(new_row.encode())
            if next_new < len(new_rows) and new_rows[next_new] == number:
                next_new += 1
            clears = [(a.left, a.right) for a in areas if a.top <= number <= a.bottom] \
                if areas else []
            entries = block_rows.get(number)
            if entries is None and number not in single and not clears:
                continue
            encoded = None
            if number in alone:
                fresh = self.fresh_rows(body, at, number, entries[0], alone)  # type: ignore
                if fresh is not None:
                    text, last_end, count = fresh
                    pieces.append(body[kept_from:at])
                    pieces.append(text)
                    kept_from = last_end
                    previous = number + count - 1
                    next_new += count - 1  # those rows were wanted, and met
                    self.changed = True
                    continue
            if entries is not None and len(entries) == 1 and number not in single:
                encoded = self.fresh_row(number, attributes, content, entries[0], clears)
                if encoded is None:
                    encoded = self.block_row(number, attributes.decode(), content.decode(),
                                             entries[0], clears)
            if encoded is None:
                writes = self.writes(number, single, block_rows)
                encoded = self.row(number, attributes.decode(), content.decode(), writes,
                                   clears).encode()
            if len(encoded) != end - at or encoded != body[at:end]:
                pieces.append(body[kept_from:at])
                pieces.append(encoded)
                kept_from = end
                self.changed = True
        if body[last_end:].strip():
            raise _Unusual
        tail_rows = []
        for missing in new_rows[next_new:]:
            new_row = self.new_row(missing, self.writes(missing, single, block_rows))
            if new_row:
                tail_rows.append(new_row.encode())
        if tail_rows:
            pieces.append(body[kept_from:last_end])
            pieces.extend(tail_rows)
            kept_from = last_end
        if not pieces:
            return body
        pieces.append(body[kept_from:])
        return b"".join(pieces)

    def fresh_rows(self, body: bytes, at: int, number: int, entry: tuple[_RenderedBlock, int],
                   alone: set[int]) -> tuple[bytes, int, int] | None:
        """(new text, end, count) of the rows from ``at`` (row ``number`` first) when they
        are :meth:`fresh_row`'s rows, back to back, with consecutive numbers, that the block
        alone writes: each gets its run before its ``</row>``, checked and joined for all
        the rows at once. None (the rows are then taken one by one) when fewer than
        ``FRESH_RUN_MIN`` such rows follow, or one of the next ``FRESH_RUN_MAX`` is not as
        usual: a ``spans``
        attribute, another attribute first, an empty row, a cell without its reference
        first, of another row, out of order or at the block's columns, anything after the
        last cell."""
        block, i = entry
        runs = block.encoded_runs
        if runs is None or number < block.one_by_one_until:
            return None
        rows = block.rows
        count = 0
        while count < FRESH_RUN_MAX and i + count < len(rows) \
                and rows[i + count] == number + count and rows[i + count] in alone \
                and runs[i + count]:
            count += 1
        if count < FRESH_RUN_MIN:
            return None
        block.one_by_one_until = number + count  # unless the run is taken below
        end = at
        find = body.find
        for _ in range(count):
            end = find(b"</row>", end)
            if end < 0:
                return None
            end += 6
        text = body[at:end]
        parts = text.split(b"</row>")
        parts.pop()  # after the last </row>: nothing
        if text.count(b"<row") != count or text.count(b"</row><row") != count - 1 \
                or b' spans="' in text or b"<extLst" in text \
                or _ROW_FIRST_NUMBER.findall(text) != block.number_bytes[i:i + count]:
            return None
        refs = _CELL_REF_BYTES.findall(text)
        if len(refs) != text.count(b"<c"):
            return None
        cols = self.ref_columns(refs)
        digits = list(map(itemgetter(1), refs))
        last_row = number + count - 1  # cleared columns, like the block's, must hold no cell
        touched_from = min([block.first_col, *(area.left for area in self.plan.clear
                                               if area.top <= last_row and area.bottom >= number)])
        less = int.__lt__
        first = 0
        for part, suffix in zip(parts, block.number_bytes[i:i + count], strict=True):
            cells = part.count(b"<c")
            if not cells:
                if part.find(b">") != len(part) - 1:  # its start tag alone
                    return None
                continue
            last = first + cells
            row_cols = cols[first:last]
            if not part.endswith((b"</c>", b"/>")) or row_cols[-1] >= touched_from \
                    or row_cols[0] < 1 or digits[first:last].count(suffix) != cells \
                    or not all(map(less, row_cols, row_cols[1:])):
                return None
            first = last
        block.one_by_one_until = 0
        closing = [b"</row>"] * count
        pieces: list[bytes] = [b""] * (3 * count)
        pieces[0::3], pieces[1::3], pieces[2::3] = parts, runs[i:i + count], closing
        self.extent = _grown(self.extent, number, block.first_written, block.last_written)
        self.extent = _grown(self.extent, number + count - 1, block.first_written,
                             block.last_written)
        return b"".join(pieces), end, count

    def ref_columns(self, refs: list[tuple[bytes, bytes]]) -> list[int]:
        """The column number of each (letters, digits) reference (0: not a column)."""
        known = self.columns_of_bytes
        try:
            return [known[letters] for letters, _ in refs]
        except KeyError:
            return [known.setdefault(letters, column_number(letters.decode()) or 0)
                    for letters, _ in refs]

    def fresh_row(self, number: int, attributes: bytes, content: bytes,
                  entry: tuple[_RenderedBlock, int], clears: list[tuple[int, int]]
                  ) -> bytes | None:
        """The most usual row, on its bytes: a line row written for the first time (its
        cells all left of the block's, which it gets as one run of new cells). None for any
        other row."""
        block, i = entry
        runs = block.encoded_runs
        if runs is None or not runs[i]:
            return None
        touched_from = block.first_col
        if clears:
            touched_from = min(touched_from, *(left for left, _ in clears))
        if content:
            refs = _CELL_REF_BYTES.findall(content)
            # every cell has its reference first ("<c" also starts rich text's <color>,
            # <charset>…: such a row takes the longer way)
            if not refs or len(refs) != content.count(b"<c") \
                    or not content.endswith((b"</c>", b"/>")) or b"<extLst" in content:
                return None
            cols = self.ref_columns(refs)
            suffix = str(number).encode()
            if cols[-1] >= touched_from or cols[0] < 1 \
                    or [digits for _, digits in refs].count(suffix) != len(refs) \
                    or not all(map(int.__lt__, cols, cols[1:])):
                return None
        return self.with_run(number, attributes, content, block, i, ())

    def with_run(self, number: int, attributes: bytes, content: bytes, block: _RenderedBlock,
                 i: int, replaced: Sequence[int]) -> bytes:
        """Row ``number``: ``content`` then the block's run of cells for it (``replaced``:
        the existing cells the run stands for; the others are new, and ``spans`` goes when
        one falls outside it)."""
        run = block.encoded_runs[i] if block.encoded_runs is not None else b""
        if not run:
            return b"<row" + attributes + (b">" + content + b"</row>" if content else b"/>")
        if b' spans="' in attributes:
            attributes = _without_spans(attributes.decode(), [
                col for col in block.row_cols(i) if col not in replaced]).encode()
        # the union of the rows' extents is the block's written columns over its rows
        self.extent = _grown(self.extent, number, block.first_written, block.last_written)
        return b"<row" + attributes + b">" + content + run + b"</row>"

    def block_row(self, number: int, attributes: str, content: str,
                  entry: tuple[_RenderedBlock, int], clears: list[tuple[int, int]]) -> bytes:
        """A row that one block writes, when :meth:`fresh_row` did not take it: one whose
        cells are all left of the block's, or a line row processed before whose computed
        cells are exactly the block's (its run then stands for them); any other row cell by
        cell (:meth:`row`)."""
        block, i = entry
        touched_from = min([block.first_col, *(left for left, _ in clears)])
        cols = self.cell_columns(content, number)
        replaced: list[int] = []  # existing cells the run stands for
        if block.encoded_runs is not None and _ends_with_cell(content, bool(cols)):
            if not cols or cols[-1] < touched_from:
                return self.with_run(number, attributes.encode(), content.encode(), block, i,
                                     replaced)
            prefix = self.rewritten_prefix(content, number, cols, touched_from, block, i)
            if prefix is not None:
                replaced = cols[bisect_left(cols, touched_from):]
                return self.with_run(number, attributes.encode(), prefix.encode(), block, i,
                                     replaced)
        return self.row(number, attributes, content, block.row_writes(i), clears,
                        cols).encode()

    def writes(self, number: int, single: dict[int, dict[int, _Value]],
               block_rows: dict[int, list[tuple[_RenderedBlock, int]]]) -> list[Write]:
        """What row ``number`` gets, in column order."""
        writes: list[Write] = []
        for block, i in block_rows.get(number, ()):
            writes.extend(block.row_writes(i))
        cells = single.get(number)
        if cells:
            writes.extend((col, _tail(value), None) for col, value in cells.items())
        if len(writes) > 1 and (cells or len(block_rows.get(number, ())) > 1):
            writes.sort(key=itemgetter(0))
        return writes

    def new_row(self, number: int, writes: list[Write]) -> str:
        """A row the sheet does not have: ``<row r="…">`` and its written cells (none: "")."""
        cells = [self.new_cell(number, col, tail, full, "")
                 for col, tail, full in writes if tail is not None]
        if not cells:
            return ""
        self.changed = True
        self.grow(number, writes)
        return f'<row r="{number}">{"".join(cells)}</row>'

    def new_cell(self, number: int, col: int, tail: str, full: str | None,
                 row_style: str) -> str:
        if full is not None:
            return full
        style = self.column_style(col)
        return f'<c r="{column_letters(col)}{number}"{row_style if style is None else style}{tail}'

    def grow(self, number: int, writes: list[Write]) -> None:
        cols = [col for col, tail, _ in writes if tail is not None]
        if not cols:
            return
        self.extent = _grown(self.extent, number, cols[0], cols[-1])

    def rewritten_prefix(self, content: str, number: int, cols: list[int], touched_from: int,
                         block: _RenderedBlock, i: int) -> str | None:
        """The row's content before its first touched cell, when every touched cell is one
        the block rewrites, with its column's style and nothing else (the cells of an
        earlier run of ``process``): the block's run then stands for all of them. None for
        any other row."""
        k = bisect_left(cols, touched_from)
        first = content.find(f'<c r="{column_letters(cols[k])}{number}"')
        if first < 0:
            return None
        rest = content[first:]
        heads = _HEADS.findall(rest)
        if len(heads) != len(cols) - k:
            return None
        row_cols = block.row_cols(i)
        if not set(cols[k:]) <= set(row_cols):
            return None
        style_of = self.column_style
        if any(style != style_of(col) for (_, style, _), col in zip(heads, cols[k:],
                                                                      strict=True)):
            return None
        if not all(piece.endswith(("</c>", "/>")) for piece in rest.split('<c r="')[1:]):
            return None
        if _FORMULA_TAG.search(rest):
            self.formulas_removed = True
        return content[:first]

    def cell_columns(self, content: str, number: int) -> list[int]:
        """The columns of a row's cells, checked as the tree patcher checks them (each cell
        with its reference, in this row, in column order): _Unusual otherwise."""
        if not content:
            return []
        refs = _CELL_REF.findall(content)
        if len(refs) != len(_ANY_CELL.findall(content)):
            raise _Unusual  # a reference missing or not first: the tree patcher writes it
        suffix = str(number)
        known = self.columns_of
        cols = []
        for letters, digits in refs:
            col = known.get(letters)
            if col is None:
                col = known[letters] = column_number(letters) or 0
            if digits != suffix or col == 0:
                raise _Unusual
            cols.append(col)
        if not all(map(int.__lt__, cols, cols[1:])):
            raise _Unusual
        return cols

    def row(self, number: int, attributes: str, content: str, writes: list[Write],
            clears: list[tuple[int, int]], cols: list[int] | None = None) -> str:
        """Row ``number`` with its clears then its writes, cell by cell as the tree patcher
        does: clears first (a cleared cell keeps its element only for its style, and a
        write then makes a new cell where one went), then each write (an existing cell
        keeps its attributes but its value's, a new one takes its column's style, else its
        row's)."""
        if cols is None:
            cols = self.cell_columns(content, number)
        touched_from = min(writes[0][0] if writes else MAX_COL + 1,
                           min((left for left, _ in clears), default=MAX_COL + 1))
        starts = ([m.start() for m in _ANY_CELL.finditer(content)] if cols else [])
        k = bisect_left(cols, touched_from)  # the first existing cell touched, maybe
        out: list[str] = [content[:starts[k]] if k < len(starts) else content]
        if writes and not _ends_with_cell(content, bool(cols)):
            raise _Unusual  # new cells could go after something that is not a cell
        new_cols: list[int] = []
        row_style: list[str] = []  # read with the first new cell, as the tree patcher does

        def add(col: int, tail: str, full: str | None) -> None:
            if not row_style:
                row_style.append(self._row_style(attributes))
            out.append(self.new_cell(number, col, tail, full, row_style[0]))
            new_cols.append(col)

        w, count = 0, len(writes)
        for i in range(k, len(starts)):
            col = cols[i]
            while w < count and writes[w][0] < col:
                new_col, new_tail, new_full = writes[w]
                w += 1
                if new_tail is not None:
                    add(new_col, new_tail, new_full)
            segment = content[starts[i]:starts[i + 1] if i + 1 < len(starts) else len(content)]
            tail = full = None
            written = w < count and writes[w][0] == col
            if written:
                _, tail, full = writes[w]
                w += 1
            cleared = any(left <= col <= right for left, right in clears)
            if not written and not cleared:
                out.append(segment)
                continue
            head, styled, formula = _touched_cell(segment)
            if formula:
                self.formulas_removed = True
            if tail is None:  # emptied: the element stays only for its style
                if styled:
                    out.append(head + "/>")
            elif cleared and not styled:  # it went with the clear: the write makes it anew
                add(col, tail, full)
            else:
                out.append(head + tail)
        for new_col, new_tail, new_full in writes[w:]:
            if new_tail is not None:
                add(new_col, new_tail, new_full)
        if new_cols and ' spans="' in attributes:
            attributes = _without_spans(attributes, new_cols)
        self.grow(number, writes)
        return self._row_text(attributes, "".join(out))

    @staticmethod
    def _row_text(attributes: str, content: str) -> str:
        return f"<row{attributes}>{content}</row>" if content else f"<row{attributes}/>"

    @staticmethod
    def _row_style(attributes: str) -> str:
        """``' s="…"'`` for a new cell of the row when its column has no style."""
        parsed = _attributes(attributes)
        return _row_style_attribute(parsed.get("customFormat"), _unescaped(parsed.get("s")))

    # -- the dimension

    def dimension(self, head: str) -> str:
        """``head`` with ``<dimension ref>`` grown to the written cells (as the tree patcher
        grows it: unchanged when it does not parse)."""
        if self.extent is None:
            return head
        match = _DIMENSION.search(head)
        if match is None:
            return head
        current = _parse_area(match.group(2))
        if current is None:
            return head
        wanted = current.union(_Area(*self.extent))
        if wanted == current:
            return head
        return head[:match.start(2)] + str(wanted) + head[match.end(2):]


class _RenderedBlock:
    """A block's cells as markup, column by column: in a column with a style, each row's
    whole new cell; in one without (its new cells take their row's style), each row's value
    markup only. None where the block empties the cell."""

    def __init__(self, splicer: _Splicer, block: CellBlock) -> None:
        self.rows = block.rows
        self.numbers = numbers = [str(r) for r in block.rows]
        self.number_bytes = [n.encode() for n in numbers]
        self.one_by_one_until = 0  # its rows before this one go one by one (an odd run)
        self.columns = sorted(block.columns)
        self.cells: list[list[str | None]] = []
        self.head_lengths: list[int | None] = []  # a whole cell's start without its row
        for col in self.columns:
            values = block.columns[col]
            render = _formula_cells if isinstance(values, FormulaColumn) else _value_cells
            style = splicer.column_style(col)
            if style is None:
                heads = [""] * len(numbers)
                self.head_lengths.append(None)
            else:
                letters = column_letters(col)
                heads = [f'<c r="{letters}{n}"{style}' for n in numbers]
                self.head_lengths.append(len(f'<c r="{letters}"{style}'))
            self.cells.append(render(splicer, col, block.rows, numbers, values, heads))
        self.first_col = self.columns[0] if self.columns else MAX_COL + 1
        written = [col for col, cells in zip(self.columns, self.cells, strict=True)
                   if any(c is not None for c in cells)]
        self.first_written = written[0] if written else MAX_COL + 1
        self.last_written = written[-1] if written else 0
        # each row's new cells as one text, when every written cell has its column's style
        self.encoded_runs: list[bytes] | None = None
        if all(splicer.column_style(col) is not None for col in written):
            self.encoded_runs = [
                "".join(filter(None, cells)).encode()
                for cells in zip(*self.cells, strict=True)] if self.cells \
                else [b""] * len(self.rows)

    def row_cols(self, i: int) -> list[int]:
        """The columns row ``i`` writes a value to."""
        return [col for col, cells in zip(self.columns, self.cells, strict=True)
                if cells[i] is not None]

    def row_writes(self, i: int) -> list[Write]:
        """Row ``i``'s (column, value markup, whole new cell or None)."""
        digits = len(self.numbers[i])
        writes: list[Write] = []
        for col, cells, head in zip(self.columns, self.cells, self.head_lengths, strict=True):
            cell = cells[i]
            if cell is None or head is None:
                writes.append((col, cell, None))
            else:
                writes.append((col, cell[head + digits:], cell))
        return writes


def _value_cells(splicer: _Splicer, col: int, rows: list[int], numbers: list[str],
                 values: list[Any], heads: list[str]) -> list[str | None]:
    """A column of values, each after its head."""
    kinds = set(map(type, values))
    if kinds <= _FLOATS and all(map(math.isfinite, filter(_not_none, values))):
        return [None if v is None else f"{h}><v>{v!r}</v></c>"
                for h, v in zip(heads, values, strict=True)]
    text_tails = splicer.text_tails
    out: list[str | None] = []
    append = out.append
    isfinite = math.isfinite
    for row, value, head in zip(rows, values, heads, strict=True):
        if value is None:
            append(None)
        elif type(value) is float and isfinite(value):
            append(f"{head}><v>{value!r}</v></c>")
        elif type(value) is str:
            tail = text_tails[value] if value in text_tails \
                else splicer.text_tail(value, row, col)
            append(head + tail if tail is not None else None)
        else:
            tail = _tail(_encode_cached(value, splicer.sheet, (row, col), splicer.texts))
            append(None if tail is None else head + tail)
    return out


def _formula_cells(splicer: _Splicer, col: int, rows: list[int], numbers: list[str],
                   values: FormulaColumn, heads: list[str]) -> list[str | None]:
    """A column of formulas from their templates, each after its head: each distinct
    template checked and escaped once, then filled in with each row's number."""
    isfinite = math.isfinite
    texts = splicer.texts
    escaped: dict[str, str | None] = {}
    mark = ROW_MARK
    out: list[str | None] = []
    append = out.append
    for row, number, template, cached, head in zip(rows, numbers, values.templates,
                                                    values.cached, heads, strict=True):
        if template is None:
            if cached is None:
                append(None)
            elif type(cached) is float and isfinite(cached):
                append(f"{head}><v>{cached!r}</v></c>")
            else:
                tail = _tail(_encode_cached(cached, splicer.sheet, (row, col), texts))
                append(None if tail is None else head + tail)
            continue
        markup = escaped.get(template, "")
        if markup == "":
            markup = escaped[template] = _template_markup(splicer, template, row, col)
        if markup is not None and type(cached) is float and isfinite(cached):
            append(f"{head}><f>{markup.replace(mark, number)}</f><v>{cached!r}</v></c>")
        elif markup is not None and type(cached) is str:
            append(f'{head} t="str"><f>{markup.replace(mark, number)}</f>'
                   f"<v>{_cached_text(cached)[1]}</v></c>")
        else:  # another cached value, or a formula near the length limit: one by one
            formula = Formula(template.replace(ROW_MARK, number), cached)
            append(head + (_tail(_encode_cached(formula, splicer.sheet, (row, col), texts))
                           or ""))
    return out


def _template_markup(splicer: _Splicer, template: str, row: int, col: int) -> str | None:
    """``template`` as element content, checked as a formula of its longest row number would
    be; None when that is near Excel's length limit (each cell is then checked on its
    own)."""
    if len(template.replace(ROW_MARK, "1048576")) > MAX_FORMULA_LENGTH:
        return None
    _encode_cached(Formula(template.replace(ROW_MARK, str(row)), None), splicer.sheet,
                   (row, col), splicer.texts)  # raises for an invalid formula
    return _xml_text(template)


def _touched_cell(segment: str) -> tuple[str, bool, bool]:
    """A cell the plan clears or writes: its start tag without its value's attributes (and
    without its ``>``), whether it has a style, whether it holds a formula. _Unusual for a
    cell followed by anything (whitespace, another element) or holding text of its own."""
    simple = _SIMPLE_CELL.match(segment)
    if simple is not None:
        head, style, closing = simple.group(1), simple.group(2), simple.group(3)
    else:
        close = segment.find(">")
        closing = "/" if segment[close - 1] == "/" else ""
        attributes = _attributes(segment[2:close - len(closing)])
        head, style = _head(attributes), attributes.get("s")
    if closing:
        if not segment.endswith("/>") or segment.find(">") != len(segment) - 1:
            raise _Unusual
        return head, style is not None, False
    inner = segment[segment.find(">") + 1:]
    if not inner.endswith("</c>") or (inner[0] != "<"):
        raise _Unusual
    return head, style is not None, _FORMULA_TAG.search(inner) is not None


def _ends_with_cell(content: str, has_cells: bool) -> bool:
    """New cells may go at the end of a row: its content ends with a cell (or is empty);
    an ``<extLst>`` would have to stay last: the tree patcher writes such a row."""
    if "<extLst" in content:
        return False
    return content.endswith(("</c>", "/>")) if has_cells else not content.strip()


def _without_spans(attributes: str, cols: list[int]) -> str:
    """A row's attributes without ``spans`` when a new cell of ``cols`` falls outside it."""
    match = _SPANS.search(attributes)
    if match is None:
        return attributes
    if all(_in_spans(match.group(1), col) for col in cols):
        return attributes
    return attributes[:match.start()] + attributes[match.end():]


def _not_none(value: object) -> bool:
    return value is not None


def _tail(value: _Value) -> str | None:
    """A single cell's value markup and end tag (None: the cell is emptied)."""
    if value is None:
        return None
    if type(value) is float:
        return f"><v>{value!r}</v></c>"
    return _value_markup(value, "") + "</c>"


def _attributes(text: str) -> dict[str, str]:
    """A start tag's attributes, in double quotes: _Unusual otherwise."""
    if not _ATTRIBUTES.fullmatch(text):
        raise _Unusual
    pairs = _ATTRIBUTE.findall(text)
    attributes = dict(pairs)
    if len(attributes) != len(pairs):
        raise _Unusual
    return attributes


def _head(attributes: dict[str, str]) -> str:
    """A written cell's start tag without its ``>``: its attributes but the value's, in
    their order."""
    return "<c" + "".join(f' {name}="{value}"' for name, value in attributes.items()
                          if name not in _VALUE_NAMES)


def _column_specs(head: str) -> list[tuple[int, int, str | None]]:
    """``<cols>``'s (min, max, style), as the tree patcher reads them."""
    specs = []
    for match in re.finditer(r"<col\b([^>]*?)/?>", head):
        attributes = _attributes(match.group(1).rstrip("/"))
        with suppress(KeyError, ValueError):
            specs.append((int(attributes["min"]), int(attributes["max"]),
                          _unescaped(attributes.get("style"))))
    return specs


def _unescaped(value: str | None) -> str | None:
    """An attribute's value as lxml reads it, when it is plain; _Unusual for a reference or
    a white space lxml would normalise."""
    if value is not None and any(c in value for c in "&\t\n\r"):
        raise _Unusual
    return value
