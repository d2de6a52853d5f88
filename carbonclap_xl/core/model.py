"""The domain contract: postes, natures, data sources and the columns of an activity line.

Defined once here; the engine, the CSV reader, the workbook layout, the docs and the tests
derive from these tables (PRODUCT.md §3–§5).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Poste:
    id: str
    label_fr: str
    label_en: str
    sheet: str  # the workbook sheet that holds this poste's lines
    devis_chapter: str


POSTES: tuple[Poste, ...] = (
    Poste(
        "production",
        "Production (bureaux, préparation)",
        "Production (offices, prep)",
        "Bureaux",
        "2 Personnel, 6 (68 Bureaux)",
    ),
    Poste(
        "lieux",
        "Lieux de tournage & studios",
        "Locations & studios",
        "Lieux",
        "5 (51 Studio, 52 Décors naturels)",
    ),
    Poste("decors", "Décors", "Sets", "Décors", "5 (53 Aménagements, 54 Meubles et accessoires)"),
    Poste(
        "hmc",
        "Costumes, coiffure, maquillage",
        "Hair, make-up, costume",
        "HMC",
        "5 (58 Costumes, 59 Maquillage et coiffure)",
    ),
    Poste("transport", "Transports", "Transport", "Transports", "6 (61–66)"),
    Poste(
        "regie",
        "Régie (hébergement, restauration, consommables)",
        "Production logistics (lodging, catering, consumables)",
        "Régie",
        "6 (69 Régie et divers)",
    ),
    Poste(
        "technique", "Moyens techniques", "Technical equipment", "Technique", "7 Moyens techniques"
    ),
    Poste("postprod", "Post-production", "Post-production", "Postprod", "8 Post-production"),
)
POSTE_IDS: tuple[str, ...] = tuple(p.id for p in POSTES)
POSTE_BY_ID: dict[str, Poste] = {p.id: p for p in POSTES}


@dataclass(frozen=True)
class Nature:
    id: str
    label_fr: str
    label_en: str
    materiality: bool  # one of the postes a complete footprint cannot leave empty


NATURES: tuple[Nature, ...] = (
    Nature("energie", "Énergie", "Energy", True),
    Nature("transport_personnes", "Transport de personnes", "People transport", True),
    Nature("transport_marchandises", "Transport de marchandises", "Freight", False),
    Nature("hebergement", "Hébergement", "Lodging", False),
    Nature("repas", "Repas", "Meals", True),
    Nature("achats", "Achats", "Purchases", True),
    Nature("amortissement", "Amortissement (matériel)", "Equipment (depreciation)", True),
    Nature("dechets", "Déchets", "Waste", False),
    Nature("numerique", "Numérique", "Digital", False),
)
NATURE_IDS: tuple[str, ...] = tuple(n.id for n in NATURES)
NATURE_BY_ID: dict[str, Nature] = {n.id: n for n in NATURES}


@dataclass(frozen=True)
class DataSource:
    id: str
    label_fr: str
    uncertainty_pct: float  # u_Q, the Bilan Carbone convention for the quality of a datum
    choice: str  # what the workbook's dropdown shows (read back through DATA_SOURCE_ALIASES)


# Bilan Carbone convention (PRODUCT.md §5): invoice 5 %, quote 10 %, estimate 20–50 %.
DATA_SOURCES: tuple[DataSource, ...] = (
    DataSource("facture", "Facture", 5.0, "facture"),
    DataSource("releve", "Relevé (compteur, carnet de bord)", 5.0, "relevé"),
    DataSource("devis", "Devis", 10.0, "devis"),
    DataSource("estimation", "Estimation", 30.0, "estimation"),
    DataSource("hypothese", "Hypothèse grossière", 50.0, "hypothèse"),
)
DATA_SOURCE_BY_ID: dict[str, DataSource] = {d.id: d for d in DATA_SOURCES}
DEFAULT_DATA_SOURCE = "estimation"  # a line that does not say where its number comes from
# Spellings people type, mapped to ids (lower-cased, accents kept and removed).
DATA_SOURCE_ALIASES: dict[str, str] = {
    "facture": "facture",
    "invoice": "facture",
    "factures": "facture",
    "relevé": "releve",
    "releve": "releve",
    "compteur": "releve",
    "meter": "releve",
    "devis": "devis",
    "quote": "devis",
    "estimation": "estimation",
    "estimé": "estimation",
    "estime": "estimation",
    "estimate": "estimation",
    "hypothèse": "hypothese",
    "hypothese": "hypothese",
    "assumption": "hypothese",
}

# VAT rates that turn an amount typed in « € TTC » into the HT euros of the monetary ratios,
# one per activity family (nature), each with the article of the French tax code (Code
# général des impôts) that sets it. A line whose real rate differs (alcohol 20 %, exempt
# international flights, books 5.5 %) should be typed HT.
@dataclass(frozen=True)
class VatRate:
    rate_pct: float
    source: str  # the CGI article


_STANDARD = VatRate(20.0, "CGI art. 278 (taux normal)")
VAT_RATES: dict[str, VatRate] = {
    "energie": _STANDARD,
    "transport_personnes": VatRate(10.0, "CGI art. 279 b quater (transports de voyageurs)"),
    "transport_marchandises": _STANDARD,
    "hebergement": VatRate(10.0, "CGI art. 279 a (fourniture de logement en hôtel)"),
    "repas": VatRate(10.0, "CGI art. 279 m et n (restauration, ventes à consommer sur place "
                           "ou à emporter pour consommation immédiate)"),
    "achats": _STANDARD,
    "amortissement": _STANDARD,
    "dechets": _STANDARD,  # collection for a company: the 10 % of art. 279 h is for households
    "numerique": _STANDARD,
}
DEFAULT_VAT_RATE = _STANDARD  # a directly cited factor whose nature is unknown

# When a factor publishes no uncertainty (DESNZ, some ADEME rows), the engine uses this value
# and says so in an info issue: never a silent zero.
DEFAULT_FACTOR_UNCERTAINTY_PCT = 50.0


class Phase(StrEnum):
    FORECAST = "forecast"
    FINAL = "final"


PHASE_LABEL_FR: dict[Phase, str] = {Phase.FORECAST: "prévisionnel", Phase.FINAL: "définitif"}
# "quantité prévisionnelle / définitive" (feminine agreement in messages)
PHASE_QUANTITY_FR: dict[Phase, str] = {Phase.FORECAST: "prévisionnelle", Phase.FINAL: "définitive"}


# The columns of an activity line, in CSV order (the `compute` and `new --from` contract).
# `count` (persons, vehicles, trips: E = Q × N × F, blank = 1, both phases) and
# `data_source_final` (blank = same as `data_source`) are optional in a CSV.
LINE_COLUMNS: tuple[str, ...] = (
    "poste",
    "activity",
    "quantity_forecast",
    "quantity_final",
    "unit",
    "count",
    "data_source",
    "data_source_final",
    "comment",
)
OPTIONAL_LINE_COLUMNS: tuple[str, ...] = ("count", "data_source_final", "data_source", "comment")


@dataclass(frozen=True)
class ProductionInfo:
    """Production metadata that gives the intensity indicators their denominators."""

    title: str | None = None
    work_type: str | None = None
    producer: str | None = None
    phase: Phase | None = None
    budget_keur: float | None = None
    shooting_days: float | None = None
    episodes: float | None = None
    duration_min: float | None = None  # finished programme duration, minutes
    start_date: str | None = None
    end_date: str | None = None
    factor_edition: str | None = None
