"""The calculation engine: activity lines and a factor edition in, results and issues out.

Pure: no file I/O, no openpyxl, no xlwings (a test checks the imports). Vectorised with
pandas: Python-level work happens once per distinct activity, unit or text value, never once
per line, so 100,000 lines cost a fraction of a second.

Method (docs/methodology.md): ``E = Q × conversion × F`` per line and phase; relative
uncertainty ``u = √(u_F² + u_Q²)``; total absolute uncertainty ``√Σ(E_i·u_i)²``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from carbonclap_xl import __version__
from carbonclap_xl.errors import FactorNotFound, UnitMismatch, UnknownUnit
from carbonclap_xl.factordb import Activity, Factor, FactorEdition, fold, parse_reference
from carbonclap_xl.issues import Code, Issue, Severity, hint_from, make_issue
from carbonclap_xl.model import (
    DATA_SOURCE_ALIASES,
    DATA_SOURCE_BY_ID,
    DATA_SOURCES,
    DEFAULT_DATA_SOURCE,
    DEFAULT_FACTOR_UNCERTAINTY_PCT,
    LINE_COLUMNS,
    NATURE_IDS,
    POSTE_BY_ID,
    POSTE_IDS,
    Phase,
    ProductionInfo,
)
from carbonclap_xl.units import conversion, normalise

PHASES: tuple[Phase, ...] = (Phase.FORECAST, Phase.FINAL)
QUANTITY_COLUMN: dict[Phase, str] = {Phase.FORECAST: "quantity_forecast",
                                     Phase.FINAL: "quantity_final"}
EMISSIONS_COLUMN: dict[Phase, str] = {Phase.FORECAST: "co2e_forecast_kg",
                                      Phase.FINAL: "co2e_final_kg"}
MAX_QUANTITY = 1e9  # beyond this a typed quantity is a typo whatever the unit
MAX_LINE_CO2E_KG = 5e6  # one line above 5,000 t is more than a whole feature film

# The computed columns of a result line, in order (the workbook writer and the JSON use it).
RESULT_COLUMNS: tuple[str, ...] = (
    "activity_id", "activity_label", "nature", "factor_id", "factor_label", "factor_value",
    "factor_unit", "unit_used", "conversion", "uncertainty_pct", "co2e_forecast_kg",
    "co2e_final_kg", "source_dataset", "source_edition", "source_id", "status",
)
STATUS_FR = {"ok": "OK", "error": "Erreur", "warning": "À vérifier", "empty": "Vide"}


@dataclass(frozen=True)
class PhaseValues:
    forecast: float
    final: float

    def to_dict(self) -> dict[str, float]:
        return {"forecast": self.forecast, "final": self.final}

    def get(self, phase: Phase) -> float:
        return self.forecast if phase is Phase.FORECAST else self.final


@dataclass
class EngineResult:
    lines: pd.DataFrame  # input columns + RESULT_COLUMNS, same index as the input
    total_kg: PhaseValues
    uncertainty_kg: PhaseValues
    by_poste: dict[str, PhaseValues]
    by_nature: dict[str, PhaseValues]
    indicators: dict[str, PhaseValues]
    issues: list[Issue]
    edition: FactorEdition
    product_version: str = __version__
    excluded_lines: int = 0
    production: ProductionInfo = field(default_factory=ProductionInfo)

    @property
    def has_errors(self) -> bool:
        return any(i.severity is Severity.ERROR for i in self.issues)

    def to_dict(self, lines: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "product": {"name": "carbonclap_xl", "version": self.product_version},
            "factor_edition": {
                "edition": self.edition.edition,
                "name": self.edition.name,
                "sources": [{"key": s.key, "dataset": s.dataset, "edition": s.edition,
                             "licence": s.licence, "attribution": s.attribution}
                            for s in self.edition.sources.values()],
            },
            "attribution": self.edition.attributions(),
            "total_kgco2e": self.total_kg.to_dict(),
            "uncertainty_kgco2e": self.uncertainty_kg.to_dict(),
            "by_poste": {k: v.to_dict() for k, v in self.by_poste.items()},
            "by_nature": {k: v.to_dict() for k, v in self.by_nature.items()},
            "indicators": {k: v.to_dict() for k, v in self.indicators.items()},
            "counts": {
                "lines": len(self.lines),
                "excluded_lines": self.excluded_lines,
                "errors": sum(i.severity is Severity.ERROR for i in self.issues),
                "warnings": sum(i.severity is Severity.WARNING for i in self.issues),
            },
            "issues": [i.to_dict() for i in self.issues],
        }
        if lines:
            frame = self.lines.astype(object).where(self.lines.notna(), None)
            doc["lines"] = frame.to_dict(orient="records")
        return doc


# --------------------------------------------------------------------------- numbers

_NUMBER = re.compile(
    r"^\s*(?P<num>[-+]?(?:\d[\d\s\u00a0\u202f'’]*)?(?:[.,]\d[\d\s\u00a0\u202f]*)*)\s*"
    r"(?P<unit>(?:[^\W\d_]|[€$£]).*?)?\s*$"
)


def parse_number(text: str) -> tuple[float | None, str | None]:
    """``"1 200,5"`` -> (1200.5, None); ``"12 km"`` -> (12.0, "km"); ``"abc"`` -> (None, None).

    French and English separators alike: with both ``,`` and ``.`` present the last one is the
    decimal mark; a single one of them is the decimal mark; blanks and apostrophes group
    thousands.
    """
    m = _NUMBER.match(str(text))
    if not m or not m.group("num") or not re.search(r"\d", m.group("num")):
        return None, None
    num = re.sub(r"[\s\u00a0\u202f'’]", "", m.group("num"))
    marks = [c for c in num if c in ",."]
    if marks:
        decimal = marks[-1]
        head, _, tail = num.rpartition(decimal)
        head = head.replace(",", "").replace(".", "")
        num = f"{head}.{tail}"
    try:
        value = float(num)
    except ValueError:
        return None, None
    unit = (m.group("unit") or "").strip() or None
    return value, unit


def _quantities(raw: pd.Series, column: str, issues: list[Issue]) -> tuple[pd.Series, pd.Series]:
    """Numbers of a quantity column (NaN where blank or unusable) and the unit text found
    after a number typed as text (e.g. ``"12 km"``)."""
    numeric = pd.to_numeric(raw, errors="coerce").astype(float)
    suffix = pd.Series(None, index=raw.index, dtype=object)
    text_mask = numeric.isna() & raw.notna()
    if text_mask.any():
        texts = raw[text_mask].astype(str)
        blank = texts.str.strip() == ""
        for idx, text in texts[~blank].items():
            value, unit = parse_number(text)
            if value is None:
                issues.append(make_issue(Code.QUANTITY_NOT_NUMBER, value=text, line=idx,
                                         field=column))
                continue
            numeric[idx] = value
            suffix[idx] = unit
            shown = f"{value:g}" + (f" {unit}" if unit else "")
            issues.append(make_issue(Code.QUANTITY_TEXT, value=text, line=idx, field=column,
                                     expected=shown))
    numeric_input = pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw)
    bool_mask = (pd.Series(False, index=raw.index) if numeric_input
                 else raw.map(lambda v: isinstance(v, bool | np.bool_)))
    if bool_mask.any():
        for idx in raw[bool_mask].index:
            issues.append(make_issue(Code.QUANTITY_NOT_NUMBER, value=raw[idx], line=idx,
                                     field=column))
        numeric[bool_mask] = np.nan
    inf = np.isinf(numeric)
    for idx in numeric[(numeric < 0) & ~inf].index:
        issues.append(make_issue(Code.QUANTITY_NEGATIVE, value=f"{numeric[idx]:g}", line=idx,
                                 field=column))
    for idx in numeric[(numeric > MAX_QUANTITY) | inf].index:
        issues.append(make_issue(Code.QUANTITY_ABSURD, value=f"{numeric[idx]:g}", line=idx,
                                 field=column, expected="une valeur hors d'échelle"))
    bad = (numeric < 0) | (numeric > MAX_QUANTITY) | inf
    return numeric.where(~bad), suffix


def by_unique(series: pd.Series, fn: Any, dtype: Any = object) -> pd.Series:
    """``series.map(fn)``, calling ``fn`` once per distinct value (NaN included).

    Lines repeat a few hundred activities, units and sources: factorising first makes the
    per-line work a numpy ``take``.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped = [fn(u) for u in uniques]
    mapped.append(fn(None))  # the value for blanks (code -1)
    table = np.empty(len(mapped), dtype=dtype)
    table[:] = mapped
    return pd.Series(table[codes], index=series.index)


