"""The template, `new` and `process`: real files written, re-read and compared."""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from carbonclap_xl.cli import main
from carbonclap_xl.core.model import NATURES, POSTES
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.xlsx.files import process_workbook, write_processed
from carbonclap_xl.xlsx.files import read_file as read_workbook
from carbonclap_xl.xlsx.package import sheet_parts
from carbonclap_xl.xlsx.template import build_template, save
from tests import wbhelpers
from tests.wbhelpers import LINES, make_workbook, members, sheet_values, value_at
from tools.build_template import TEMPLATE_PATH

E_FORECAST = L.COLUMN_BY_KEY["co2e_forecast_kg"].letter  # K in template 2.0
COMMENT = L.COLUMN_BY_KEY["comment"].letter  # H in template 2.0


def _content(path: Path) -> dict:
    wb = openpyxl.load_workbook(path)
    out = {"sheets": wb.sheetnames,
           "names": sorted((n, d.attr_text) for n, d in wb.defined_names.items())}
    for ws in wb.worksheets:
        out[ws.title] = {
            "cells": {c.coordinate: (c.value, c.number_format, c.protection.locked)
                      for row in ws.iter_rows() for c in row if c.value is not None},
            "validations": sorted((str(v.sqref), v.formula1, v.type, v.errorStyle)
                                  for v in ws.data_validations.dataValidation),
            "protected": ws.protection.sheet,
            "freeze": ws.freeze_panes,
            "charts": len(ws._charts),
        }
    return out


