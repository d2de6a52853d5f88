"""The calculation engine: activity lines and a factor edition in, results and issues out.

Pure: no file I/O, no openpyxl, no xlwings, no pandas (a test checks the imports). Vectorised
with numpy: Python-level work happens once per distinct activity, unit or text value, never once
per line, so 100,000 lines cost a fraction of a second.

Method (docs/methodology.md): ``E = Q × conversion × N × F`` per line and phase (N the
optional count: persons, vehicles, trips); relative uncertainty of a line
``u = √(u_F² + u_Q²)``, u_Q from the phase's data source; total absolute uncertainty
``√(Σ_g (Σ_{i∈g} u_F,i·E_i)² + Σ_i (u_Q,i·E_i)²)``, where a group g is a factor, or a set of
factors that share one error (``Factor.uncertainty_group``: ADEME's monetary ratios).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from carbonclap_xl import __version__
from carbonclap_xl.core.errors import FactorNotFound, MoneyYearMismatch, UnitMismatch, UnknownUnit
from carbonclap_xl.core.factors import Activity, Factor, FactorEdition, fold, parse_reference
from carbonclap_xl.core.issues import Code, Issue, Severity, hint_from, make_issue
from carbonclap_xl.core.lines import LineTable, by_unique, factorize, factorize_kept, is_none
from carbonclap_xl.core.model import (
    DATA_SOURCE_ALIASES,
    DATA_SOURCE_BY_ID,
    DATA_SOURCES,
    DEFAULT_DATA_SOURCE,
    DEFAULT_FACTOR_UNCERTAINTY_PCT,
    DEFAULT_VAT_RATE,
    LINE_COLUMNS,
    NATURE_IDS,
    POSTE_BY_ID,
    POSTE_IDS,
    VAT_RATES,
    Phase,
    ProductionInfo,
)
from carbonclap_xl.core.numbers import fr_general, fr_integer, fr_number, parse_number
from carbonclap_xl.core.units import (
    conversion,
    count_noun,
    factor_unit,
    is_passenger_distance,
    is_plain_distance,
    is_ttc,
    normalise,
)

PHASES: tuple[Phase, ...] = (Phase.FORECAST, Phase.FINAL)
QUANTITY_COLUMN: dict[Phase, str] = {Phase.FORECAST: "quantity_forecast",
                                     Phase.FINAL: "quantity_final"}
EMISSIONS_COLUMN: dict[Phase, str] = {Phase.FORECAST: "co2e_forecast_kg",
                                      Phase.FINAL: "co2e_final_kg"}
DATA_SOURCE_COLUMN: dict[Phase, str] = {Phase.FORECAST: "data_source",
                                        Phase.FINAL: "data_source_final"}
UNCERTAINTY_COLUMN: dict[Phase, str] = {Phase.FORECAST: "uncertainty_forecast_pct",
                                        Phase.FINAL: "uncertainty_final_pct"}
MAX_QUANTITY = 1e9  # beyond this a typed quantity is a typo whatever the unit
MAX_LINE_CO2E_KG = 5e6  # one line above 5,000 t is more than a whole feature film

# The computed columns of a result line, in order (the workbook writer and the JSON use it).
# ``count_used`` is N (1 for a blank count), ``count_unit`` what it counts for the factor's
# kind (« passagers », « véhicules »…); ``uncertainty_<phase>_pct`` is the line's relative
# uncertainty in that phase, ``uncertainty_pct`` the larger of the two (one number to show).
RESULT_COLUMNS: tuple[str, ...] = (
    "activity_id", "activity_label", "nature", "factor_id", "factor_label", "factor_value",
    "factor_unit", "unit_used", "conversion", "count_used", "count_unit",
    "factor_uncertainty_pct", "uncertainty_group", "uncertainty_forecast_pct",
    "uncertainty_final_pct", "uncertainty_pct", "co2e_forecast_kg", "co2e_final_kg",
    "source_dataset", "source_edition", "source_id", "status",
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
    lines: LineTable  # input columns + RESULT_COLUMNS, in input order
    total_kg: PhaseValues
    uncertainty_kg: PhaseValues
    by_poste: dict[str, PhaseValues]
    by_nature: dict[str, PhaseValues]
    indicators: dict[str, PhaseValues]
    uncertainty_by_poste: dict[str, PhaseValues]  # absolute, kgCO2e (shared factor errors)
    uncertainty_by_nature: dict[str, PhaseValues]
    issues: list[Issue]
    edition: FactorEdition
    product_version: str = __version__
    excluded_lines: int = 0
    production: ProductionInfo = field(default_factory=ProductionInfo)

    @property
    def has_errors(self) -> bool:
        return any(i.severity is Severity.ERROR for i in self.issues)

    def to_dict(self, lines: bool = True, for_json: bool = False) -> dict[str, Any]:
        """The published result document (``core.result``)."""
        from carbonclap_xl.core.result import Report

        return Report(self, self.issues, include_lines=lines).to_dict(for_json)


# --------------------------------------------------------------------------- numbers

_EMPTY, _NUMBER_OK, _TEXT_NUMBER, _NOT_NUMBER = 0, 1, 2, 3
_BOOL_CELL = "\x00VRAI/FAUX"  # stands for a boolean cell while factorising
_TEXT_TYPES = frozenset((str, type(None)))  # of the values a text column holds


def _parse_cell(v: Any) -> tuple[float, str | None, int]:
    """(value, unit typed after it, kind) of one quantity cell."""
    if v is None or isinstance(v, bool | np.bool_) or v == _BOOL_CELL:
        return math.nan, None, _EMPTY if v is None else _NOT_NUMBER
    if isinstance(v, int | float | np.integer | np.floating):
        f = float(v)
        return (math.nan, None, _EMPTY) if math.isnan(f) else (f, None, _NUMBER_OK)
    text = str(v).strip()
    if not text:
        return math.nan, None, _EMPTY
    try:
        number = float(text)  # plain "1200.5", as CSV files hold them
    except ValueError:
        pass
    else:
        return (math.nan, None, _NOT_NUMBER) if math.isnan(number) else (number, None, _NUMBER_OK)
    value, unit = parse_number(text)
    if value is None:
        return math.nan, None, _NOT_NUMBER
    return value, unit, _TEXT_NUMBER


def _parse_cells(cells: list[Any], texts: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_parse_cell`` of each distinct cell, as (values, units, kinds). ``texts``: they are
    all text or blank, as a CSV's are: plain numbers are then converted at once (numpy
    converts a text as ``float()`` does), any other text takes ``_parse_cell``."""
    if texts:
        filled = [cell for cell in cells if cell is not None]
        try:
            numbers = np.array(filled, dtype=np.float64)
        except (ValueError, OverflowError):  # "12 km", "1,5", "": each on its own
            pass
        else:
            blank = np.equal(np.array(cells, dtype=object), None)
            values = np.full(len(cells), math.nan)
            kinds = np.full(len(cells), _EMPTY, dtype=np.int8)
            values[~blank] = numbers
            kinds[~blank] = np.where(np.isnan(numbers), _NOT_NUMBER, _NUMBER_OK)
            return values, np.full(len(cells), None, dtype=object), kinds
    parsed = [_parse_cell(cell) for cell in cells]
    units = np.empty(len(parsed), dtype=object)
    units[:] = [p[1] for p in parsed]
    return (np.array([p[0] for p in parsed], dtype=float), units,
            np.array([p[2] for p in parsed], dtype=np.int8))


