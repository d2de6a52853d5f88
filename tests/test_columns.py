"""Columns of a poste sheet found by their header (issue 12).

Real workbooks: the template filled, then changed with openpyxl as a user would (a column
inserted, columns swapped, one deleted), processed, written and read back with calamine.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from carbonclap_xl.core.factors import match_key
from carbonclap_xl.core.issues import Issue, Severity
from carbonclap_xl.report.terminal import summary_text
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.xlsx.files import process_workbook, write_processed
from carbonclap_xl.xlsx.package import sheet_parts
from tests.test_versions import make_v1_workbook
from tests.wbhelpers import make_workbook, members, sheet_values, value_at

LIEUX_LINES = 2  # wbhelpers.LINES: two lines on Lieux, four in all
ALL_LINES = 4


def _part(path: Path, sheet: str) -> bytes:
    with zipfile.ZipFile(path) as zf:
        part = sheet_parts(zf)[sheet]
    return members(path)[part]


def _on(issues: list[Issue], sheet: str, row: int = L.HEADER_ROW) -> list[Issue]:
    return [i for i in issues if i.sheet == sheet and i.row == row]


def _insert(sheet: str, column: int, header: str | None) -> Any:
    def customise(wb: openpyxl.Workbook) -> None:
        ws = wb[sheet]
        ws.insert_cols(column)
        ws.cell(row=L.HEADER_ROW, column=column, value=header)
    return customise


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return process_workbook(make_workbook(tmp_path_factory.mktemp("plain") / "plain.xlsx"))


def test_every_header_has_its_own_key() -> None:
    for layout in L.LINE_LAYOUTS.values():
        keys = [match_key(c.header) for c in (*layout.columns, layout.nature)]
        assert len(set(keys)) == len(keys), layout.version


def test_an_inserted_column_is_read_by_header_and_reported_once(tmp_path: Path,
                                                                plain: Any) -> None:
    src = make_workbook(tmp_path / "inserted.xlsx",
                        customise=_insert("Lieux", 3, "Budget du poste"))
    processed = process_workbook(src)
    on_lieux = _on(processed.issues, "Lieux")
    assert [str(i.code) for i in on_lieux] == ["COLUMNS_MOVED"]
    (issue,) = on_lieux
    assert issue.severity is Severity.WARNING
    assert (issue.cell, issue.value) == ("C4", "Budget du poste")
    assert "« Budget du poste » insérée en C" in issue.message
    assert "supprimez la colonne C ou placez-la après la colonne S (Nature)" in issue.message
    assert "ses 2 lignes sont comptées" in issue.message
    # read by header: the same lines, the same totals
    assert processed.result.excluded_lines == 0
    assert processed.result.by_poste["lieux"].forecast == pytest.approx(
        plain.result.by_poste["lieux"].forecast)
    assert processed.result.total_kg.final == pytest.approx(plain.result.total_kg.final)
    assert processed.data.sheets_moved["Lieux"]["unit"] == "E"
    assert "Lieux" not in processed.data.sheets_read
    # written: the other sheets, Synthèse as values; Lieux as the user left it
    out = tmp_path / "out.xlsx"
    write_processed(processed, src, out)
    assert _part(src, "Lieux") == _part(out, "Lieux")
    syn = sheet_values(out, L.SHEET_SYNTHESE)
    assert value_at(syn, f"B{L.SYN_POSTE_TOTAL_ROW}") == pytest.approx(
        plain.result.total_kg.forecast / 1000)
    regie = sheet_values(out, "Régie")
    assert value_at(regie, f"{L.COLUMN_BY_KEY['status'].letter}5") == "OK"
    # and read back, the output says the same
    again = process_workbook(out)
    assert [str(i.code) for i in _on(again.issues, "Lieux")] == ["COLUMNS_MOVED"]
    assert again.result.total_kg.forecast == pytest.approx(plain.result.total_kg.forecast)


def test_issues_of_a_moved_sheet_name_the_cells_where_the_columns_are(tmp_path: Path) -> None:
    def customise(wb: openpyxl.Workbook) -> None:
        wb["Lieux"]["D5"] = "kg"  # Unité: kWh expected
        _insert("Lieux", 2, None)(wb)  # a column without header before the quantities

    processed = process_workbook(make_workbook(tmp_path / "moved.xlsx", customise=customise))
    found = {(i.sheet, i.cell, str(i.code)) for i in processed.issues}
    assert ("Lieux", "E5", "UNIT_MISMATCH") in found
    (moved,) = _on(processed.issues, "Lieux")
    assert moved.cell == "B4" and moved.value is None
    assert "colonne sans en-tête insérée en B" in moved.message


def test_input_columns_in_another_order_are_read(tmp_path: Path, plain: Any) -> None:
    def swap(wb: openpyxl.Workbook) -> None:  # Quantité définitive (C) <-> Unité (D)
        ws = wb["Lieux"]
        for row in range(L.HEADER_ROW, 10):
            ws[f"C{row}"].value, ws[f"D{row}"].value = ws[f"D{row}"].value, ws[f"C{row}"].value

    processed = process_workbook(make_workbook(tmp_path / "swapped.xlsx", customise=swap))
    (issue,) = _on(processed.issues, "Lieux")
    assert str(issue.code) == "COLUMNS_MOVED"
    assert "colonnes de saisie dans un autre ordre (« Unité » en C)" in issue.message
    assert "remettez les colonnes dans l'ordre du modèle (Activité, " in issue.message
    assert processed.result.by_poste["lieux"].final == pytest.approx(
        plain.result.by_poste["lieux"].final)


def test_headers_are_forgiving_about_case_accents_and_spaces(tmp_path: Path) -> None:
    def retype(wb: openpyxl.Workbook) -> None:
        ws = wb["Lieux"]
        ws["A4"], ws["B4"], ws["D4"] = " activite", "QUANTITÉ  prévisionnelle", "unité"

    src = make_workbook(tmp_path / "retyped.xlsx", customise=retype)
    processed = process_workbook(src)
    assert _on(processed.issues, "Lieux") == []
    assert "Lieux" in processed.data.sheets_read  # in place: read and written
    out = tmp_path / "out.xlsx"
    write_processed(processed, src, out)
    lieux = sheet_values(out, "Lieux")
    assert value_at(lieux, f"{L.COLUMN_BY_KEY['co2e_forecast_kg'].letter}5") == \
        pytest.approx(1000 * 0.0519)


def test_a_missing_column_leaves_the_sheet_alone_and_counts_its_lines_as_not_counted(
        tmp_path: Path) -> None:
    def delete_unit(wb: openpyxl.Workbook) -> None:
        wb["Lieux"].delete_cols(L.COLUMN_BY_KEY["unit"].index)

    src = make_workbook(tmp_path / "deleted.xlsx", customise=delete_unit)
    processed = process_workbook(src)
    (issue,) = [i for i in processed.issues if i.sheet == "Lieux"]  # nothing else on Lieux
    assert str(issue.code) == "HEADER_CHANGED" and issue.severity is Severity.ERROR
    assert issue.cell == "D4"
    assert issue.value == "Nombre"  # what stands where « Unité » was
    assert "(colonne « Unité » introuvable)" in issue.message  # Nombre moved left: not named
    assert "rétablissez l'en-tête « Unité »" in issue.message
    assert "ses 2 lignes ne sont pas comptées" in issue.message
    result = processed.result
    assert (len(result.lines), result.excluded_lines) == (ALL_LINES, LIEUX_LINES)
    assert result.by_poste["lieux"].forecast == 0
    assert f"{ALL_LINES} lignes, {LIEUX_LINES} non comptées" in summary_text(
        result, issues=processed.issues)
    out = tmp_path / "out.xlsx"
    write_processed(processed, src, out)
    assert _part(src, "Lieux") == _part(out, "Lieux")
    summary = value_at(sheet_values(out, L.SHEET_CONTROLES), L.CTRL_SUMMARY_CELL)
    assert summary.startswith(f"{ALL_LINES} ligne(s), {LIEUX_LINES} non comptée(s) ; 1 erreur")


def test_a_computed_column_moved_counts_the_lines_as_not_counted(tmp_path: Path) -> None:
    status, source = L.COLUMN_BY_KEY["status"], L.COLUMN_BY_KEY["source"]

    def swap(wb: openpyxl.Workbook) -> None:
        ws = wb["Régie"]
        ws[f"{status.letter}4"], ws[f"{source.letter}4"] = source.header, status.header

    src = make_workbook(tmp_path / "computed.xlsx", customise=swap)
    processed = process_workbook(src)
    (issue,) = [i for i in processed.issues if i.sheet == "Régie"]
    assert str(issue.code) == "HEADER_CHANGED"
    assert f"colonne calculée « {source.header} » déplacée en {status.letter}" in issue.message
    assert "remettez les colonnes grisées après les colonnes de saisie" in issue.message
    assert "sa ligne n'est pas comptée" in issue.message
    assert processed.result.excluded_lines == 1
    out = tmp_path / "out.xlsx"
    write_processed(processed, src, out)
    assert _part(src, "Régie") == _part(out, "Régie")


def test_a_column_twice_is_reported_once(tmp_path: Path) -> None:
    processed = process_workbook(make_workbook(
        tmp_path / "twice.xlsx", customise=_insert("Transports", 2, "Unité")))
    (issue,) = [i for i in processed.issues if i.sheet == "Transports"]
    assert str(issue.code) == "HEADER_CHANGED" and issue.cell == "E4"
    assert "« Unité » 2 fois (B, E)" in issue.message
    assert processed.result.excluded_lines == 1


def test_an_empty_header_row_is_one_issue(tmp_path: Path) -> None:
    def clear(wb: openpyxl.Workbook) -> None:
        for cell in wb["Lieux"][L.HEADER_ROW]:
            cell.value = None

    processed = process_workbook(make_workbook(tmp_path / "empty.xlsx", customise=clear))
    (issue,) = [i for i in processed.issues if i.sheet == "Lieux"]
    assert str(issue.code) == "HEADER_CHANGED" and issue.cell == "A4"
    assert "ligne 4 vide" in issue.message and "ses 2 lignes ne sont pas comptées" in \
        issue.message


def test_a_1_0_workbook_is_read_by_header_with_its_own_columns(tmp_path: Path) -> None:
    plain = process_workbook(make_v1_workbook(tmp_path / "v1.xlsx"))
    src = make_v1_workbook(tmp_path / "v1-inserted.xlsx",
                           customise=_insert("Lieux", 2, "Fournisseur"))
    processed = process_workbook(src)
    assert processed.data.layout is L.LAYOUT_1_0
    (issue,) = _on(processed.issues, "Lieux")
    assert str(issue.code) == "COLUMNS_MOVED" and issue.cell == "B4"
    assert processed.result.total_kg.forecast == pytest.approx(plain.result.total_kg.forecast)
    out = tmp_path / "out.xlsx"
    write_processed(processed, src, out)
    assert _part(src, "Lieux") == _part(out, "Lieux")


def test_a_renamed_input_header_is_quoted(tmp_path: Path) -> None:
    def rename(wb: openpyxl.Workbook) -> None:
        wb["Lieux"]["B4"] = "Qté"

    processed = process_workbook(make_workbook(tmp_path / "qte.xlsx", customise=rename))
    (issue,) = [i for i in processed.issues if i.sheet == "Lieux"]
    assert (str(issue.code), issue.cell, issue.value) == ("HEADER_CHANGED", "B4", "Qté")
    assert "colonne « Quantité prévisionnelle » introuvable (« Qté » en B)" in issue.message


def test_a_computed_header_retyped_in_place_is_still_written(tmp_path: Path) -> None:
    status = L.COLUMN_BY_KEY["status"]

    def rename(wb: openpyxl.Workbook) -> None:
        wb["Lieux"][f"{status.letter}4"] = "État"

    src = make_workbook(tmp_path / "etat.xlsx", customise=rename)
    processed = process_workbook(src)
    (issue,) = _on(processed.issues, "Lieux")
    assert str(issue.code) == "HEADER_CHANGED" and issue.value == "État"
    assert "« État » en Q au lieu de « Statut »" in issue.message
    assert "la colonne reste écrite par le calcul" in issue.message
    assert processed.result.excluded_lines == 0
    out = tmp_path / "out.xlsx"
    write_processed(processed, src, out)
    assert value_at(sheet_values(out, "Lieux"), f"{status.letter}5") == "OK"
