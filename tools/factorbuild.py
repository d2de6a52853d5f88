"""Build the versioned factor database (``factors/``) from the public source files.

    python -m tools.factorbuild [--source-dir DIR] [--out DIR] [--check]

Writes, for each source edition, a reviewable YAML file (``factors/<source>/<edition>.yaml``)
and its compact runtime twin (``.json``, the same records, read in milliseconds), then the
resolved activity catalogue (``factors/catalogue.resolved.json``) that joins the hand-written
``factors/catalogue.yaml`` to those records. Every generated file says so in its header.
``--check`` rebuilds in memory and exits 1 if any committed file differs.

The last edition, ``CCX`` (``factors/derived/``), holds the product's *derived* factors: each
one a documented calculation on source rows (equipment per day of use, DESNZ direct + WTT,
breakfasts, cut-off waste, storage per TB-year…) whose parameters and their justification are
in the hand-written ``factors/derivations.yaml``; the input values are read here, from the
source files, never typed.

Base Carbone / Base Empreinte input may be the UTF-8 ``,``-separated export of
``factors-source/`` or ADEME's official ``;``-separated cp1252/latin-1 CSV with decimal
commas: the reader sniffs which.
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from carbonclap_xl.core.errors import FactorDataError
from carbonclap_xl.core.model import DEFAULT_FACTOR_UNCERTAINTY_PCT, NATURE_IDS, POSTE_IDS
from carbonclap_xl.core.units import conversion, factor_unit, find

GENERATOR = "python -m tools.factorbuild"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE_DIR = REPO_ROOT.parent / "shared" / "factors-source"
DEFAULT_OUT_DIR = REPO_ROOT / "factors"

# The order of the keys of one factor record, in YAML and JSON alike.
FACTOR_FIELDS: tuple[str, ...] = (
    "id",
    "label_fr",
    "label_en",
    "value",
    "unit",
    "uncertainty_pct",
    "source_id",
    "category",
    "status",
    "location",
    "uncertainty_group",
)
# Factors whose errors are not independent share a group: the engine adds their uncertainties
# linearly inside a group (factors/README.md, "Uncertainty groups").
GROUP_ADEME_MONETARY = "ademe-monetary"
GROUP_EPA_MONETARY = "epa-monetary"


@dataclass
class BuildInputs:
    """What a reader may read: the source files, the hand-written inputs next to the factor
    database, and the records of the editions already read (for derived factors)."""

    source_dir: Path
    factors_dir: Path
    known: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    key: str  # the prefix of product ids, e.g. "BE" in "BE:43642"
    folder: str
    edition: str
    dataset: str
    publisher: str
    licence: str
    attribution: str
    retrieved: str
    input_file: str
    read: Callable[[BuildInputs, Source], list[dict[str, Any]]]
    fields: tuple[str, ...] = FACTOR_FIELDS
    grammar: str = ""  # extra header comment lines of the YAML file

    def header(self) -> dict[str, str]:
        return {
            "dataset": self.dataset,
            "source_key": self.key,
            "edition": self.edition,
            "publisher": self.publisher,
            "licence": self.licence,
            "attribution": self.attribution,
            "retrieved": self.retrieved,
            "input": self.input_file,
            "generator": GENERATOR,
            "generated": "generated file, do not edit: edit the generator or its input",
        }


# --------------------------------------------------------------------------- readers


def _clean_label(text: Any) -> str:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    s = str(text).replace('""', '"').replace("\t", " ")
    s = re.sub(r"^[\s\"]+|[\s\"]+$", "", s)
    return re.sub(r"\s+", " ", s)


def _number(text: Any) -> float | None:
    if text is None:
        return None
    if isinstance(text, int | float):
        return None if math.isnan(float(text)) else float(text)
    s = str(text).strip().replace("\u00a0", "").replace(" ", "")
    if not s:
        return None
    if "," in s and "." not in s:
        s = s.replace(",", ".")
    return float(s)


def read_base_carbone_csv(path: Path) -> list[dict[str, str]]:
    """Rows of a Base Carbone export: UTF-8 ``,`` or official cp1252/latin-1 ``;`` CSV."""
    import csv

    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    rows = list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))
    if not rows or "Identifiant de l'élément" not in rows[0]:
        raise FactorDataError(
            str(path), "pas d'en-tête Base Carbone (« Identifiant de l'élément »)"
        )
    return rows


@lru_cache(maxsize=2)
def _base_carbone_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a Base Carbone file, read once per build (elements and their postes)."""
    return read_base_carbone_csv(path)


