"""The workbook layout: every sheet, column, cell, named range and dropdown, defined once.

The template generator, the headless reader and writer, the validator, the xlwings adapter and
the docs all derive from this module. Changing a position here and regenerating the template
(`make template`) is the only way to change the workbook.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from carbonclap_xl.core.a1 import col_letter
from carbonclap_xl.core.model import DATA_SOURCES, NATURES, POSTES, Poste

TEMPLATE_VERSION = "2.0"
# Versions the reader understands (each through its recorded column table, LINE_LAYOUTS);
# `carbonclap-xl upgrade` moves an older one to TEMPLATE_VERSION.
SUPPORTED_TEMPLATE_VERSIONS = ("1.0", "2.0")
WORKBOOK_MARKER = "Carbon'Clap XL"  # Production!A1: identifies our workbooks

SHEET_README = "Lisez-moi"
SHEET_PRODUCTION = "Production"
SHEET_SYNTHESE = "Synthèse"
SHEET_CONTROLES = "Contrôles"
SHEET_FACTEURS = "Facteurs"
POSTE_SHEETS: dict[str, str] = {p.id: p.sheet for p in POSTES}
SHEET_ORDER: tuple[str, ...] = (SHEET_README, SHEET_PRODUCTION, *POSTE_SHEETS.values(),
                                SHEET_SYNTHESE, SHEET_CONTROLES, SHEET_FACTEURS)


# --------------------------------------------------------------------------- poste sheets


@dataclass(frozen=True)
class Column:
    key: str  # the engine field it holds (model.LINE_COLUMNS or engine.RESULT_COLUMNS)
    header: str  # French header, exactly as in the template
    width: float
    computed: bool
    number_format: str = "General"
    help: str = ""
    index: int = 0  # 1 for column A, set by the LineLayout that holds the column

    @property
    def letter(self) -> str:
        return col_letter(self.index)


@dataclass(frozen=True, eq=False)  # one object per version: hashed by identity, fast
class LineLayout:
    """The columns of the poste sheets in one template version."""

    version: str
    columns: tuple[Column, ...]

    @classmethod
    def of(cls, version: str, columns: tuple[Column, ...]) -> LineLayout:
        return cls(version, tuple(replace(c, index=i) for i, c in enumerate(columns, 1)))

    @cached_property
    def by_key(self) -> dict[str, Column]:
        return {c.key: c for c in self.columns}

    @cached_property
    def inputs(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if not c.computed)

    @cached_property
    def computed(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.computed)

    def letter(self, key: str) -> str:
        return self.by_key[key].letter

    @cached_property
    def nature(self) -> Column:
        """The nature of each counted line, written by the calculation in the column right
        after the line table (not part of it: the reader neither reads it nor reports its
        header). Synthèse's by-nature formulas sum the emission columns by this column."""
        return Column("nature", "Nature", 22, True, "@", index=len(self.columns) + 1)


# Template 2.0: the inputs stay together (a count next to the unit, a data source per phase,
# the comment last), then the columns the engine writes. Issue 9 makes the emission cells
# live formulas of the quantity, the count (blank = 1) and the factor.
LAYOUT_2_0 = LineLayout.of("2.0", (
    Column("activity", "Activité", 58, False, "@",
           "Choisissez dans la liste, ou citez un facteur « BE:<identifiant> »."),
    Column("quantity_forecast", "Quantité prévisionnelle", 16, False, "#,##0.00",
           "Quantité du devis (bilan prévisionnel)."),
    Column("quantity_final", "Quantité définitive", 16, False, "#,##0.00",
           "Quantité réelle (bilan définitif)."),
    Column("unit", "Unité", 12, False, "@", "Vide = unité de l'activité."),
    Column("count", "Nombre", 12, False, "General",
           "Passagers, véhicules… (Facteurs, colonne Saisie) ; vide = 1."),
    Column("data_source", "Source de la donnée", 18, False, "@",
           "facture, relevé, devis, estimation, hypothèse."),
    Column("data_source_final", "Source de la donnée (définitif)", 18, False, "@",
           "Vide = la même. Ex. devis au prévisionnel, facture au définitif."),
    Column("comment", "Commentaire", 30, False, "@", "Texte libre, conservé."),
    Column("factor_value", "Facteur (kgCO2e/unité)", 14, True, "0.0000"),
    Column("factor_unit", "Unité du facteur", 14, True, "@"),
    Column("co2e_forecast_kg", "Émissions prévisionnelles (kgCO2e)", 18, True, "#,##0.0"),
    Column("co2e_final_kg", "Émissions définitives (kgCO2e)", 18, True, "#,##0.0"),
    Column("uncertainty_forecast_pct", "Incertitude prév. (%)", 12, True, "0"),
    Column("uncertainty_final_pct", "Incertitude déf. (%)", 12, True, "0"),
    Column("factor_id", "Référence du facteur", 16, True, "@"),
    Column("source", "Source du facteur", 40, True, "@"),
    Column("status", "Statut", 12, True, "@"),
))

