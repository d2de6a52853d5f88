"""The shipped factor data against its sources, and the catalogue's coverage."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from carbonclap_xl.core.errors import FactorNotFound
from carbonclap_xl.core.factors import load_edition
from carbonclap_xl.core.model import NATURE_IDS, POSTE_IDS
from tools import factorbuild

SOURCE_DIR = factorbuild.DEFAULT_SOURCE_DIR
OUT = factorbuild.DEFAULT_OUT_DIR
ID = "Identifiant de l'élément"
needs_sources = pytest.mark.skipif(not SOURCE_DIR.is_dir(),
                                   reason=f"shared factor sources not at {SOURCE_DIR}")


@needs_sources
@pytest.mark.slow
def test_rebuild_from_sources_finds_no_difference() -> None:
    """`make factors` is idempotent: every committed file is what the build writes."""
    files = factorbuild.build(SOURCE_DIR, factorbuild.DEFAULT_OUT_DIR)
    assert len(files) == 2 * len(factorbuild.SOURCES) + 1
    for path, text in files.items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run make factors"


@needs_sources
def test_derived_edition_and_catalogue_are_current() -> None:
    """The fast part of the rebuild: the derived edition (CCX, computed from every source)
    and the resolved catalogue; the full rebuild is the slow test above."""
    files = factorbuild.build(SOURCE_DIR, factorbuild.DEFAULT_OUT_DIR, only={"CCX"})
    assert len(files) == 3
    for path, text in files.items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run make factors"


@needs_sources
def test_official_semicolon_latin1_export_builds_the_same(tmp_path: Path) -> None:
    """ADEME's own CSV: ';'-separated, cp1252, decimal commas."""
    src = SOURCE_DIR / "base_carbone_v23.6_all_rows.csv"
    with src.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    numeric = {i for i, h in enumerate(rows[0])
               if h in ("Total poste non décomposé", "Incertitude", "CO2f", "CH4f", "N2O")}
    official = tmp_path / "official.csv"
    with official.open("w", encoding="cp1252", errors="replace", newline="") as fh:
        writer = csv.writer(fh, delimiter=";")
        for n, row in enumerate(rows):
            writer.writerow([c.replace(".", ",") if n and i in numeric else c
                             for i, c in enumerate(row)])
    source = factorbuild.SOURCE_BY_KEY["BE"]
    ours = {f["id"]: f for f in source.read(factorbuild.BuildInputs(SOURCE_DIR, OUT), source)}
    theirs = source.read(factorbuild.BuildInputs(tmp_path, OUT),
                         factorbuild.Source(**{**source.__dict__, "input_file": "official.csv"}))
    assert len(theirs) == len(ours)
    for f in theirs:
        assert f["value"] == ours[f["id"]]["value"]
        assert f["uncertainty_pct"] == ours[f["id"]]["uncertainty_pct"]


@needs_sources
def test_every_valid_base_empreinte_factor_is_reachable() -> None:
    with (SOURCE_DIR / "base_carbone_v23.6_all_rows.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["Type Ligne"] == "Elément"
                and r["Type de l'élément"] == "Facteur d'émission"]
    edition = load_edition()
    valid = [r for r in rows if r["Statut de l'élément"].startswith("Valide")]
    archived = [r for r in rows if r["Statut de l'élément"] == "Archivé"]
    assert len(valid) > 6000
    for r in valid:
        f = edition.factor("BE:" + r[ID])
        assert f.status == "valid"
        assert f.value == pytest.approx(float(r["Total poste non décomposé"]))
    for r in archived[:200]:
        assert edition.factor("BE:" + r[ID]).status == "archived"


@pytest.mark.parametrize(("ref", "value", "unit"), [
    ("BE:43642", 0.0519, "kWh"),  # electricity France mix 2024
    ("BE:14015", 3.16, "litre"),  # GNR, the generator fuel
    ("BE:25775", 3.10, "litre"),  # road diesel B7
])
def test_reference_values_from_the_source_readme(ref: str, value: float, unit: str) -> None:
    f = load_edition().factor(ref)
    assert f.value == pytest.approx(value, abs=0.005) and f.unit == unit
    assert f.source_dataset.startswith("ADEME Base Empreinte") and f.source_edition == "23.6"