_MONETARY_UNIT = re.compile(r"^keuro \((?:19|20)\d\d\) HT$")


def _read_base_empreinte(inputs: BuildInputs, source: Source) -> list[dict[str, Any]]:
    rows = _base_carbone_rows(inputs.source_dir / source.input_file)
    out: list[dict[str, Any]] = []
    for row in rows:
        if (
            row.get("Type Ligne") != "Elément"
            or row.get("Type de l'élément") != "Facteur d'émission"
        ):
            continue
        value = _number(row.get("Total poste non décomposé"))
        if value is None:
            continue
        ident = str(row["Identifiant de l'élément"]).strip()
        parts_fr = [
            _clean_label(row.get(c))
            for c in ("Nom base français", "Nom attribut français", "Nom frontière français")
        ]
        parts_en = [
            _clean_label(row.get(c))
            for c in ("Nom base anglais", "Nom attribut anglais", "Nom frontière anglais")
        ]
        label_fr = " – ".join(p for p in parts_fr if p)
        label_en = " – ".join(p for p in parts_en if p) or label_fr
        unit = re.sub(r"^kgCO2e\s*/\s*", "", (row.get("Unité français") or "").strip())
        uncertainty = _number(row.get("Incertitude"))
        location = " / ".join(
            p
            for p in (
                _clean_label(row.get("Localisation géographique")),
                _clean_label(row.get("Sous-localisation géographique français")),
            )
            if p
        )
        status = row.get("Statut de l'élément", "")
        category = _clean_label(row.get("Code de la catégorie"))
        # ADEME's sector ratios (SDES/INSEE, kgCO2e per k€ of a stated year, ±80 %) share one
        # method: their errors are correlated, not independent.
        monetary = category.endswith("Ratios monétaires") and _MONETARY_UNIT.match(unit)
        out.append(
            {
                "id": f"{source.key}:{ident}",
                "label_fr": label_fr,
                "label_en": label_en,
                "value": value,
                "unit": unit,
                "uncertainty_pct": uncertainty,
                "source_id": ident,
                "category": category,
                "status": "archived" if status.startswith("Archiv") else "valid",
                "location": location or None,
                "uncertainty_group": GROUP_ADEME_MONETARY if monetary else None,
            }
        )
    out.sort(key=lambda f: int(f["source_id"]))
    return out


def _read_desnz(inputs: BuildInputs, source: Source) -> list[dict[str, Any]]:
    import csv

    with (inputs.source_dir / source.input_file).open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for row in rows:
        # Only totals; a blank factor is one DESNZ does not publish for that row.
        if row["GHG/Unit"] != "kg CO2e" or not row["GHG Conversion Factor 2024"].strip():
            continue
        levels = [_clean_label(row[k]) for k in ("Level 1", "Level 2", "Level 3", "Level 4")]
        label = " > ".join(p for p in levels[1:] if p)
        if row["Column Text"].strip():
            label += f" – {_clean_label(row['Column Text'])}"
        out.append(
            {
                "id": f"{source.key}:{row['ID']}",
                "label_fr": label,
                "label_en": label,
                "value": _number(row["GHG Conversion Factor 2024"]),
                "unit": row["UOM"].strip(),
                "uncertainty_pct": None,
                "source_id": row["ID"],
                "category": " > ".join(p for p in (row["Scope"], *levels[:2]) if p),
                "status": "valid",
                "location": "Royaume-Uni",
                "uncertainty_group": None,
            }
        )
    return out


def _read_epa(inputs: BuildInputs, source: Source) -> list[dict[str, Any]]:
    import csv

    with (inputs.source_dir / source.input_file).open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [
        {
            "id": f"{source.key}:{row['2017 NAICS Code']}",
            "label_fr": f"Ratio monétaire US – {row['2017 NAICS Title']}",
            "label_en": f"US spend-based ratio – {row['2017 NAICS Title']}",
            "value": _number(row["Supply Chain Emission Factors with Margins"]),
            "unit": "USD",
            "uncertainty_pct": None,
            "source_id": row["2017 NAICS Code"],
            "category": f"NAICS 2017 > {row['Reference USEEIO Code']}",
            "status": "valid",
            "location": "États-Unis",
            "uncertainty_group": GROUP_EPA_MONETARY,
        }
        for row in rows
    ]