# Template 1.0, as released (recorded, never edited): the reader reads 1.0 workbooks through
# it and `upgrade` maps its columns onto 2.0's.
LAYOUT_1_0 = LineLayout.of("1.0", (
    Column("activity", "Activité", 58, False, "@"),
    Column("quantity_forecast", "Quantité prévisionnelle", 16, False, "#,##0.00"),
    Column("quantity_final", "Quantité définitive", 16, False, "#,##0.00"),
    Column("unit", "Unité", 12, False, "@"),
    Column("data_source", "Source de la donnée", 18, False, "@"),
    Column("comment", "Commentaire", 30, False, "@"),
    Column("factor_value", "Facteur (kgCO2e/unité)", 14, True, "0.0000"),
    Column("factor_unit", "Unité du facteur", 14, True, "@"),
    Column("co2e_forecast_kg", "Émissions prévisionnelles (kgCO2e)", 18, True, "#,##0.0"),
    Column("co2e_final_kg", "Émissions définitives (kgCO2e)", 18, True, "#,##0.0"),
    Column("uncertainty_pct", "Incertitude (%)", 12, True, "0"),
    Column("factor_id", "Référence du facteur", 16, True, "@"),
    Column("source", "Source du facteur", 40, True, "@"),
    Column("status", "Statut", 12, True, "@"),
))
LINE_LAYOUTS: dict[str, LineLayout] = {"1.0": LAYOUT_1_0, "2.0": LAYOUT_2_0}
# A column of an older version whose content a newer one holds under another key.
RENAMED_KEYS: dict[str, str] = {"uncertainty_pct": "uncertainty_forecast_pct"}
CURRENT_LAYOUT = LINE_LAYOUTS[TEMPLATE_VERSION]


def line_layout(version: str | None) -> LineLayout:
    """The columns of a workbook of ``version`` (the current ones for an unknown version)."""
    return LINE_LAYOUTS.get(version or "", CURRENT_LAYOUT)


# The current version's columns, for the template and the docs.
LINE_COLUMNS_LAYOUT: tuple[Column, ...] = CURRENT_LAYOUT.columns
COLUMN_BY_KEY: dict[str, Column] = CURRENT_LAYOUT.by_key
INPUT_COLUMNS = CURRENT_LAYOUT.inputs
COMPUTED_COLUMNS = CURRENT_LAYOUT.computed
# The nature of each counted line (written by the calculation in the column right after the
# line table: ``LineLayout.nature``) for the current version, for the template and the docs.
NATURE_COLUMN = CURRENT_LAYOUT.nature
NATURE_LETTER = NATURE_COLUMN.letter
POSTE_TITLE_CELL = "A1"
POSTE_HELP_CELL = "A2"
HEADER_ROW = 4
FIRST_DATA_ROW = 5
PREPARED_ROWS = 500  # rows with dropdowns in the template; lines below are still read
LAST_PREPARED_ROW = FIRST_DATA_ROW + PREPARED_ROWS - 1
MAX_LINE_ROWS = 100_000  # beyond this row nothing is read (reported)


