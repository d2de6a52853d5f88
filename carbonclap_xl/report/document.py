"""The report model: everything the footprint report says, built from the result document.

The one input is the plain result document (``load_result``, the dict of
``process_workbook(...).to_dict()``), so the HTML and PDF renderers, the ribbon's
**Rapport** and the comparison share one reading of it. No matplotlib and no PDF library
here: this module stays cheap to import and is tested on its own.

French formats throughout: decimal comma, a narrow no-break space between thousands,
« − » for negative numbers.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carbonclap_xl.core.model import (
    DATA_SOURCE_ALIASES,
    DATA_SOURCE_BY_ID,
    DATA_SOURCES,
    NATURE_BY_ID,
    NATURES,
    PHASE_LABEL_FR,
    POSTE_BY_ID,
    POSTES,
    Phase,
)

PHASES: tuple[str, ...] = ("forecast", "final")
PHASE_TITLE_FR: dict[str, str] = {"forecast": "Prévisionnel", "final": "Définitif"}
NBSP, NNBSP, MINUS = "\u00a0", "\u202f", "\u2212"
MAX_TEXT = 160  # workbook text longer than this is cut in tables (the workbook keeps it whole)
TOP_LINES = 10


# --------------------------------------------------------------------------- the one seam


def load_result(path: str | Path) -> dict[str, Any]:
    """The result document of one workbook: the pipeline's ``to_dict()``.

    Refuses, as ``InputFileError`` (exit 2), a path that is not a file, a hostile or broken
    package (the same gate as ``process``) and a workbook that is not a Carbon'Clap one.
    """
    from carbonclap_xl.core.errors import InputFileError
    from carbonclap_xl.validation.safety import inspect_package
    from carbonclap_xl.xlsx.files import process_workbook

    path = Path(path)
    if not path.is_file():
        raise InputFileError(str(path), "fichier introuvable"
                             if not path.exists() else "ce n'est pas un fichier")
    inspect_package(path)
    doc = process_workbook(path).to_dict()
    for issue in doc.get("issues") or []:
        if issue.get("code") == "NOT_CARBONCLAP_WORKBOOK":
            raise InputFileError(str(path), "ce n'est pas un classeur Carbon'Clap ("
                                 + str(issue.get("message") or "").rstrip(".") + ")")
    return doc


# --------------------------------------------------------------------------- French formats


def num(value: Any) -> float | None:
    """A finite float, or None for blank, NaN, infinite or non-numeric values."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def fr_number(value: float | None, decimals: int = 2, signed: bool = False) -> str:
    """12 345,68 (narrow no-break space, decimal comma, « − »); « — » when there is none."""
    x = num(value)
    if x is None:
        return "—"
    text = f"{abs(x):,.{decimals}f}".replace(",", NNBSP).replace(".", ",")
    if round(abs(x), decimals) == 0:
        return text  # no sign on a zero, whatever rounding hid
    if x < 0:
        return MINUS + text
    return ("+" + text) if signed else text


def fr_tonnes(kg: float | None, decimals: int = 2, signed: bool = False) -> str:
    x = num(kg)
    return fr_number(None if x is None else x / 1000.0, decimals, signed)


def fr_percent(share: float | None, decimals: int = 1, signed: bool = False) -> str:
    """A fraction (0.123) as « 12,3 % »."""
    x = num(share)
    if x is None:
        return "—"
    return fr_number(100.0 * x, decimals, signed) + NNBSP + "%"


def fr_date(value: Any) -> str:
    """ISO dates as 02/03/2026; anything else as given."""
    if value is None or value == "":
        return "—"
    text = str(value)
    try:
        return dt.date.fromisoformat(text[:10]).strftime("%d/%m/%Y")
    except ValueError:
        return text


def clean_text(value: Any, limit: int | None = MAX_TEXT) -> str:
    """Workbook text fit for a table: control characters out, whitespace collapsed, cut at
    ``limit`` characters with « … ». Escaping is the renderer's job."""
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    text = re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+", " ", str(value))
    text = re.sub(r"\s+", " ", text).strip()
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def short_label(label: str) -> str:
    """« Régie (hébergement, …) » → « Régie », for chart axes."""
    return label.split(" (")[0]


# --------------------------------------------------------------------------- reference figures

@dataclass(frozen=True)
class Reference:
    """A published figure to read an indicator against (plausibility, never a target)."""

    indicator: str  # "total_t" or a key of the result's ``indicators``
    value_t: float  # in the indicator's unit (t, t/h, t/day, t/episode)
    what: str  # French description
    source: str  # where the figure comes from