def _curated_reader(prefix: str) -> Callable[[BuildInputs, Source], list[dict[str, Any]]]:
    """Factors of a small source, as extracted into curated_subset.csv (rows whose
    ``source`` starts with ``prefix``); their ``key`` becomes the product id."""

    def read(inputs: BuildInputs, source: Source) -> list[dict[str, Any]]:
        import csv

        with (inputs.source_dir / source.input_file).open(encoding="utf-8", newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r["source"].startswith(prefix)]
        return [
            {
                "id": f"{source.key}:{row['key']}",
                "label_fr": _clean_label(row["label_fr"]),
                "label_en": _clean_label(row["label_en"]),
                "value": _number(row["value"]),
                "unit": row["unit"],
                "uncertainty_pct": _number(row["uncertainty_pct"]),
                "source_id": row["source_id"],
                "category": _clean_label(row["notes"])[:200] or None,
                "status": "valid",
                "location": None,
                "uncertainty_group": None,
            }
            for row in rows
        ]

    return read


# --------------------------------------------------------------------------- derived factors

DERIVATIONS_FILE = "derivations.yaml"
NGC_MODEL = "raw/nosgestesclimat-3.4.0/co2-model.FR-lang.fr.json"
ACV_MODEL = "raw/publicodes-acv-numerique-2.1.0.model.json"
# Raw models read for derivations: reference prefix -> (file, dataset shown in provenance).
_MODELS = {
    "NGC-model": (NGC_MODEL, "ADEME Nos Gestes Climat model 3.4.0 (MIT)"),
    "ACV-model": (ACV_MODEL, "ADEME/Arcep ACV numérique model 2.1.0 (MIT)"),
}
UNCERTAINTY_METHOD = (
    "propagation au premier ordre d'incertitudes relatives indépendantes : "
    "u(F)² = Σ_x (∂ln F/∂ln x · u_x)² sur les entrées et paramètres ; une valeur de source "
    f"sans incertitude publiée compte pour {DEFAULT_FACTOR_UNCERTAINTY_PCT:g} % (défaut du "
    "moteur), sauf si aucune entrée ni paramètre n'a d'incertitude (alors null, comme la source)"
)


