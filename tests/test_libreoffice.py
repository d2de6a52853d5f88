"""LibreOffice as a second real spreadsheet client: it opens our files, and we process its."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbonclap_xl.workbook import layout as L
from carbonclap_xl.xlsx.files import process_workbook, write_processed
from tests.wbhelpers import SOFFICE, libreoffice_resave, make_workbook, sheet_values, value_at
from tools.build_template import TEMPLATE_PATH

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) not installed")]


def test_template_and_processed_file_open_in_libreoffice(tmp_path: Path) -> None:
    src = make_workbook(tmp_path / "in.xlsx")
    out = tmp_path / "out.xlsx"
    write_processed(process_workbook(src), src, out)
    for path in (TEMPLATE_PATH, out):
        pdf = libreoffice_resave(path, tmp_path / f"pdf-{path.stem}", "pdf")
        assert pdf.stat().st_size > 10_000
    resaved = libreoffice_resave(out, tmp_path / "lo")
    assert sheet_values(resaved, "Lieux")[L.FIRST_DATA_ROW - 1][8] == pytest.approx(
        sheet_values(out, "Lieux")[L.FIRST_DATA_ROW - 1][8])


def test_process_a_file_saved_by_libreoffice(tmp_path: Path) -> None:
    ours = make_workbook(tmp_path / "ours.xlsx")
    theirs = libreoffice_resave(ours, tmp_path / "lo")
    a, b = process_workbook(ours), process_workbook(theirs)
    assert b.result.total_kg.forecast == pytest.approx(a.result.total_kg.forecast)
    assert b.result.total_kg.final == pytest.approx(a.result.total_kg.final)
    assert [str(i.code) for i in b.issues] == [str(i.code) for i in a.issues]
    out = tmp_path / "theirs-out.xlsx"
    write_processed(b, theirs, out)
    syn = sheet_values(out, L.SHEET_SYNTHESE)
    assert value_at(syn, f"B{L.SYN_POSTE_TOTAL_ROW}") == pytest.approx(
        a.result.total_kg.forecast / 1000)
    # LibreOffice's own extension lists survive the surgical write
    import zipfile

    from carbonclap_xl.xlsx.package import sheet_parts

    with zipfile.ZipFile(theirs) as zin, zipfile.ZipFile(out) as zout:
        part = sheet_parts(zin)["Lieux"]
        before, after = zin.read(part), zout.read(part)
    if b"<extLst>" in before:
        start = before.index(b"<extLst>")
        assert before[start:before.index(b"</extLst>") + 9] in after
    # and LibreOffice opens our output of its file
    again = libreoffice_resave(out, tmp_path / "lo2")
    assert value_at(sheet_values(again, L.SHEET_SYNTHESE),
                    f"B{L.SYN_POSTE_TOTAL_ROW}") == pytest.approx(
        a.result.total_kg.forecast / 1000)
