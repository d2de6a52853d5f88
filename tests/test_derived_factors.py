"""The derived factor edition (CCX) against the source files it is computed from.

Every value is recomputed here from the source files, read with the standard library (not with
the factor build's readers), with the formulas and parameters of factors/derivations.yaml
evaluated by Python itself (not by the build's evaluator).
"""

from __future__ import annotations

import csv
import json
import math
from functools import cache
from typing import Any

import pytest
import yaml

from carbonclap_xl.core.errors import FactorDataError
from carbonclap_xl.core.factors import load_edition
from tools import factorbuild

SOURCE_DIR = factorbuild.DEFAULT_SOURCE_DIR
OUT = factorbuild.DEFAULT_OUT_DIR
CCX = factorbuild.SOURCE_BY_KEY["CCX"]
needs_sources = pytest.mark.skipif(not SOURCE_DIR.is_dir(),
                                   reason=f"shared factor sources not at {SOURCE_DIR}")
ID = "Identifiant de l'élément"


def derivations() -> list[dict[str, Any]]:
    doc = yaml.safe_load((OUT / "derivations.yaml").read_text(encoding="utf-8"))
    return doc["factors"]


def shipped() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load((OUT / CCX.folder / f"{CCX.edition}.yaml").read_text(encoding="utf-8"))
    return {f["id"]: f for f in doc["factors"]}


# ------------------------------------------------------------------ the sources, read plainly