@lru_cache(maxsize=4)
def _model(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


_ARITH_OPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def _arith(text: str, where: str) -> float:
    """A number written by a model: ``6``, ``"50 %"``, ``"(3.5524 * 1024) * 1024"``."""
    s = str(text).strip()
    if s.endswith("%"):
        return _arith(s[:-1], where) / 100

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITH_OPS:
            return _ARITH_OPS[type(node.op)](ev(node.left), ev(node.right))
        raise FactorDataError(where, f"valeur non numérique « {text} »")

    try:
        return ev(ast.parse(s, mode="eval").body)
    except SyntaxError as exc:
        raise FactorDataError(where, f"valeur non numérique « {text} »") from exc


def _monomial(node: ast.AST, where: str) -> tuple[float, dict[str, int]]:
    """A product/quotient of names and numbers: (coefficient, exponent of each name)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value), {}
    if isinstance(node, ast.Name):
        return 1.0, {node.id: 1}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        coef, exps = _monomial(node.operand, where)
        return -coef, exps
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.Div):
        c1, e1 = _monomial(node.left, where)
        c2, e2 = _monomial(node.right, where)
        sign = 1 if isinstance(node.op, ast.Mult) else -1
        exps = dict(e1)
        for name, e in e2.items():
            exps[name] = exps.get(name, 0) + sign * e
        return (c1 * c2 if sign == 1 else c1 / c2), exps
    raise FactorDataError(where, "un terme est un produit ou un quotient de noms et de nombres")


def _sig(x: float, digits: int = 6) -> float:
    return float(f"{x:.{digits}g}")


def _source_input(ref: str, spec: dict[str, Any], inputs: BuildInputs,
                  where: str) -> dict[str, Any]:
    """One input of a derivation, read from the source files (never from derivations.yaml)."""
    key, _, ident = ref.partition(":")
    if key in _MODELS:
        file, dataset = _MODELS[key]
        rule = _model(inputs.source_dir / file).get(ident)
        if not isinstance(rule, dict):
            raise FactorDataError(where, f"règle introuvable dans {file} : « {ident} »")
        raw = next((rule[k] for k in ("formule", "valeur", "par défaut") if k in rule), None)
        if raw is None:
            raise FactorDataError(where, f"règle sans valeur : « {ident} »")
        return {"ref": ref, "dataset": dataset, "label": rule.get("titre", ident),
                "value": _arith(raw, where), "unit": rule.get("unité", "-"),
                "uncertainty_pct": None}
    record = inputs.known.get(ref)
    if record is None:
        raise FactorDataError(where, f"facteur source introuvable « {ref} »")
    if record["status"] != "valid" and not spec.get("archived_ok"):
        raise FactorDataError(where, f"facteur source archivé « {ref} »")
    source = SOURCE_BY_KEY[key]
    out = {"ref": ref, "dataset": f"{source.dataset} {source.edition}",
           "label": record["label_fr"], "value": record["value"], "unit": record["unit"],
           "uncertainty_pct": record["uncertainty_pct"]}
    if spec.get("poste"):
        if key != "BE":
            raise FactorDataError(where, "seuls les éléments Base Empreinte ont des postes")
        out["poste"] = spec["poste"]
        out["value"] = _be_poste(inputs, ident, spec["poste"], where)
    return out


def _be_poste(inputs: BuildInputs, ident: str, poste: str, where: str) -> float:
    rows = _base_carbone_rows(inputs.source_dir / SOURCE_BY_KEY["BE"].input_file)
    found = [
        r for r in rows
        if r.get("Type Ligne") == "Poste" and str(r["Identifiant de l'élément"]).strip() == ident
        and " / ".join(p for p in (_clean_label(r.get("Type poste")),
                                   _clean_label(r.get("Nom poste français"))) if p) == poste
    ]
    if len(found) != 1:
        raise FactorDataError(where, f"poste « {poste} » de BE:{ident} : {len(found)} ligne(s)")
    value = _number(found[0].get("Total poste non décomposé"))
    if value is None:
        raise FactorDataError(where, f"poste « {poste} » de BE:{ident} sans valeur")
    return value


@lru_cache(maxsize=2)
def _desnz_rows(path: Path) -> dict[str, dict[str, str]]:
    import csv

    with path.open(encoding="utf-8-sig", newline="") as fh:
        return {row["ID"]: row for row in csv.DictReader(fh) if row["GHG/Unit"] == "kg CO2e"}


def _desnz_branch(text: str) -> str:
    """``WTT- HGV refrigerated (all diesel)`` -> ``hgv refrigerated (all diesel)``: a DESNZ
    level name without its upstream prefix, lower case, words without a plural s."""
    s = re.sub(r"^(wtt|t&d)-\s*", "", text.strip().casefold())
    return " ".join(w.removesuffix("s") for w in s.split())


def desnz_is_upstream(row: dict[str, str]) -> bool:
    """A DESNZ well-to-tank or transmission-and-distribution row (a raw CSV row)."""
    return row["Level 1"].startswith(("WTT-", "Transmission and distribution")) or \
        row["Level 2"].startswith(("WTT-", "T&D-"))


def desnz_upstream_ids(rows: dict[str, dict[str, str]], direct_id: str) -> set[str]:
    """The DESNZ upstream rows (WTT, T&D, WTT of T&D) of the activity the row ``direct_id``
    measures: same Level 3, Level 4, column text and unit, and a Level 2 that names the
    direct row's Level 2 or Level 1 behind its ``WTT-``/``T&D-`` prefix."""
    d = rows[direct_id]
    same = ("Level 3", "Level 4", "Column Text", "UOM")
    names = (_desnz_branch(d["Level 2"]), _desnz_branch(d["Level 1"]))
    return {i for i, r in rows.items() if desnz_is_upstream(r)
            and all(r[k] == d[k] for k in same)
            and _desnz_branch(r["Level 2"]).startswith(names)}


def _expand_desnz_parts(spec: dict[str, Any], inputs: BuildInputs, where: str) -> None:
    """``desnz_parts: {direct: ID, wtt: ID, …}``: the sum of a direct DESNZ row and its
    upstream rows, checked to measure the same activity in the same unit."""
    parts = {name: str(ident) for name, ident in spec.pop("desnz_parts").items()}
    rows = _desnz_rows(inputs.source_dir / SOURCE_BY_KEY["DESNZ"].input_file)
    for ident in parts.values():
        if ident not in rows:
            raise FactorDataError(where, f"facteur source introuvable « DESNZ:{ident} »")
    if "direct" not in parts or desnz_is_upstream(rows[parts["direct"]]):
        raise FactorDataError(where, "desnz_parts : « direct » doit être une ligne directe")
    upstream = desnz_upstream_ids(rows, parts["direct"])
    given = {ident for name, ident in parts.items() if name != "direct"}
    if given != upstream:
        raise FactorDataError(where, f"lignes amont attendues {sorted(upstream)}, "
                                     f"données {sorted(given)}")
    spec["inputs"] = {name: f"DESNZ:{ident}" for name, ident in parts.items()}
    spec["terms"] = {name: name for name in parts}
    spec.setdefault("unit", rows[parts["direct"]]["UOM"].strip())


def derive(spec: dict[str, Any], shared: dict[str, Any], inputs: BuildInputs) -> dict[str, Any]:
    """One derived factor: inputs read from the sources, parameters from derivations.yaml,
    the value as the sum of the terms, the uncertainty propagated (UNCERTAINTY_METHOD)."""
    spec = dict(spec)
    where = f"{DERIVATIONS_FILE} {spec.get('id')}"
    if "desnz_parts" in spec:
        _expand_desnz_parts(spec, inputs, where)
    for key in ("id", "label_fr", "label_en", "unit", "category", "method", "inputs", "terms"):
        if not spec.get(key):
            raise FactorDataError(where, f"champ « {key} » manquant")
    values: dict[str, float] = {}
    u_pct: dict[str, float | None] = {}
    used_inputs = []
    for name, ref_spec in spec["inputs"].items():
        ispec = {"ref": ref_spec} if isinstance(ref_spec, str) else dict(ref_spec)
        record = {"name": name, **_source_input(ispec["ref"], ispec, inputs, where)}
        value = record["value"]
        if ispec.get("as"):  # e.g. a factor per tonne used per kg
            try:
                value *= conversion(ispec["as"], record["unit"])
            except ValueError as exc:
                raise FactorDataError(where, f"entrée « {name} » : {exc}") from exc
            record["as"] = ispec["as"]
            record["value_used"] = _sig(value, 12)
        values[name] = value
        u_pct[name] = record["uncertainty_pct"]
        used_inputs.append(record)
    params = []
    for name, pspec in (spec.get("parameters") or {}).items():
        if isinstance(pspec, str) and pspec.startswith("$"):
            pspec = shared.get(pspec[1:])
            if pspec is None:
                raise FactorDataError(where, f"paramètre partagé inconnu « {name} »")
        if not isinstance(pspec, dict) or "value" not in pspec or not pspec.get("why") \
                or not isinstance(pspec.get("assumption"), bool):
            raise FactorDataError(where, f"paramètre « {name} » : value, unit, assumption, why")
        if pspec["assumption"] and pspec.get("uncertainty_pct") is None:
            raise FactorDataError(where, f"hypothèse « {name} » sans incertitude")
        if name in values:
            raise FactorDataError(where, f"nom en double « {name} »")
        values[name] = float(pspec["value"])
        u_pct[name] = float(pspec.get("uncertainty_pct") or 0.0)
        params.append({"name": name, "value": pspec["value"], "unit": pspec.get("unit", "-"),
                       "assumption": pspec["assumption"],
                       "uncertainty_pct": pspec.get("uncertainty_pct"), "why": pspec["why"]})
    terms: dict[str, float] = {}
    exponents: dict[str, dict[str, int]] = {}
    for tname, expr in spec["terms"].items():
        try:
            tree = ast.parse(str(expr), mode="eval").body
        except SyntaxError as exc:
            raise FactorDataError(where, f"terme « {tname} » illisible") from exc
        coef, exps = _monomial(tree, where)
        unknown = set(exps) - set(values)
        if unknown:
            raise FactorDataError(where, f"terme « {tname} » : noms inconnus {sorted(unknown)}")
        terms[tname] = coef * math.prod(values[n] ** e for n, e in exps.items())
        exponents[tname] = exps
    used = {n for exps in exponents.values() for n in exps}
    unused = set(values) - used
    if unused:
        raise FactorDataError(where, f"entrées ou paramètres inutilisés {sorted(unused)}")
    total = sum(terms.values())
    if not math.isfinite(total) or total <= 0:
        raise FactorDataError(where, f"valeur non positive {total!r}")
    stated = any(u_pct[n] for n in used)
    uncertainty = None
    if stated:
        var = 0.0
        for n in used:
            elasticity = sum(e.get(n, 0) * terms[t] for t, e in exponents.items()) / total
            u = u_pct[n] if u_pct[n] is not None else DEFAULT_FACTOR_UNCERTAINTY_PCT
            var += (elasticity * u) ** 2
        uncertainty = round(math.sqrt(var), 1)
    refs = ", ".join(dict.fromkeys(
        f"{i['ref']} ({i['poste']})" if i.get("poste") else i["ref"] for i in used_inputs))
    return {
        "id": f"CCX:{spec['id']}",
        "label_fr": f"{spec['label_fr']} [dérivé de {refs}]",
        "label_en": f"{spec['label_en']} [derived from {refs}]",
        "value": _sig(total),
        "unit": spec["unit"],
        "uncertainty_pct": uncertainty,
        "source_id": spec["id"],
        "category": spec["category"],
        "status": "valid",
        "location": spec.get("location"),
        "uncertainty_group": spec.get("uncertainty_group"),
        "derivation": {
            "method": spec["method"],
            "formula": " + ".join(f"[{t}] {spec['terms'][t]}" for t in terms),
            "terms": {t: _sig(v) for t, v in terms.items()},
            "inputs": used_inputs,
            "parameters": params,
            "uncertainty": UNCERTAINTY_METHOD if stated else
            "aucune incertitude publiée par les sources ni posée par hypothèse : null",
        },
    }


def read_derivations(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    if not isinstance(doc, dict) or not isinstance(doc.get("factors"), list):
        raise FactorDataError(str(path), "clé « factors » absente")
    return doc


def _read_derived(inputs: BuildInputs, source: Source) -> list[dict[str, Any]]:
    doc = read_derivations(inputs.factors_dir / DERIVATIONS_FILE)
    shared = doc.get("shared") or {}
    return [derive(spec, shared, inputs) for spec in doc["factors"]]


_MIT = "MIT"
SOURCES: tuple[Source, ...] = (
    Source(
        "BE",
        "base-empreinte",
        "23.6",
        "ADEME Base Empreinte® (Base Carbone®)",
        "ADEME",
        "Licence Ouverte / Open Licence 2.0 (Etalab)",
        "Source : ADEME, Base Empreinte®, version 23.6",
        "Base Carbone V23.6, export Base Empreinte d'avril 2025 (factors-source)",
        "base_carbone_v23.6_all_rows.csv",
        _read_base_empreinte,
    ),
    Source(
        "DESNZ",
        "desnz",
        "2024",
        "UK DESNZ GHG conversion factors (flat file) v1.1",
        "UK Department for Energy Security and Net Zero",
        "Open Government Licence v3.0",
        "Contains public sector information licensed under the Open Government Licence v3.0 "
        "(UK DESNZ, Greenhouse gas reporting: conversion factors 2024, v1.1)",
        "DESNZ 2024 flat file v1.1 (factors-source)",
        "desnz_2024_v1.1_flat_factors.csv",
        _read_desnz,
    ),
    Source(
        "EPA",
        "epa-supply-chain",
        "1.3.0",
        "US EPA Supply Chain GHG Emission Factors (NAICS-2017, 2022 USD, with margins)",
        "US Environmental Protection Agency",
        "US Government work (public domain)",
        "US EPA, Supply Chain Greenhouse Gas Emission Factors v1.3.0",
        "raw/SupplyChainGHGEmissionFactors_v1.3.0 (factors-source)",
        "raw/SupplyChainGHGEmissionFactors_v1.3.0_NAICS_CO2e_USD2022.csv",
        _read_epa,
    ),
    Source(
        "NGC",
        "nosgestesclimat",
        "3.4.0",
        "ADEME Nos Gestes Climat model",
        "ADEME",
        _MIT,
        "Source : ADEME, Nos Gestes Climat 3.4.0 (MIT)",
        "values extracted from raw/nosgestesclimat-3.4.0 into curated_subset.csv",
        "curated_subset.csv",
        _curated_reader("Nos Gestes Climat"),
    ),
    Source(
        "HOTEL2020",
        "ademe-hotel",
        "2020",
        "ADEME 2020 hotel environmental labelling report (as quoted by Nos Gestes Climat 3.4.0)",
        "ADEME",
        _MIT,
        "Source : ADEME 2020, via Nos Gestes Climat 3.4.0 (MIT)",
        "values extracted from raw/nosgestesclimat-3.4.0 into curated_subset.csv",
        "curated_subset.csv",
        _curated_reader("ADEME 2020 hotel"),
    ),
    Source(
        "IMPACTCO2",
        "impactco2",
        "8076a48",
        "ADEME Impact CO2 data",
        "ADEME",
        _MIT,
        "Source : ADEME, Impact CO2 (MIT)",
        "values extracted from raw/impactco2 into curated_subset.csv",
        "curated_subset.csv",
        _curated_reader("ADEME Impact CO2"),
    ),
    Source(
        "ACVNUM",
        "acv-numerique",
        "2.1.0",
        "ADEME ACV numérique model (publicodes)",
        "ADEME / Arcep",
        _MIT,
        "Source : ADEME/Arcep, modèle ACV numérique 2.1.0 (MIT)",
        "values extracted from raw/publicodes-acv-numerique-2.1.0 into curated_subset.csv",
        "curated_subset.csv",
        _curated_reader("ADEME ACV numerique"),
    ),
    Source(
        "CCX",
        "derived",
        "2026.12",
        "carbonclap_xl derived factors",
        "carbonclap_xl",
        "Licence Ouverte 2.0 (ADEME Base Empreinte), Open Government Licence v3.0 (DESNZ), "
        "MIT (Nos Gestes Climat, ACV numérique): the licences of the inputs",
        "Facteurs dérivés par carbonclap_xl de : ADEME Base Empreinte® 23.6, UK DESNZ 2024, "
        "Nos Gestes Climat 3.4.0, ACV numérique 2.1.0 (chaque dérivation est décrite avec ses "
        "sources dans factors/derived/2026.12.yaml)",
        "computed by the factor build from the source files",
        "derivations.yaml (factors/) and the source rows it cites",
        _read_derived,
        fields=(*FACTOR_FIELDS, "derivation"),
        grammar="# Each factor carries its `derivation`: method, formula (a sum of named terms),\n"
        "# inputs read from the source files (dataset, ref, value, unit, uncertainty), parameters\n"
        "# from factors/derivations.yaml (value, unit, assumption, uncertainty, why), term values.",
    ),
)
SOURCE_BY_KEY: dict[str, Source] = {s.key: s for s in SOURCES}


# --------------------------------------------------------------------------- writers


def _ordered(record: dict[str, Any], fields: tuple[str, ...] = FACTOR_FIELDS) -> dict[str, Any]:
    return {k: record.get(k) for k in fields}


def render_yaml(source: Source, factors: list[dict[str, Any]]) -> str:
    header = source.header()
    lines = [
        f"# {source.dataset}, edition {source.edition}.",
        f"# Generated by `{GENERATOR}` from {source.input_file}: do not edit.",
        f"# {source.attribution}. Licence: {source.licence}.",
        "# Grammar: one record per factor; value in kgCO2e per `unit`; uncertainty_pct is the",
        "# source's relative uncertainty (null when it publishes none); status valid|archived;",
        "# uncertainty_group names factors whose errors are shared (null: independent).",
        *([source.grammar] if source.grammar else []),
    ]
    body = yaml.dump(
        {**header, "count": len(factors),
         "factors": [_ordered(f, source.fields) for f in factors]},
        Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
        sort_keys=False,
        allow_unicode=True,
        width=1_000_000,
        default_flow_style=False,
    )
    return "\n".join(lines) + "\n" + body


def render_json(source: Source, factors: list[dict[str, Any]]) -> str:
    """Columnar JSON: the same records as the YAML, fast to load."""
    doc = {
        **source.header(),
        "count": len(factors),
        "columns": list(source.fields),
        "rows": [[f.get(k) for k in source.fields] for f in factors],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"


def validate_factors(source: Source, factors: Iterable[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for f in factors:
        where = f"{source.folder}/{source.edition} {f['id']}"
        if f["id"] in seen:
            raise FactorDataError(where, "identifiant en double")
        seen.add(f["id"])
        if not isinstance(f["value"], float) or math.isnan(f["value"]):
            raise FactorDataError(where, f"valeur non numérique {f['value']!r}")
        if not f["unit"]:
            raise FactorDataError(where, "unité vide")


LABEL_MAX = 70  # characters of a dropdown label


def read_catalogue_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    if not isinstance(doc, dict) or not isinstance(doc.get("activities"), list):
        raise FactorDataError(str(path), "clé « activities » absente")
    return doc


def resolve_catalogue(
    doc: dict[str, Any], factors_by_id: dict[str, dict[str, Any]], sources_used: dict[str, Source]
) -> dict[str, Any]:
    """Join each activity to its factor record; every error names the activity."""
    activities = []
    ids: set[str] = set()
    labels: set[str] = set()
    for act in doc["activities"]:
        where = f"catalogue.yaml {act.get('id')}"
        for key in ("id", "label_fr", "label_en", "postes", "nature", "unit", "factor"):
            if not act.get(key):
                raise FactorDataError(where, f"champ « {key} » manquant")
        if act["id"] in ids:
            raise FactorDataError(where, "identifiant en double")
        former = list(act.get("former_labels") or [])
        for label in (act["label_fr"], *former):
            if label in labels:
                raise FactorDataError(where, f"libellé en double « {label} »")
            labels.add(label)
        if len(act["label_fr"]) > LABEL_MAX:
            raise FactorDataError(where, f"libellé de plus de {LABEL_MAX} caractères")
        ids.add(act["id"])
        bad_postes = [p for p in act["postes"] if p not in POSTE_IDS]
        if bad_postes:
            raise FactorDataError(where, f"poste(s) inconnu(s) {bad_postes}")
        if act["nature"] not in NATURE_IDS:
            raise FactorDataError(where, f"nature inconnue « {act['nature']} »")
        factor = factors_by_id.get(act["factor"])
        if factor is None:
            raise FactorDataError(where, f"facteur introuvable « {act['factor']} »")
        if factor["status"] != "valid":
            raise FactorDataError(where, f"facteur archivé « {act['factor']} »")
        if find(act["unit"]) is None:
            raise FactorDataError(where, f"unité inconnue « {act['unit']} »")
        try:
            conversion(act["unit"], factor["unit"])
        except ValueError as exc:
            raise FactorDataError(where, str(exc)) from exc
        src = SOURCE_BY_KEY[act["factor"].split(":", 1)[0]]
        sources_used[src.key] = src
        activities.append(
            {
                "id": act["id"],
                "label_fr": act["label_fr"],
                "label_en": act["label_en"],
                "postes": list(act["postes"]),
                "nature": act["nature"],
                "unit": act["unit"],
                "note": act.get("note"),
                "factor": _ordered(factor),
                **({"former_labels": former} if former else {}),
            }
        )
    return {"activities": activities}


def build(source_dir: Path, out_dir: Path,
          only: Iterable[str] | None = None) -> dict[Path, str]:
    """Every generated file's path and text (nothing written); with ``only``, the files of
    those source keys and the resolved catalogue (every source is still read)."""
    only = set(only) if only is not None else None
    files: dict[Path, str] = {}
    inputs = BuildInputs(source_dir, out_dir)
    factors_by_id = inputs.known
    for source in SOURCES:  # in order: the derived edition reads the ones before it
        factors = source.read(inputs, source)
        validate_factors(source, factors)
        for f in factors:
            factor_unit(f["unit"])  # never fails; documents that every unit is parsed
            factors_by_id[f["id"]] = f
        if only is not None and source.key not in only:
            continue
        folder = out_dir / source.folder
        files[folder / f"{source.edition}.yaml"] = render_yaml(source, factors)
        files[folder / f"{source.edition}.json"] = render_json(source, factors)
    catalogue = read_catalogue_yaml(out_dir / "catalogue.yaml")
    used: dict[str, Source] = {}
    resolved = resolve_catalogue(catalogue, factors_by_id, used)
    doc = {
        "generated": "generated file, do not edit: edit factors/catalogue.yaml and run "
        f"`{GENERATOR}`",
        "edition": str(catalogue.get("edition", "dev")),
        "sources": [
            {**s.header(), "path": f"{s.folder}/{s.edition}.json"}
            for s in SOURCES
            if s.key in used or s.key == "BE"
        ],
        "all_sources": [{**s.header(), "path": f"{s.folder}/{s.edition}.json"} for s in SOURCES],
        **resolved,
    }
    files[out_dir / "catalogue.resolved.json"] = (
        json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    )
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=GENERATOR, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source-dir",
        type=Path,
        default=Path(os.environ.get("CARBONCLAP_FACTORS_SOURCE", DEFAULT_SOURCE_DIR)),
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file would change")
    args = parser.parse_args(argv)
    try:
        files = build(args.source_dir, args.out)
    except (FactorDataError, OSError) as exc:
        print(f"erreur : {exc}", file=sys.stderr)
        return 2
    stale = []
    for path, text in files.items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(("différent : " if args.check else "écrit : ") + str(path))
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    raise SystemExit(main())
