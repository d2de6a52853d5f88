"""The live workbook: formulas with cached values after processing, read back and checked.

The formulas themselves are evaluated by a real client in ``test_live_libreoffice.py``.
"""

from __future__ import annotations

import math
import re
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from carbonclap_xl.core.errors import WorkbookPatchError
from carbonclap_xl.workbook import formulas as F
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.workbook.port import Formula
from carbonclap_xl.workbook.rules import computed_cell_issues
from carbonclap_xl.xlsx.files import process_workbook, write_processed
from carbonclap_xl.xlsx.package import sheet_parts
from carbonclap_xl.xlsx.patch import patch_workbook
from tests.wbhelpers import LINES, make_workbook, members, sheet_values, value_at

I = L.COLUMN_BY_KEY["co2e_forecast_kg"].letter  # noqa: E741
J = L.COLUMN_BY_KEY["co2e_final_kg"].letter
N = L.COLUMN_BY_KEY["status"].letter
B, C, E, FV = (L.COLUMN_BY_KEY[k].letter for k in ("quantity_forecast", "quantity_final",
                                                    "count", "factor_value"))
CLASSIC = {"IF", "ISNUMBER", "AND", "OR", "COUNT", "COUNTA", "MIN", "MAX", "COUNTIF", "COUNTIFS",
           "SUM", "SUMIFS"}

MIXED = pd.concat([LINES, pd.DataFrame([
    # a line in error (unknown unit), a quantity typed as text, an activity without quantity
    {"poste": "lieux", "activity": "elec_fr", "quantity_forecast": 10, "unit": "parsec"},
    {"poste": "regie", "activity": "hotel_fr", "quantity_forecast": "12 nuits"},
    {"poste": "transport", "activity": "train_tgv", "unit": "km"},
    {"poste": "transport", "activity": "Train \"rapide\" – « TGV »", "quantity_forecast": 5},
])], ignore_index=True)


def _formulas(path: Path, sheet: str) -> dict[str, str]:
    ws = openpyxl.load_workbook(path)[sheet]
    return {c.coordinate: c.value[1:] for row in ws.iter_rows() for c in row
            if isinstance(c.value, str) and c.value.startswith("=")}


# --------------------------------------------------------------------------- the texts


def test_emission_formula_follows_the_layout_keys() -> None:
    # template 2.0: B, C quantities, E the count (blank = 1), I the factor
    assert (B, C, E, FV) == ("B", "C", "E", "I")
    assert F.emission_formula(7, "quantity_forecast", 1.0) == \
        'IF(ISNUMBER(B7),B7*(I7*IF(ISNUMBER(E7),E7,1)),"")'
    assert F.emission_formula(7, "quantity_final", 0.001) == \
        'IF(ISNUMBER(C7),C7*((I7*0.001)*IF(ISNUMBER(E7),E7,1)),"")'
    # a layout without a count (template 1.0) multiplies by the factor alone, at its letters
    old = F.line_cells(L.LINE_LAYOUTS["1.0"])
    assert not old.has_count
    assert F.emission_formula(7, "quantity_forecast", 2.0, old) == \
        'IF(ISNUMBER(B7),B7*(G7*2),"")'
    status = F.status_formula(7, {"activity": "x"}, True, "OK")
    assert status is not None and "E7" in status and "E7<>" not in status  # checked, not compared
    assert "AND(ISNUMBER(E7),E7<=0)" in status  # a count of 0 is what the engine refuses


def test_status_formula_compares_what_a_formula_cannot_follow() -> None:
    read = {"activity": 'Train "rapide"', "unit": "km", "data_source": None,
            "quantity_forecast": 3.0, "comment": "ignored"}
    live = F.status_formula(5, read, True, "OK")
    assert live == (
        'IF(OR(A5<>"Train ""rapide""",D5<>"km",F5<>"",G5<>"",COUNTA(B5,C5,E5)>COUNT(B5,C5,E5),'
        'MIN(B5,C5,E5)<0,MAX(B5,C5,E5)>1000000000,AND(ISNUMBER(E5),E5<=0),'
        'MAX(K5,L5)>5000000),"À recalculer",IF(COUNT(B5,C5)=0,"Vide","OK"))')
    fixed = F.status_formula(5, {**read, "quantity_forecast": "abc"}, False, "Erreur")
    assert fixed == ('IF(OR(A5<>"Train ""rapide""",B5<>"abc",C5<>"",D5<>"km",E5<>"",F5<>"",'
                     'G5<>""),"À recalculer","Erreur")')
    assert F.status_formula(5, {**read, "activity": "x" * 256}, True, "OK") is None
    assert F.literal(float("nan")) == '""' and F.literal(True) == "TRUE"
    assert F.literal(43642.0) == "43642" and float(F.literal(0.1 + 0.2)) == 0.1 + 0.2


