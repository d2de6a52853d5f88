"""The factor editions and the activity catalogue, loaded once per process.

``load_edition()`` reads only the resolved catalogue (a few hundred activities, milliseconds);
a source's full file (Base Empreinte: ~11,000 factors) is read the first time a direct
reference such as ``BE:43642`` needs it. Data is found in the package's folder in an
installed wheel (``carbonclap_xl/_data/factors``) and in the source tree (``factors/``) in an
editable install or a checkout.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from carbonclap_xl.core.errors import FactorDataError, FactorNotFound, close_matches
from carbonclap_xl.core.units import is_euro_ht


@dataclass(frozen=True)
class SourceInfo:
    key: str
    dataset: str
    edition: str
    publisher: str
    licence: str
    attribution: str
    path: str


@dataclass(frozen=True)
class Factor:
    id: str
    label_fr: str
    label_en: str
    value: float  # kgCO2e per `unit`
    unit: str
    uncertainty_pct: float | None
    source_id: str
    category: str | None
    status: str  # "valid" | "archived"
    location: str | None
    source_dataset: str
    source_edition: str
    # Factors whose errors are one and the same (ADEME's monetary ratios share one method):
    # lines of one group add their factor uncertainty linearly. None: the factor's own id.
    uncertainty_group: str | None = None

    @property
    def uncertainty_key(self) -> str:
        """The key under which lines share this factor's uncertainty."""
        return self.uncertainty_group or self.id


# Until a source edition records ``uncertainty_group``, ADEME's monetary ratios (factors of
# source BE in euros) are put in this one group: they come from one input-output method and
# share its error (docs/methodology.md §3).
ADEME_MONETARY_GROUP = "BE:ratios-monetaires"


def uncertainty_group_of(record: dict[str, Any], source_key: str) -> str | None:
    """The record's ``uncertainty_group`` when it has one; else the ADEME monetary-ratio group
    for a Base Empreinte factor in euros; else None (the factor is its own group)."""
    group = record.get("uncertainty_group")
    if group:
        return str(group)
    if source_key == "BE" and is_euro_ht(str(record["unit"])):
        return ADEME_MONETARY_GROUP
    return None


@dataclass(frozen=True)
class Activity:
    id: str
    label_fr: str
    label_en: str
    postes: tuple[str, ...]
    nature: str
    unit: str  # the unit a producer types by default
    note: str | None
    factor: Factor
    former_labels: tuple[str, ...] = ()  # labels of earlier catalogues, still recognised


def data_dir() -> Path:
    """The folder holding the factor files, installed or in the source tree."""
    # the package's own folder, as importlib.resources would give it for an installed wheel
    # (unpacked: the files are read by path), without importing it (and tempfile) at each run
    packaged = Path(__file__).resolve().parents[1] / "_data" / "factors"
    if packaged.is_dir():
        return packaged
    tree = Path(__file__).resolve().parents[2] / "factors"
    if tree.is_dir():
        return tree
    raise FactorDataError("factors/", "dossier des facteurs introuvable (installation incomplète)")


_REF = re.compile(r"^\s*([A-Za-z0-9]+)\s*[:\s]\s*(\S.*?)\s*$")


def parse_reference(text: str) -> tuple[str, str] | None:
    """``"BE:43642"`` -> ``("BE", "43642")``; None when ``text`` is not a factor reference."""
    m = _REF.match(text)
    if not m or m.group(1).upper() not in _SOURCE_KEYS:
        return None
    return m.group(1).upper(), m.group(2)


_SOURCE_KEYS = {"BE", "DESNZ", "EPA", "NGC", "HOTEL2020", "IMPACTCO2", "ACVNUM", "CCX"}


# The terminal's one-line credit (``credit_line``): the sources' names and licences, short.
# The full attribution texts (``FactorEdition.attributions``) stay in every file and report.
_SHORT_NAMES = {"BE": "ADEME Base Empreinte®", "DESNZ": "UK DESNZ", "EPA": "US EPA",
                "NGC": "ADEME Nos Gestes Climat", "HOTEL2020": "ADEME (hôtels)",
                "IMPACTCO2": "ADEME Impact CO2", "ACVNUM": "ADEME/Arcep ACV numérique",
                "CCX": "facteurs dérivés carbonclap_xl"}
_SHORT_LICENCES = (("Licence Ouverte", "Licence Ouverte 2.0"),
                   ("Open Government Licence", "OGL v3.0"),
                   ("public domain", "domaine public"), ("MIT", "MIT"))
CREDIT_DETAIL = "détail : carbonclap-xl factors sources"


