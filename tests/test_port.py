"""The workbook port's JSON exchange: what a front end in another language (the
LibreOffice extension) sends and receives."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from carbonclap_xl.workbook.pipeline import run
from carbonclap_xl.workbook.port import (
    EXCHANGE_VERSION,
    Formula,
    WritePlan,
    date_to_serial,
    plan_from_json,
    plan_to_json,
    serial_to_date,
    source_from_json,
    source_to_json,
)
from carbonclap_xl.xlsx.files import FileSource
from tests.wbhelpers import make_workbook


@pytest.mark.parametrize(("value", "serial"), [
    (dt.date(2026, 4, 6), 46118.0),  # what LibreOffice's getDataArray gives for that date
    (dt.date(1900, 3, 1), 61.0),
    (dt.datetime(2026, 4, 6, 12, 30), 46118.520833333336),
    (dt.time(6, 0), 0.25),
])
def test_dates_travel_as_serial_numbers(value: object, serial: float) -> None:
    assert date_to_serial(value) == pytest.approx(serial)
    assert serial_to_date(serial) == value


def test_only_cells_listed_as_dates_become_dates() -> None:
    doc = {"version": EXCHANGE_VERSION, "name": "x", "sheets": {"S": {
        "values": [[46118.0, 46118.0, "texte"], [45000.5, "", 3.0]],
        "dates": ["A1:A2", "C1"]}}}
    rows = source_from_json(doc).values("S")
    assert rows == [[dt.date(2026, 4, 6), 46118.0, "texte"],
                    [dt.datetime(2023, 3, 15, 12, 0), "", 3.0]]


def test_a_file_source_survives_the_json_exchange(tmp_path: Path) -> None:
    book = make_workbook(tmp_path / "in.xlsx")
    source = FileSource(book)
    doc = json.loads(json.dumps(source_to_json(source)))  # plain JSON: dates are numbers
    assert doc["sheets"]["Production"]["dates"] == ["B12", "B13"]
    memory = source_from_json(doc)
    assert memory.values("Production") == source.values("Production")
    a, b = run(source), run(memory)
    assert b.result.total_kg == a.result.total_kg
    assert [(i.code, i.sheet, i.cell) for i in b.issues] == [
        (i.code, i.sheet, i.cell) for i in a.issues]
    assert plan_to_json(b.plan()) == plan_to_json(a.plan())


def test_plans_round_trip_with_formulas() -> None:
    plan = WritePlan(clear={"S": ["A5:C9"]})
    plan.set("S", "B2", Formula("SUM(A1:A3)", 6.0))
    plan.set("S", (3, 1), "texte")
    plan.set("S", "C3", float("nan"))
    doc = plan_to_json(plan, message="ok")
    assert doc["cells"]["S"] == [[2, 2, {"formula": "=SUM(A1:A3)", "value": 6.0}],
                                 [3, 1, "texte"], [3, 3, None]]
    back = plan_from_json(json.loads(json.dumps(doc)))
    assert back.get("S", "B2") == Formula("SUM(A1:A3)", 6.0) and back.clear == plan.clear


def test_an_unknown_exchange_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version d'échange 2 inconnue"):
        source_from_json({"version": 2, "sheets": {}})