# The single table of reference figures (PRODUCT.md §6), each with where it comes from.
# None of them is per k€ of budget, so that indicator has no reference.
_SPA = "Sustainable Production Alliance (PEAR), 2016–2019"
_TATORT = "MFG Baden-Württemberg : Tatort « Fünf Minuten Himmel », 2015"
REFERENCES: tuple[Reference, ...] = (
    Reference("tco2e_per_hour", 16.0, "Moyenne des bilans Carbon'Clap, tous genres",
              "Ecoprod, données Carbon'Clap"),
    Reference("tco2e_per_hour", 10.0, "Une heure de programme de télévision",
              "Ecoprod 2020"),
    Reference("tco2e_per_hour", 9.2, "Une heure de télévision au Royaume-Uni",
              "albert (BAFTA) 2019"),
    Reference("total_t", 750.0, "Long métrage français (fourchette 500–1 000 t)",
              "Ecoprod ; The Shift Project"),
    Reference("total_t", 3370.0, "Film américain à gros budget", _SPA),
    Reference("total_t", 80.3, "Épisode « vert » de Tatort (Allemagne), 24 jours, 45 personnes",
              _TATORT),
    Reference("tco2e_per_shooting_day", 33.0, "Film américain à gros budget", _SPA),
    Reference("tco2e_per_shooting_day", 80.3 / 24,
              "Épisode « vert » de Tatort : 80,3 t sur 24 jours", _TATORT),
    Reference("tco2e_per_episode", 80.3, "Épisode « vert » de Tatort (Allemagne)", _TATORT),
)

# label, unit, decimals: how the report names each indicator (keys of the result document)
INDICATOR_LABELS: dict[str, tuple[str, str, int]] = {
    "total_t": ("Total", "tCO2e", 1),
    "tco2e_per_hour": ("Par heure de programme", "tCO2e/h", 1),
    "kgco2e_per_keur": ("Par k€ de budget", "kgCO2e/k€", 1),
    "tco2e_per_shooting_day": ("Par jour de tournage", "tCO2e/jour", 2),
    "tco2e_per_episode": ("Par épisode", "tCO2e/épisode", 1),
}


# --------------------------------------------------------------------------- classification

# Scope 1/2/3 (GHG Protocol) from the nature and the factor: an approximation documented in
# docs/report.md. Scope 1: fuel the production burns itself (generators, heating, fuel put in
# its vehicles). Scope 2: purchased electricity, heat and cold. Scope 3: everything else.
_SCOPE2_WORDS = re.compile(r"lectricit|electricity|chaleur|vapeur|froid|district.?heat|"
                           r"heat.?network|^elec_|^district_heat", re.IGNORECASE)
_FUEL_UNITS = re.compile(r"^(l|litres?|m3|m³|kg|kwh ?pc[is])$", re.IGNORECASE)
_MONETARY_UNITS = re.compile(r"euro|€|\busd\b|\$|dollar", re.IGNORECASE)
SCOPE_LABELS: dict[int, tuple[str, str]] = {
    1: ("Scope 1", "combustibles brûlés par la production (groupes électrogènes, chauffage, "
                   "carburant des véhicules comptés en litres)"),
    2: ("Scope 2", "électricité, chaleur et froid achetés"),
    3: ("Scope 3", "tout le reste : transports comptés en km, hébergement, repas, achats, "
                   "matériel, déchets, numérique"),
}


def scope_of(line: Mapping[str, Any]) -> int:
    nature = line.get("nature")
    words = " ".join(str(line.get(k) or "") for k in ("activity_id", "activity_label",
                                                       "factor_label"))
    unit = str(line.get("factor_unit") or "").strip()
    if nature == "energie":
        return 2 if _SCOPE2_WORDS.search(words) else 1
    if nature in ("transport_personnes", "transport_marchandises") and _FUEL_UNITS.match(unit):
        return 1
    return 3


def is_monetary(line: Mapping[str, Any]) -> bool:
    """A line whose factor is a monetary ratio (kgCO2e per € or k€ or $ spent)."""
    return bool(_MONETARY_UNITS.search(str(line.get("factor_unit") or "")))


# data-source classes of the report, best first; blank counts as an estimate (engine rule)
QUALITY_CLASSES: tuple[tuple[str, str], ...] = (
    *((d.id, d.label_fr) for d in DATA_SOURCES),
    ("blank", "Non renseignée (comptée comme estimation)"),
    ("other", "Autre mention (comptée comme estimation)"),
)


