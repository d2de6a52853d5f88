"""Finding activities as a producer types them: ranking, and the `activities list` command."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from carbonclap_xl.cli import main
from carbonclap_xl.core.catalogue import ALL_WORDS, EXACT, FUZZY, PREFIX, rank_activities
from carbonclap_xl.core.factors import FactorEdition
from tests.conftest import make_factor


@pytest.fixture
def catalogue(edition: FactorEdition) -> list:
    train = edition.activities["train"]
    extra = [
        replace(train, id="train_tgv", label_fr="Train – TGV (km × personnes)"),
        replace(train, id="train_ter", label_fr="Train – TER régional"),
        replace(train, id="car_hire", label_fr="Voiture de location – essence", label_en="Car hire",
                factor=make_factor("BE:9", 0.2, "km"), note="Location courte durée"),
    ]
    return [*edition.activities.values(), *extra]


def ids(matches: list) -> list[tuple[str, int]]:
    return [(m.activity.id, m.rank) for m in matches]


def test_exact_then_prefix_then_all_words_then_fuzzy(catalogue: list) -> None:
    assert ids(rank_activities(catalogue, "Train")) == [
        ("train", EXACT), ("train_ter", PREFIX), ("train_tgv", PREFIX)]
    assert ids(rank_activities(catalogue, "tgv train")) == [("train_tgv", ALL_WORDS)]
    assert ids(rank_activities(catalogue, "location")) == [("car_hire", ALL_WORDS)]  # note
    assert ids(rank_activities(catalogue, "trian"))[0] == ("train", FUZZY)


def test_accents_case_and_ids(catalogue: list) -> None:
    assert ids(rank_activities(catalogue, "ELECTRICITE")) == [("elec", EXACT)]
    assert ids(rank_activities(catalogue, "train_tgv")) == [("train_tgv", EXACT)]
    assert ids(rank_activities(catalogue, "regional ter")) == [("train_ter", ALL_WORDS)]
    assert rank_activities(catalogue, "tv") == []  # short words are not fuzzy-matched


def test_poste_filter_and_no_text(catalogue: list) -> None:
    every = rank_activities(catalogue, None, poste="lieux")
    assert [m.activity.id for m in every] == ["elec", "gazole"]  # label order
    assert [m.entry for m in rank_activities(catalogue, "train_tgv")] == ["km × passagers"]
    assert [m.entry for m in rank_activities(catalogue, "car_hire")] == ["km × véhicules"]


def test_activities_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["activities", "list", "--search", "tgv", "--poste", "transport",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    first = doc["activities"][0]
    assert first["id"] == "train_tgv" and first["entry"] == "km × passagers"
    assert {"id", "label_fr", "unit", "postes", "nature", "factor_id", "value", "factor_unit",
            "uncertainty_pct", "note", "match"} <= set(first)
    assert first["value"] == pytest.approx(0.00293) and first["factor_unit"] == "passager.km"


def test_activities_list_text_and_bad_poste(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["activities", "list", "--search", "gazole non routier"]) == 0
    out = capsys.readouterr()
    assert "generator_gnr_l" in out.out and "activité(s) pour « gazole non routier »" in out.err
    with pytest.raises(SystemExit) as info:
        main(["activities", "list", "--poste", "cantine"])
    assert info.value.code == 2


def test_activities_list_imports_no_numpy() -> None:
    code = ("import sys; from carbonclap_xl.cli import main; "
            "main(['activities', 'list', '--search', 'hotel', '--json']); "
            "sys.stderr.write(str(sorted({'numpy', 'pandas'} & set(sys.modules))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stderr.strip() == "[]"


def test_one_search_for_every_front_door(edition: FactorEdition) -> None:
    """The Excel ribbon and CC_RECHERCHE (core.worksheet), the LibreOffice extension and
    ``activities list`` give the same activities in the same order; the sheet's poste first."""
    from carbonclap_xl.core.worksheet import search_activities as excel_search
    from carbonclap_xl.libreoffice.exchange import search_activities as lo_search

    for text, poste in (("train", None), ("repas", "regie"), ("gazole", "lieux")):
        ranked = [m.activity for m in rank_activities(edition.activities.values(), text,
                                                      prefer=poste)]
        assert excel_search(edition, text, poste) == ranked[:30]
        assert lo_search(edition, text, poste) == ranked[:len(lo_search(edition, text, poste))]
        if poste:
            inside = [poste in a.postes for a in ranked]
            assert inside == sorted(inside, reverse=True)  # the poste's activities first
