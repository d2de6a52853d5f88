"""An error cell (« #REF! », « #N/A », what a paste of values leaves after a failed lookup) is
read as its text and reported, never as a blank (a count of 1, a missing quantity)."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from carbonclap_xl.xlsx.files import process_workbook
from tests.wbhelpers import make_workbook


def test_error_cells_are_reported_at_their_cell(tmp_path: Path) -> None:
    src = make_workbook(tmp_path / "film.xlsx")
    wb = openpyxl.load_workbook(src)
    sheet = wb["Transports"]
    label = "Voiture – gazole (km parcourus par le véhicule)"
    for r, row in enumerate([(label, "#N/A", 110, "km", 2), (label, 100, 110, "km", "#REF!"),
                             ("#N/A", 100, 110, "km", 2)], start=20):
        for c, value in enumerate(row, start=1):
            sheet.cell(r, c, value)  # openpyxl writes "#N/A" as an error cell (t="e")
    wb.save(src)
    found = {(i.cell, str(i.code)) for i in process_workbook(src).issues
             if i.sheet == "Transports"}
    assert {("B20", "QUANTITY_NOT_NUMBER"), ("E21", "COUNT_INVALID"),
            ("A22", "ACTIVITY_UNKNOWN")} <= found


def test_a_date_in_a_quantity_keeps_a_plain_status(tmp_path: Path) -> None:
    """A date typed in a quantity or count cell is an error (reported); its status stays a
    value: a formula would compare the date's text with the cell's serial number and show
    « À recalculer » after every recalculation."""
    import datetime as dt

    from carbonclap_xl.workbook import layout as L
    from carbonclap_xl.workbook.port import Formula

    src = make_workbook(tmp_path / "film.xlsx")
    wb = openpyxl.load_workbook(src)
    wb["Lieux"]["B5"] = dt.datetime(2026, 3, 2)
    wb.save(src)
    processed = process_workbook(src)
    assert ("Lieux", 5) in processed.data.dated_inputs
    status = processed.plan().get("Lieux", f"{L.COLUMN_BY_KEY['status'].letter}5")
    assert status == "Erreur" and not isinstance(status, Formula)
    other = processed.plan().get("Lieux", f"{L.COLUMN_BY_KEY['status'].letter}6")
    assert isinstance(other, Formula)  # the other lines keep their live status