def test_committed_template_matches_the_generator(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.xlsx"
    save(build_template(), fresh)
    assert _content(fresh) == _content(TEMPLATE_PATH), "run `make template`"


def test_template_layout(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    save(build_template(), path)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == list(L.SHEET_ORDER)
    ws = wb["Transports"]
    assert [c.value for c in ws[L.HEADER_ROW]][:len(L.LINE_COLUMNS_LAYOUT)] == [
        c.header for c in L.LINE_COLUMNS_LAYOUT]
    formulas = {v.formula1 for v in ws.data_validations.dataValidation}
    assert "Liste_transport" in formulas and L.LIST_DATA_SOURCES in formulas
    assert ws.column_dimensions["A"].protection.locked is False
    assert ws.column_dimensions["I"].protection.locked is not False
    assert ws.protection.sheet and ws.freeze_panes == "B5"
    assert len(wb["Synthèse"]._charts) == 2
    for name in ("Liste_transport", "Liste_sources", L.NAME_TEMPLATE_VERSION):
        assert name in wb.defined_names
    # every dropdown list holds exactly the poste's catalogue labels
    from carbonclap_xl.core.factors import load_edition

    edition = load_edition()
    dest = wb.defined_names["Liste_regie"].destinations
    (sheet, ref), = list(dest)
    labels = [c.value for row in wb[sheet][ref.replace("$", "")] for c in row]
    assert labels == sorted(a.label_fr for a in edition.activities_for("regie"))


def test_new_from_csv_then_process_writes_engine_numbers(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    csv = tmp_path / "lines.csv"
    bad = pd.concat([LINES, pd.DataFrame([{"poste": "lieux", "activity": "Electricite",
                                           "quantity_forecast": "douze", "unit": "kWh"}])])
    bad.to_csv(csv, index=False)
    wb_path = tmp_path / "new.xlsx"
    assert main(["new", "-o", str(wb_path), "--from", str(csv)]) == 0
    rows = sheet_values(wb_path, "Lieux")
    assert value_at(rows, "A7") == "Electricite" and value_at(rows, "B7") == "douze"
    assert value_at(rows, "A5").startswith("Électricité")  # ids become dropdown labels
    out = tmp_path / "out.xlsx"
    assert main(["process", str(wb_path), "-o", str(out), "--json", str(tmp_path / "r.json")]) == 1
    doc = json.loads((tmp_path / "r.json").read_text())
    located = {(i["sheet"], i["cell"], i["code"]) for i in doc["issues"]}
    assert ("Lieux", "B7", "QUANTITY_NOT_NUMBER") in located
    assert ("Lieux", "A7", "ACTIVITY_UNKNOWN") in located
    processed = process_workbook(wb_path)
    lieux = sheet_values(out, "Lieux")
    for row in processed.result.lines.records():
        rows = sheet_values(out, row["sheet"]) if row["sheet"] != "Lieux" else lieux
        got = value_at(rows, f"{E_FORECAST}{row['row']}")
        if row["co2e_forecast_kg"] is None or math.isnan(row["co2e_forecast_kg"]):
            assert got == ""
        else:
            assert got == pytest.approx(row["co2e_forecast_kg"], rel=1e-12)
    syn = sheet_values(out, "Synthèse")
    assert value_at(syn, f"B{L.SYN_POSTE_TOTAL_ROW}") == pytest.approx(
        processed.result.total_kg.forecast / 1000)
    ctrl = sheet_values(out, "Contrôles")
    codes = {value_at(ctrl, f"B{r}") for r in range(L.CTRL_FIRST_ROW, len(ctrl) + 1)}
    assert {"QUANTITY_NOT_NUMBER", "ACTIVITY_UNKNOWN"} <= codes
    assert "Bilan carbone" in capsys.readouterr().out


def test_unowned_parts_are_byte_identical(tmp_path: Path) -> None:
    def customise(wb: openpyxl.Workbook) -> None:
        notes = wb.create_sheet("Mes notes")
        notes["A1"] = "à ne pas toucher"
        from openpyxl.comments import Comment

        wb["Lieux"]["F5"].comment = Comment("commentaire de l'utilisateur", "LP")

    src = make_workbook(tmp_path / "in.xlsx", customise=customise)
    out = tmp_path / "out.xlsx"
    write_processed(process_workbook(src), src, out)
    before, after = members(src), members(out)
    assert list(before) == list(after)
    with zipfile.ZipFile(src) as zf:
        parts = sheet_parts(zf)
    owned = {parts[s] for s in (*L.POSTE_SHEETS.values(), L.SHEET_SYNTHESE, L.SHEET_CONTROLES,
                                L.SHEET_PRODUCTION)}
    changed = {name for name in before if before[name] != after[name]}
    assert changed <= owned
    assert parts["Mes notes"] not in changed
    # every typed cell keeps its value
    for sheet in ("Lieux", "Régie", "Production", "Mes notes"):
        a, b = sheet_values(src, sheet), sheet_values(out, sheet)
        for r, row in enumerate(a):
            for c, v in enumerate(row):
                if sheet in ("Lieux", "Régie") and r >= L.FIRST_DATA_ROW - 1 and c >= 6:
                    continue
                if sheet == "Production" and r + 1 == L.FIELD_BY_KEY["factor_edition"].row:
                    continue
                assert b[r][c] == v, (sheet, r, c)


def test_never_overwrites_without_in_place(tmp_path: Path) -> None:
    src = make_workbook(tmp_path / "in.xlsx")
    original = src.read_bytes()
    assert main(["process", str(src), "-o", str(src)]) == 2
    assert src.read_bytes() == original
    assert main(["process", str(src)]) == 0
    assert (tmp_path / "in-calcule.xlsx").exists() and src.read_bytes() == original
    assert main(["process", str(src), "--in-place"]) == 0
    backups = list(tmp_path.glob("in.sauvegarde-*.xlsx"))
    assert len(backups) == 1 and backups[0].read_bytes() == original
    assert any(v is not None for v in read_workbook(src).lines["read_co2e_forecast_kg"])


def test_processing_twice_is_stable_and_clears_deleted_lines(tmp_path: Path) -> None:
    src = make_workbook(tmp_path / "in.xlsx")
    once = tmp_path / "once.xlsx"
    write_processed(process_workbook(src), src, once)
    # the user deletes the inputs of a line: its computed cells must be cleared
    wb = openpyxl.load_workbook(once)
    for column in L.INPUT_COLUMNS:
        wb["Lieux"][f"{column.letter}5"].value = None
    wb.save(tmp_path / "edited.xlsx")
    twice = tmp_path / "twice.xlsx"
    write_processed(process_workbook(tmp_path / "edited.xlsx"), tmp_path / "edited.xlsx", twice)
    rows = sheet_values(twice, "Lieux")
    assert all(value_at(rows, f"{c.letter}5") == "" for c in L.COMPUTED_COLUMNS)
    assert value_at(rows, f"{E_FORECAST}6") != ""
    third = tmp_path / "third.xlsx"
    write_processed(process_workbook(twice), twice, third)
    assert sheet_values(third, "Synthèse") == sheet_values(twice, "Synthèse")


def test_messy_input_is_reported_not_crashed(tmp_path: Path) -> None:
    def customise(wb: openpyxl.Workbook) -> None:
        ws = wb["Lieux"]
        ws["B5"] = "1 200,5"
        ws["B6"] = "12 L"
        ws["D6"] = None
        ws["A9"], ws["B9"], ws["D9"] = "elec_fr", 10, "kWh"  # after blank rows
        ws["A600"], ws["B600"], ws["D600"] = "elec_fr", 5, "kWh"  # below the prepared rows
        ws["A10"], ws["B10"] = "elec_fr", __import__("datetime").date(2026, 1, 3)
        ws.row_dimensions[9].hidden = True
        ws.merge_cells("F11:G11")
        ws["A11"], ws["B11"], ws["D11"] = "elec_fr", 1, "kWh"
        ws["S4"] = "Ma colonne"

    src = make_workbook(tmp_path / "messy.xlsx", customise=customise)
    processed = process_workbook(src)
    found = {(i.sheet, i.cell, str(i.code)) for i in processed.issues}
    assert ("Lieux", "B5", "QUANTITY_TEXT") in found
    assert ("Lieux", "B6", "QUANTITY_TEXT") in found
    assert ("Lieux", "B10", "QUANTITY_NOT_NUMBER") in found
    assert ("Lieux", "A9", "ROW_HIDDEN") in found
    assert ("Lieux", "F11", "CELL_MERGED") in found
    assert ("Lieux", "S4", "COLUMN_EXTRA") in found
    rows = set(processed.data.lines["row"])
    assert {9, 600} <= rows
    out = tmp_path / "out.xlsx"
    write_processed(processed, src, out)
    lieux = sheet_values(out, "Lieux")
    assert value_at(lieux, f"{E_FORECAST}600") == pytest.approx(5 * 0.0519)
    assert value_at(lieux, f"{E_FORECAST}5") == pytest.approx(1200.5 * 0.0519)


def test_renamed_header_leaves_the_sheet_alone(tmp_path: Path) -> None:
    def customise(wb: openpyxl.Workbook) -> None:
        wb["Lieux"]["B4"] = "Qté"

    src = make_workbook(tmp_path / "h.xlsx", customise=customise)
    processed = process_workbook(src)
    assert ("Lieux", "B4", "HEADER_CHANGED") in {(i.sheet, i.cell, str(i.code))
                                                  for i in processed.issues}
    assert processed.has_errors
    out = tmp_path / "out.xlsx"
    write_processed(processed, src, out)
    with zipfile.ZipFile(src) as zf:
        part = sheet_parts(zf)["Lieux"]
    assert members(src)[part] == members(out)[part]


def test_not_a_carbonclap_workbook(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active["A1"] = "budget"
    path = tmp_path / "other.xlsx"
    wb.save(path)
    processed = process_workbook(path)
    assert [str(i.code) for i in processed.issues] == ["NOT_CARBONCLAP_WORKBOOK"]
    assert main(["process", str(path), "-o", str(tmp_path / "o.xlsx")]) == 1
    assert not (tmp_path / "o.xlsx").exists()


def test_unreadable_inputs_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = tmp_path / "notes.xlsx"
    text.write_text("poste,activity\n")
    assert main(["process", str(text)]) == 2
    assert main(["process", str(tmp_path / "missing.xlsx")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("erreur :") == 2


def test_every_dropdown_data_source_is_understood() -> None:
    from carbonclap_xl.core.model import DATA_SOURCE_ALIASES, DATA_SOURCE_BY_ID

    for choice in L.DATA_SOURCE_CHOICES:
        assert DATA_SOURCE_ALIASES[choice] in DATA_SOURCE_BY_ID


def _to_macro_workbook(src: Path, dst: Path) -> dict[str, bytes]:
    """Turn a filled workbook into an .xlsm with a VBA project, a ribbon and an x14 extension
    list on the Lieux sheet, as Excel writes them. Returns the added parts."""
    ribbon = (b'<customUI xmlns="http://schemas.microsoft.com/office/2009/07/customui"><ribbon>'
              b'<tabs><tab id="cc" label="Carbon\'Clap"><group id="g" label="Bilan"><button '
              b'id="r" label="Recalculer" onAction="Recalculer"/></group></tab></tabs></ribbon>'
              b'</customUI>')
    vba = b"\xd0\xcf\x11\xe0" + bytes(range(256)) * 8
    ext = (b'<extLst><ext uri="{CCE6A557-97BC-4b89-ADB6-D9C93CAAB3DF}" xmlns:x14="http://schema'
           b's.microsoft.com/office/spreadsheetml/2009/9/main"><x14:dataValidations count="1" '
           b'xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main"><x14:dataValidation '
           b'type="list" allowBlank="1"><x14:formula1><xm:f>Facteurs!$A$5:$A$10</xm:f>'
           b'</x14:formula1><xm:sqref>F5:F10</xm:sqref></x14:dataValidation>'
           b'</x14:dataValidations></ext></extLst>')
    with zipfile.ZipFile(src) as zin:
        lieux = sheet_parts(zin)["Lieux"]
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                data = zin.read(info)
                if info.filename == "[Content_Types].xml":
                    data = data.replace(
                        b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet."
                        b"main+xml", b"application/vnd.ms-excel.sheet.macroEnabled.main+xml")
                    data = data.replace(b"</Types>", b'<Default Extension="bin" ContentType='
                                        b'"application/vnd.ms-office.vbaProject"/></Types>')
                elif info.filename == "_rels/.rels":
                    data = data.replace(b"</Relationships>", b'<Relationship Id="rIdUI" Type='
                                        b'"http://schemas.microsoft.com/office/2007/relationsh'
                                        b'ips/ui/extensibility" Target="customUI/customUI14.xm'
                                        b'l"/></Relationships>')
                elif info.filename == "xl/_rels/workbook.xml.rels":
                    data = data.replace(b"</Relationships>", b'<Relationship Id="rIdVBA" Type='
                                        b'"http://schemas.microsoft.com/office/2006/relationsh'
                                        b'ips/vbaProject" Target="vbaProject.bin"/>'
                                        b'</Relationships>')
                elif info.filename == lieux:
                    data = data.replace(b"</worksheet>", ext + b"</worksheet>")
                zout.writestr(info, data)
            zout.writestr("customUI/customUI14.xml", ribbon)
            zout.writestr("xl/vbaProject.bin", vba)
    return {"customUI/customUI14.xml": ribbon, "xl/vbaProject.bin": vba, "ext": ext}


def test_macro_workbook_keeps_vba_ribbon_and_extension_lists(tmp_path: Path) -> None:
    added = _to_macro_workbook(make_workbook(tmp_path / "in.xlsx"), tmp_path / "in.xlsm")
    src = tmp_path / "in.xlsm"
    assert main(["process", str(src)]) == 0
    out = tmp_path / "in-calcule.xlsm"
    before, after = members(src), members(out)
    assert list(before) == list(after)
    for part in ("customUI/customUI14.xml", "xl/vbaProject.bin", "_rels/.rels",
                 "[Content_Types].xml", "xl/_rels/workbook.xml.rels", "xl/workbook.xml",
                 "xl/styles.xml"):
        assert after[part] == before[part], part
    assert after["xl/vbaProject.bin"] == added["xl/vbaProject.bin"]
    with zipfile.ZipFile(out) as zf:
        lieux = zf.read(sheet_parts(zf)["Lieux"])
    # Excel's x14 validations survive the surgical write (the same XML, canonically)
    from lxml import etree

    def canonical_ext(xml: bytes) -> bytes:
        root = etree.fromstring(xml)
        (ext,) = [el for el in root if etree.QName(el).localname == "extLst"]
        return etree.tostring(ext, method="c14n")

    with zipfile.ZipFile(src) as zf:
        original = zf.read(sheet_parts(zf)["Lieux"])
    assert added["ext"] in original
    assert canonical_ext(lieux) == canonical_ext(original)
    column = L.COLUMN_BY_KEY["co2e_forecast_kg"].index - 1
    assert sheet_values(out, "Lieux")[L.FIRST_DATA_ROW - 1][column] == pytest.approx(
        1000 * 0.0519)


def test_formula_without_value_and_rows_beyond_the_limit(tmp_path: Path) -> None:
    def customise(wb: openpyxl.Workbook) -> None:
        ws = wb["Lieux"]
        ws["A12"], ws["B12"], ws["D12"] = "elec_fr", "=B5*2", "kWh"  # no cached value
        ws["A13"], ws["B13"], ws["D13"] = "elec_fr", "=2*(400+100)", "kWh"  # computed here
        ws[f"A{L.MAX_LINE_ROWS + 5}"] = "elec_fr"
        ws[f"B{L.MAX_LINE_ROWS + 5}"] = 3

    processed = process_workbook(make_workbook(tmp_path / "f.xlsx", customise=customise))
    found = {(i.sheet, i.cell, str(i.code)) for i in processed.issues}
    assert ("Lieux", "B12", "FORMULA_NO_VALUE") in found
    assert not any(cell == "B13" for _s, cell, _c in found)
    lines = processed.result.lines.to_pandas().set_index("row")
    assert lines.loc[13, "co2e_forecast_kg"] == pytest.approx(1000 * 0.0519)
    assert ("Lieux", f"A{L.MAX_LINE_ROWS + 5}", "ROWS_BEYOND_LIMIT") in found
    assert processed.has_errors


def test_blank_workbook_says_there_is_nothing(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "blank.xlsx", lines=LINES.head(0), production={})
    assert main(["process", str(path)]) == 1
    codes = [str(i.code) for i in process_workbook(path).issues]
    assert "WORKBOOK_EMPTY" in codes and set(codes) <= {"WORKBOOK_EMPTY",
                                                        "PRODUCTION_FIELD_MISSING"}


def test_process_never_replaces_an_output_silently(tmp_path: Path) -> None:
    src = make_workbook(tmp_path / "in.xlsx")
    out = tmp_path / "in-calcule.xlsx"
    assert main(["process", str(src)]) == 0
    out.write_bytes(b"my edits")
    assert main(["process", str(src)]) == 2 and out.read_bytes() == b"my edits"
    assert main(["process", str(src), "--force"]) == 0 and out.read_bytes() != b"my edits"
    assert main(["process", str(src), "--in-place", "-o", str(tmp_path / "x.xlsx")]) == 2
    assert main(["process", str(src), "-o", str(tmp_path / "x.xlsm")]) == 2


def test_new_from_csv_keeps_what_it_can_and_says_what_it_cannot(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "l.csv"
    csv.write_text("poste,activity,quantity_forecast,quantity_final,unit,data_source,comment\n"
                   "lieux,elec_fr,nan,inf,kWh,facture,ctl\x01char\n"
                   ",elec_fr,3,,kWh,,\n", encoding="utf-8")
    out = tmp_path / "n.xlsx"
    assert main(["new", "-o", str(out), "--from", str(csv)]) == 1
    captured = capsys.readouterr()
    assert "(1 ligne(s) reprises, 1 non placée(s) : poste inconnu)" in captured.out
    assert "ligne 3 : poste «  » inconnu ou vide" in captured.err
    rows = sheet_values(out, "Lieux")
    assert value_at(rows, "B5") == "nan" and value_at(rows, "C5") == "inf"
    assert value_at(rows, f"{COMMENT}5") == "ctlchar"
    codes = {(i.cell, str(i.code)) for i in process_workbook(out).issues}
    assert ("B5", "QUANTITY_NOT_NUMBER") in codes or ("B5", "QUANTITY_ABSURD") in codes


@pytest.mark.parametrize(("formula", "value"), [
    ("=2*1000", 2000.0), ("=(3+4)/2", 3.5), ("=-5", -5.0), ("=B5*2", None),
    ("=SUM(1,2)", None), ("=9**9**9", None), ("=1/0", None), ("=2^3", None),
    ("=cmd|' /C calc'!A0", None),
])
def test_arithmetic_formulas_are_computed_not_trusted(formula: str, value: float | None) -> None:
    from carbonclap_xl.core.numbers import arithmetic_value

    assert arithmetic_value(formula) == value


def test_process_checks_what_validate_checks(tmp_path: Path) -> None:
    path = make_workbook(tmp_path / "p.xlsx", production={
        **wbhelpers.PRODUCTION, "phase": "plus tard", "budget_keur": "2,9 M€",
        "start_date": "2026-05-01", "end_date": "2026-04-01", "shooting_days": 0})
    found = {(i.cell, str(i.code)) for i in process_workbook(path).issues}
    for cell in ("B7", "B8", "B9", "B13"):
        assert (cell, "PRODUCTION_FIELD_INVALID") in found, cell


def test_a_formula_error_excludes_its_line(tmp_path: Path) -> None:
    def customise(wb: openpyxl.Workbook) -> None:
        wb["Lieux"]["C5"] = "=SUM(Z1:Z2)"  # no cached value: the line is in error

    processed = process_workbook(make_workbook(tmp_path / "f.xlsx", customise=customise))
    assert ("Lieux", "C5", "FORMULA_NO_VALUE") in {(i.sheet, i.cell, str(i.code))
                                                   for i in processed.issues}
    row = processed.result.lines.to_pandas().set_index(["sheet", "row"]).loc[("Lieux", 5)]
    assert row["status"] == "error" and math.isnan(row["co2e_forecast_kg"])


def test_a_copied_poste_sheet_is_reported(tmp_path: Path) -> None:
    def customise(wb: openpyxl.Workbook) -> None:
        copy = wb.copy_worksheet(wb["Régie"])
        copy.title = "Régie (2)"

    processed = process_workbook(make_workbook(tmp_path / "c.xlsx", customise=customise))
    assert ("Régie (2)", "SHEET_NOT_READ") in {(i.sheet, str(i.code)) for i in processed.issues}


def test_in_place_backups_never_overwrite_each_other(tmp_path: Path) -> None:
    src = make_workbook(tmp_path / "a.xlsx")
    original = src.read_bytes()
    for _ in range(3):
        assert main(["process", str(src), "--in-place"]) == 0
    backups = sorted(tmp_path.glob("a.sauvegarde-*.xlsx"))
    assert len(backups) == 3
    assert original in {b.read_bytes() for b in backups}


def test_unwritable_outputs_give_one_line(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    src = make_workbook(tmp_path / "a.xlsx")
    (tmp_path / "d.xlsx").mkdir()
    assert main(["process", str(src), "-o", str(tmp_path / "d.xlsx"), "--force"]) == 2
    assert main(["new", "-o", str(tmp_path / "d.xlsx"), "--force"]) == 2
    assert main(["process", str(src), "--force", "--json", str(tmp_path / "d.xlsx")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "c'est un dossier" in err
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def _edit_sheet(path: Path, sheet: str, old: bytes, new: bytes) -> None:
    with zipfile.ZipFile(path) as zin:
        part = sheet_parts(zin)[sheet]
        items = [(info, zin.read(info)) for info in zin.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for info, data in items:
            if info.filename == part:
                assert old in data
                data = data.replace(old, new)
            zout.writestr(info, data)


def test_odd_formula_cells_neither_crash_nor_drop_lines(tmp_path: Path) -> None:
    src = make_workbook(tmp_path / "o.xlsx")
    # a lowercase reference with a formula and no value, and a comment formula showing ""
    _edit_sheet(src, "Lieux", b'<c r="B6" t="n"><v>300</v></c>', b'<c r="b6"><f>Z99</f></c>')
    _edit_sheet(src, "Lieux", b'<c r="H5" t="inlineStr"><is><t>plateau</t></is></c>',
                b'<c r="H5" t="str"><f>IF(B5&gt;5000,"gros","")</f><v></v></c>')
    processed = process_workbook(src)
    found = {(i.cell.upper() if i.cell else None, str(i.code)) for i in processed.issues}
    assert ("B6", "FORMULA_NO_VALUE") in found
    assert not any(cell == "H5" for cell, _ in found)
    lines = processed.result.lines.to_pandas().set_index(["sheet", "row"])
    assert lines.loc[("Lieux", 5), "status"] == "ok"  # the comment does not drop the line
    assert lines.loc[("Lieux", 6), "status"] == "error"


def test_numeric_template_version_must_match_exactly(tmp_path: Path) -> None:
    for version, ok in ((1.0, True), (1.04, False)):
        path = make_workbook(tmp_path / f"v{version}.xlsx",
                             customise=lambda wb, v=version: wb["Production"].__setitem__(
                                 "B16", v))
        codes = {str(i.code) for i in process_workbook(path).issues}
        assert ("TEMPLATE_VERSION" not in codes) is ok


def test_new_workbook_is_readable_by_others_and_bad_extension_creates_nothing(
        tmp_path: Path) -> None:
    import os

    out = tmp_path / "n.xlsx"
    assert main(["new", "-o", str(out)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert main(["process", str(make_workbook(tmp_path / "a.xlsx")), "-o",
                 str(tmp_path / "made" / "x.csv")]) == 2
    assert not (tmp_path / "made").exists()


def test_synthese_lists_the_largest_changes_first(tmp_path: Path) -> None:
    """Synthèse's « plus grands écarts »: postes and natures whose footprint moved from forecast
    to final, largest change first, each with both phases, the change and its percentage."""
    from carbonclap_xl.workbook.plan import largest_changes

    src = make_workbook(tmp_path / "film.xlsx")
    processed = process_workbook(src)
    out = tmp_path / "out.xlsx"
    write_processed(processed, src, out)
    rows = sheet_values(out, L.SHEET_SYNTHESE)
    assert value_at(rows, f"A{L.SYN_CHANGES_TITLE_ROW}") == L.SYN_CHANGES_TITLE
    assert [value_at(rows, f"{c}{L.SYN_CHANGES_HEADER_ROW}") for c in "ABCDE"] == \
        list(L.SYN_CHANGES_HEADERS)
    result = processed.result
    by_label = {f"Poste : {p.label_fr}": result.by_poste[p.id] for p in POSTES} | {
        f"Nature : {n.label_fr}": result.by_nature[n.id] for n in NATURES}
    expected = sorted(((k, v) for k, v in by_label.items() if v.final != v.forecast),
                      key=lambda kv: -abs(kv[1].final - kv[1].forecast))[:L.SYN_CHANGES_COUNT]
    assert expected and [label for label, *_ in largest_changes(result)] == \
        [k for k, _ in expected]
    for i, (label, v) in enumerate(expected):
        r = L.SYN_CHANGES_FIRST_ROW + i
        assert value_at(rows, f"A{r}") == label
        assert value_at(rows, f"B{r}") == pytest.approx(v.forecast / 1000)
        assert value_at(rows, f"C{r}") == pytest.approx(v.final / 1000)
        assert value_at(rows, f"D{r}") == pytest.approx((v.final - v.forecast) / 1000)
        assert value_at(rows, f"E{r}") == pytest.approx(100 * (v.final - v.forecast)
                                                        / v.forecast)
    changes = [abs(value_at(rows, f"D{L.SYN_CHANGES_FIRST_ROW + i}"))
               for i in range(len(expected))]
    assert changes == sorted(changes, reverse=True)
    # a forecast alone has nothing to compare: the block stays empty
    assert largest_changes(process_workbook(make_workbook(
        tmp_path / "prev.xlsx", lines=LINES.assign(quantity_final=None))).result) == []


def test_controles_shows_the_value_found_not_a_word_of_the_message(tmp_path: Path) -> None:
    """A missing production field has no value: Contrôles' Valeur column stays empty (it
    showed « soumis », a word of the message template)."""
    production = {**wbhelpers.PRODUCTION, "title": None, "phase": None}
    src = make_workbook(tmp_path / "missing.xlsx", production=production)
    processed = process_workbook(src)
    missing = [i for i in processed.issues if str(i.code) == "PRODUCTION_FIELD_MISSING"]
    assert {i.cell for i in missing} == {"B4", "B7"}
    assert all(i.value is None for i in missing)
    assert "le CNC l'exige pour le bilan soumis" in missing[0].message
    out = tmp_path / "out.xlsx"
    write_processed(processed, src, out)
    rows = sheet_values(out, L.SHEET_CONTROLES)
    found = {value_at(rows, f"D{r}"): value_at(rows, f"E{r}")
             for r in range(L.CTRL_FIRST_ROW, len(rows) + 1)
             if value_at(rows, f"B{r}") == "PRODUCTION_FIELD_MISSING"}
    assert found == {"B4": "", "B7": ""}