class _Quantities(NamedTuple):
    numbers: np.ndarray  # NaN where blank or unusable
    suffix: np.ndarray  # the unit typed after a number ("12 km"), else None
    has_suffix: np.ndarray
    filled: np.ndarray
    coding: Coding | None  # the column as typed, coded (``_coding``)


def _quantities(raw: np.ndarray, column: str, issues: list[Issue]) -> _Quantities:
    """A quantity column read: each unusable or suspicious cell adds its issue."""
    coding = None
    if raw.dtype.kind in "fiu":
        numeric = raw.astype(float)
        suffix = np.full(len(raw), None, dtype=object)
        has_suffix = np.zeros(len(raw), dtype=bool)
        filled = ~np.isnan(numeric)
    else:
        codes, uniques, kept = factorize_kept(raw)  # kept: the uniques are the cells
        # factorize merges TRUE with 1 (and writes all as text beside a list): keep them apart
        if not kept or (not set(map(type, uniques)) <= _TEXT_TYPES and any(
                isinstance(u, bool | np.bool_) or (type(u) is not str and u in (0, 1))
                for u in uniques)):
            is_bool = np.fromiter((isinstance(v, bool | np.bool_) for v in raw), bool,
                                  len(raw))
            if is_bool.any():
                raw = raw.copy()
                raw[is_bool] = _BOOL_CELL
                codes, uniques, _ = factorize_kept(raw)
                kept = False
        coding = _coding(codes, uniques) if kept else None
        values, units, kinds = _parse_cells(uniques, coding is not None)
        numeric, suffix, kind = values[codes], units[codes], kinds[codes]
        has_suffix = np.not_equal(units, None)[codes]
        filled = kind != _EMPTY
        for idx in np.flatnonzero(kind == _NOT_NUMBER):
            shown = "VRAI/FAUX" if raw[idx] == _BOOL_CELL else raw[idx]
            issues.append(make_issue(Code.QUANTITY_NOT_NUMBER, value=shown, line=int(idx),
                                     field=column))
        for idx in np.flatnonzero(kind == _TEXT_NUMBER):
            shown = fr_general(numeric[idx]) + (f" {suffix[idx]}" if suffix[idx] else "")
            issues.append(make_issue(Code.QUANTITY_TEXT, value=raw[idx], line=int(idx),
                                     field=column, expected=shown))
    with np.errstate(invalid="ignore"):
        negative = numeric < 0
        huge = numeric > MAX_QUANTITY
    for idx in np.flatnonzero(negative):
        issues.append(make_issue(Code.QUANTITY_NEGATIVE, value=float(numeric[idx]),
                                 line=int(idx), field=column))
    for idx in np.flatnonzero(huge):
        issues.append(make_issue(Code.QUANTITY_ABSURD, value=float(numeric[idx]), line=int(idx),
                                 field=column, expected="une valeur hors d'échelle"))
    numeric = np.where(negative | huge, np.nan, numeric)
    return _Quantities(numeric, suffix, has_suffix, filled, coding)