def _clean(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v).strip()


def _filled(series: pd.Series) -> pd.Series:
    """Cells holding something (a number, or text that is not blank)."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return series.notna()
    return _text(series) != ""


def _text(series: pd.Series) -> pd.Series:
    """Stripped text, '' for blanks (NaN, None)."""
    return by_unique(series.astype(object), _clean)


# --------------------------------------------------------------------------- resolution

_NATURE_RULES: tuple[tuple[str, str], ...] = (
    ("hotel", "hebergement"), ("nuit", "hebergement"), ("logement", "hebergement"),
    ("repas", "repas"), ("meal", "repas"), ("agro-alimentaire", "repas"),
    ("transport de personnes", "transport_personnes"), ("business travel", "transport_personnes"),
    ("passenger", "transport_personnes"),
    ("transport de marchandises", "transport_marchandises"), ("freight", "transport_marchandises"),
    ("delivery", "transport_marchandises"),
    ("dechet", "dechets"), ("waste", "dechets"), ("fin de vie", "dechets"),
    ("combustible", "energie"), ("electricit", "energie"), ("chaleur", "energie"),
    ("fuel", "energie"), ("electricity", "energie"),
    ("numerique", "numerique"), ("usagenumerique", "numerique"),
    ("achats", "achats"), ("material", "achats"), ("naics", "achats"),
)


def infer_nature(factor: Factor) -> str | None:
    """The nature of a directly cited factor, from its category and label."""
    text = fold(f"{factor.category or ''} {factor.label_fr}")
    for needle, nature in _NATURE_RULES:
        if needle in text:
            return nature
    return None


@dataclass(frozen=True)
class _Resolved:
    activity: Activity | None
    factor: Factor | None
    nature: str | None
    default_unit: str | None
    issues: tuple[Issue, ...] = ()


def _resolve(edition: FactorEdition, poste: str, text: str) -> _Resolved:
    """One distinct (poste, activity text): the activity or factor it names, or its issue."""
    act = edition.activity(text)
    if act is not None:
        issues: tuple[Issue, ...] = ()
        if poste in POSTE_BY_ID and poste not in act.postes:
            expected = " ou ".join(f"« {POSTE_BY_ID[p].label_fr} »" for p in act.postes)
            issues = (make_issue(Code.ACTIVITY_WRONG_POSTE, value=act.label_fr,
                                 field="activity", expected=expected),)
        return _Resolved(act, act.factor, act.nature, act.unit, issues)
    if parse_reference(text) is not None:
        try:
            factor = edition.factor(text)
        except FactorNotFound as exc:
            issue = make_issue(Code.FACTOR_REF_UNKNOWN, value=text, field="activity",
                               edition=edition.name, hint=hint_from(exc.suggestions))
            return _Resolved(None, None, None, None, (issue,))
        nature = infer_nature(factor)
        found: list[Issue] = [make_issue(
            Code.NATURE_INFERRED, value=factor.id, field="activity",
            expected=nature or "achats, par défaut : aucune règle ne s'applique")]
        if factor.status != "valid":
            found.append(make_issue(Code.FACTOR_ARCHIVED, value=factor.id, field="activity"))
        return _Resolved(None, factor, nature or "achats", factor.unit, tuple(found))
    issue = make_issue(Code.ACTIVITY_UNKNOWN, value=text, field="activity",
                       hint=hint_from(edition.suggest(text, poste or None)))
    return _Resolved(None, None, None, None, (issue,))


def _located(issue: Issue, line: int) -> Issue:
    return Issue(issue.code, issue.severity, issue.message, line, issue.field, issue.value)


# --------------------------------------------------------------------------- engine


def compute(lines: pd.DataFrame | Iterable[Mapping[str, Any]], edition: FactorEdition,
            production: ProductionInfo | None = None) -> EngineResult:
    """Run the method on activity lines (columns of ``model.LINE_COLUMNS``)."""
    frame = lines if isinstance(lines, pd.DataFrame) else pd.DataFrame(list(lines))
    frame = frame.reindex(columns=[*LINE_COLUMNS, *[c for c in frame.columns
                                                    if c not in LINE_COLUMNS]])
    frame = frame.reset_index(drop=True)
    production = production or ProductionInfo()
    issues: list[Issue] = []
    n = len(frame)

    poste = _text(frame["poste"]).str.lower()
    activity = _text(frame["activity"])
    unit = _text(frame["unit"])
    quantities: dict[Phase, pd.Series] = {}
    suffixes: list[pd.Series] = []
    for phase in PHASES:
        col = QUANTITY_COLUMN[phase]
        quantities[phase], suffix = _quantities(frame[col], col, issues)
        suffixes.append(suffix)
    # a unit typed after the number ("12 km") fills a blank unit cell
    typed_suffix = suffixes[0].fillna(suffixes[1])
    unit = unit.where((unit != "") | typed_suffix.isna(), typed_suffix.fillna(""))

    has_quantity = _filled(frame[QUANTITY_COLUMN[Phase.FORECAST]]) | _filled(
        frame[QUANTITY_COLUMN[Phase.FINAL]])
    has_activity = activity != ""
    error = pd.Series(False, index=frame.index)

    for idx in poste[(poste != "") & ~poste.isin(POSTE_IDS)].index:
        issues.append(make_issue(Code.POSTE_UNKNOWN, value=frame.at[idx, "poste"], line=idx,
                                 field="poste", choices=", ".join(POSTE_IDS)))
        error[idx] = True
    for idx in frame.index[has_quantity & ~has_activity]:
        issues.append(make_issue(Code.ACTIVITY_MISSING, line=idx, field="activity"))
        error[idx] = True
    for idx in frame.index[has_activity & ~has_quantity]:
        issues.append(make_issue(Code.QUANTITY_MISSING, value=activity[idx], line=idx,
                                 field="quantity_forecast"))

    # resolve each distinct (poste, activity) once
    keys = poste.str.cat(activity, sep="\x1f").where(has_activity)
    key_codes, key_uniques = pd.factorize(keys, use_na_sentinel=True)
    resolved: list[_Resolved] = []
    for i, key in enumerate(key_uniques):
        p, _, a = str(key).partition("\x1f")
        r = _resolve(edition, p, a)
        resolved.append(r)
        if r.issues or r.factor is None:
            for idx in frame.index[key_codes == i]:
                for issue in r.issues:
                    issues.append(_located(issue, int(idx)))
                if r.factor is None:
                    error[idx] = True

    def attr(fn: Any, dtype: Any = object, blank: Any = None) -> pd.Series:
        """One attribute of each line's resolution, computed once per distinct key."""
        table = np.empty(len(resolved) + 1, dtype=dtype)
        table[:] = [fn(r) for r in resolved] + [blank]
        return pd.Series(table[key_codes], index=frame.index)

    out = pd.DataFrame(index=frame.index)
    nan = np.nan
    out["activity_id"] = attr(lambda r: r.activity.id if r.activity else None)
    out["activity_label"] = attr(lambda r: r.activity.label_fr if r.activity else None)
    out["nature"] = attr(lambda r: r.nature)
    out["factor_id"] = attr(lambda r: r.factor.id if r.factor else None)
    out["factor_label"] = attr(lambda r: r.factor.label_fr if r.factor else None)
    out["factor_value"] = attr(lambda r: r.factor.value if r.factor else nan, float, nan)
    out["factor_unit"] = attr(lambda r: r.factor.unit if r.factor else None)
    default_unit = attr(lambda r: r.default_unit)
    unit_used = unit.where(unit != "", default_unit)
    out["unit_used"] = unit_used

    # units: one conversion per distinct (unit, factor unit)
    usable = out["factor_id"].notna()
    pairs = unit_used.astype(str).str.cat(out["factor_unit"].astype(str), sep="\x1f")
    pairs = pairs.where(usable)
    pair_issue: dict[str, Exception] = {}

    def convert(pair: Any) -> float:
        if pair is None or (isinstance(pair, float) and math.isnan(pair)):
            return np.nan
        typed, _, target = str(pair).partition("\x1f")
        try:
            return conversion(typed, target)
        except (UnknownUnit, UnitMismatch) as exc:
            pair_issue[pair] = exc
            return np.nan

    conv = by_unique(pairs, convert, float)
    for pair, exc in pair_issue.items():
        mask = (pairs == pair).to_numpy()
        typed = str(pair).partition("\x1f")[0]
        expected = default_unit[mask].iloc[0]
        for idx in frame.index[mask]:
            if isinstance(exc, UnknownUnit):
                issues.append(make_issue(Code.UNIT_UNKNOWN, value=typed, line=idx, field="unit",
                                         hint=hint_from(exc.suggestions), expected=expected))
            else:
                assert isinstance(exc, UnitMismatch)
                issues.append(make_issue(Code.UNIT_MISMATCH, value=typed, line=idx,
                                         field="unit", expected=exc.factor_unit))
        error[mask] = True
    out["conversion"] = conv

    # uncertainty: factor (u_F) and data quality (u_Q)
    u_factor = attr(lambda r: r.factor.uncertainty_pct if r.factor
                    and r.factor.uncertainty_pct is not None else nan, float, nan)
    for fid in out.loc[usable & u_factor.isna(), "factor_id"].unique():
        first = out.index[(out["factor_id"] == fid)][0]
        issues.append(make_issue(Code.FACTOR_UNCERTAINTY_DEFAULT, value=fid, line=int(first),
                                 field="activity", default=f"{DEFAULT_FACTOR_UNCERTAINTY_PCT:g}"))
    u_factor = u_factor.fillna(DEFAULT_FACTOR_UNCERTAINTY_PCT)
    source_text = _text(frame["data_source"])
    source_id = by_unique(source_text, lambda s: DATA_SOURCE_ALIASES.get((s or "").lower(),
                                                                       (s or "").lower()))
    unknown_source = (source_text != "") & ~source_id.isin(DATA_SOURCE_BY_ID)
    for idx in frame.index[unknown_source]:
        issues.append(make_issue(Code.DATA_SOURCE_UNKNOWN, value=source_text[idx], line=idx,
                                 field="data_source",
                                 choices=", ".join(f"« {d.id} »" for d in DATA_SOURCES)))
    source_id = source_id.where((source_text != "") & ~unknown_source, DEFAULT_DATA_SOURCE)
    u_quality = by_unique(source_id, lambda s: DATA_SOURCE_BY_ID[s].uncertainty_pct
                          if s in DATA_SOURCE_BY_ID else np.nan, float)
    rel_u = np.sqrt(u_factor**2 + u_quality**2) / 100.0
    out["uncertainty_pct"] = (rel_u * 100).where(usable)

    # emissions, phase by phase
    per_unit = out["factor_value"] * out["conversion"]
    for phase in PHASES:
        e = quantities[phase] * per_unit
        absurd = e > MAX_LINE_CO2E_KG
        for idx in e[absurd].index:
            issues.append(make_issue(
                Code.QUANTITY_ABSURD, value=f"{quantities[phase][idx]:g} {unit_used[idx]}",
                line=idx, field=QUANTITY_COLUMN[phase],
                expected=f"{e[idx] / 1000:,.0f} tCO2e".replace(",", "\u202f")))
        error |= absurd
        out[EMISSIONS_COLUMN[phase]] = e
    for phase in PHASES:
        out.loc[error, EMISSIONS_COLUMN[phase]] = np.nan

    out["source_dataset"] = attr(lambda r: r.factor.source_dataset if r.factor else None)
    out["source_edition"] = attr(lambda r: r.factor.source_edition if r.factor else None)
    out["source_id"] = attr(lambda r: r.factor.source_id if r.factor else None)
    warned = pd.Series(False, index=frame.index)
    for issue in issues:
        if issue.line is not None and issue.severity is Severity.WARNING:
            warned[issue.line] = True
    status = pd.Series("ok", index=frame.index, dtype=object)
    status[warned] = "warning"
    status[~has_quantity] = "empty"
    status[error] = "error"
    out["status"] = status

    # blank rows carry nothing at all
    blank = ~has_activity & ~has_quantity & (unit == "")
    out.loc[blank, "status"] = None

    result_lines = pd.concat([frame, out], axis=1)
    result_lines["poste"] = poste
    issues.sort(key=lambda i: (i.line if i.line is not None else n, str(i.field)))
    return _aggregate(result_lines, issues, edition, production, int(error.sum()), rel_u)


