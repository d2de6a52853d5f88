"""The row splicer (``xlsx.rowsplice``) writes what the tree patcher writes.

Random sheets (styled and plain cells, formulas, inline strings, spans, row styles, empty and
missing rows, a few unusual shapes) and random plans (clears, single cells, blocks with
formula columns) go through both; their results must be the same XML once canonicalised,
with the same formula flag, or both refuse. Most cases must take the splicer (else this test
would prove nothing), and a few must be sent back to the tree.
"""

from __future__ import annotations

import os
import random

import pytest
from lxml import etree

from carbonclap_xl.core.errors import WorkbookPatchError
from carbonclap_xl.workbook.port import ROW_MARK, CellBlock, Formula, FormulaColumn
from carbonclap_xl.xlsx import cellxml, rowsplice
from carbonclap_xl.xlsx.package import parse_xml
from carbonclap_xl.xlsx.patch import _patch_tree

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
X14AC = "http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac"
LETTERS = "ABCDEFGHIJKL"


def _cell(rng: random.Random, ref: str) -> str:
    style = f' s="{rng.randint(1, 4)}"' if rng.random() < 0.5 else ""
    kind = rng.random()
    if kind < 0.15:
        return f'<c r="{ref}"{style}/>'
    if kind < 0.45:
        return f'<c r="{ref}"{style}><v>{rng.randint(-5, 500) / 4}</v></c>'
    if kind < 0.7:
        text = rng.choice(["été", "a&amp;b", "x &lt; y", "  espaces ", "_x0041_"])
        return f'<c r="{ref}"{style} t="inlineStr"><is><t>{text}</t></is></c>'
    if kind < 0.85:
        return f'<c r="{ref}"{style}><f>SUM(A1:B2)&gt;0</f><v>1</v></c>'
    if kind < 0.92:
        return f'<c r="{ref}"{style} t="b"><v>1</v></c>'
    return f'<c r="{ref}"{style} t="str"><f>"a"&amp;"b"</f><v>ab</v></c>'


def _sheet(rng: random.Random) -> str:
    cols = "".join(f'<col min="{i}" max="{i}" width="9"'
                   + (f' style="{rng.randint(0, 6)}"' if rng.random() < 0.7 else "") + "/>"
                   for i in range(1, 13) if rng.random() < 0.8)
    rows = []
    for r in sorted(rng.sample(range(1, 30), rng.randint(0, 20))):
        attributes = f' r="{r}"'
        if rng.random() < 0.3:
            attributes += f' spans="1:{rng.randint(1, 12)}"'
        if rng.random() < 0.2:
            attributes += f' s="{rng.randint(0, 5)}" customFormat="1"'
        if rng.random() < 0.2:
            attributes += ' x14ac:dyDescent="0.25"'
        cells = "".join(_cell(rng, f"{LETTERS[c - 1]}{r}")
                        for c in sorted(rng.sample(range(1, 13), rng.randint(0, 6))))
        rows.append(f"<row{attributes}>{cells}</row>" if cells or rng.random() < 0.5
                    else f"<row{attributes}/>")
    body = "".join(rows)
    unusual = rng.random()
    if unusual < 0.04:
        body = body.replace("</c><c", "</c>\n  <c", 1)  # pretty-printed: the tree takes it
    elif unusual < 0.06:
        body = body.replace('<c r="', '<c cm="1" r="', 1)  # reference not first
    dimension = rng.choice(['<dimension ref="A1:C3"/>', '<dimension ref="B2"/>', ""])
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<worksheet xmlns="{MAIN}" xmlns:x14ac="{X14AC}">{dimension}'
            + (f"<cols>{cols}</cols>" if cols else "")
            + f"<sheetData>{body}</sheetData><pageMargins left=\"0.7\"/></worksheet>")


def _value(rng: random.Random) -> object:
    kind = rng.random()
    if kind < 0.3:
        return rng.randint(-1000, 1000) / 8
    if kind < 0.45:
        return rng.choice(["OK", "À vérifier", "a<b & c", "_x0041_", ""])
    if kind < 0.6:
        return None
    if kind < 0.7:
        return rng.choice([True, False, 3, -2])
    if kind < 0.9:
        return Formula(rng.choice(["A1*2", 'IF(B1>0,"x","")', "SUM(A:A)"]),
                       rng.choice([1.5, "OK", "", None]))
    if kind < 0.905:  # what no cell can hold: both refuse
        return rng.choice([float("nan"), "x" * 40_000, Formula("=A1"), object()])
    return 0.1