def quality_class(text: Any) -> str:
    t = clean_text(text, None).lower()
    if not t:
        return "blank"
    key = DATA_SOURCE_ALIASES.get(t, t)
    return key if key in DATA_SOURCE_BY_ID else "other"


def source_label(text: Any) -> str:
    """How a line's data source reads in a table: the workbook's spelling for known ones."""
    key = quality_class(text)
    if key in DATA_SOURCE_BY_ID:
        return DATA_SOURCE_BY_ID[key].choice
    return "—" if key == "blank" else clean_text(text, 40)


def line_source(line: Mapping[str, Any], phase: str) -> Any:
    """The data source of a line for a phase: ``data_source_final`` when the workbook has it
    and it is filled, the line's ``data_source`` otherwise."""
    if phase == "final":
        final = line.get("data_source_final")
        if clean_text(final, None):
            return final
    return line.get("data_source")


# --------------------------------------------------------------------------- the model


@dataclass
class Row:
    """One poste, nature, scope or data-source class: emissions per phase, kgCO2e."""

    key: str
    label: str
    forecast: float
    final: float
    u_forecast: float | None = None
    u_final: float | None = None

    def get(self, phase: str) -> float:
        return self.forecast if phase == "forecast" else self.final

    def u(self, phase: str) -> float | None:
        return self.u_forecast if phase == "forecast" else self.u_final

    @property
    def delta(self) -> float:
        return self.final - self.forecast

    @property
    def delta_share(self) -> float | None:
        return self.delta / self.forecast if self.forecast else None


@dataclass
class LineRow:
    """One activity line as the report shows it."""

    sheet: str
    row: int | None
    poste: str
    activity: str
    comment: str
    quantity_forecast: float | None
    quantity_final: float | None
    unit: str
    data_source: str
    factor_id: str
    forecast: float | None  # kgCO2e, None when the phase does not count the line
    final: float | None
    uncertainty_pct: float | None
    status: str

    @property
    def where(self) -> str:
        if self.row is None:
            return self.sheet
        return f"{self.sheet}{NBSP}l.{NBSP}{self.row}"

    @property
    def delta(self) -> float:
        return (self.final or 0.0) - (self.forecast or 0.0)


@dataclass
class IndicatorRow:
    key: str
    label: str
    unit: str
    decimals: int
    forecast: float | None
    final: float | None
    references: list[Reference]


@dataclass
class IssueRow:
    severity: str  # error, warning, info
    code: str
    where: str
    message: str


@dataclass
class ReportModel:
    title: str
    workbook_name: str
    production: list[tuple[str, str]]  # (label, value) in reading order
    declared_phase: str | None  # the phase the Production sheet says the file is for
    main_phase: str  # the phase the ranking of lines follows
    filled: dict[str, bool]  # phase → does any line carry a quantity for it
    total: Row
    postes: list[Row]
    natures: list[Row]
    scopes: list[Row]
    quality: list[Row]
    monetary: Row
    monetary_lines: int
    heaviest: list[LineRow]
    changes: list[LineRow]
    indicators: list[IndicatorRow]
    issues: list[IssueRow]
    counts: dict[str, int]
    product: str
    edition: str
    sources: list[dict[str, str]]
    attribution: list[str]
    template_version: str
    generated: dt.datetime = field(default_factory=lambda: dt.datetime.now().astimezone())

    def share(self, kg: float, phase: str) -> float | None:
        total = self.total.get(phase)
        return kg / total if total else None


def _pair(doc: Mapping[str, Any] | None) -> tuple[float, float]:
    doc = doc if isinstance(doc, Mapping) else {}
    return num(doc.get("forecast")) or 0.0, num(doc.get("final")) or 0.0


def _opt_pair(doc: Any) -> tuple[float | None, float | None]:
    doc = doc if isinstance(doc, Mapping) else {}
    return num(doc.get("forecast")), num(doc.get("final"))


def _rows(breakdown: Mapping[str, Any], order: Iterable[tuple[str, str]],
          keep_empty: bool) -> list[Row]:
    rows: list[Row] = []
    known = set()
    for key, label in order:
        known.add(key)
        value = breakdown.get(key)
        if value is None and not keep_empty:
            continue
        f, F = _pair(value)
        uf, uF = _opt_pair((value or {}).get("uncertainty"))
        if f or F or keep_empty:
            rows.append(Row(key, label, f, F, uf, uF))
    for key, value in breakdown.items():  # a poste or nature this version does not know yet
        if key not in known:
            f, F = _pair(value)
            uf, uF = _opt_pair((value or {}).get("uncertainty"))
            if f or F:
                rows.append(Row(str(key), clean_text(key), f, F, uf, uF))
    return rows