def credit_line(edition: str, sources: list[dict[str, str]]) -> str:
    """One line naming the factor sources for the terminal: the first (main) source with its
    edition and licence, then how many others and their licences, and where to read the full
    texts. ``sources`` are ``{"key", "edition", "licence", …}`` (as in the result JSON):
    « Facteurs 2026.12 : ADEME Base Empreinte® 23.6 (Licence Ouverte 2.0) et 7 autres
    sources (OGL v3.0, domaine public, MIT) — détail : carbonclap-xl factors sources »."""

    def licences(text: str) -> list[str]:
        found = [short for pattern, short in _SHORT_LICENCES if pattern in text]
        return found or [text]

    if not sources:
        return f"Facteurs {edition} — {CREDIT_DETAIL}"
    main, *others = sources
    name = _SHORT_NAMES.get(main.get("key", ""), main.get("dataset") or main.get("key", "?"))
    text = f"Facteurs {edition} : {name} {main.get('edition', '')}".rstrip()
    text += f" ({', '.join(licences(main.get('licence', '')))})"
    if others:
        seen = licences(main.get("licence", ""))
        more = [x for o in others for x in licences(o.get("licence", ""))]
        more = [x for x in dict.fromkeys(more) if x not in seen]
        text += (f" et {len(others)} autre{'s' if len(others) > 1 else ''} source"
                 f"{'s' if len(others) > 1 else ''}") + (f" ({', '.join(more)})" if more else "")
    return f"{text} — {CREDIT_DETAIL}"


_DASHES = re.compile(r"[\u2010-\u2015\u2212\ufe58\ufe63\uff0d-]+")


def fold(text: str) -> str:
    """Case-, accent- and blank-insensitive form of a label, for searching."""
    s = _DASHES.sub("-", unicodedata.normalize("NFKD", str(text)))
    s = s.encode("ascii", "ignore").decode()
    return re.sub(r"\s+", " ", s).strip().lower()


_NOT_A_WORD = re.compile(r"[^0-9a-z€%$£]+")


_LONE_X = re.compile(r"(?<=\S) x (?=\S)")  # « km x personnes »: the sign ×, typed


def match_key(text: str) -> str:
    """The one form under which a typed activity is matched to the catalogue: case, accents,
    blanks and punctuation (any dash, apostrophes, parentheses, slashes) do not count; words,
    digits and currency signs do. « Repas - vegetarien », « repas — végétarien » and
    « REPAS végétarien » all name « Repas — végétarien »; the keyboard's « x » between two
    words stands for « × » (« km x personnes »). ``FactorEdition`` refuses a catalogue where
    two activities share a key, so matching stays unambiguous."""
    s = unicodedata.normalize("NFKD", str(text).replace("œ", "oe").replace("Œ", "OE"))
    s = "".join(c for c in s if not unicodedata.combining(c)).lower()
    return _LONE_X.sub(" ", _NOT_A_WORD.sub(" ", s)).strip()


