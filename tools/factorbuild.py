"""Build the versioned factor database (``factors/``) from the public source files.

    python -m tools.factorbuild [--source-dir DIR] [--out DIR] [--check]

Writes, for each source edition, a reviewable YAML file (``factors/<source>/<edition>.yaml``)
and its compact runtime twin (``.json``, the same records, read in milliseconds), then the
resolved activity catalogue (``factors/catalogue.resolved.json``) that joins the hand-written
``factors/catalogue.yaml`` to those records. Every generated file says so in its header.
``--check`` rebuilds in memory and exits 1 if any committed file differs.

Base Carbone / Base Empreinte input may be the UTF-8 ``,``-separated export of
``factors-source/`` or ADEME's official ``;``-separated cp1252/latin-1 CSV with decimal
commas: the reader sniffs which.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from carbonclap_xl.core.errors import FactorDataError
from carbonclap_xl.core.model import NATURE_IDS, POSTE_IDS
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
)


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
    read: Callable[[Path, Source], list[dict[str, Any]]]

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


def _read_base_empreinte(folder: Path, source: Source) -> list[dict[str, Any]]:
    rows = read_base_carbone_csv(folder / source.input_file)
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
        out.append(
            {
                "id": f"{source.key}:{ident}",
                "label_fr": label_fr,
                "label_en": label_en,
                "value": value,
                "unit": unit,
                "uncertainty_pct": uncertainty,
                "source_id": ident,
                "category": _clean_label(row.get("Code de la catégorie")),
                "status": "archived" if status.startswith("Archiv") else "valid",
                "location": location or None,
            }
        )
    out.sort(key=lambda f: int(f["source_id"]))
    return out


def _read_desnz(folder: Path, source: Source) -> list[dict[str, Any]]:
    import csv

    with (folder / source.input_file).open(encoding="utf-8-sig", newline="") as fh:
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
            }
        )
    return out


def _read_epa(folder: Path, source: Source) -> list[dict[str, Any]]:
    import csv

    with (folder / source.input_file).open(encoding="utf-8-sig", newline="") as fh:
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
        }
        for row in rows
    ]


def _curated_reader(prefix: str) -> Callable[[Path, Source], list[dict[str, Any]]]:
    """Factors of a small source, as extracted into curated_subset.csv (rows whose
    ``source`` starts with ``prefix``); their ``key`` becomes the product id."""

    def read(folder: Path, source: Source) -> list[dict[str, Any]]:
        import csv

        with (folder / source.input_file).open(encoding="utf-8", newline="") as fh:
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
            }
            for row in rows
        ]

    return read


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
)
SOURCE_BY_KEY: dict[str, Source] = {s.key: s for s in SOURCES}


# --------------------------------------------------------------------------- writers


def _ordered(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record.get(k) for k in FACTOR_FIELDS}


def render_yaml(source: Source, factors: list[dict[str, Any]]) -> str:
    header = source.header()
    lines = [
        f"# {source.dataset}, edition {source.edition}.",
        f"# Generated by `{GENERATOR}` from {source.input_file}: do not edit.",
        f"# {source.attribution}. Licence: {source.licence}.",
        "# Grammar: one record per factor; value in kgCO2e per `unit`; uncertainty_pct is the",
        "# source's relative uncertainty (null when it publishes none); status valid|archived.",
    ]
    body = yaml.dump(
        {**header, "count": len(factors), "factors": [_ordered(f) for f in factors]},
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
        "columns": list(FACTOR_FIELDS),
        "rows": [[f.get(k) for k in FACTOR_FIELDS] for f in factors],
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
        if act["label_fr"] in labels:
            raise FactorDataError(where, f"libellé en double « {act['label_fr']} »")
        ids.add(act["id"])
        labels.add(act["label_fr"])
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
            }
        )
    return {"activities": activities}


def build(source_dir: Path, out_dir: Path) -> dict[Path, str]:
    """Every generated file's path and text (nothing written)."""
    files: dict[Path, str] = {}
    factors_by_id: dict[str, dict[str, Any]] = {}
    for source in SOURCES:
        factors = source.read(source_dir, source)
        validate_factors(source, factors)
        for f in factors:
            factor_unit(f["unit"])  # never fails; documents that every unit is parsed
            factors_by_id[f["id"]] = f
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