def _counts(raw: np.ndarray, issues: list[Issue]) -> tuple[np.ndarray, np.ndarray]:
    """(N, given) of the count column: N is 1 where blank, NaN where the cell is not a
    positive number (each such cell adds its issue)."""
    if raw.dtype.kind in "fiu":
        numeric = raw.astype(float)
        given = ~np.isnan(numeric)
        bad = np.zeros(len(raw), dtype=bool)
    else:
        kinds = set(map(type, raw.tolist()))
        is_bool = np.fromiter((isinstance(v, bool | np.bool_) for v in raw), bool, len(raw)) \
            if kinds & {bool, np.bool_} else np.zeros(len(raw), dtype=bool)
        if is_bool.any():
            raw = raw.copy()
            raw[is_bool] = _BOOL_CELL
        codes, uniques = factorize(raw)
        parsed = [_parse_cell(u) for u in uniques]
        numeric = np.array([p[0] for p in parsed], dtype=float)[codes]
        kind = np.array([p[2] for p in parsed], dtype=np.int8)[codes]
        with_unit = np.array([p[1] is not None for p in parsed], dtype=bool)[codes]
        given = kind != _EMPTY
        bad = (kind == _NOT_NUMBER) | with_unit  # "430 km" in the count column is a slip
    with np.errstate(invalid="ignore"):
        bad |= given & ~(numeric > 0) | (numeric > MAX_QUANTITY)
    for idx in np.flatnonzero(bad):
        v = raw[idx]
        shown = "VRAI/FAUX" if v == _BOOL_CELL else (float(v) if isinstance(v, float) else v)
        huge = given[idx] and numeric[idx] > MAX_QUANTITY
        issues.append(make_issue(
            Code.COUNT_INVALID, value=shown, line=int(idx), field="count",
            problem="est hors d'échelle (plus d'un milliard)" if huge
            else "n'est pas un nombre positif"))
    count = np.where(given, numeric, 1.0)
    return np.where(bad, np.nan, count), given


def _clean(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool | np.bool_):
        return "VRAI" if v else "FAUX"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))  # a number typed in a text cell: "43642", not "43642.0"
    return str(v).strip()


# a column as (codes, values): the column is values[codes] (LineTable.set_coded)
Coding = tuple[np.ndarray, np.ndarray]


def _text_coded(values: np.ndarray, lower: bool = False) -> tuple[Coding, Coding | None]:
    """The stripped text of a column ('' for blanks; lowered if ``lower``) as (codes, its
    distinct texts), and the column itself coded when ``_coding`` allows."""
    codes, uniques, kept = factorize_kept(values)
    text_codes, texts = factorize([_clean(u).lower() if lower else _clean(u) for u in uniques])
    return (text_codes[codes], _objects(texts)), _coding(codes, uniques) if kept else None