def test_unknown_reference_suggests_close_ids() -> None:
    with pytest.raises(FactorNotFound) as info:
        load_edition().factor("BE:436420")
    assert "BE:43642" in info.value.suggestions


def test_catalogue_covers_every_poste_and_nature() -> None:
    edition = load_edition()
    for poste in POSTE_IDS:
        assert len(edition.activities_for(poste)) >= 8, poste
    natures = {a.nature for a in edition.activities.values()}
    assert natures == set(NATURE_IDS)
    assert len({a.label_fr for a in edition.activities.values()}) == len(edition.activities)


def test_air_travel_offers_both_contrail_variants() -> None:
    labels = [a.label_fr.lower() for a in load_edition().activities.values()
              if a.nature == "transport_personnes"]
    with_contrails = [x for x in labels if "avion" in x and "avec traînées" in x]
    without = [x for x in labels if "avion" in x and "sans traînées" in x]
    assert with_contrails and len(with_contrails) == len(without)


def test_every_catalogue_unit_converts_into_its_factor() -> None:
    from carbonclap_xl.core.units import conversion

    for act in load_edition().activities.values():
        assert conversion(act.unit, act.factor.unit) > 0, act.id


def test_attribution_is_in_the_factors_readme() -> None:
    readme = (factorbuild.DEFAULT_OUT_DIR / "README.md").read_text(encoding="utf-8")
    for source in factorbuild.SOURCES:
        assert source.attribution in readme
        assert source.licence in readme


def test_generated_files_say_so() -> None:
    for source in factorbuild.SOURCES:
        head = (factorbuild.DEFAULT_OUT_DIR / source.folder / f"{source.edition}.yaml").read_text(
            encoding="utf-8")[:600]
        assert "do not edit" in head and factorbuild.GENERATOR in head


@pytest.mark.parametrize("typed", ["Repas - végétarien", "repas vegetarien", "Repas — végétarien",
                                   "REPAS  VÉGÉTARIEN", "repas-vegetarien", "Repas – végétarien"])
def test_activity_labels_forgive_what_keyboards_type(typed: str) -> None:
    from carbonclap_xl.core.factors import load_edition

    found = load_edition().activity(typed)
    assert found is not None and found.label_fr == "Repas – végétarien"


@pytest.mark.parametrize("typed", ["Train - TGV (km x personnes)", "train tgv km X personnes",
                                   "Train – TGV (km × personnes)"])
def test_a_typed_x_stands_for_the_multiplication_sign(typed: str) -> None:
    from carbonclap_xl.core.factors import load_edition

    found = load_edition().activity(typed)
    assert found is not None and found.id == "train_tgv"


def test_no_two_activities_share_a_matching_key() -> None:
    from carbonclap_xl.core.factors import load_edition, match_key

    edition = load_edition()
    keys = [match_key(a.label_fr) for a in edition.activities.values()]
    assert len(keys) == len(set(keys))


def test_every_activity_resolves_to_its_shipped_factor() -> None:
    edition = load_edition()
    for act in edition.activities.values():
        assert edition.factor(act.factor.id) == act.factor, act.id


PER_DAY_POSTES = ("technique", "lieux", "transport", "hmc", "regie")


@pytest.mark.parametrize("poste", PER_DAY_POSTES)
def test_per_day_equipment_comes_before_the_monetary_rentals(poste: str) -> None:
    """In catalogue order, and in the alphabetical order of the template's dropdowns, where
    « Matériel à la journée – … » sorts before « Matériel – … (location en €, majorant) »."""
    acts = load_edition().activities_for(poste)
    alphabetical = [a for a in sorted(acts, key=lambda a: a.label_fr)
                    if a.label_fr.startswith("Matériel")]
    for order in (acts, alphabetical):
        per_day = [i for i, a in enumerate(order) if "à la journée" in a.label_fr]
        rental = [i for i, a in enumerate(order) if "(location en €, majorant)" in a.label_fr]
        assert per_day or poste not in ("technique", "lieux"), poste
        assert not (rental and per_day) or max(per_day) < min(rental), poste


def test_monetary_equipment_rentals_say_they_are_upper_bounds() -> None:
    for act in load_edition().activities.values():
        if act.nature == "amortissement" and act.unit == "€":
            assert act.label_fr.endswith("(location en €, majorant)"), act.id
            assert "Borne haute" in (act.note or "")
        if "à la journée" in act.label_fr:
            assert act.unit in ("jour", "m2.jour") and act.factor.id.startswith("CCX:"), act.id