def _column(rng: random.Random, n: int) -> list[object] | FormulaColumn:
    if rng.random() < 0.4:
        templates = [rng.choice([f"A{ROW_MARK}*2", f'IF(B{ROW_MARK}<>"",1,"")', None])
                     for _ in range(n)]
        cached = [rng.choice([2.5, "OK", "", "À vérifier"]) if t else rng.choice([None, 1.0, "v"])
                  for t in templates]
        return FormulaColumn(templates, cached)
    return [_value(rng) for _ in range(n)]


def _plan(rng: random.Random) -> dict:
    clears = [f"{LETTERS[a - 1]}{t}:{LETTERS[b - 1]}{u}"
              for a, b, t, u in ((*sorted(rng.sample(range(1, 13), 2)),
                                  *sorted(rng.sample(range(1, 35), 2)))
                                 for _ in range(rng.randint(0, 2)))]
    blocks = []
    taken: set[tuple[int, int]] = set()
    if rng.random() < 0.8:
        rows = sorted(rng.sample(range(1, 35), rng.randint(1, 15)))
        first = rng.randint(1, 9)
        columns = {c: _column(rng, len(rows)) for c in range(first, first + rng.randint(1, 4))}
        blocks.append(CellBlock(rows, columns))
        taken = {(r, c) for r in rows for c in columns}
    writes = {}
    for _ in range(rng.randint(0, 6)):
        cell = (rng.randint(1, 34), rng.randint(1, 12))
        if cell not in taken:
            writes[cell] = _value(rng)
    return {"writes": {"S": writes}, "clear": {"S": clears}, "blocks": {"S": blocks}}


def _c14n(data: bytes) -> bytes:
    return etree.tostring(etree.fromstring(data), method="c14n")


def _outcome(run):  # type: ignore[no-untyped-def]
    try:
        return run()
    except WorkbookPatchError as exc:
        return f"refused: {exc}"


def _both(data: bytes, args: dict) -> tuple[object, object, cellxml._SheetPlan | None]:
    """(the splicer's result, the tree patcher's, the plan the tree patched)."""
    def plan() -> cellxml._SheetPlan:
        return cellxml._plan(args["writes"], args["clear"], args["blocks"])["S"]

    parse_xml(data, "sheet.xml")  # as ``patch._patch_sheet`` does first
    by_splice = _outcome(lambda: rowsplice.splice_sheet("S", data, plan()))
    plans: list[cellxml._SheetPlan] = []

    def tree() -> object:
        plans.append(plan())
        return _patch_tree("S", "sheet.xml", data, parse_xml(data, "sheet.xml"), plans[0])

    by_tree = _outcome(tree)
    return by_splice, by_tree, plans[0] if plans else None


@pytest.mark.parametrize("seed", range(int(os.environ.get("SEEDS", "8"))))
def test_the_splicer_writes_what_the_tree_patcher_writes(seed: int) -> None:
    """``SEEDS=300`` for a longer run by hand."""
    rng = random.Random(seed)
    spliced = changed = fell_back = refused = 0
    for _ in range(60):
        data = _sheet(rng).encode()
        by_splice, by_tree, tree_plan = _both(data, _plan(rng))
        if by_splice is None:
            fell_back += 1
            continue
        if isinstance(by_splice, str) or isinstance(by_tree, str):
            assert isinstance(by_splice, str) and isinstance(by_tree, str), (by_splice, by_tree)
            refused += 1
            continue
        assert isinstance(by_splice, rowsplice.Spliced)
        spliced += 1
        changed += by_splice.data is not None
        assert _c14n(by_splice.data or data) == _c14n(by_tree.data or data)  # type: ignore[attr-defined]
        assert tree_plan is not None
        assert (by_splice.formulas_removed == by_tree.formulas_removed  # type: ignore[attr-defined]
                or tree_plan.formulas)
    assert spliced >= 40 and changed >= 30, (spliced, changed, fell_back, refused)


def test_a_block_row_processed_again_is_rewritten_in_one_run() -> None:
    """The cells an earlier run wrote (their column's style, nothing else) are replaced by the
    block's run: the usual second ``process`` of a workbook."""
    head = (f'<worksheet xmlns="{MAIN}"><cols><col min="3" max="4" style="7"/></cols>'
            "<sheetData>")
    before = (head + '<row r="5"><c r="A5" t="inlineStr"><is><t>x</t></is></c>'
              '<c r="C5" s="7"><f>A5*2</f><v>1</v></c><c r="D5" s="7" t="str"><v>a</v></c>'
              '</row></sheetData></worksheet>').encode()
    block = CellBlock([5], {3: FormulaColumn([f"A{ROW_MARK}*3"], [9.0]), 4: ["b"]})
    plan = cellxml._plan({}, {"S": ["C5:D9"]}, {"S": [block]})["S"]
    result = rowsplice.splice_sheet("S", before, plan)
    assert result is not None and result.formulas_removed
    assert b'<c r="C5" s="7"><f>A5*3</f><v>9.0</v></c>' in result.data
    assert b'<c r="D5" s="7" t="inlineStr"><is><t xml:space="preserve">b</t></is></c></row>' \
        in result.data