def test_formulas_are_classic_and_short_enough() -> None:
    texts = [*F.synthese_formulas().values(),
             F.status_formula(5, {"activity": "a" * 255}, True, "OK") or "",
             F.emission_formula(100_000, "quantity_final", 1 / 1.609344)]
    for text in texts:
        names = set(re.findall(r"([A-Z][A-Z0-9.]*)\(", text))
        assert names <= CLASSIC, names - CLASSIC
        assert len(text) <= 8192
        assert all(len(s) <= F.MAX_TEXT_LITERAL for s in re.findall(r'"((?:[^"]|"")*)"', text))


def test_same_formula_as_clients_save_it() -> None:
    ours = F.synthese_formulas()["B7"]
    assert F.same_formula(ours, f"SUM(Bureaux!${I}$5:${I}$100000) / 1000")
    assert F.same_formula("IF(B5=0,\"\",1E-3)", "if(b5=0,\"\",0.001)")
    assert F.same_formula("_xlfn.COUNTIFS(A1,1)", "COUNTIFS(A1,1)")
    assert not F.same_formula(ours, f"SUM('Bureaux'!{I}5:{I}100000)/100")
    assert F.is_ours("Lieux", f"{I}9",  # another conversion
                     'IF(ISNUMBER($B9),B9*((I9*3.5)*IF(ISNUMBER(E9),E9,1)),"")')
    assert F.is_ours("Lieux", f"{N}9", F.status_formula(9, {"activity": "autre"}, False, "OK"))
    # a negative quantity is compared as a signed literal (found by the fuzzer: the status
    # formula of a line in error read as a foreign formula once processed)
    for quantity in (-1, -0.5, -1e-5, 2):
        inputs = {"activity": "autre", "quantity_forecast": quantity}
        assert F.is_ours("Lieux", f"{N}9", F.status_formula(9, inputs, False, "Erreur"))
    assert not F.is_ours("Lieux", f"{N}9", F.status_formula(9, {}, False, "OK").replace(
        '<>""', '<>-B9', 1))  # a reference is no literal
    assert not F.is_ours("Lieux", f"{I}9", "B9*I9")
    assert not F.is_ours("Lieux", f"{I}9",  # another row
                         'IF(ISNUMBER(B8),B8*(I8*IF(ISNUMBER(E8),E8,1)),"")')
    assert not F.is_ours("Lieux", f"{FV}9", "0.5")  # the factor is a value, never a formula
    assert not F.is_ours(L.SHEET_SYNTHESE, "H7", "1")


# --------------------------------------------------------------------------- processed files


def test_process_writes_formulas_with_the_engine_values(tmp_path: Path) -> None:
    src = make_workbook(tmp_path / "in.xlsx", MIXED)
    processed = process_workbook(src)
    out = tmp_path / "out.xlsx"
    write_processed(processed, src, out)
    lines = processed.result.lines.to_pandas().set_index(["sheet", "row"])
    seen = set()
    for (sheet, row), line in lines.iterrows():
        cached = sheet_values(out, sheet)
        found = _formulas(out, sheet)
        status = line["status"]
        seen.add(status)
        for letter, key in ((I, "co2e_forecast_kg"), (J, "co2e_final_kg")):
            value = value_at(cached, f"{letter}{row}")
            if status == "error":  # excluded: no formula, nothing counted
                assert f"{letter}{row}" not in found and value == ""
            elif math.isnan(line[key]):
                assert value == ""
            else:
                assert value == pytest.approx(line[key], rel=1e-15)
        if status != "error" and not isinstance(line["quantity_forecast"], str):
            assert found[f"{I}{row}"].startswith(f"IF(ISNUMBER(B{row})")
        assert found[f"{N}{row}"].startswith("IF(OR(")
        assert value_at(cached, f"{N}{row}") == {"ok": "OK", "error": "Erreur", "empty": "Vide",
                                                 "warning": "À vérifier"}[status]
        nature = value_at(cached, f"{L.NATURE_LETTER}{row}")
        assert nature == ("" if status == "error" else line["nature"])
    assert seen == {"ok", "error", "empty", "warning"}
    # the text quantity stays a value: a formula would not read "12 nuits" as the engine does
    regie = _formulas(out, "Régie")
    text_row = int(lines.loc["Régie"].query("status == 'warning'").index[0])
    assert f"{I}{text_row}" not in regie
    # Synthèse: our formulas, the engine's numbers cached
    syn = _formulas(out, L.SHEET_SYNTHESE)
    expected = F.synthese_formulas()
    assert syn == expected
    cached = sheet_values(out, L.SHEET_SYNTHESE)
    total = processed.result.total_kg
    assert value_at(cached, f"B{L.SYN_POSTE_TOTAL_ROW}") == pytest.approx(total.forecast / 1000)
    assert value_at(cached, f"C{L.SYN_NATURE_TOTAL_ROW}") == pytest.approx(total.final / 1000)
    assert value_at(cached, L.SYN_PENDING_CELL) == ""
    assert value_at(cached, f"H{L.SYN_POSTE_TOTAL_ROW}") == pytest.approx(
        processed.result.uncertainty_kg.forecast / 1000)  # a value, not a formula
    assert f"H{L.SYN_POSTE_TOTAL_ROW}" not in syn


