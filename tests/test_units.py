"""Unit conversion for every spelling the foundation promises, and the exact messages."""

from __future__ import annotations

import pytest

from carbonclap_xl.core import units
from carbonclap_xl.core.errors import MoneyYearMismatch, UnitMismatch, UnknownUnit


@pytest.mark.parametrize(("typed", "factor_unit", "expected"), [
    # Base Empreinte spellings on the factor side
    ("passager.km", "kgCO2e/passager.km", 1.0),
    ("km", "passager.km", 1.0),
    ("mi", "passager.km", 1.609344),
    ("km", "véhicule.km", 1.0),
    ("t.km", "kgCO2e/t.km", 1.0),
    ("kg.km", "tonne.km", 0.001),
    ("kWh PCI", "kgCO2e/kWh PCI", 1.0),
    ("MWh PCI", "kWh PCI", 1000.0),
    ("k€", "keuro (2023) HT", 1.0),
    ("€", "kgCO2e/keuro (2023) HT", 0.001),
    ("€ HT", "keuro (2023) HT", 0.001),
    ("k€ 2022", "keuro (2022) HT", 1.0),  # the factor's own year, written either way
    ("€ (2019)", "keuro (2019) HT", 0.001),
    ("€2019", "keuro (2019) HT", 0.001),
    ("euros de 2021", "keuro (2021) HT", 0.001),
    ("M€", "keuro (2023) HT", 1000.0),
    ("litre", "litre", 1.0),
    ("L", "kgCO2e/litre", 1.0),
    ("l", "litre", 1.0),
    ("m3", "litre", 1000.0),
    ("m³", "litre", 1000.0),
    ("tonne", "kg", 1000.0),
    ("t", "kg", 1000.0),
    ("kg", "tonne", 0.001),
    ("kg", "kgCO2e/kg de poids net", 1.0),
    ("repas", "repas", 1.0),
    ("unité", "unité", 1.0),
    ("nuit", "Room per night", 1.0),
    ("nuitées", "nuit", 1.0),
    ("kWh", "kWh", 1.0),
    ("MWh", "kWh", 1000.0),
    ("GJ", "kWh", 1000 / 3.6),
    ("To", "Go", 1000.0),
    ("TB", "GB.year", None),
])
def test_conversions(typed: str, factor_unit: str, expected: float | None) -> None:
    if expected is None:
        with pytest.raises(UnitMismatch):
            units.conversion(typed, factor_unit)
    else:
        assert units.conversion(typed, factor_unit) == pytest.approx(expected)


@pytest.mark.parametrize("spelling", [
    "passager.km", "t.km", "kWh PCI", "keuro (2023) HT", "litre", "tonne", "repas", "unité",
    "km", "L", "l", "m3", "m³", "MWh", "kWh", "€", "k€", "kg", "t", "nuit",
])
def test_every_promised_spelling_is_known(spelling: str) -> None:
    assert units.find(spelling) is not None


@pytest.mark.parametrize(("typed", "factor_unit"), [
    ("kWh", "kWh PCI"),  # PCI and PCS are never guessed
    ("kWh PCS", "kWh PCI"),
    ("km", "t.km"),
    ("€ TTC", "k€"),
    ("kg", "litre"),
    ("USD", "k€"),
    ("keuro (2019) HT", "keuro (2023) HT"),  # no silent deflation
    ("€ TTC", "kWh"),
])
def test_incompatible_units_raise(typed: str, factor_unit: str) -> None:
    with pytest.raises(UnitMismatch):
        units.conversion(typed, factor_unit)


def test_mismatch_message() -> None:
    with pytest.raises(UnitMismatch) as info:
        units.conversion("kWh", "kgCO2e/kWh PCI")
    assert str(info.value) == (
        "Unité « kWh » incompatible avec l'unité du facteur « kWh PCI » : saisissez la quantité "
        "en kWh PCI ou dans une unité convertible."
    )
    assert isinstance(info.value, ValueError)


def test_unknown_unit_suggests() -> None:
    with pytest.raises(UnknownUnit) as info:
        units.parse("kwhh")
    assert str(info.value) == (
        "Unité inconnue : « kwhh » ; vouliez-vous dire « kWh » ou « Wh » ou « kWh PCS » ?"
    )


def test_unknown_factor_unit_matches_itself_only() -> None:
    assert units.conversion("100 feuilles A4", "kgCO2e/100 feuilles A4") == 1.0
    with pytest.raises(UnknownUnit):
        units.conversion("feuille", "kgCO2e/100 feuilles A4")


def test_spellings_are_unambiguous() -> None:
    assert len(units.known_spellings()) > 150


@pytest.mark.parametrize(("typed", "factor_unit", "year", "factor_year"), [
    # euros of another year are refused the same way whether the year is written or not
    ("k€ (2025)", "keuro (2023) HT", 2025, 2023),
    ("k€ 2025", "keuro (2023) HT", 2025, 2023),
    ("€2025", "keuro (2023) HT", 2025, 2023),
    ("€ (2019)", "keuro (2023) HT", 2019, 2023),
    ("€", "keuro (2019) HT", 2023, 2019),  # « € » is 2023 euros: not a 2019 ratio's
    ("€", "keuro", 2023, None),  # an old ADEME ratio in euros of no stated year
    ("€ HT", "euro dépensé", 2023, None),
])
def test_euros_of_another_year_are_refused(typed: str, factor_unit: str, year: int,
                                           factor_year: int | None) -> None:
    with pytest.raises(MoneyYearMismatch) as info:
        units.conversion(typed, factor_unit)
    assert (info.value.year, info.value.factor_year) == (year, factor_year)
    assert isinstance(info.value, UnitMismatch)


def test_ttc_converts_with_the_vat_rate_given() -> None:
    assert units.conversion("€ TTC", "keuro (2023) HT", 20.0) == pytest.approx(0.001 / 1.2)
    assert units.conversion("k€ TTC", "keuro (2023) HT", 10.0) == pytest.approx(1 / 1.1)
    with pytest.raises(UnitMismatch):  # no rate, no guess
        units.conversion("€ TTC", "keuro (2023) HT")
    with pytest.raises(MoneyYearMismatch):
        units.conversion("€ TTC 2019", "keuro (2023) HT", 20.0)


def test_a_year_is_only_read_in_money_units() -> None:
    assert units.find("2000 km") is None
    assert units.money_year("keuro (2023) HT") == 2023
    assert units.money_year("k€") is None


@pytest.mark.parametrize(("unit", "factor_unit", "label"), [
    ("km", "passager.km", "km × passagers"),
    ("km", "kgCO2e/passenger.km", "km × passagers"),
    ("km", "véhicule.km", "km × véhicules"),
    ("km", "km", "km × véhicules"),
    ("t.km", "t.km", "t.km × trajets"),
    ("nuit", "Room per night", "nuit × personnes"),
    ("repas", "repas", "repas × personnes"),
    ("kWh", "kWh", "kWh × fois"),
])
def test_the_factor_kind_says_what_the_count_counts(unit: str, factor_unit: str,
                                                   label: str) -> None:
    assert units.entry_label(unit, factor_unit) == label