@pytest.mark.parametrize("shape", [
    '<row r="1"><c r="A1"><v>1</v></c></row><!-- note -->',
    '<row r="1"><c r="A1"><f t="shared" ref="A1:A2" si="0">B1</f><v>1</v></c></row>',
    '<row r="2"><c r="A2"><v>1</v></c></row><row r="1"/>',
    '<row><c r="A1"><v>1</v></c></row>',
    '<row r="1"><c><v>1</v></c></row>',
    '<row r="1"><c r="A1"><x:f t="shared" ref="A1:A2" si="0">B1</x:f></c></row>',
    '<row r="1"><c r="B1"><v>1</v></c><extLst/></row>',
    '<row r="1048577"><c r="A1048577"><v>1</v></c></row>',
])
def test_unusual_sheets_go_back_to_the_tree_patcher(shape: str) -> None:
    """Comments, shared formulas (prefixed too), rows out of order or without their
    reference, a row's extension list (new cells go before it), a row beyond the grid."""
    data = (f'<worksheet xmlns="{MAIN}" xmlns:x="{MAIN}"><sheetData>{shape}</sheetData>'
            "</worksheet>").encode()
    plan = cellxml._plan({"S": {(1, 1): 5.0}}, {}, {})["S"]
    assert rowsplice.splice_sheet("S", data, plan) is None


@pytest.mark.parametrize("head", [
    f"<worksheet xmlns='{MAIN}'><cols><col min='1' max='3' style='5'/></cols>",
    f'<dialogsheet xmlns="{MAIN}">',
])
def test_single_quotes_before_the_rows_or_a_dialog_sheet_go_to_the_tree(head: str) -> None:
    """The splicer reads column styles and the dimension in double quotes only, and writes
    worksheets only."""
    end = head[1:head.index(" ")]
    data = f'{head}<sheetData><row r="1"/></sheetData></{end}>'.encode()
    plan = cellxml._plan({"S": {(1, 1): 5.0}}, {}, {})["S"]
    assert rowsplice.splice_sheet("S", data, plan) is None