def test_validation_accepts_our_formulas_and_reports_foreign_ones(tmp_path: Path) -> None:
    src = make_workbook(tmp_path / "in.xlsx")
    out = tmp_path / "out.xlsx"
    write_processed(process_workbook(src), src, out)
    assert computed_cell_issues(process_workbook(out)) == []
    assert computed_cell_issues(process_workbook(src)) == []  # the template's own formulas
    wb = openpyxl.load_workbook(out)
    wb["Lieux"][f"{I}5"] = "=B5*1000"
    wb[L.SHEET_SYNTHESE][f"B{L.SYN_POSTE_TOTAL_ROW}"] = "=42"
    wb["Lieux"][f"{L.COLUMN_BY_KEY['factor_value'].letter}6"] = "=1+1"
    wb.save(tmp_path / "edited.xlsx")
    found = {(i.sheet, i.cell) for i in computed_cell_issues(process_workbook(
        tmp_path / "edited.xlsx")) if str(i.code) == "FORMULA_FOREIGN"}
    assert found == {("Lieux", f"{I}5"), (L.SHEET_SYNTHESE, f"B{L.SYN_POSTE_TOTAL_ROW}"),
                     ("Lieux", f"{L.COLUMN_BY_KEY['factor_value'].letter}6")}


def test_a_sheet_not_read_keeps_synthese_as_values(tmp_path: Path) -> None:
    src = make_workbook(tmp_path / "in.xlsx",
                        customise=lambda wb: wb["Lieux"].__setitem__("B4", "Qté"))
    out = tmp_path / "out.xlsx"
    write_processed(process_workbook(src), src, out)
    syn = _formulas(out, L.SHEET_SYNTHESE)
    assert f"B{L.SYN_POSTE_FIRST_ROW}" not in syn and L.SYN_PENDING_CELL not in syn
    assert _formulas(out, "Régie")  # lines stay live


def test_a_users_column_where_the_nature_goes_is_left_alone(tmp_path: Path) -> None:
    src = make_workbook(tmp_path / "in.xlsx", customise=lambda wb: (
        wb["Régie"].__setitem__(f"{L.NATURE_LETTER}4", "Fournisseur"),
        wb["Régie"].__setitem__(f"{L.NATURE_LETTER}5", "Hôtel du Port")))
    processed = process_workbook(src)
    assert ("Régie", f"{L.NATURE_LETTER}4", "COLUMN_EXTRA") in {
        (i.sheet, i.cell, str(i.code)) for i in processed.issues}
    out = tmp_path / "out.xlsx"
    write_processed(processed, src, out)
    assert value_at(sheet_values(out, "Régie"), f"{L.NATURE_LETTER}5") == "Hôtel du Port"
    assert f"B{L.SYN_NATURE_FIRST_ROW}" not in _formulas(out, L.SHEET_SYNTHESE)


def test_processing_twice_gives_the_same_cells(tmp_path: Path) -> None:
    src = make_workbook(tmp_path / "in.xlsx", MIXED)
    once, twice = tmp_path / "once.xlsx", tmp_path / "twice.xlsx"
    write_processed(process_workbook(src), src, once)
    write_processed(process_workbook(once), once, twice)
    for sheet in ("Lieux", "Régie", "Transports", L.SHEET_SYNTHESE):
        assert _formulas(once, sheet) == _formulas(twice, sheet)
        assert sheet_values(once, sheet) == sheet_values(twice, sheet)