# --------------------------------------------------------------------------- Production


@dataclass(frozen=True)
class Field:
    key: str  # model.ProductionInfo attribute, or "template_version"
    label: str
    row: int
    kind: str  # text | number | date | choice | computed
    choices: tuple[str, ...] = ()
    required: bool = False  # CNC: required for the submission of either phase
    help: str = ""

    @property
    def cell(self) -> str:
        return f"{PRODUCTION_VALUE_COLUMN}{self.row}"


WORK_TYPES: tuple[str, ...] = ("Long métrage", "Court métrage", "Téléfilm", "Série",
                               "Documentaire", "Animation", "Publicité", "Clip", "Autre")
PHASE_CHOICES: dict[str, str] = {"Prévisionnel": "forecast", "Définitif": "final"}
PRODUCTION_VALUE_COLUMN = "B"
PRODUCTION_FIELDS: tuple[Field, ...] = (
    Field("title", "Titre de l'œuvre", 4, "text", required=True),
    Field("work_type", "Type d'œuvre", 5, "choice", WORK_TYPES, required=True),
    Field("producer", "Société de production", 6, "text"),
    Field("phase", "Phase soumise", 7, "choice", tuple(PHASE_CHOICES), required=True),
    Field("budget_keur", "Budget total (k€ HT)", 8, "number", required=True),
    Field("shooting_days", "Jours de tournage", 9, "number"),
    Field("episodes", "Nombre d'épisodes", 10, "number"),
    Field("duration_min", "Durée du programme fini (minutes)", 11, "number"),
    Field("start_date", "Début du tournage", 12, "date", required=True),
    Field("end_date", "Fin du tournage", 13, "date", required=True),
    Field("factor_edition", "Édition des facteurs (écrite au calcul)", 15, "computed"),
    Field("template_version", "Version du modèle", 16, "computed"),
)
FIELD_BY_KEY: dict[str, Field] = {f.key: f for f in PRODUCTION_FIELDS}
PRODUCTION_MARKER_CELL = "A1"


# --------------------------------------------------------------------------- Synthèse

SYN_POSTE_HEADER_ROW = 6
SYN_POSTE_FIRST_ROW = 7
SYN_POSTE_TOTAL_ROW = SYN_POSTE_FIRST_ROW + len(POSTES)
SYN_POSTE_UNCERTAINTY_ROW = SYN_POSTE_TOTAL_ROW + 1
SYN_NATURE_HEADER_ROW = SYN_POSTE_UNCERTAINTY_ROW + 3
SYN_NATURE_FIRST_ROW = SYN_NATURE_HEADER_ROW + 1
SYN_NATURE_TOTAL_ROW = SYN_NATURE_FIRST_ROW + len(NATURES)
SYN_INDICATOR_HEADER_ROW = SYN_NATURE_TOTAL_ROW + 3
SYN_INDICATOR_FIRST_ROW = SYN_INDICATOR_HEADER_ROW + 1
SYN_EDITION_CELL = "A3"
SYN_ATTRIBUTION_CELL = "A4"
SYN_PENDING_CELL = "A5"  # live: how many lines await Recalculer
SYN_HEADERS: tuple[str, ...] = ("", "Prévisionnel (tCO2e)", "Définitif (tCO2e)", "Écart (tCO2e)",
                                "Écart (%)", "Part prév. (%)", "Part déf. (%)",
                                "Incertitude prév. (±t)", "Incertitude déf. (±t)")
SYN_LAST_COLUMN = col_letter(len(SYN_HEADERS))
SYN_INDICATOR_COUNT = 4
# The largest changes from forecast to final (postes and natures together, largest first),
# written by every computation: values of the last computation, not formulas.
SYN_CHANGES_TITLE_ROW = SYN_INDICATOR_FIRST_ROW + SYN_INDICATOR_COUNT + 2
SYN_CHANGES_HEADER_ROW = SYN_CHANGES_TITLE_ROW + 1
SYN_CHANGES_FIRST_ROW = SYN_CHANGES_HEADER_ROW + 1
SYN_CHANGES_COUNT = 6
SYN_CHANGES_TITLE = "Plus grands écarts du prévisionnel au définitif (au dernier calcul)"
SYN_CHANGES_HEADERS: tuple[str, ...] = ("Poste ou nature", "Prévisionnel (tCO2e)",
                                        "Définitif (tCO2e)", "Écart (tCO2e)", "Écart (%)")