@dataclass
class FactorEdition:
    """One coherent set of factors: the catalogue and the sources it draws from."""

    edition: str
    sources: dict[str, SourceInfo]
    activities: dict[str, Activity]
    _root: Path
    _by_label: dict[str, Activity] = field(default_factory=dict)
    _full: dict[str, dict[str, Factor]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for act in self.activities.values():
            for key in (match_key(act.label_fr), match_key(act.id),
                        *(match_key(old) for old in act.former_labels)):
                other = self._by_label.get(key)
                if other is not None and other is not act:
                    raise FactorDataError("catalogue", f"« {act.label_fr} » et « "
                                          f"{other.label_fr} » se confondent une fois la "
                                          "ponctuation et les accents ignorés")
                self._by_label[key] = act

    @property
    def name(self) -> str:
        """Human-readable edition, e.g. ``carbonclap 2026.11 (Base Empreinte 23.6, …)``."""
        parts = ", ".join(f"{s.key} {s.edition}" for s in self.sources.values())
        return f"{self.edition} ({parts})"

    def attributions(self) -> list[str]:
        """The full attribution texts, one per source: in every file and report."""
        return [f"{s.attribution} — {s.licence}" for s in self.sources.values()]

    def credit(self) -> str:
        """The sources in one line, for the terminal (:func:`credit_line`)."""
        return credit_line(self.edition, [{"key": s.key, "dataset": s.dataset,
                                           "edition": s.edition, "licence": s.licence}
                                          for s in self.sources.values()])

    def activities_for(self, poste: str) -> list[Activity]:
        return [a for a in self.activities.values() if poste in a.postes]

    def activity(self, text: str) -> Activity | None:
        """The catalogue activity whose French label or id is ``text`` (``match_key``:
        case, accents, blanks and punctuation do not count), or None."""
        return self._by_label.get(match_key(text))

    def suggest(self, text: str, poste: str | None = None) -> list[str]:
        """French labels of the activities ``text`` most likely means (those of ``poste``
        first): labels holding every word typed, then close spellings of a label or an id."""
        pool = self.activities_for(poste) if poste else list(self.activities.values())
        words = [w for w in re.split(r"[\s_–-]+", fold(text)) if len(w) > 2]
        hits = [a.label_fr for a in pool
                if words and all(w in fold(f"{a.label_fr} {a.id}") for w in words)]
        if not hits:
            keys = {fold(a.label_fr): a.label_fr for a in pool}
            keys |= {fold(a.id): a.label_fr for a in pool}
            hits = [keys[h] for h in close_matches(fold(text), keys, n=6)]
        hits = list(dict.fromkeys(hits))[:3]
        if not hits and poste:
            return self.suggest(text)
        return hits

    def factor(self, reference: str) -> Factor:
        """A factor by product id (``BE:43642``), from any source, archived included."""
        parsed = parse_reference(reference)
        if parsed is None:
            raise FactorNotFound(reference)
        key, ident = parsed
        table = self._source_table(key)
        found = table.get(f"{key}:{ident}")
        if found is None:
            raise FactorNotFound(reference,
                                 close_matches(f"{key}:{ident}", table, n=3, cutoff=0.85))
        return found

    def _source_table(self, key: str) -> dict[str, Factor]:
        if key not in self._full:
            info = self.sources.get(key) or _all_sources(self._root).get(key)
            if info is None:
                raise FactorNotFound(f"{key}:")
            self._full[key] = _read_source(self._root / info.path, info)
        return self._full[key]

    def search(self, text: str | None = None) -> list[Factor]:
        """Every factor of every source (loads them all), optionally filtered by words."""
        out: list[Factor] = []
        for key in _all_sources(self._root):
            out.extend(self._source_table(key).values())
        if text:
            words = fold(text).split()
            out = [
                f
                for f in out
                if all(w in fold(f"{f.id} {f.label_fr} {f.label_en} {f.category}") for w in words)
            ]
        return out


def _factor_from(record: dict[str, Any], info: SourceInfo) -> Factor:
    return Factor(
        id=record["id"],
        label_fr=record["label_fr"],
        label_en=record["label_en"],
        value=float(record["value"]),
        unit=record["unit"],
        uncertainty_pct=record["uncertainty_pct"],
        source_id=str(record["source_id"]),
        category=record["category"],
        status=record["status"],
        location=record["location"],
        source_dataset=info.dataset,
        source_edition=info.edition,
        uncertainty_group=uncertainty_group_of(record, info.key),
    )


def _info(doc: dict[str, Any], path: str) -> SourceInfo:
    return SourceInfo(
        key=doc["source_key"],
        dataset=doc["dataset"],
        edition=doc["edition"],
        publisher=doc["publisher"],
        licence=doc["licence"],
        attribution=doc["attribution"],
        path=path,
    )


def _read_source(path: Path, info: SourceInfo) -> dict[str, Factor]:
    with path.open(encoding="utf-8") as fh:
        doc = json.load(fh)
    cols = doc["columns"]
    return {row[0]: _factor_from(dict(zip(cols, row, strict=True)), info) for row in doc["rows"]}


@lru_cache(maxsize=4)
def _all_sources(root: Path) -> dict[str, SourceInfo]:
    """Every source edition shipped (read from the headers of the catalogue file)."""
    with (root / "catalogue.resolved.json").open(encoding="utf-8") as fh:
        doc = json.load(fh)
    return {s["source_key"]: _info(s, s["path"]) for s in doc["all_sources"]}


@lru_cache(maxsize=4)
def load_edition(root: Path | None = None) -> FactorEdition:
    """The shipped factor edition (cached: loaded once per process)."""
    root = root or data_dir()
    path = root / "catalogue.resolved.json"
    try:
        with path.open(encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        raise FactorDataError(str(path), str(exc)) from exc
    sources = {s["source_key"]: _info(s, s["path"]) for s in doc["sources"]}
    activities = {}
    for a in doc["activities"]:
        info = sources[a["factor"]["id"].split(":", 1)[0]]
        activities[a["id"]] = Activity(
            id=a["id"],
            label_fr=a["label_fr"],
            label_en=a["label_en"],
            postes=tuple(a["postes"]),
            nature=a["nature"],
            unit=a["unit"],
            note=a["note"],
            factor=_factor_from(a["factor"], info),
            former_labels=tuple(a.get("former_labels") or ()),
        )
    return FactorEdition(edition=doc["edition"], sources=sources, activities=activities, _root=root)