def _objects(values: Sequence[Any]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _distinct(codes: np.ndarray, table: np.ndarray) -> Coding:
    """``table[codes]`` as (codes, its distinct values): a table may repeat a value (two
    activities of one factor unit)."""
    table_codes, values = factorize(table)
    return table_codes[codes], _objects(values)


def _coding(codes: np.ndarray, uniques: list[Any]) -> Coding | None:
    """An input column as (codes, its distinct values) when those are all text or blank:
    ``factorize`` takes 1, 1.0 and TRUE for one value (and NaN for None), so only then does
    values[codes] write what the column holds."""
    if not set(map(type, uniques)) <= _TEXT_TYPES:
        return None
    return codes, _objects(uniques)


def _pair_codes(*columns: np.ndarray | Coding, mask: np.ndarray
                ) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """Codes of the distinct tuples of ``columns`` where ``mask`` (-1 elsewhere), and the
    tuples. A column is its values, or (codes, distinct values) when already coded."""
    mask = np.asarray(mask, dtype=bool)
    codes = np.full(len(mask), -1, dtype=np.intp)
    if not mask.any():
        return codes, []
    factorized = [_masked(c, mask) if isinstance(c, tuple) else factorize(c[mask])
                  for c in columns]
    combined = np.zeros(int(mask.sum()), dtype=np.int64)
    for c, u in factorized:  # mixed radix: one integer per tuple
        combined = combined * (len(u) + 1) + c
    uniques, inverse = np.unique(combined, return_inverse=True)
    codes[mask] = inverse.ravel()
    keys = []
    for value in uniques.tolist():
        digits = []
        for _c, u in reversed(factorized):
            value, digit = divmod(value, len(u) + 1)
            digits.append(u[digit])
        keys.append(tuple(reversed(digits)))
    return codes, keys


def _masked(coded: Coding, mask: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """``factorize(values[mask])`` of a column coded by its distinct values, from its codes:
    codes numbered in order of first appearance, as factorize numbers them."""
    codes, values = coded
    kept = codes[mask]
    present, first = np.unique(kept, return_index=True)
    order = present[np.argsort(first, kind="stable")]
    rank = np.zeros(len(values), dtype=np.intp)
    rank[order] = np.arange(len(order))
    return rank[kept], [values[i] for i in order.tolist()]


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


def compute(lines: LineTable | Mapping[str, Any] | Iterable[Mapping[str, Any]],
            edition: FactorEdition,
            production: ProductionInfo | None = None,
            excluded: Sequence[bool] | None = None) -> EngineResult:
    """Run the method on activity lines (columns of ``model.LINE_COLUMNS``).

    ``excluded`` marks lines an adapter already found in error while reading them (a
    formula without a usable value, say): they are not counted, like lines in error here.
    """
    frame = LineTable.coerce(lines)
    production = production or ProductionInfo()
    issues: list[Issue] = []
    n = len(frame)

    def column(name: str) -> np.ndarray:
        values = frame.get(name)
        return values if values.dtype.kind in "fiuO" else values.astype(object)

    # columns the result keeps as values[codes] (LineTable.set_coded), input ones included
    coded: dict[str, Coding] = {}

    def text(name: str, lower: bool = False) -> tuple[np.ndarray, Coding]:
        """The column's stripped text, and that text coded."""
        (codes, texts), raw = _text_coded(column(name), lower)
        if raw is not None and name in frame:
            coded[name] = raw
        return texts[codes], (codes, texts)

    # the result's poste is its text, stripped and lowered (an id, or what was typed)
    coded["poste"] = _text_coded(column("poste"), lower=True)[0]
    poste = coded["poste"][1][coded["poste"][0]]
    activity, activity_coded = text("activity")
    unit, _ = text("unit")
    if "count" in frame:
        count, count_given = _counts(column("count"), issues)
    else:  # a CSV or a 1.0 workbook without the column: every count is 1
        count, count_given = np.ones(n), np.zeros(n, dtype=bool)
        coded["count_used"] = (np.zeros(n, dtype=np.intp), np.ones(1))
    quantities: dict[Phase, np.ndarray] = {}
    read: list[_Quantities] = []
    has_quantity = np.zeros(n, dtype=bool)
    for phase in PHASES:
        col = QUANTITY_COLUMN[phase]
        read.append(_quantities(column(col), col, issues))
        quantities[phase] = read[-1].numbers
        if read[-1].coding is not None and col in frame:
            coded[col] = read[-1].coding
        has_quantity |= read[-1].filled
    has_activity = activity != ""
    error = np.zeros(n, dtype=bool)
    # a unit typed after the number ("12 km") fills a blank unit cell, and must agree with a
    # filled one
    for phase, (_, suffix, has_suffix, _, _) in zip(PHASES, read, strict=True):
        for idx in np.flatnonzero(has_suffix & (unit != "")):
            if normalise(suffix[idx]) != normalise(unit[idx]):
                issues.append(make_issue(Code.QUANTITY_UNIT_CONFLICT,
                                         value=frame.value(idx, QUANTITY_COLUMN[phase]),
                                         line=int(idx), field=QUANTITY_COLUMN[phase],
                                         expected=unit[idx]))
                error[idx] = True
    typed_suffix = np.where(read[0].has_suffix, read[0].suffix, read[1].suffix)
    fill_unit = (unit == "") & (read[0].has_suffix | read[1].has_suffix)
    unit = np.where(fill_unit, typed_suffix, unit)

    unknown_poste = ~np.isin(poste, POSTE_IDS) & (has_activity | has_quantity)
    # a CSV names a poste by its sheet or its id (intake.csv_lines): both are offered
    postes = ", ".join(f"{p.sheet} ({p.id})" for p in POSTE_BY_ID.values())
    for idx in np.flatnonzero(unknown_poste):
        issues.append(make_issue(Code.POSTE_UNKNOWN, value=poste[idx] or "(vide)",
                                 line=int(idx), field="poste", choices=postes))
    error |= unknown_poste
    for idx in np.flatnonzero(has_quantity & ~has_activity):
        issues.append(make_issue(Code.ACTIVITY_MISSING, line=int(idx), field="activity"))
    error |= has_quantity & ~has_activity
    for idx in np.flatnonzero(has_activity & ~has_quantity):
        issues.append(make_issue(Code.QUANTITY_MISSING, value=activity[idx], line=int(idx),
                                 field="quantity_forecast"))

    # resolve each distinct (poste, activity) once
    key_codes, keys = _pair_codes(coded["poste"], activity_coded, mask=has_activity)
    key_codes[key_codes < 0] = len(keys)  # a line without an activity: the blank after them
    resolved: list[_Resolved] = []
    for i, (p, a) in enumerate(keys):
        r = _resolve(edition, p, a)
        resolved.append(r)
        if r.issues or r.factor is None:
            rows = np.flatnonzero(key_codes == i)
            for idx in rows:
                for issue in r.issues:
                    issues.append(_located(issue, int(idx)))
            if r.factor is None:
                error[rows] = True

    def per_key(fn: Any, dtype: Any = object, blank: Any = None) -> np.ndarray:
        """One attribute of each distinct key's resolution, the blank last (no activity)."""
        table = np.empty(len(resolved) + 1, dtype=dtype)
        table[:] = [fn(r) for r in resolved] + [blank]
        return table

    def attr(fn: Any, dtype: Any = object, blank: Any = None) -> np.ndarray:
        """One attribute of each line's resolution, computed once per distinct key."""
        return per_key(fn, dtype, blank)[key_codes]

    out: dict[str, Any] = {}

    def keep(name: str, table: np.ndarray) -> None:
        """The result's column ``name``: ``table`` per key, kept coded."""
        coded[name] = (key_codes, table)
        out[name] = table[key_codes]

    nan = math.nan
    keep("activity_id", per_key(lambda r: r.activity.id if r.activity else None))
    keep("activity_label", per_key(lambda r: r.activity.label_fr if r.activity else None))
    keep("nature", per_key(lambda r: r.nature))
    keep("factor_id", per_key(lambda r: r.factor.id if r.factor else None))
    keep("factor_label", per_key(lambda r: r.factor.label_fr if r.factor else None))
    keep("factor_value", per_key(lambda r: r.factor.value if r.factor else nan, float, nan))
    keep("factor_unit", per_key(lambda r: r.factor.unit if r.factor else None))
    default_unit = attr(lambda r: r.default_unit)
    unit_used = np.where(unit != "", unit, default_unit)
    out["unit_used"] = unit_used

    # units: one conversion per distinct (unit, factor unit, VAT rate of an amount TTC)
    usable_keys = ~is_none(coded["factor_id"][1])
    usable = usable_keys[key_codes]
    unit_codes, unit_uniques = factorize(unit_used)
    coded["unit_used"] = (unit_codes, _objects(unit_uniques))

    def per_unit_text(fn: Any) -> np.ndarray:
        return np.array([bool(u) and fn(str(u)) for u in unit_uniques], dtype=bool)[unit_codes]

    ttc = per_unit_text(is_ttc)
    factor_units = _distinct(*coded["factor_unit"])
    if ttc.any():
        vat = np.where(ttc, attr(lambda r: _vat_pct(r.nature), float, nan), nan)
        pair_codes, pairs = _pair_codes(coded["unit_used"], factor_units, vat, mask=usable)
    else:
        pair_codes, two = _pair_codes(coded["unit_used"], factor_units, mask=usable)
        pairs = [(typed, target, None) for typed, target in two]
    conv_table = np.full(len(pairs) + 1, nan)
    for i, (typed, unit_of_factor, vat_pct) in enumerate(pairs):
        try:
            conv_table[i] = conversion(str(typed), str(unit_of_factor), vat_pct)
        except (UnknownUnit, UnitMismatch) as exc:
            rows = np.flatnonzero(pair_codes == i)
            for idx in rows:
                issues.append(_unit_issue(exc, typed, default_unit[rows[0]], int(idx)))
            error[rows] = True
    out["conversion"] = conv_table[pair_codes]
    coded["conversion"] = (pair_codes, conv_table)
    out["count_used"] = count
    keep("count_unit", per_key(lambda r: count_noun(r.factor.unit) if r.factor else None))
    error |= np.isnan(count)
    # a distance per trip against a factor per passager.km, and no count: ask for persons
    per_passenger = attr(lambda r: bool(r.factor) and is_passenger_distance(r.factor.unit),
                         bool, False)
    plain_km = per_unit_text(is_plain_distance)
    passengers_fix = ("saisissez le nombre de personnes dans la colonne Nombre (ex. 430 km × 6)"
                      if "count" in frame else
                      "donnez le nombre de personnes : colonne Nombre (CSV : count), ou, pour un "
                      "classeur du modèle 1.0, « carbonclap-xl upgrade » qui l'ajoute")
    asked: dict[tuple[Any, Any], Issue] = {}  # one message per unit and factor unit
    for idx in np.flatnonzero(per_passenger & plain_km & ~count_given & has_quantity
                              & ~np.isnan(out["conversion"])):
        key = (unit_used[idx], out["factor_unit"][idx])
        if key not in asked:  # the factor's unit as users read it: passager.km
            asked[key] = make_issue(Code.COUNT_PASSENGERS_MISSING, value=key[0],
                                    field="count", expected=factor_unit(str(key[1])).symbol,
                                    fix=passengers_fix)
        issues.append(_located(asked[key], int(idx)))

    # uncertainty: factor (u_F) and data quality (u_Q)
    u_keys = per_key(lambda r: r.factor.uncertainty_pct if r.factor
                     and r.factor.uncertainty_pct is not None else nan, float, nan)
    u_factor = u_keys[key_codes]
    defaulted = usable & np.isnan(u_factor)
    seen: set[str] = set()
    for idx in np.flatnonzero(defaulted):
        fid = out["factor_id"][idx]
        if fid not in seen:
            seen.add(fid)
            issues.append(make_issue(Code.FACTOR_UNCERTAINTY_DEFAULT, value=fid, line=int(idx),
                                     field="activity",
                                     default=fr_general(DEFAULT_FACTOR_UNCERTAINTY_PCT)))
    u_factor = np.where(np.isnan(u_factor), DEFAULT_FACTOR_UNCERTAINTY_PCT, u_factor)
    keep("factor_uncertainty_pct", np.where(
        usable_keys, np.where(np.isnan(u_keys), DEFAULT_FACTOR_UNCERTAINTY_PCT, u_keys), nan))
    keep("uncertainty_group", per_key(lambda r: r.factor.uncertainty_key if r.factor else None))

    def quality(text: Any) -> float:
        key = DATA_SOURCE_ALIASES.get(str(text or "").lower(), str(text or "").lower())
        key = key if key in DATA_SOURCE_BY_ID else DEFAULT_DATA_SOURCE
        return DATA_SOURCE_BY_ID[key].uncertainty_pct

    def known(text: Any) -> bool:
        t = str(text or "").lower()
        return not t or DATA_SOURCE_ALIASES.get(t, t) in DATA_SOURCE_BY_ID

    # each phase its own data source (the final one defaults to the forecast's), so its u_Q
    u_quality: dict[Phase, np.ndarray] = {}
    for phase in PHASES:
        name = DATA_SOURCE_COLUMN[phase]
        if phase is Phase.FINAL and name not in frame:  # the forecast's source
            u_quality[phase] = u_quality[Phase.FORECAST]
            continue
        codes, uniques, kept = factorize_kept(column(name))
        if kept and (coding := _coding(codes, uniques)) is not None and name in frame:
            coded[name] = coding
        texts = [_clean(u) for u in uniques]
        for i in np.flatnonzero(~np.array([known(t) for t in texts], dtype=bool)[codes]):
            issues.append(make_issue(Code.DATA_SOURCE_UNKNOWN, value=texts[codes[i]],
                                     line=int(i), field=name, choices=", ".join(
                                         f"« {d.choice} »" for d in DATA_SOURCES)))
        u_quality[phase] = np.array([quality(t) for t in texts], dtype=float)[codes]
        if phase is Phase.FINAL:  # blank: the forecast's source
            blank = np.array([not t for t in texts], dtype=bool)[codes]
            u_quality[phase] = np.where(blank, u_quality[Phase.FORECAST], u_quality[phase])
    for phase in PHASES:
        rel = np.sqrt(u_factor**2 + u_quality[phase] ** 2)
        out[UNCERTAINTY_COLUMN[phase]] = np.where(usable, rel, nan)
    out["uncertainty_pct"] = np.fmax(out["uncertainty_forecast_pct"],
                                     out["uncertainty_final_pct"])

    # emissions, phase by phase: E = Q × conversion × N × F
    per_unit = out["factor_value"] * out["conversion"] * count
    emissions: dict[Phase, np.ndarray] = {}
    for phase in PHASES:
        e = quantities[phase] * per_unit
        with np.errstate(invalid="ignore"):
            absurd = e > MAX_LINE_CO2E_KG
        for idx in np.flatnonzero(absurd):
            shown = f"{fr_general(quantities[phase][idx])} {unit_used[idx]}"
            if count_given[idx]:
                shown += f" × {fr_number(count[idx], 2)}"
            issues.append(make_issue(
                Code.QUANTITY_ABSURD, value=shown,
                line=int(idx), field=QUANTITY_COLUMN[phase],
                expected=f"{fr_integer(e[idx] / 1000)} tCO2e"))
        error |= absurd
        emissions[phase] = e
    for issue in issues:  # a line with any error-level issue is not counted, in either phase
        if issue.line is not None and issue.severity is Severity.ERROR:
            error[issue.line] = True
    if excluded is not None:
        error |= np.asarray(excluded, dtype=bool)
    for phase in PHASES:
        out[EMISSIONS_COLUMN[phase]] = np.where(error, nan, emissions[phase])

    keep("source_dataset", per_key(lambda r: r.factor.source_dataset if r.factor else None))
    keep("source_edition", per_key(lambda r: r.factor.source_edition if r.factor else None))
    keep("source_id", per_key(lambda r: r.factor.source_id if r.factor else None))
    warned = np.zeros(n, dtype=bool)
    for issue in issues:
        if issue.line is not None and issue.severity is Severity.WARNING:
            warned[issue.line] = True
    statuses = np.array(["ok", "warning", "empty", "error", None], dtype=object)
    status = np.zeros(n, dtype=np.intp)  # codes of statuses
    status[warned] = 1
    status[~has_quantity] = 2
    status[error] = 3
    status[~has_activity & ~has_quantity & (unit == "")] = 4  # blank rows carry nothing
    coded["status"] = (status, statuses)
    out["status"] = statuses[status]

    missing = {c: np.full(n, None, dtype=object) for c in LINE_COLUMNS if c not in frame}
    for name in missing:  # blank throughout: one value (the poste is coded above: "")
        coded.setdefault(name, (np.zeros(n, dtype=np.intp), _objects([None])))
    result_lines = frame.with_columns({**missing, **out, "poste": poste})
    for name, (codes, values) in coded.items():
        result_lines.set_coded(name, codes, values)
    issues.sort(key=lambda i: (i.line if i.line is not None else n, str(i.field)))
    groups = {key: i for i, key in enumerate(dict.fromkeys(r.factor.uncertainty_key for r in
                                                            resolved if r.factor))}
    group = attr(lambda r: groups[r.factor.uncertainty_key] if r.factor else -1, np.int64, -1)
    nature_index = {k: i for i, k in enumerate(NATURE_IDS)}
    spread = _Spread(u_factor / 100.0, {p: u_quality[p] / 100.0 for p in PHASES},
                     np.maximum(group, 0),
                     attr(lambda r: nature_index.get(r.nature, -1), np.int64, -1))
    return _aggregate(result_lines, issues, edition, production, int(error.sum()), spread)


def _vat_pct(nature: Any) -> float:
    """The VAT rate (%) of an activity family (``model.VAT_RATES``)."""
    return VAT_RATES.get(nature, DEFAULT_VAT_RATE).rate_pct


def _unit_issue(exc: UnknownUnit | UnitMismatch, typed: Any, expected: Any, line: int) -> Issue:
    """The issue of a unit that does not convert into the factor's."""
    if isinstance(exc, UnknownUnit):
        return make_issue(Code.UNIT_UNKNOWN, value=typed, line=line, field="unit",
                          hint=hint_from(exc.suggestions), expected=expected)
    if isinstance(exc, MoneyYearMismatch):
        year = f"euros de {exc.year}" + ("" if exc.stated else " (« € » sans année)")
        if exc.factor_year is None:
            return make_issue(Code.MONEY_FACTOR_UNDATED, value=typed, line=line, field="unit",
                              expected=exc.factor_unit)
        return make_issue(Code.MONEY_YEAR_MISMATCH, value=typed, line=line, field="unit",
                          hint=year, expected=str(exc.factor_year))
    return make_issue(Code.UNIT_MISMATCH, value=typed, line=line, field="unit",
                      expected=exc.factor_unit)


@dataclass(frozen=True)
class _Spread:
    """Relative uncertainties of each line (fractions) and the group of its factor error."""

    factor: np.ndarray  # u_F
    quantity: dict[Phase, np.ndarray]  # u_Q, per phase (each phase its data source)
    group: np.ndarray  # code of the line's uncertainty group (lines sharing one factor error)
    nature: np.ndarray  # index of the line's nature in NATURE_IDS (-1: none)


def absolute_uncertainty(e: np.ndarray, u_factor: np.ndarray, u_quantity: np.ndarray,
                         group: np.ndarray, category: np.ndarray | None = None,
                         n_categories: int = 1) -> np.ndarray:
    """``U_c = √(Σ_g (Σ_{i∈g,c} u_F,i·E_i)² + Σ_{i∈c} (u_Q,i·E_i)²)`` for each category c
    (every line in category 0 when ``category`` is None; lines with category -1 or NaN
    emissions are left out). Factor errors of one group add linearly (they are one error),
    groups and quantity errors add in quadrature."""
    cat = np.zeros(len(e), dtype=np.int64) if category is None else category.astype(np.int64)
    keep = (cat >= 0) & ~np.isnan(e)
    e, cat, group = e[keep], cat[keep], group[keep].astype(np.int64)
    shared = u_factor[keep] * e
    own = (u_quantity[keep] * e) ** 2
    n_groups = int(group.max()) + 1 if len(group) else 1
    by_pair = np.bincount(cat * n_groups + group, weights=shared,
                          minlength=n_categories * n_groups)
    variance = np.bincount(np.arange(n_categories * n_groups) // n_groups, weights=by_pair**2,
                           minlength=n_categories)
    variance += np.bincount(cat, weights=own, minlength=n_categories)
    return np.sqrt(variance)


def _codes(lines: LineTable, name: str, ids: tuple[str, ...]) -> np.ndarray:
    """Each line's index in ``ids`` of its value of column ``name`` (-1: none)."""
    index = {g: i for i, g in enumerate(ids)}
    coding = lines.coded(name)
    if coding is None:
        return by_unique(lines[name], lambda g: index.get(g, -1), np.int64)
    codes, values = coding
    table = np.array([index.get(v, -1) if isinstance(v, str) else -1 for v in values.tolist()],
                     dtype=np.int64)
    return table[codes]


def _aggregate(lines: LineTable, issues: list[Issue], edition: FactorEdition,
               production: ProductionInfo, excluded: int, spread: _Spread) -> EngineResult:
    totals: dict[Phase, float] = {}
    uncertainty: dict[Phase, float] = {}
    by_poste: dict[str, dict[Phase, float]] = {p: {} for p in POSTE_IDS}
    by_nature: dict[str, dict[Phase, float]] = {n: {} for n in NATURE_IDS}
    u_poste: dict[str, dict[Phase, float]] = {p: {} for p in POSTE_IDS}
    u_nature: dict[str, dict[Phase, float]] = {n: {} for n in NATURE_IDS}
    axes = ((_codes(lines, "poste", POSTE_IDS), POSTE_IDS, by_poste, u_poste),
            (spread.nature, NATURE_IDS, by_nature, u_nature))
    for phase in PHASES:
        e = lines[EMISSIONS_COLUMN[phase]].astype(float)
        u_q = spread.quantity[phase]
        totals[phase] = float(np.nansum(e))
        uncertainty[phase] = float(absolute_uncertainty(e, spread.factor, u_q, spread.group)[0])
        for codes, ids, sums, spreads in axes:
            keep = (codes >= 0) & ~np.isnan(e)
            sums_by = np.bincount(codes[keep], weights=e[keep], minlength=len(ids))
            u_by = absolute_uncertainty(e, spread.factor, u_q, spread.group, codes, len(ids))
            for i, key in enumerate(ids):
                sums[key][phase] = float(sums_by[i])
                spreads[key][phase] = float(u_by[i])

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
        uncertainty_by_poste={k: pv(v) for k, v in u_poste.items()},
        uncertainty_by_nature={k: pv(v) for k, v in u_nature.items()},
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
        value = PhaseValues(total.forecast * scale / denominator,
                            total.final * scale / denominator)
        if math.isfinite(value.forecast) and math.isfinite(value.final):
            out[key] = value  # a denominator like 1e-310 gives no indicator, not infinity
    return out

