"""The engine on tiny hand-checkable fixtures (a factor of 2, a quantity of 3)."""

from __future__ import annotations

import math
import subprocess
import sys

import pandas as pd
import pytest

from carbonclap_xl.core.engine import compute
from carbonclap_xl.core.factors import FactorEdition
from carbonclap_xl.core.issues import Code, Severity
from carbonclap_xl.core.model import ProductionInfo
from carbonclap_xl.core.numbers import parse_number


def line(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {"poste": "lieux", "activity": "Gazole", "quantity_forecast": None,
                               "quantity_final": None, "unit": "L", "data_source": "facture",
                               "comment": ""}
    base.update(kw)
    return base


def codes(result) -> list[str]:
    return [str(i.code) for i in result.issues]


def test_factor_two_quantity_three(edition: FactorEdition) -> None:
    r = compute([line(quantity_forecast=3, quantity_final=4)], edition)
    assert r.total_kg.forecast == pytest.approx(6.0)
    assert r.total_kg.final == pytest.approx(8.0)
    row = r.lines.to_pandas().iloc[0]
    assert row["factor_id"] == "BE:1" and row["factor_value"] == 2.0
    assert row["source_edition"] == "0.1" and row["source_dataset"] == "Test dataset"
    # u = sqrt(10² + 5²) % for a factor at 10 % and an invoice at 5 %
    assert row["uncertainty_pct"] == pytest.approx(math.sqrt(125))
    assert r.uncertainty_kg.forecast == pytest.approx(6.0 * math.sqrt(125) / 100)
    assert r.issues == []


def test_blank_phase_does_not_count(edition: FactorEdition) -> None:
    r = compute([line(quantity_forecast=3), line(quantity_final=5)], edition)
    assert r.total_kg.forecast == pytest.approx(6.0)
    assert r.total_kg.final == pytest.approx(10.0)


def test_unit_conversions(edition: FactorEdition) -> None:
    r = compute([
        line(quantity_forecast=2, unit="m3"),  # 2000 L × 2
        line(activity="Électricité", quantity_forecast=3, unit="MWh"),  # 3000 kWh × 0.5
        line(poste="transport", activity="Train", quantity_forecast=100, unit="km"),
        line(poste="decors", activity="Achats de services", quantity_forecast=2500, unit="€"),
    ], edition)
    assert list(r.lines["co2e_forecast_kg"]) == pytest.approx([4000.0, 1500.0, 1.0, 250.0])
    assert r.by_poste["lieux"].forecast == pytest.approx(5500.0)
    assert r.by_nature["energie"].forecast == pytest.approx(5500.0)
    assert r.by_nature["transport_personnes"].forecast == pytest.approx(1.0)
    assert r.by_nature["achats"].forecast == pytest.approx(250.0)


def test_total_uncertainty_shares_the_factor_error(edition: FactorEdition) -> None:
    # two lines of 6 kg on one factor (±10 %): its error is one error, counted once
    r = compute([line(quantity_forecast=3), line(quantity_forecast=3, data_source="estimation")],
                edition)
    factor = 0.10 * (6.0 + 6.0)  # linear within the factor's group
    quantities = [0.05 * 6.0, 0.30 * 6.0]  # invoice, estimate: independent
    assert r.uncertainty_kg.forecast == pytest.approx(
        math.sqrt(factor**2 + quantities[0] ** 2 + quantities[1] ** 2))  # 2.3 kg
    assert round(r.uncertainty_kg.forecast, 3) == 2.184  # √(1.2² + 0.3² + 1.8²)


def test_missing_factor_uncertainty_uses_stated_default(edition: FactorEdition) -> None:
    r = compute([line(activity="Électricité", quantity_forecast=2, unit="kWh")] * 2, edition)
    assert r.lines["uncertainty_pct"][0] == pytest.approx(math.sqrt(50**2 + 5**2))
    infos = [i for i in r.issues if i.code is Code.FACTOR_UNCERTAINTY_DEFAULT]
    assert len(infos) == 1 and infos[0].severity is Severity.INFO


def test_unknown_activity_suggests_and_excludes(edition: FactorEdition) -> None:
    r = compute([line(activity="Gazol", quantity_forecast=3)], edition)
    (issue,) = r.issues
    assert issue.code is Code.ACTIVITY_UNKNOWN and issue.line == 0 and issue.field == "activity"
    assert issue.message == (
        "Activité « Gazol » inconnue (vouliez-vous dire « Gazole » ?) : choisissez une activité "
        "de la liste ou citez un facteur « BE:<identifiant> »."
    )
    assert r.total_kg.forecast == 0.0 and r.excluded_lines == 1
    assert r.lines["status"][0] == "error"


def test_unit_mismatch_message(edition: FactorEdition) -> None:
    r = compute([line(quantity_forecast=3, unit="kg")], edition)
    (issue,) = r.issues
    assert issue.code is Code.UNIT_MISMATCH and issue.field == "unit"
    assert issue.message == (
        "Unité « kg » incompatible avec le facteur (par L) : saisissez la quantité en L ou dans "
        "une unité convertible."
    )
    assert math.isnan(r.lines["co2e_forecast_kg"][0])


def test_quantity_rules(edition: FactorEdition) -> None:
    r = compute([
        line(quantity_forecast="1 200,5"),
        line(quantity_forecast="abc"),
        line(quantity_forecast=-3),
        line(quantity_forecast=1e12),
        line(activity="", quantity_forecast=3),
        line(quantity_forecast=None),
        line(quantity_forecast="12 L", unit=""),
    ], edition)
    found = {(i.line, str(i.code)) for i in r.issues}
    assert (0, "QUANTITY_TEXT") in found
    assert (1, "QUANTITY_NOT_NUMBER") in found
    assert (2, "QUANTITY_NEGATIVE") in found
    assert (3, "QUANTITY_ABSURD") in found
    assert (4, "ACTIVITY_MISSING") in found
    assert (5, "QUANTITY_MISSING") in found
    assert r.lines["co2e_forecast_kg"][0] == pytest.approx(2401.0)
    assert r.lines["co2e_forecast_kg"][6] == pytest.approx(24.0)


def test_absurd_line_total(edition: FactorEdition) -> None:
    r = compute([line(quantity_forecast=3_000_000, unit="m3")], edition)  # 6e9 kg
    assert Code.QUANTITY_ABSURD in {i.code for i in r.issues}
    assert r.total_kg.forecast == 0.0


def test_wrong_poste_warns_but_counts(edition: FactorEdition) -> None:
    r = compute([line(poste="decors", quantity_forecast=3)], edition)
    assert codes(r) == ["ACTIVITY_WRONG_POSTE"]
    assert r.by_poste["decors"].forecast == pytest.approx(6.0)


def test_data_source_unknown_defaults_to_estimation(edition: FactorEdition) -> None:
    r = compute([line(quantity_forecast=3, data_source="ouï-dire")], edition)
    assert codes(r) == ["DATA_SOURCE_UNKNOWN"]
    assert r.lines["uncertainty_pct"][0] == pytest.approx(math.sqrt(10**2 + 30**2))


def test_indicators(edition: FactorEdition) -> None:
    info = ProductionInfo(budget_keur=3.0, shooting_days=2, episodes=3, duration_min=30)
    r = compute([line(quantity_forecast=3000, quantity_final=1500)], edition, info)  # 6 t / 3 t
    assert r.indicators["tco2e_per_hour"].forecast == pytest.approx(12.0)
    assert r.indicators["kgco2e_per_keur"].final == pytest.approx(1000.0)
    assert r.indicators["tco2e_per_shooting_day"].forecast == pytest.approx(3.0)
    assert r.indicators["tco2e_per_episode"].final == pytest.approx(1.0)


def test_blank_lines_are_ignored(edition: FactorEdition) -> None:
    r = compute([line(activity="", unit="", data_source=""), line(quantity_forecast=1)], edition)
    assert r.issues == [] and r.total_kg.forecast == pytest.approx(2.0)


def test_json_is_serialisable(edition: FactorEdition) -> None:
    import json

    r = compute([line(quantity_forecast=3), line(activity="?", quantity_forecast=1)], edition)
    doc = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert doc["total_kgco2e"] == {"forecast": 6.0, "final": 0.0}
    assert doc["lines"][1]["co2e_forecast_kg"] is None
    assert set(doc["by_poste"]) >= {"lieux", "transport", "postprod"}


def test_vectorised_on_many_lines(edition: FactorEdition) -> None:
    frame = pd.DataFrame([line(quantity_forecast=i % 7) for i in range(20_000)])
    r = compute(frame, edition)
    assert r.total_kg.forecast == pytest.approx(2.0 * sum(i % 7 for i in range(20_000)))


@pytest.mark.parametrize(("text", "value", "unit"), [
    ("1 200,5", 1200.5, None), ("1200.5", 1200.5, None), ("1,200.5", 1200.5, None),
    ("1.200,5", 1200.5, None), ("12 km", 12.0, "km"), ("3,5 L", 3.5, "L"),
    ("1\u202f000", 1000.0, None), ("abc", None, None), ("", None, None), ("-4", -4.0, None),
    ("03/01/2024", None, None), ("2024-01-03", None, None), ("5 k€", 5.0, "k€"),
])
def test_parse_number(text: str, value: float | None, unit: str | None) -> None:
    assert parse_number(text) == (value, unit)


def test_engine_imports_no_io_layer() -> None:
    code = ("import sys, carbonclap_xl.core.engine, carbonclap_xl.core.factors;"
            "bad=[m for m in ('openpyxl','xlwings','python_calamine','lxml') if m in sys.modules];"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_package_import_is_light() -> None:
    code = "import sys, carbonclap_xl; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_booleans_are_not_numbers_even_next_to_ones(edition: FactorEdition) -> None:
    for values, position in (([True, 1], 0), ([1, True], 1)):
        r = compute([line(quantity_forecast=v) for v in values], edition)
        bad = [i for i in r.issues if i.code is Code.QUANTITY_NOT_NUMBER]
        assert [i.line for i in bad] == [position]
        assert bad[0].value == "VRAI/FAUX"
        assert r.total_kg.forecast == pytest.approx(2.0)


def test_unit_after_number_must_agree_with_unit_cell(edition: FactorEdition) -> None:
    r = compute([line(quantity_forecast="12 km", unit="L"), line(quantity_forecast="3 L")],
                edition)
    assert (0, Code.QUANTITY_UNIT_CONFLICT) in {(i.line, i.code) for i in r.issues}
    assert math.isnan(r.lines["co2e_forecast_kg"][0])
    assert r.lines["co2e_forecast_kg"][1] == pytest.approx(6.0)


def test_blank_poste_is_an_error_not_a_lost_total(edition: FactorEdition) -> None:
    r = compute([line(poste="", quantity_forecast=3), line(quantity_forecast=1)], edition)
    (issue,) = [i for i in r.issues if i.code is Code.POSTE_UNKNOWN]
    assert issue.line == 0 and "« (vide) »" in issue.message
    assert r.total_kg.forecast == pytest.approx(sum(v.forecast for v in r.by_poste.values()))


def test_infinite_quantities_and_tiny_denominators(edition: FactorEdition) -> None:
    r = compute([line(quantity_forecast=float("-inf")), line(quantity_forecast=float("inf")),
                 line(quantity_forecast=3)], edition,
                ProductionInfo(duration_min=1e-310, shooting_days=2))
    found = {(i.line, i.code) for i in r.issues}
    assert (0, Code.QUANTITY_NEGATIVE) in found and (1, Code.QUANTITY_ABSURD) in found
    assert "tco2e_per_hour" not in r.indicators  # no infinity in the results
    assert r.indicators["tco2e_per_shooting_day"].forecast == pytest.approx(0.003)


def test_uncertainty_by_poste_and_nature(edition: FactorEdition) -> None:
    r = compute([line(quantity_forecast=3), line(quantity_forecast=3, data_source="estimation"),
                 line(poste="transport", activity="Train", quantity_forecast=100, unit="km")],
                edition)
    lieux = math.sqrt((0.10 * 12.0) ** 2 + (0.05 * 6.0) ** 2 + (0.30 * 6.0) ** 2)
    assert r.uncertainty_by_poste["lieux"].forecast == pytest.approx(lieux)
    assert r.uncertainty_by_nature["transport_personnes"].forecast == pytest.approx(
        1.0 * math.sqrt(20**2 + 5**2) / 100)
    assert r.to_dict()["by_poste"]["lieux"]["uncertainty"]["forecast"] == pytest.approx(lieux)
    total = math.sqrt(lieux**2 + (0.20 * 1.0) ** 2 + (0.05 * 1.0) ** 2)
    assert r.uncertainty_kg.forecast == pytest.approx(total)


def test_a_line_with_an_error_is_not_counted_in_either_phase(edition: FactorEdition) -> None:
    r = compute([line(quantity_forecast="abc", quantity_final=3)], edition)
    assert r.lines["status"][0] == "error" and r.excluded_lines == 1
    assert r.total_kg.final == 0.0


# --------------------------------------------------------------------------- issue 8


def test_count_multiplies_the_quantity(edition: FactorEdition) -> None:
    # a TGV Paris–Lyon for 6 people: 430 km × 6 passagers × 0.01 kgCO2e/passager.km
    r = compute([line(poste="transport", activity="Train", quantity_forecast=430,
                      quantity_final=430, unit="km", count=6)], edition)
    assert r.total_kg.forecast == pytest.approx(25.8)
    assert r.total_kg.final == pytest.approx(25.8)  # the count applies to both phases
    row = r.lines.records()[0]
    assert row["count_used"] == 6.0 and row["count_unit"] == "passagers"
    assert codes(r) == []


def test_blank_count_is_one_and_text_counts_are_read(edition: FactorEdition) -> None:
    r = compute([line(quantity_forecast=3, count=None), line(quantity_forecast=3, count="2"),
                 line(quantity_forecast=3, count="1,5")], edition)
    assert list(r.lines["co2e_forecast_kg"]) == pytest.approx([6.0, 12.0, 9.0])


@pytest.mark.parametrize("count", [0, -2, "six", "430 km", True])
def test_a_count_must_be_a_positive_number(edition: FactorEdition, count: object) -> None:
    r = compute([line(quantity_forecast=3, count=count)], edition)
    (issue,) = r.issues
    assert issue.code is Code.COUNT_INVALID and issue.field == "count"
    assert issue.severity is Severity.ERROR and r.excluded_lines == 1
    assert "vide = 1" in issue.message
    assert "n'est pas un nombre positif" in issue.message


def test_a_huge_count_is_out_of_scale(edition: FactorEdition) -> None:
    (issue,) = compute([line(quantity_forecast=3, count=1e12)], edition).issues
    assert issue.code is Code.COUNT_INVALID and "hors d'échelle" in issue.message


def test_passenger_km_without_persons_is_a_warning(edition: FactorEdition) -> None:
    r = compute([line(poste="transport", activity="Train", quantity_forecast=430, unit="km"),
                 line(poste="transport", activity="Train", quantity_forecast=430, unit="",
                      count=1),
                 line(poste="transport", activity="Train", quantity_forecast=2580,
                      unit="passager.km")], edition)
    (issue,) = r.issues
    assert issue.code is Code.COUNT_PASSENGERS_MISSING and issue.line == 0
    assert issue.severity is Severity.WARNING and issue.field == "count"
    assert "nombre de personnes dans la colonne Nombre" in issue.message
    assert r.total_kg.forecast == pytest.approx(4.3 + 4.3 + 25.8)  # counted meanwhile


def test_each_phase_has_its_data_source(edition: FactorEdition) -> None:
    # a devis forecast (±10 %) and an invoiced final (±5 %), factor ±10 %
    r = compute([line(quantity_forecast=3, quantity_final=3, data_source="devis",
                      data_source_final="facture")], edition)
    row = r.lines.records()[0]
    assert row["uncertainty_forecast_pct"] == pytest.approx(math.sqrt(10**2 + 10**2))
    assert row["uncertainty_final_pct"] == pytest.approx(math.sqrt(10**2 + 5**2))
    assert row["uncertainty_pct"] == pytest.approx(math.sqrt(200))  # the larger one
    assert r.uncertainty_kg.forecast == pytest.approx(6.0 * math.sqrt(0.01 + 0.01))  # 0.85 kg
    assert r.uncertainty_kg.final == pytest.approx(6.0 * math.sqrt(0.01 + 0.0025))  # 0.67 kg
    blank = compute([line(quantity_forecast=3, quantity_final=3, data_source="devis")], edition)
    assert blank.lines["uncertainty_final_pct"][0] == pytest.approx(math.sqrt(200))
    odd = compute([line(quantity_final=3, data_source_final="bon de livraison")], edition)
    (issue,) = odd.issues
    assert issue.code is Code.DATA_SOURCE_UNKNOWN and issue.field == "data_source_final"


def test_ten_lines_sharing_a_factor_keep_its_uncertainty(edition: FactorEdition) -> None:
    # ten purchases on one ratio at ±80 %: ±80 % of the total, not ±80 %/√10 = ±25 %
    lines = [line(poste="decors", activity="Achats de services", quantity_forecast=1000,
                  unit="€", data_source="facture") for _ in range(10)]
    r = compute(lines, edition)
    assert r.total_kg.forecast == pytest.approx(1000.0)
    factor, quantity = 0.80 * 1000.0, math.sqrt(10 * (0.05 * 100.0) ** 2)
    assert r.uncertainty_kg.forecast == pytest.approx(math.hypot(factor, quantity))
    assert 80.0 < 100 * r.uncertainty_kg.forecast / r.total_kg.forecast < 80.1


def test_factors_of_one_group_share_their_error(edition: FactorEdition) -> None:
    from dataclasses import replace

    from tests.conftest import make_factor

    acts = dict(edition.activities)
    for key, fid in (("a", "BE:10"), ("b", "BE:11")):
        factor = replace(make_factor(fid, 100.0, "keuro (2023) HT", 50.0),
                         uncertainty_group="ratios")
        acts[key] = replace(acts["achats"], id=key, label_fr=key, factor=factor)
    grouped = type(edition)(edition="g", sources=edition.sources, activities=acts,
                            _root=edition._root)
    r = compute([line(poste="decors", activity="a", quantity_forecast=1, unit="k€",
                      data_source="facture"),
                 line(poste="decors", activity="b", quantity_forecast=1, unit="k€",
                      data_source="facture")], grouped)
    assert r.lines["uncertainty_group"][0] == "ratios"
    assert r.uncertainty_kg.forecast == pytest.approx(
        math.sqrt((0.5 * 200) ** 2 + 2 * (0.05 * 100) ** 2))


def test_ttc_amount_converts_with_the_family_vat(edition: FactorEdition) -> None:
    # 1 200 € TTC of purchases (VAT 20 %) = 1 000 € HT = 1 k€ × 100 kgCO2e/k€
    r = compute([line(poste="decors", activity="Achats de services", quantity_forecast=1200,
                      unit="€ TTC")], edition)
    assert r.total_kg.forecast == pytest.approx(100.0)
    assert r.issues == []


def test_euros_of_another_year_are_refused_at_their_cell(edition: FactorEdition) -> None:
    r = compute([line(poste="decors", activity="Achats de services", quantity_forecast=2,
                      unit="k€ (2025)"),
                 line(poste="decors", activity="Achats de services", quantity_forecast=2,
                      unit="k€ 2023")], edition)
    (issue,) = r.issues
    assert issue.code is Code.MONEY_YEAR_MISMATCH and issue.field == "unit" and issue.line == 0
    assert "euros de 2025" in issue.message and "euros de 2023" in issue.message
    assert r.total_kg.forecast == pytest.approx(200.0) and r.excluded_lines == 1