# --------------------------------------------------------------------------- Contrôles

CTRL_HEADER_ROW = 4
CTRL_FIRST_ROW = 5
CTRL_HEADERS: tuple[str, ...] = ("Gravité", "Code", "Feuille", "Cellule", "Valeur", "Message")
CTRL_WIDTHS: tuple[float, ...] = (14, 30, 14, 10, 30, 120)
CTRL_SUMMARY_CELL = "A2"


# --------------------------------------------------------------------------- commands

@dataclass(frozen=True)
class Command:
    id: str  # the ribbon button's id (Excel), the extension's command (LibreOffice)
    label: str
    help: str  # what it does, as the ribbon's tooltip, Lisez-moi and docs/excel.md say it


COMMANDS: tuple[Command, ...] = (
    Command("cc_recalculer", "Recalculer",
            "calcule les émissions de tout le classeur et écrit les colonnes grisées, la "
            "Synthèse et les Contrôles, comme « carbonclap-xl process »."),
    Command("cc_verifier", "Vérifier",
            "applique les contrôles du financeur : le détail dans l'onglet Contrôles, les "
            "totaux d'erreurs et d'avertissements à l'écran ; rien d'autre n'est modifié."),
    Command("cc_rapport", "Rapport",
            "écrit le rapport d'empreinte carbone (<nom>-rapport.pdf) et son résumé pour le "
            "financeur (<nom>-bilan.json) à côté du classeur."),
    Command("cc_facteurs", "Facteurs",
            "cherche une activité dans le catalogue (mots, sans accents ni majuscules) et "
            "l'écrit dans la cellule active."),
)
WORKSHEET_FUNCTIONS: tuple[tuple[str, str], ...] = (  # Excel on Windows, with the add-in
    ("CC_FACTEUR(activité)", "facteur d'émission (kgCO2e par unité du facteur)"),
    ("CC_EMISSIONS(activité; quantité; unité)",
     "émissions en kgCO2e, calculées comme une ligne ; une colonne en entrée rend une colonne"),
    ("CC_INCERTITUDE(activité)", "incertitude du facteur, en %"),
    ("CC_RECHERCHE(texte)", "activités du catalogue qui contiennent ces mots (en colonne)"),
)


# --------------------------------------------------------------------------- Facteurs

FACT_HEADER_ROW = 4
FACT_FIRST_ROW = 5
FACT_HEADERS: tuple[str, ...] = ("Activité", "Identifiant", "Postes", "Nature", "Unité",
                                 "Saisie (quantité × nombre)", "Facteur (kgCO2e/unité)",
                                 "Unité du facteur", "Incertitude (%)", "Référence", "Source",
                                 "Note")
# narrow, wrapped columns: the catalogue stays readable printed on A4 landscape
FACT_WIDTHS: tuple[float, ...] = (44, 22, 16, 20, 8, 14, 12, 12, 11, 14, 24, 40)
# dropdown lists, one column each, to the right of the catalogue
LIST_FIRST_COLUMN = len(FACT_HEADERS) + 3


def list_name(poste: Poste | str) -> str:
    """Named range of a poste's activity labels, e.g. ``Liste_transport``."""
    return f"Liste_{poste if isinstance(poste, str) else poste.id}"


LIST_DATA_SOURCES = "Liste_sources"
LIST_WORK_TYPES = "Liste_types"
LIST_PHASES = "Liste_phases"
NAME_TEMPLATE_VERSION = "CC_VERSION_MODELE"
# What the dropdown shows (accents included); model.DATA_SOURCE_ALIASES reads each back.
DATA_SOURCE_CHOICES: tuple[str, ...] = tuple(d.choice for d in DATA_SOURCES)