# --------------------------------------------------------------------------- the patcher


def test_patcher_writes_a_formula_with_its_cached_value(tmp_path: Path) -> None:
    src = make_workbook(tmp_path / "in.xlsx")
    out = tmp_path / "out.xlsx"
    patch_workbook(src, out, {"Lieux": {
        "T5": Formula('IF(B5>0,"a<b","")', "a<b"), "T6": Formula("B6*2", 600.0),
        "T7": Formula("B7=0", True), "T8": Formula("1+1"), "T9": Formula('""', "")}})
    with zipfile.ZipFile(out) as zf:
        xml = zf.read(sheet_parts(zf)["Lieux"]).decode()
    assert '<c r="T5" t="str"><f>IF(B5&gt;0,"a&lt;b","")</f><v>a&lt;b</v></c>' in xml
    assert '<c r="T6"><f>B6*2</f><v>600.0</v></c>' in xml
    assert '<c r="T7" t="b"><f>B7=0</f><v>1</v></c>' in xml
    assert '<c r="T8"><f>1+1</f></c>' in xml
    assert '<c r="T9" t="str"><f>""</f><v></v></c>' in xml
    rows = sheet_values(out, "Lieux")
    assert value_at(rows, "T5") == "a<b" and value_at(rows, "T6") == 600
    assert _formulas(out, "Lieux")["T6"] == "B6*2"
    for bad in ("=B5", "", "x" * 8193):
        with pytest.raises(WorkbookPatchError, match="formule invalide"):
            patch_workbook(src, tmp_path / "bad.xlsx", {"Lieux": {"T5": Formula(bad, 1.0)}})


def test_writing_formulas_drops_the_calculation_chain(tmp_path: Path) -> None:
    src = make_workbook(tmp_path / "in.xlsx")
    resaved = tmp_path / "with-chain.xlsx"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(resaved, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "xl/_rels/workbook.xml.rels":
                data = data.replace(b"</Relationships>", b'<Relationship Id="rIdCC" Type="http:'
                                    b'//schemas.openxmlformats.org/officeDocument/2006/'
                                    b'relationships/calcChain" Target="calcChain.xml"/>'
                                    b"</Relationships>")
            zout.writestr(info, data)
        zout.writestr("xl/calcChain.xml", b'<calcChain xmlns="http://schemas.openxmlformats.'
                      b'org/spreadsheetml/2006/main"><c r="B7" i="11"/></calcChain>')
    out = tmp_path / "out.xlsx"
    patch_workbook(resaved, out, {"Lieux": {"T5": Formula("1+1", 2.0)}})
    assert "xl/calcChain.xml" not in members(out)


def test_a_column_saved_as_shared_formulas_is_still_ours(tmp_path: Path) -> None:
    """Excel saves a column of like formulas as one shared formula: each cell reads as the
    master's formula moved to it, and validation still recognises ours."""
    src = make_workbook(tmp_path / "in.xlsx")
    out = tmp_path / "out.xlsx"
    write_processed(process_workbook(src), src, out)
    with zipfile.ZipFile(out) as zin:
        part = sheet_parts(zin)["Lieux"]
        items = [(info, zin.read(info)) for info in zin.infolist()]
    shared = tmp_path / "shared.xlsx"

    def one(row: int) -> str:  # the emission formula as XML text
        return F.emission_formula(row, "quantity_forecast", 1.0)

    with zipfile.ZipFile(shared, "w", zipfile.ZIP_DEFLATED) as zout:
        for info, data in items:
            if info.filename == part:
                text = data.decode().replace(
                    f'<f>{one(5)}</f>', f'<f t="shared" ref="{I}5:{I}6" si="0">{one(5)}</f>')
                text = text.replace(f"<f>{one(6)}</f>", '<f t="shared" si="0"/>')
                assert 't="shared" si="0"/>' in text and f't="shared" ref="{I}5:{I}6"' in text
                data = text.encode()
            zout.writestr(info, data)
    found = process_workbook(shared).data.computed_formulas
    assert found[("Lieux", f"{I}6")] == F.emission_formula(6, "quantity_forecast", 1.0)
    assert computed_cell_issues(process_workbook(shared)) == []