def _aggregate(lines: pd.DataFrame, issues: list[Issue], edition: FactorEdition,
               production: ProductionInfo, excluded: int, rel_u: pd.Series) -> EngineResult:
    totals: dict[Phase, float] = {}
    uncertainty: dict[Phase, float] = {}
    by_poste: dict[str, dict[Phase, float]] = {p: {} for p in POSTE_IDS}
    by_nature: dict[str, dict[Phase, float]] = {n: {} for n in NATURE_IDS}
    for phase in PHASES:
        e = lines[EMISSIONS_COLUMN[phase]]
        totals[phase] = float(e.sum(skipna=True))
        uncertainty[phase] = float(np.sqrt(((e * rel_u) ** 2).sum(skipna=True)))
        poste_sums = e.groupby(lines["poste"]).sum()
        nature_sums = e.groupby(lines["nature"]).sum()
        for p in POSTE_IDS:
            by_poste[p][phase] = float(poste_sums.get(p, 0.0))
        for nat in NATURE_IDS:
            by_nature[nat][phase] = float(nature_sums.get(nat, 0.0))

    def pv(d: Mapping[Phase, float]) -> PhaseValues:
        return PhaseValues(d[Phase.FORECAST], d[Phase.FINAL])

    total = pv(totals)
    return EngineResult(
        lines=lines,
        total_kg=total,
        uncertainty_kg=pv(uncertainty),
        by_poste={k: pv(v) for k, v in by_poste.items()},
        by_nature={k: pv(v) for k, v in by_nature.items()},
        indicators=indicators(total, production),
        issues=issues,
        edition=edition,
        excluded_lines=excluded,
        production=production,
    )


INDICATORS: dict[str, tuple[str, str]] = {
    # id: (French label, ProductionInfo field giving the denominator)
    "tco2e_per_hour": ("tCO2e par heure de programme", "duration_min"),
    "kgco2e_per_keur": ("kgCO2e par k€ de budget", "budget_keur"),
    "tco2e_per_shooting_day": ("tCO2e par jour de tournage", "shooting_days"),
    "tco2e_per_episode": ("tCO2e par épisode", "episodes"),
}


def indicators(total: PhaseValues, production: ProductionInfo) -> dict[str, PhaseValues]:
    """Intensity indicators whose denominator the production metadata gives (> 0)."""
    out: dict[str, PhaseValues] = {}
    for key, (_label, attr) in INDICATORS.items():
        denominator = getattr(production, attr)
        if not denominator or denominator <= 0:
            continue
        if attr == "duration_min":
            denominator = denominator / 60.0
        scale = 1.0 if key.startswith("kg") else 1e-3
        out[key] = PhaseValues(total.forecast * scale / denominator,
                               total.final * scale / denominator)
    return out


def unit_is_known(text: str) -> bool:
    return bool(normalise(text))