def _line_row(line: Mapping[str, Any], main_phase: str) -> LineRow:
    poste = str(line.get("poste") or "")
    label = clean_text(line.get("activity_label") or line.get("activity"))
    row = num(line.get("row"))
    return LineRow(
        sheet=clean_text(line.get("sheet")) or clean_text(
            POSTE_BY_ID[poste].sheet if poste in POSTE_BY_ID else poste),
        row=int(row) if row is not None else None,
        poste=poste,
        activity=label,
        comment=clean_text(line.get("comment")),
        quantity_forecast=num(line.get("quantity_forecast")),
        quantity_final=num(line.get("quantity_final")),
        unit=clean_text(line.get("unit") or line.get("unit_used"), 40),
        data_source=source_label(line_source(line, main_phase)),
        factor_id=clean_text(line.get("factor_id"), 60),
        forecast=num(line.get("co2e_forecast_kg")),
        final=num(line.get("co2e_final_kg")),
        uncertainty_pct=num(line.get("uncertainty_pct")),
        status=str(line.get("status") or ""),
    )


def _where(issue: Mapping[str, Any]) -> str:
    sheet, cell = clean_text(issue.get("sheet"), 60), clean_text(issue.get("cell"), 20)
    if sheet:
        return f"{sheet}!{cell}" if cell else sheet
    line = num(issue.get("line"))
    return f"ligne {int(line)}" if line is not None else ""


SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
SEVERITY_TITLE_FR = {"error": "Erreur", "warning": "Avertissement", "info": "Info"}

_PRODUCTION_FIELDS: tuple[tuple[str, str], ...] = (
    ("title", "Titre"), ("work_type", "Type d'œuvre"), ("producer", "Production"),
    ("phase", "Bilan déposé"), ("budget_keur", "Budget"), ("shooting_days", "Jours de tournage"),
    ("episodes", "Épisodes"), ("duration_min", "Durée du programme"),
    ("start_date", "Début du tournage"), ("end_date", "Fin du tournage"),
)


def _production_value(key: str, value: Any) -> str:
    if value is None or value == "":
        return "—"
    if key == "phase":
        try:
            return PHASE_LABEL_FR[Phase(value)]
        except ValueError:
            return clean_text(value)
    if key == "budget_keur":
        return fr_number(value, 0) + NNBSP + "k€"
    if key in ("shooting_days", "episodes"):
        x = num(value)
        return fr_number(x, 0 if x is not None and x.is_integer() else 1)
    if key == "duration_min":
        x = num(value)
        if x is None:
            return clean_text(value)
        hours = f" ({fr_number(x / 60, 1)}{NNBSP}h)" if x >= 60 else ""
        return fr_number(x, 0 if x.is_integer() else 1) + NNBSP + "min" + hours
    if key.endswith("_date"):
        return fr_date(value)
    return clean_text(value)