def test_rich_text_is_not_taken_for_a_formula() -> None:
    """``<family>`` in a cell's rich text is no ``<f>``: the calculation chain stays."""
    data = (f'<worksheet xmlns="{MAIN}"><sheetData><row r="1"><c r="A1" t="inlineStr"><is>'
            '<r><rPr><family val="2"/></rPr><t>x</t></r></is></c></row></sheetData>'
            "</worksheet>").encode()
    plan = cellxml._plan({"S": {(1, 1): 5.0}}, {}, {})["S"]
    result = rowsplice.splice_sheet("S", data, plan)
    assert result is not None and not result.formulas_removed
    assert b'<c r="A1"><v>5.0</v></c>' in (result.data or b"")


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of each run of rows ``fresh_rows`` splices at once, as it goes."""
    runs: list[int] = []
    real = rowsplice._Splicer.fresh_rows

    def counted(self, *args):  # type: ignore[no-untyped-def]
        result = real(self, *args)
        if result is not None:
            runs.append(result[2])
        return result

    monkeypatch.setattr(rowsplice._Splicer, "fresh_rows", counted)
    return runs


_FRESH_FAULTS = [
    None, "spans", "junk after", "junk alone", "empty row", "other digits", "unordered",
    "at block", "extLst", "attribute first", "whitespace between", "rich text", "gap",
    "blank run", "no cells",
]


def _fresh_sheet(rng: random.Random, first: int, count: int, fault: str | None) -> str:
    """Line rows from ``first``, their cells in columns A to D, the way a filled template's
    are; one row spoilt by ``fault``."""
    bad = first + rng.randrange(count)
    rows = []
    for r in range(first, first + count):
        cells = [f'<c r="A{r}" t="inlineStr"><is><t>activité {r % 7}</t></is></c>',
                 f'<c r="B{r}"><v>{r / 4}</v></c>']
        if r % 3:
            cells.append(f'<c r="D{r}" s="2" t="inlineStr"><is><t>km</t></is></c>')
        attributes = f' r="{r}"'
        if r == bad:
            if fault == "spans":
                attributes += ' spans="1:4"'
            elif fault == "junk after":
                cells.append("texte")
            elif fault == "junk alone":
                cells = ["texte"]
            elif fault == "other digits":
                cells[1] = cells[1].replace(f"B{r}", f"B{r + 1}")
            elif fault == "unordered":
                cells.reverse()
            elif fault == "at block":
                cells.append(f'<c r="F{r}"><v>1</v></c>')
            elif fault == "extLst":
                cells.append("<extLst/>")
            elif fault == "attribute first":
                attributes = f' ht="15" r="{r}"'
            elif fault == "rich text":
                cells[0] = (f'<c r="A{r}" t="inlineStr"><is><r><rPr><color rgb="FF0000FF"/>'
                            "</rPr><t>bleu</t></r></is></c>")
            elif fault == "no cells":
                cells = []
        if r == bad and fault == "gap":
            continue
        if r == bad and fault == "empty row":
            rows.append(f"<row{attributes}/>")
            continue
        rows.append(f"<row{attributes}>{''.join(cells)}</row>")
    separator = "\n" if fault == "whitespace between" else ""
    return (f'<worksheet xmlns="{MAIN}"><dimension ref="A1:D{first + count - 1}"/>'
            '<cols><col min="1" max="4" width="9"/><col min="5" max="7" style="3"/></cols>'
            f"<sheetData><row r=\"1\"><c r=\"A1\"><v>0</v></c></row>"
            f"{separator.join(rows)}</sheetData></worksheet>")


@pytest.mark.parametrize("fault", _FRESH_FAULTS)
def test_a_run_of_fresh_line_rows_is_spliced_at_once_as_the_tree_writes_it(
        fault: str | None, taken: list[int]) -> None:
    """Consecutive line rows written for the first time take one splice for the whole run;
    any row out of the usual sends the run back to the row-by-row path. Either way the XML
    is the tree patcher's."""
    for seed in range(6):
        rng = random.Random(seed)
        first, count = rng.randint(2, 9), rng.randint(20, 60)
        data = _fresh_sheet(rng, first, count, fault).encode()
        rows = list(range(first, first + count))
        blank = fault == "blank run"
        columns = {5: FormulaColumn([f"B{ROW_MARK}*2"] * count,
                                    [rng.random() for _ in rows]),
                   6: [None if blank and i % 9 == 4 else rng.choice(["OK", 1.5, "a<b"])
                       for i in range(count)],
                   7: [rng.random() for _ in rows]}
        # the plan clears the block's columns (as the result plan does), or columns holding
        # cells (the run then goes row by row), or nothing
        clear = [[], [f"E{first}:G{first + count - 1}"],
                 [f"D{first + 3}:E{first + 9}"]][seed % 3]
        args = {"writes": {"S": {(1, 2): 5.0}}, "clear": {"S": clear},
                "blocks": {"S": [CellBlock(rows, columns)]}}
        by_splice, by_tree, _ = _both(data, args)
        if by_splice is None:  # an odd row the splicer leaves to the tree
            assert fault in ("junk after", "junk alone", "other digits", "unordered",
                             "at block", "extLst"), fault
            continue
        assert isinstance(by_splice, rowsplice.Spliced) and by_splice.data is not None
        assert _c14n(by_splice.data) == _c14n(by_tree.data)  # type: ignore[attr-defined]
    if fault in (None, "blank run", "no cells"):
        assert taken, fault


def test_a_long_run_with_an_odd_row_is_spliced_at_once_around_it(taken: list[int]) -> None:
    """A run longer than FRESH_RUN_MAX is taken in parts: the part with a row not as usual
    (spans) goes row by row, the others at once; the XML is the tree patcher's."""
    count = 3 * rowsplice.FRESH_RUN_MAX + 40
    data = _fresh_sheet(random.Random(1), 2, count, "spans").encode()
    rows = list(range(2, 2 + count))
    args = {"writes": {"S": {}}, "clear": {"S": []},
            "blocks": {"S": [CellBlock(rows, {5: [float(r) for r in rows]})]}}
    by_splice, by_tree, _ = _both(data, args)
    assert isinstance(by_splice, rowsplice.Spliced) and by_splice.data is not None
    assert _c14n(by_splice.data) == _c14n(by_tree.data)  # type: ignore[attr-defined]
    assert sum(taken) >= count - rowsplice.FRESH_RUN_MAX and len(taken) >= 2, taken