@needs_sources
def test_desnz_factors_of_the_catalogue_carry_their_upstream() -> None:
    """Every DESNZ row the catalogue uses directly has no upstream row in DESNZ; the others
    are used through their CCX direct + upstream factor."""
    rows = factorbuild._desnz_rows(SOURCE_DIR / "desnz_2024_v1.1_flat_factors.csv")
    for act in load_edition().activities.values():
        if act.factor.id.startswith("DESNZ:"):
            assert factorbuild.desnz_upstream_ids(rows, act.factor.source_id) == set(), act.id


def test_waste_follows_the_cut_off_rule() -> None:
    """No ADEME recycling "impacts" row (they include making the secondary material), and
    "fin de vie moyenne" rows only where the source's perimeter holds no recycling."""
    averages_allowed = {
        "waste_residual_avg",  # residual household waste: incineration and landfill
        "waste_textiles_avg",  # ADEME: "ne couvre que les étapes de collecte et tri"
        "waste_furniture", "waste_weee", "waste_batteries",  # take-back schemes, stated in notes
    }
    for act in load_edition().activities.values():
        if act.nature != "dechets":
            continue
        label = act.factor.label_fr.lower()
        assert "– recyclage" not in label, act.id  # BE: « … – Recyclage - Impacts »
        if "fin de vie moyenne" in label:
            assert act.id in averages_allowed, act.id
        if "recyclage (collecte" in act.label_fr:
            assert act.factor.id.startswith("DESNZ:") and "cut-off" in act.label_fr, act.id
            assert "Closed-loop" in act.factor.label_en


def test_hotel_nights_and_breakfasts_are_coherent() -> None:
    acts = load_edition().activities
    assert "sans petit-déjeuner (défaut)" in acts["hotel_fr"].label_fr
    assert "avec petit-déjeuner" in acts["hotel_fr_avg_breakfast"].label_fr
    assert acts["hotel_fr"].factor.value + acts["breakfast_hotel"].factor.value == \
        pytest.approx(acts["hotel_fr_avg_breakfast"].factor.value)
    for act in acts.values():
        if act.label_fr.startswith("Hôtel – nuitée en France"):
            assert "petit-déjeuner" in act.label_fr, act.id


def test_former_labels_stay_in_the_resolved_catalogue() -> None:
    import json

    doc = json.loads((factorbuild.DEFAULT_OUT_DIR / "catalogue.resolved.json").read_text("utf-8"))
    labels = [a["label_fr"] for a in doc["activities"]]
    former = [x for a in doc["activities"] for x in a.get("former_labels", [])]
    assert former and not set(former) & set(labels) and len(set(former)) == len(former)
    assert "Matériel – caméras et optiques : location ou achat (€)" in former


def test_monetary_activities_are_in_the_shared_group() -> None:
    import json

    doc = json.loads((factorbuild.DEFAULT_OUT_DIR / "catalogue.resolved.json").read_text("utf-8"))
    for a in doc["activities"]:
        f = a["factor"]
        if f["id"].startswith("BE:") and f["unit"] == "keuro (2023) HT":
            assert f["uncertainty_group"] == factorbuild.GROUP_ADEME_MONETARY, a["id"]
        elif f["id"].startswith("EPA:"):
            assert f["uncertainty_group"] == factorbuild.GROUP_EPA_MONETARY, a["id"]
        elif f["id"].startswith(("CCX:equip-", "CCX:vehicle-")):
            assert f["uncertainty_group"] == "ccx-equipment-days", a["id"]
        else:
            assert f["uncertainty_group"] is None, a["id"]


def test_former_labels_still_name_their_activity() -> None:
    edition = load_edition()
    moved = [(a, old) for a in edition.activities.values() for old in a.former_labels]
    assert moved, "the catalogue records the labels it renamed"
    for act, old in moved:
        assert edition.activity(old) is act


def test_surface_by_day_lines_convert() -> None:
    from carbonclap_xl.core.engine import compute

    r = compute([{"poste": "technique", "activity": "equip_led_wall_m2_day",
                  "quantity_forecast": 500, "unit": "m² × jours"}], load_edition())
    act = load_edition().activities["equip_led_wall_m2_day"]
    assert r.total_kg.forecast == pytest.approx(500 * act.factor.value)