def build_model(doc: Mapping[str, Any], top: int = TOP_LINES,
                generated: dt.datetime | None = None) -> ReportModel:
    """Everything the report says, from one result document (extra keys are ignored)."""
    workbook = doc.get("workbook") or {}
    production = workbook.get("production") or {}
    lines = [ln for ln in (doc.get("lines") or []) if isinstance(ln, Mapping)]
    counted = [ln for ln in lines if str(ln.get("status") or "") != "error"]

    filled = {p: any(num(ln.get(f"co2e_{p}_kg")) is not None for ln in counted) for p in PHASES}
    declared = production.get("phase")
    declared = declared if declared in PHASES else None
    main_phase = declared or ("final" if filled["final"] else "forecast")

    total = Row("total", "Total", *_pair(doc.get("total_kgco2e")),
                *_opt_pair(doc.get("uncertainty_kgco2e")))
    postes = _rows(doc.get("by_poste") or {}, [(p.id, p.label_fr) for p in POSTES], True)
    natures = _rows(doc.get("by_nature") or {}, [(n.id, n.label_fr) for n in NATURES], False)

    def sum_rows(keyfun: Any, order: Iterable[tuple[Any, str]]) -> list[Row]:
        sums: dict[Any, list[float]] = {}
        for ln in counted:
            for i, p in enumerate(PHASES):
                e = num(ln.get(f"co2e_{p}_kg"))
                if e:
                    sums.setdefault(keyfun(ln, p), [0.0, 0.0])[i] += e
        return [Row(str(k), label, *sums.get(k, [0.0, 0.0])) for k, label in order]

    scopes = sum_rows(lambda ln, p: scope_of(ln),
                      [(s, f"{label} — {what}") for s, (label, what) in SCOPE_LABELS.items()])
    quality = [r for r in sum_rows(lambda ln, p: quality_class(line_source(ln, p)),
                                   QUALITY_CLASSES)
               if r.forecast or r.final or r.key in DATA_SOURCE_BY_ID]
    monetary = sum_rows(lambda ln, p: is_monetary(ln),
                        [(True, "Ratios monétaires"), (False, "Données physiques")])[0]
    monetary_lines = sum(1 for ln in counted if is_monetary(ln))

    rows = [_line_row(ln, main_phase) for ln in counted]
    heaviest = sorted((r for r in rows if (r.final if main_phase == "final" else r.forecast)),
                      key=lambda r: -((r.final if main_phase == "final" else r.forecast) or 0))
    changes = sorted((r for r in rows if abs(r.delta) > 1e-9), key=lambda r: -abs(r.delta))

    indicators = _indicators(doc, total)
    issues = sorted(
        (IssueRow(str(i.get("severity") or "info"), clean_text(i.get("code"), 60),
                  _where(i), clean_text(i.get("message"), 600))
         for i in (doc.get("issues") or []) if isinstance(i, Mapping)),
        key=lambda i: SEVERITY_ORDER.get(i.severity, 3))
    counts = {k: int(num(v) or 0) for k, v in (doc.get("counts") or {}).items()
              if num(v) is not None}
    product = doc.get("product") or {}
    edition = doc.get("factor_edition") or {}
    title = clean_text(production.get("title"), 200) or Path(
        str(workbook.get("path") or "classeur")).stem
    return ReportModel(
        title=title,
        workbook_name=clean_text(Path(str(workbook.get("path") or "")).name, 200),
        production=[(label, _production_value(key, production.get(key)))
                    for key, label in _PRODUCTION_FIELDS],
        declared_phase=declared,
        main_phase=main_phase,
        filled=filled,
        total=total,
        postes=postes,
        natures=natures,
        scopes=scopes,
        quality=quality,
        monetary=monetary,
        monetary_lines=monetary_lines,
        heaviest=heaviest[:top],
        changes=changes[:top],
        indicators=indicators,
        issues=issues,
        counts=counts,
        product=f"{clean_text(product.get('name') or 'carbonclap_xl')} "
                f"{clean_text(product.get('version') or '?')}",
        edition=clean_text(edition.get("name") or edition.get("edition") or "?", 300),
        sources=[{k: clean_text(s.get(k), 300) for k in ("key", "dataset", "edition",
                                                          "licence")}
                 for s in (edition.get("sources") or []) if isinstance(s, Mapping)],
        attribution=[clean_text(a, 400) for a in (doc.get("attribution") or [])],
        template_version=clean_text(workbook.get("template_version") or "—"),
        generated=generated or dt.datetime.now().astimezone(),
    )


def _indicators(doc: Mapping[str, Any], total: Row) -> list[IndicatorRow]:
    found = doc.get("indicators") or {}
    values: dict[str, tuple[float | None, float | None]] = {
        "total_t": (total.forecast / 1000.0, total.final / 1000.0)}
    for key, value in found.items():
        values[str(key)] = _opt_pair(value)
    out = []
    for key, (label, unit, decimals) in INDICATOR_LABELS.items():
        f, F = values.get(key, (None, None))
        out.append(IndicatorRow(key, label, unit, decimals, f, F,
                                [r for r in REFERENCES if r.indicator == key]))
    return out


def nature_label(nature_id: str) -> str:
    n = NATURE_BY_ID.get(nature_id)
    return n.label_fr if n else clean_text(nature_id)


def quality_sentence(model: ReportModel) -> str:
    """One sentence on data quality for the main phase (what a reader retains)."""
    p = model.main_phase
    measured = sum(r.get(p) for r in model.quality if r.key in ("facture", "releve"))
    share = model.share(measured, p)
    money = model.share(model.monetary.get(p), p)
    if share is None:
        return "Aucune émission comptée pour cette phase."
    return (f"Bilan {PHASE_LABEL_FR[Phase(p)]} : {fr_percent(share)} des émissions reposent "
            f"sur des factures ou des relevés, {fr_percent(money)} sur des ratios monétaires "
            f"(k€ dépensés).")