@cache
def be_rows() -> tuple[dict[str, dict[str, str]], dict[tuple[str, str], float]]:
    elements: dict[str, dict[str, str]] = {}
    postes: dict[tuple[str, str], float] = {}
    with (SOURCE_DIR / "base_carbone_v23.6_all_rows.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["Type Ligne"] == "Elément":
                elements[r[ID]] = r
            else:
                name = " / ".join(p for p in (r["Type poste"].strip(),
                                              r["Nom poste français"].strip()) if p)
                postes[(r[ID], name)] = float(r["Total poste non décomposé"])
    return elements, postes


@cache
def desnz_rows() -> dict[str, dict[str, str]]:
    with (SOURCE_DIR / "desnz_2024_v1.1_flat_factors.csv").open(encoding="utf-8-sig") as fh:
        return {r["ID"]: r for r in csv.DictReader(fh)}


@cache
def model(name: str) -> dict[str, Any]:
    return json.loads((SOURCE_DIR / name).read_text(encoding="utf-8"))


@cache
def curated() -> dict[str, dict[str, str]]:
    with (SOURCE_DIR / "curated_subset.csv").open(encoding="utf-8") as fh:
        return {r["key"]: r for r in csv.DictReader(fh)}


def be(ident: str) -> float:
    return float(be_rows()[0][ident]["Total poste non décomposé"])


def desnz(ident: str) -> float:
    return float(desnz_rows()[ident]["GHG Conversion Factor 2024"])


def model_number(raw: Any) -> float:
    text = str(raw).strip()
    if text.endswith("%"):
        return float(text[:-1]) / 100
    return float(eval(text, {"__builtins__": {}}))  # numbers and * / only, from the model


def source_value(ref: str | dict[str, Any]) -> float:
    spec = {"ref": ref} if isinstance(ref, str) else ref
    key, _, ident = spec["ref"].partition(":")
    if key == "BE":
        value = be_rows()[1][(ident, spec["poste"])] if spec.get("poste") else be(ident)
        if spec.get("as") == "kg":
            assert be_rows()[0][ident]["Unité français"] == "kgCO2e/tonne"
            value /= 1000
        return value
    if key == "DESNZ":
        return desnz(ident)
    if key in ("NGC-model", "ACV-model"):
        file = factorbuild.NGC_MODEL if key == "NGC-model" else factorbuild.ACV_MODEL
        rule = model(file)[ident]
        return model_number(next(rule[k] for k in ("formule", "valeur", "par défaut")
                                 if k in rule))
    return float(curated()[ident]["value"])  # NGC:, HOTEL2020:, ACVNUM: curated keys


# ------------------------------------------------------------------ tests


@needs_sources
@pytest.mark.parametrize("spec", derivations(), ids=lambda s: s["id"])
def test_every_derived_factor_is_recomputed_from_the_source_files(spec: dict[str, Any]) -> None:
    shared = yaml.safe_load((OUT / "derivations.yaml").read_text(encoding="utf-8"))["shared"]
    if "desnz_parts" in spec:
        expected = sum(desnz(str(i)) for i in spec["desnz_parts"].values())
    else:
        names = {name: source_value(ref) for name, ref in spec["inputs"].items()}
        for name, p in (spec.get("parameters") or {}).items():
            names[name] = (shared[p[1:]] if isinstance(p, str) else p)["value"]
        expected = sum(eval(expr, {"__builtins__": {}}, names) for expr in spec["terms"].values())
    factor = shipped()[f"CCX:{spec['id']}"]
    assert factor["value"] == pytest.approx(expected, rel=1e-5)
    assert factor["value"] == load_edition().factor(f"CCX:{spec['id']}").value


@needs_sources
def test_hand_checked_derivations() -> None:
    f = shipped()
    # UK grid: generation + T&D + WTT of generation + WTT of T&D (DESNZ rows, summed by hand)
    assert f["CCX:desnz-elec-uk-full"]["value"] == pytest.approx(
        desnz("7_400_4000_5_1") + desnz("13_402_4000_5_1") + desnz("15_917_4000_5_1")
        + desnz("15_918_4000_5_1"))
    assert f["CCX:desnz-elec-uk-full"]["value"] == pytest.approx(0.27522)
    assert f["CCX:desnz-taxi-full"]["value"] == pytest.approx(0.20805 + 0.05176)
    # camera kit: body 296 kg / (5 years × 100 days) + 25 kg × 5.5 / (10 years × 100 days)
    assert be("27004") == 296 and be("20906") == 5.5
    assert f["CCX:equip-camera-kit-day"]["value"] == pytest.approx(296 / 500 + 25 * 5.5 / 1000)
    # ADEME BE:43661 publishes its with-contrails twin's value; the corrected one is built from
    # its own upstream and combustion postes and BE:43660's manufacturing poste.
    assert be("43661") == be("43660") == 2.72
    postes = be_rows()[1]
    contrails = "Emissions fugitives / Trainées de condensation"
    assert postes[("43661", "Fabrication")] == postes[("43660", contrails)]
    assert f["CCX:freight-air-26-100t-1000-2000-no-contrails-corrected"]["value"] == \
        pytest.approx(0.27 + 1.22 + 0.00145)
    # a night without breakfast + a breakfast at the hotel = the ADEME 2020 night with breakfast
    edition = load_edition()
    night = edition.factor("NGC:hotel_night_fr_ngc").value
    with_breakfast = edition.factor("HOTEL2020:hotel_night_fr_avg_incl_breakfast_ademe2020").value
    assert night + f["CCX:breakfast-hotel"]["value"] == pytest.approx(with_breakfast)
    # data-centre storage: 144 kg / (3.5524 TB × 50 % × 5 years) + 6 W × 8760 h × PUE 1.3
    # / (3.5524 × 50 %) × French mix
    expected = 144 / (3.5524 * 0.5 * 5) + 6 * 8.76 * 1.3 / (3.5524 * 0.5) * be("43642")
    assert f["CCX:storage-datacenter-tb-year"]["value"] == pytest.approx(expected, rel=1e-5)


@needs_sources
def test_sourced_parameters_match_their_source() -> None:
    """Parameters marked `assumption: false` are read from a source text the build cannot
    parse as a number; each is checked here against that text."""
    specs = {s["id"]: s for s in derivations()}
    surface = specs["equip-led-wall-m2-day"]["parameters"]["surface_ecran"]["value"]
    assert f"{surface}m²" in be_rows()[0]["28315"]["Nom attribut français"]
    capacity = specs["storage-hdd-tb-year"]["parameters"]["capacite"]["value"]
    description = model(factorbuild.ACV_MODEL)["acv . disque dur externe"]["description"]
    assert f"average capacity ({round(capacity * 1000)} GB)" in description
    for spec in specs.values():
        for name, p in (spec.get("parameters") or {}).items():
            if isinstance(p, dict) and not p["assumption"]:
                assert (spec["id"], name) in {("equip-led-wall-m2-day", "surface_ecran"),
                                              ("storage-hdd-tb-year", "capacite"),
                                              ("studio-m2-day", "jours_an")}


def test_every_derived_factor_states_its_provenance() -> None:
    for factor in shipped().values():
        d = factor["derivation"]
        refs = [i["ref"] for i in d["inputs"]]
        assert refs and all(ref in factor["label_fr"] for ref in refs), factor["id"]
        assert "[dérivé de " in factor["label_fr"] and d["method"] and d["formula"]
        assert sum(d["terms"].values()) == pytest.approx(factor["value"], rel=1e-5)
        for p in d["parameters"]:
            assert p["why"] and (not p["assumption"] or p["uncertainty_pct"] is not None)
        # assumptions imply a stated uncertainty; only sums of rows without one stay null
        has_stated = any(p["uncertainty_pct"] for p in d["parameters"]) or \
            any(i["uncertainty_pct"] for i in d["inputs"])
        assert (factor["uncertainty_pct"] is None) == (not has_stated), factor["id"]


def test_derived_edition_header_says_generated() -> None:
    head = (OUT / CCX.folder / f"{CCX.edition}.yaml").read_text(encoding="utf-8")[:1500]
    assert "do not edit" in head and factorbuild.GENERATOR in head
    assert "derivations.yaml" in head and "source_key: CCX" in head


def inputs_with(**known: dict[str, Any]) -> factorbuild.BuildInputs:
    records = {k.replace("_", ":", 1): {"id": k.replace("_", ":", 1), "status": "valid",
                                         "label_fr": k, "unit": "kg", **v}
               for k, v in known.items()}
    return factorbuild.BuildInputs(SOURCE_DIR, OUT, records)


def test_uncertainty_propagation_by_hand() -> None:
    """A factor of 2 (±10 %) times a mass of 3 (±20 %, assumed) plus a factor of 4 (±30 %)."""
    inputs = inputs_with(BE_1={"value": 2.0, "uncertainty_pct": 10.0},
                         BE_2={"value": 4.0, "uncertainty_pct": 30.0})
    spec = {"id": "t", "label_fr": "t", "label_en": "t", "unit": "kg", "category": "c",
            "method": "m", "inputs": {"a": "BE:1", "b": "BE:2"},
            "parameters": {"m": {"value": 3, "unit": "kg", "assumption": True,
                                 "uncertainty_pct": 20, "why": "w"}},
            "terms": {"am": "a * m", "b": "b"}}
    f = factorbuild.derive(spec, {}, inputs)
    assert f["value"] == 10.0 and f["derivation"]["terms"] == {"am": 6.0, "b": 4.0}
    # absolute: 6 × √(0.1² + 0.2²) and 4 × 0.3, in quadrature, over 10
    expected = math.hypot(6 * math.hypot(0.1, 0.2), 4 * 0.3) / 10 * 100
    assert f["uncertainty_pct"] == round(expected, 1)
    # a parameter in two terms is counted once, with both terms' weight
    spec2 = {**spec, "terms": {"am": "a * m", "bm": "b * m"}}
    f2 = factorbuild.derive(spec2, {}, inputs)
    e = {"a": 6 / 18, "b": 12 / 18, "m": 1.0}
    u = math.sqrt((e["a"] * 10) ** 2 + (e["b"] * 30) ** 2 + (e["m"] * 20) ** 2)
    assert f2["value"] == 18.0 and f2["uncertainty_pct"] == round(u, 1)


def test_source_values_without_uncertainty() -> None:
    inputs = inputs_with(DESNZ_1={"value": 2.0, "uncertainty_pct": None},
                         DESNZ_2={"value": 1.0, "uncertainty_pct": None})
    spec = {"id": "t", "label_fr": "t", "label_en": "t", "unit": "kg", "category": "c",
            "method": "m", "inputs": {"a": "DESNZ:1", "b": "DESNZ:2"},
            "terms": {"a": "a", "b": "b"}}
    assert factorbuild.derive(spec, {}, inputs)["uncertainty_pct"] is None
    spec["parameters"] = {"eq": {"value": 1, "unit": "-", "assumption": True,
                                 "uncertainty_pct": 40, "why": "w"}}
    spec["terms"] = {"a": "eq * a", "b": "eq * b"}
    # unpublished uncertainties then count as the engine's default, 50 %
    expected = math.sqrt((2 / 3 * 50) ** 2 + (1 / 3 * 50) ** 2 + 40 ** 2)
    assert factorbuild.derive(spec, {}, inputs)["uncertainty_pct"] == round(expected, 1)


@pytest.mark.parametrize(("change", "message"), [
    ({"inputs": {"a": "BE:404"}}, "introuvable « BE:404 »"),
    ({"inputs": {"a": {"ref": "BE:1", "as": "km"}}}, "entrée « a »"),
    ({"terms": {"a": "a + 1"}}, "produit ou un quotient"),
    ({"terms": {"a": "a * x"}}, "noms inconnus ['x']"),
    ({"terms": {"a": "-a"}}, "valeur non positive"),
    ({"parameters": {"m": {"value": 2, "unit": "kg", "assumption": True, "why": "w"}},
      "terms": {"a": "a * m"}}, "hypothèse « m » sans incertitude"),
    ({"parameters": {"m": {"value": 2, "unit": "kg", "assumption": False, "why": "w"}}},
     "inutilisés ['m']"),
])
def test_derivation_errors_name_the_factor(change: dict[str, Any], message: str) -> None:
    spec = {"id": "t", "label_fr": "t", "label_en": "t", "unit": "kg", "category": "c",
            "method": "m", "inputs": {"a": "BE:1"}, "terms": {"a": "a"}, **change}
    with pytest.raises(FactorDataError) as info:
        factorbuild.derive(spec, {}, inputs_with(BE_1={"value": 2.0, "uncertainty_pct": 10.0}))
    assert "derivations.yaml t" in str(info.value) and message in str(info.value)


@needs_sources
def test_desnz_parts_must_be_all_the_upstream_rows() -> None:
    inputs = factorbuild.BuildInputs(SOURCE_DIR, OUT, {})
    spec = {"id": "t", "label_fr": "t", "label_en": "t", "category": "c", "method": "m",
            "desnz_parts": {"direct": "7_400_4000_5_1", "wtt": "15_917_4000_5_1"}}
    with pytest.raises(FactorDataError, match="lignes amont attendues"):
        factorbuild.derive(spec, {}, inputs)
    # refrigerated and plain HGVs share a Level 3: only the matching Level 2 counts
    rows = factorbuild._desnz_rows(SOURCE_DIR / "desnz_2024_v1.1_flat_factors.csv")
    assert factorbuild.desnz_upstream_ids(rows, "5_304_3116_4_1") == {"28_907_3116_4_1"}
    assert factorbuild.desnz_upstream_ids(rows, "5_305_3124_4_1") == {"28_908_3124_4_1"}


def test_monetary_ratios_share_one_uncertainty_group() -> None:
    def read(source: factorbuild.Source) -> list[dict[str, Any]]:
        doc = json.loads((OUT / source.folder / f"{source.edition}.json").read_text("utf-8"))
        return [dict(zip(doc["columns"], row, strict=True)) for row in doc["rows"]]

    be_factors = read(factorbuild.SOURCE_BY_KEY["BE"])
    grouped = [f for f in be_factors if f["uncertainty_group"]]
    assert len(grouped) == 280  # 56 sectors × euros of 2019 to 2023
    assert {f["uncertainty_group"] for f in grouped} == {factorbuild.GROUP_ADEME_MONETARY}
    assert all(f["status"] == "valid" and f["uncertainty_pct"] == 80 and
               f["unit"].startswith("keuro (20") for f in grouped)
    assert {f["uncertainty_group"] for f in read(factorbuild.SOURCE_BY_KEY["EPA"])} == \
        {factorbuild.GROUP_EPA_MONETARY}
    assert load_edition().factor("BE:43420").uncertainty_pct == 80
