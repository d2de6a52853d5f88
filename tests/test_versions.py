"""Template versions: a 1.0 workbook still processes with unchanged totals (read, computed and
written at its own columns), and `upgrade` moves it to the current version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest

from carbonclap_xl.workbook import layout as L
from carbonclap_xl.xlsx.files import process_workbook, write_processed
from tests.wbhelpers import LINES, PRODUCTION, make_workbook, sheet_values, value_at

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
    assert sheet_values(out, "Synthèse") == sheet_values(
        _processed(p2, new, tmp_path / "v2-out.xlsx"), "Synthèse")


def _processed(processed: Any, src: Path, dst: Path) -> Path:
    write_processed(processed, src, dst)
    return dst


def test_a_1_0_workbook_issue_is_located_at_its_own_columns(tmp_path: Path) -> None:
    def customise(wb: openpyxl.Workbook) -> None:
        wb["Lieux"]["E5"] = "bon de livraison"  # 1.0: E is the data source

    processed = process_workbook(make_v1_workbook(tmp_path / "v1.xlsx", customise=customise))
    found = {(i.sheet, i.cell, str(i.code)) for i in processed.issues}
    assert ("Lieux", "E5", "DATA_SOURCE_UNKNOWN") in found
