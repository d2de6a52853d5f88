"""Cells a later version writes (the Nature column after the line table, Synthèse's pending
count and largest changes) hold the user's own data in workbooks made before: kept, said."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from carbonclap_xl.workbook import layout as L
from carbonclap_xl.workbook.port import Formula
from carbonclap_xl.xlsx.files import process_workbook, write_processed
from tests.wbhelpers import make_workbook, sheet_values, value_at

NATURE = L.NATURE_LETTER


def _edit(src: Path, dst: Path, **cells: object) -> Path:
    wb = openpyxl.load_workbook(src)
    for key, value in cells.items():
        sheet, ref = key.split("__")
        wb[sheet][ref] = value
    wb.save(dst)
    return dst


def test_notes_in_the_nature_column_are_kept(tmp_path: Path) -> None:
    base = make_workbook(tmp_path / "film.xlsx")
    src = _edit(base, tmp_path / "notes.xlsx", **{f"Lieux__{NATURE}5": "ma note importante",
                                                   f"Lieux__{NATURE}6": 42})
    processed = process_workbook(src)
    taken = [i for i in processed.issues if str(i.code) == "NATURE_COLUMN_TAKEN"]
    assert [(i.sheet, i.cell, str(i.severity)) for i in taken] == [
        ("Lieux", f"{NATURE}{L.HEADER_ROW}", "warning")]
    assert processed.result.total_kg == process_workbook(base).result.total_kg
    out = tmp_path / "out.xlsx"
    write_processed(processed, src, out)
    lieux = sheet_values(out, "Lieux")
    assert value_at(lieux, f"{NATURE}5") == "ma note importante"
    assert value_at(lieux, f"{NATURE}6") == 42
    # without every nature column, Synthèse's by-nature rows are figures, not formulas
    plan = processed.plan()
    cell = plan.get(L.SHEET_SYNTHESE, f"B{L.SYN_NATURE_FIRST_ROW}")
    assert not isinstance(cell, Formula)
    # the other sheets still get their nature column
    assert value_at(sheet_values(out, "Régie"), f"{NATURE}{L.HEADER_ROW}") == "Nature"


def test_a_nature_column_of_ours_is_still_written(tmp_path: Path) -> None:
    src = make_workbook(tmp_path / "film.xlsx")
    once = tmp_path / "once.xlsx"
    write_processed(process_workbook(src), src, once)
    again = process_workbook(once)  # nature ids only: ours, rewritten without a word
    assert not [i for i in again.issues if str(i.code) == "NATURE_COLUMN_TAKEN"]
    assert "Lieux" in again.data.nature_owned


def test_notes_where_synthese_now_writes_are_kept(tmp_path: Path) -> None:
    base = make_workbook(tmp_path / "film.xlsx")
    title = f"A{L.SYN_CHANGES_TITLE_ROW}"
    src = _edit(base, tmp_path / "notes.xlsx", **{
        f"{L.SHEET_SYNTHESE}__{L.SYN_PENDING_CELL}": "Validé par la production le 3/12",
        f"{L.SHEET_SYNTHESE}__{title}": "Mes commentaires",
        f"{L.SHEET_SYNTHESE}__B{L.SYN_CHANGES_FIRST_ROW + 1}": 123})
    processed = process_workbook(src)
    taken = {i.cell: i for i in processed.issues if str(i.code) == "SYNTHESE_CELLS_TAKEN"}
    assert set(taken) == {L.SYN_PENDING_CELL, title}
    out = tmp_path / "out.xlsx"
    write_processed(processed, src, out)
    syn = sheet_values(out, L.SHEET_SYNTHESE)
    assert value_at(syn, L.SYN_PENDING_CELL) == "Validé par la production le 3/12"
    assert value_at(syn, title) == "Mes commentaires"
    assert value_at(syn, f"B{L.SYN_CHANGES_FIRST_ROW + 1}") == 123
    assert value_at(syn, f"B{L.SYN_POSTE_TOTAL_ROW}") > 0  # the rest is written
    # a fresh template's cells are ours: nothing said
    assert not [i for i in process_workbook(base).issues
                if str(i.code) == "SYNTHESE_CELLS_TAKEN"]


def test_a_1_0_workbook_processed_twice_keeps_its_cells_ours(tmp_path: Path) -> None:
    """Synthèse's pending formula at the 1.0 letters is ours: nothing reported as taken."""
    from tests.test_versions import make_v1_workbook

    src = make_v1_workbook(tmp_path / "v1.xlsx")
    once = tmp_path / "once.xlsx"
    write_processed(process_workbook(src), src, once)
    again = process_workbook(once)
    assert not [i for i in again.issues
                if str(i.code) in ("SYNTHESE_CELLS_TAKEN", "NATURE_COLUMN_TAKEN")]
