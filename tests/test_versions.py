"""Template versions: a 1.0 workbook still processes with unchanged totals (read, computed and
written at its own columns), and `upgrade` moves it to the current version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest

from carbonclap_xl.workbook import layout as L
from carbonclap_xl.xlsx.files import process_workbook, write_processed
from tests.wbhelpers import (
    LINES,
    PRODUCTION,
    make_workbook,
    sheet_formulas,
    sheet_values,
    value_at,
)

TEMPLATE_1_0 = Path(__file__).parent / "data" / "CarbonClap-1.0.xlsx"  # git show 7b79e5a:…
V1 = L.LAYOUT_1_0


def make_v1_workbook(path: Path, lines: Any = LINES, production: dict[str, Any] | None = None,
                     customise: Any = None) -> Path:
    """A workbook filled in template 1.0 (the released template, its recorded columns)."""
    from datetime import date

    wb = openpyxl.load_workbook(TEMPLATE_1_0)
    prod = wb[L.SHEET_PRODUCTION]
    for key, value in (PRODUCTION if production is None else production).items():
        field = L.FIELD_BY_KEY[key]
        if key == "phase":
            value = {v: k for k, v in L.PHASE_CHOICES.items()}[value]
        if field.kind == "date":
            value = date.fromisoformat(value)
        prod[field.cell] = value
    rows: dict[str, int] = {}
    for record in lines.to_dict("records"):
        sheet = wb[L.POSTE_SHEETS[record["poste"]]]
        r = rows[sheet.title] = rows.get(sheet.title, L.FIRST_DATA_ROW - 1) + 1
        for column in V1.inputs:
            value = record.get(column.key)
            if value is not None and value == value:  # not NaN
                sheet[f"{column.letter}{r}"] = value
    if customise:
        customise(wb)
    wb.save(path)
    return path


def test_the_recorded_1_0_layout_is_the_released_template() -> None:
    wb = openpyxl.load_workbook(TEMPLATE_1_0)
    assert wb[L.SHEET_PRODUCTION]["B16"].value == "1.0"
    for sheet in L.POSTE_SHEETS.values():
        headers = [c.value for c in wb[sheet][L.HEADER_ROW]][:len(V1.columns)]
        assert headers == [c.header for c in V1.columns]


def test_a_1_0_workbook_processes_with_unchanged_totals(tmp_path: Path) -> None:
    old = make_v1_workbook(tmp_path / "v1.xlsx")
    new = make_workbook(tmp_path / "v2.xlsx")
    p1, p2 = process_workbook(old), process_workbook(new)
    assert p1.data.template_version == "1.0" and p1.data.layout is V1
    assert p1.result.total_kg == p2.result.total_kg
    assert p1.result.by_poste == p2.result.by_poste
    # 1 000 kWh × 0.0519 + 300 L × 3.16 + …: the hand numbers of the lines
    assert p1.result.by_poste["lieux"].forecast == pytest.approx(1000 * 0.0519 + 300 * 3.16)
    codes = {(i.cell, str(i.code)) for i in p1.issues}
    assert ("B16", "TEMPLATE_OLD") in codes and not any(i.severity == "error"
                                                         for i in p1.issues)
    # written at the 1.0 columns: emissions in I, the single uncertainty in K, status in N
    out = tmp_path / "v1-out.xlsx"
    write_processed(p1, old, out)
    lieux = sheet_values(out, "Lieux")
    assert value_at(lieux, "I5") == pytest.approx(1000 * 0.0519)
    assert value_at(lieux, "J5") == pytest.approx(1200 * 0.0519)
    assert value_at(lieux, "K5") == pytest.approx(p1.result.lines["uncertainty_pct"][0])
    assert value_at(lieux, "N5") == "OK" and value_at(lieux, "F5") == "plateau"
    # Synthèse's figures (its note above them is the 1.0 template's own text)
    first = L.SYN_POSTE_HEADER_ROW - 1
    assert sheet_values(out, "Synthèse")[first:] == sheet_values(
        _processed(p2, new, tmp_path / "v2-out.xlsx"), "Synthèse")[first:]
    # live formulas at the 1.0 letters: the emission of a line, Synthèse over column I
    cells = sheet_formulas(out, "Lieux")
    assert cells["I5"] == 'IF(ISNUMBER(B5),B5*G5,"")' and value_at(lieux, "O4") == "Nature"
    assert "'Bureaux'!I5:I100000" in sheet_formulas(out, "Synthèse")[f"B{L.SYN_POSTE_FIRST_ROW}"]


def _processed(processed: Any, src: Path, dst: Path) -> Path:
    write_processed(processed, src, dst)
    return dst


def test_a_1_0_workbook_issue_is_located_at_its_own_columns(tmp_path: Path) -> None:
    def customise(wb: openpyxl.Workbook) -> None:
        wb["Lieux"]["E5"] = "bon de livraison"  # 1.0: E is the data source

    processed = process_workbook(make_v1_workbook(tmp_path / "v1.xlsx", customise=customise))
    found = {(i.sheet, i.cell, str(i.code)) for i in processed.issues}
    assert ("Lieux", "E5", "DATA_SOURCE_UNKNOWN") in found


# --------------------------------------------------------------------------- upgrade


def _user_additions(wb: openpyxl.Workbook) -> None:
    """What a producer adds to a 1.0 workbook: a sheet of their own with formulas and a
    chart on the poste sheets, comments, a conditional format, a defined name."""
    from openpyxl.chart import BarChart, Reference
    from openpyxl.comments import Comment
    from openpyxl.formatting.rule import FormulaRule
    from openpyxl.styles import PatternFill
    from openpyxl.workbook.defined_name import DefinedName

    mine = wb.create_sheet("Mon suivi")
    mine["A1"] = "Commentaire de la 1re ligne"
    mine["B1"] = "=Lieux!F5"  # 1.0: F is Commentaire
    mine["A2"] = "Émissions prév. du lieu"
    mine["B2"] = "=SUM(Lieux!$I$5:$I$10)"  # 1.0: I is Émissions prévisionnelles
    mine["B3"] = "=COUNTA('Régie'!E:E)&\" sources\""  # 1.0: E is Source de la donnée
    mine["B4"] = "=Lieux!A5"  # the activity does not move
    mine.merge_cells("A6:B6")
    lieux = wb["Lieux"]
    lieux["F5"].comment = Comment("vérifié sur la facture EDF", "LP")
    lieux["B6"].comment = Comment("devis du loueur", "LP")
    lieux.conditional_formatting.add(
        "E5:E504", FormulaRule(formula=['E5="hypothèse"'], fill=PatternFill("solid",
                                                                            fgColor="FFC7CE")))
    wb.defined_names["MesSources"] = DefinedName("MesSources", attr_text="Lieux!$E$5:$E$20")
    chart = BarChart()
    chart.add_data(Reference(lieux, min_col=9, min_row=5, max_row=8))
    mine.add_chart(chart, "D2")


@pytest.fixture
def v1_processed(tmp_path: Path) -> Path:
    """A 1.0 workbook with user additions, processed once by this version (as 1.0)."""
    src = make_v1_workbook(tmp_path / "film.xlsx", customise=_user_additions)
    out = tmp_path / "film-1.0.xlsx"
    write_processed(process_workbook(src), src, out)
    return out


def _part(path: Path, sheet: str | None = None, member: str | None = None) -> bytes:
    import zipfile

    from carbonclap_xl.xlsx.package import sheet_parts

    with zipfile.ZipFile(path) as zf:
        return zf.read(sheet_parts(zf)[sheet] if sheet else member)


def test_upgrade_keeps_every_typed_value_and_the_totals(v1_processed: Path) -> None:
    from carbonclap_xl.cli import main
    from carbonclap_xl.xlsx.files import read_file

    before_bytes = v1_processed.read_bytes()
    assert main(["upgrade", str(v1_processed)]) == 0
    new = v1_processed.with_name("film-1.0-v2.xlsx")  # the default name beside it
    assert v1_processed.read_bytes() == before_bytes  # never the input
    old, upgraded = read_file(v1_processed), read_file(new)
    assert upgraded.template_version == "2.0" and upgraded.layout is L.CURRENT_LAYOUT
    keys = [c.key for c in V1.inputs]
    assert upgraded.lines.records(["poste", "sheet", "row", *keys]) == \
        old.lines.records(["poste", "sheet", "row", *keys])
    assert all(v is None for v in upgraded.lines["count"])
    p_old, p_new = process_workbook(v1_processed), process_workbook(new)
    assert p_new.result.total_kg == p_old.result.total_kg
    # the live formulas moved with their columns: still ours, at the 2.0 letters
    from carbonclap_xl.workbook.rules import computed_cell_issues

    assert not [i for i in computed_cell_issues(p_new) if str(i.code) == "FORMULA_FOREIGN"]
    assert set(p_new.data.nature_owned) == set(p_new.data.sheets_read)
    assert p_new.result.uncertainty_kg == p_old.result.uncertainty_kg
    assert not any(i.severity == "error" for i in p_new.issues)
    # the engine's earlier numbers moved with their columns (I -> K): not stale
    lieux = sheet_values(new, "Lieux")
    assert value_at(lieux, "K5") == pytest.approx(1000 * 0.0519)
    assert value_at(lieux, "H5") == "plateau" and value_at(lieux, "F5") == "facture"
    assert value_at(lieux, "E4") == "Nombre" and value_at(lieux, "G4") == \
        "Source de la donnée (définitif)"
    assert value_at(sheet_values(new, "Production"), "B16") == "2.0"


def test_upgrade_moves_what_points_at_the_moved_cells(v1_processed: Path) -> None:
    import zipfile

    from carbonclap_xl.xlsx.upgrade import upgrade_workbook

    new = v1_processed.with_name("v2.xlsx")
    report = upgrade_workbook(v1_processed, new)
    assert report.from_version == "1.0" and "Lieux" in report.sheets
    mine = _part(new, "Mon suivi")
    for formula in (b"<f>Lieux!H5</f>", b"<f>SUM(Lieux!$K$5:$K$10)</f>",
                    b"<f>COUNTA('R\xc3\xa9gie'!F:F)&amp;\" sources\"</f>", b"<f>Lieux!A5</f>"):
        assert formula in mine, formula
    wb = openpyxl.load_workbook(new)
    lieux = wb["Lieux"]
    assert lieux["H5"].comment.text == "vérifié sur la facture EDF"
    assert lieux["B6"].comment.text == "devis du loueur"
    assert lieux["F5"].comment is None
    (rule_range,) = [str(r.sqref) for r in lieux.conditional_formatting]
    assert rule_range == "F5:F504"
    assert lieux.conditional_formatting[rule_range][0].formula == ['F5="hypothèse"']
    assert wb.defined_names["MesSources"].attr_text == "Lieux!$F$5:$F$20"
    assert "MesSources" in wb.defined_names and wb["Mon suivi"].merged_cells.ranges
    with zipfile.ZipFile(new) as zf:
        charts = [zf.read(n) for n in zf.namelist() if n.startswith("xl/charts/chart")]
        vml = [zf.read(n) for n in zf.namelist() if n.endswith(".vml")]
    assert any(b"'Lieux'!$K$5:$K$8" in c or b"Lieux!$K$5:$K$8" in c for c in charts)
    assert any(b"Column>7</" in v for v in vml)  # the note of H5 (columns count from 0)
    assert not any(b"Column>5</" in v for v in vml)


def test_upgrade_copies_every_other_part_byte_for_byte(v1_processed: Path) -> None:
    import zipfile

    from carbonclap_xl.xlsx.package import sheet_parts
    from carbonclap_xl.xlsx.upgrade import upgrade_workbook

    new = v1_processed.with_name("v2.xlsx")
    upgrade_workbook(v1_processed, new)
    with zipfile.ZipFile(v1_processed) as a, zipfile.ZipFile(new) as b:
        parts = sheet_parts(a)
        # Synthèse's live formulas name the poste columns: their references follow them
        touched = {parts[s] for s in (*L.POSTE_SHEETS.values(), "Mon suivi", L.SHEET_SYNTHESE,
                                      L.SHEET_PRODUCTION, L.SHEET_README, L.SHEET_CONTROLES)}
        for name in a.namelist():
            if name in touched or name in ("xl/workbook.xml", "xl/styles.xml") or \
                    name.startswith(("xl/comments", "xl/drawings/commentsDrawing",
                                     "xl/charts/")):
                continue
            assert b.read(name) == a.read(name), name
        assert a.read(parts[L.SHEET_FACTEURS]) == b.read(parts[L.SHEET_FACTEURS])


def test_upgrade_refuses_what_it_cannot_move_and_writes_nothing(tmp_path: Path) -> None:
    from openpyxl.worksheet.table import Table

    from carbonclap_xl.cli import main
    from carbonclap_xl.core.errors import InputFileError
    from carbonclap_xl.xlsx.upgrade import upgrade_workbook

    def with_table(wb: openpyxl.Workbook) -> None:
        wb["Régie"].add_table(Table(displayName="Cantine", ref="H10:I12"))
        wb["Régie"]["H10"], wb["Régie"]["I10"] = "Jour", "Repas"

    src = make_v1_workbook(tmp_path / "t.xlsx", customise=with_table)
    with pytest.raises(InputFileError, match="tableau Excel"):
        upgrade_workbook(src)
    assert not (tmp_path / "t-v2.xlsx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.xlsx"]
    current = make_workbook(tmp_path / "c.xlsx")
    with pytest.raises(InputFileError, match=r"déjà au modèle 2\.0"):
        upgrade_workbook(current)
    plain = make_v1_workbook(tmp_path / "p.xlsx")
    assert main(["upgrade", str(plain), "-o", str(tmp_path / "n.xlsx")]) == 0
    assert main(["upgrade", str(plain), "-o", str(tmp_path / "n.xlsx")]) == 2  # no --force
    assert main(["upgrade", str(plain), "-o", str(plain)]) == 2  # never over the input
    assert main(["upgrade", str(plain), "-o", str(tmp_path / "n.xlsx"), "--force"]) == 0


@pytest.mark.slow
def test_upgraded_workbook_round_trips_in_libreoffice(v1_processed: Path,
                                                      tmp_path: Path) -> None:
    from carbonclap_xl.xlsx.upgrade import upgrade_workbook
    from tests.wbhelpers import SOFFICE, libreoffice_resave

    if not SOFFICE:
        pytest.skip("LibreOffice (soffice) is not installed")
    new = v1_processed.with_name("v2.xlsx")
    upgrade_workbook(v1_processed, new)
    resaved = libreoffice_resave(new, tmp_path / "lo")
    again = process_workbook(resaved)
    assert again.data.template_version == "2.0"
    assert again.result.total_kg == process_workbook(v1_processed).result.total_kg
    assert value_at(sheet_values(resaved, "Mon suivi"), "B1") == "plateau"


def test_upgrade_keeps_macros_ribbon_and_moves_x14_validations(tmp_path: Path) -> None:
    import zipfile

    from carbonclap_xl.xlsx.package import sheet_parts
    from carbonclap_xl.xlsx.upgrade import upgrade_workbook
    from tests.test_workbook import _to_macro_workbook

    src = tmp_path / "m.xlsm"
    added = _to_macro_workbook(make_v1_workbook(tmp_path / "m.xlsx"), src)  # x14 on F5:F10
    new = upgrade_workbook(src).output
    assert new.name == "m-v2.xlsm"
    with zipfile.ZipFile(new) as zf:
        for part in ("customUI/customUI14.xml", "xl/vbaProject.bin"):
            assert zf.read(part) == added[part]
        assert b"customUI/customUI14.xml" in zf.read("_rels/.rels")
        lieux = zf.read(sheet_parts(zf)["Lieux"])
    assert b"<xm:sqref>H5:H10</xm:sqref>" in lieux  # 1.0 F (Commentaire) is 2.0 H
    assert b"<xm:f>Facteurs!$A$5:$A$10</xm:f>" in lieux  # another sheet: unchanged
    assert process_workbook(new).result.total_kg == process_workbook(src).result.total_kg


def test_a_retyped_version_cell_is_corrected_by_the_headers(tmp_path: Path) -> None:
    """A 2.0 workbook whose version cell says 1.0 is read as 2.0 (its headers say so), with
    one warning naming the cell, instead of a header error per column."""
    import openpyxl

    src = make_workbook(tmp_path / "v2.xlsx")
    cell = L.FIELD_BY_KEY["template_version"].cell
    wb = openpyxl.load_workbook(src)
    wb[L.SHEET_PRODUCTION][cell] = "1.0"
    wb.save(tmp_path / "retyped.xlsx")
    retyped = process_workbook(tmp_path / "retyped.xlsx")
    codes = [str(i.code) for i in retyped.issues]
    assert "HEADER_CHANGED" not in codes and "TEMPLATE_OLD" not in codes
    (warning,) = [i for i in retyped.issues if str(i.code) == "TEMPLATE_VERSION_MISMATCH"]
    assert (warning.sheet, warning.cell) == (L.SHEET_PRODUCTION, cell)
    assert retyped.data.layout is L.CURRENT_LAYOUT
    assert retyped.result.total_kg == process_workbook(src).result.total_kg
