"""Issues: every problem found in the user's data, with a stable code.

Validation is lazy and complete: the engine, the workbook reader and the validator collect
every issue into one list instead of stopping at the first. Each code has one severity and
one French message template, defined once in ``CODES``; ``docs/issue-codes.md`` is generated
from this table and a test checks it is up to date.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from carbonclap_xl.core.a1 import row_of
from carbonclap_xl.core.errors import did_you_mean
from carbonclap_xl.core.numbers import fr_general, fr_integer
from carbonclap_xl.core.text import QUOTE_MAX, VALUE_MAX, shorten


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


SEVERITY_FR = {Severity.ERROR: "erreur", Severity.WARNING: "avertissement", Severity.INFO: "info"}


class Code(StrEnum):
    # --- lines (engine)
    POSTE_UNKNOWN = "POSTE_UNKNOWN"
    ACTIVITY_MISSING = "ACTIVITY_MISSING"
    ACTIVITY_UNKNOWN = "ACTIVITY_UNKNOWN"
    ACTIVITY_WRONG_POSTE = "ACTIVITY_WRONG_POSTE"
    FACTOR_REF_UNKNOWN = "FACTOR_REF_UNKNOWN"
    FACTOR_ARCHIVED = "FACTOR_ARCHIVED"
    FACTOR_UNCERTAINTY_DEFAULT = "FACTOR_UNCERTAINTY_DEFAULT"
    NATURE_INFERRED = "NATURE_INFERRED"
    QUANTITY_MISSING = "QUANTITY_MISSING"
    QUANTITY_NOT_NUMBER = "QUANTITY_NOT_NUMBER"
    QUANTITY_TEXT = "QUANTITY_TEXT"
    QUANTITY_NEGATIVE = "QUANTITY_NEGATIVE"
    QUANTITY_ABSURD = "QUANTITY_ABSURD"
    QUANTITY_UNIT_CONFLICT = "QUANTITY_UNIT_CONFLICT"
    UNIT_UNKNOWN = "UNIT_UNKNOWN"
    UNIT_MISMATCH = "UNIT_MISMATCH"
    DATA_SOURCE_UNKNOWN = "DATA_SOURCE_UNKNOWN"
    COUNT_INVALID = "COUNT_INVALID"
    COUNT_PASSENGERS_MISSING = "COUNT_PASSENGERS_MISSING"
    MONEY_YEAR_MISMATCH = "MONEY_YEAR_MISMATCH"
    MONEY_FACTOR_UNDATED = "MONEY_FACTOR_UNDATED"
    CSV_EXTRA_FIELDS = "CSV_EXTRA_FIELDS"
    # --- workbook structure (reader)
    NOT_CARBONCLAP_WORKBOOK = "NOT_CARBONCLAP_WORKBOOK"
    TEMPLATE_VERSION = "TEMPLATE_VERSION"
    TEMPLATE_OLD = "TEMPLATE_OLD"
    SHEET_MISSING = "SHEET_MISSING"
    SHEET_NOT_READ = "SHEET_NOT_READ"
    HEADER_CHANGED = "HEADER_CHANGED"
    COLUMNS_MOVED = "COLUMNS_MOVED"
    NATURE_COLUMN_TAKEN = "NATURE_COLUMN_TAKEN"
    TEMPLATE_VERSION_MISMATCH = "TEMPLATE_VERSION_MISMATCH"
    SYNTHESE_CELLS_TAKEN = "SYNTHESE_CELLS_TAKEN"
    COLUMN_EXTRA = "COLUMN_EXTRA"
    CELL_MERGED = "CELL_MERGED"
    ROW_HIDDEN = "ROW_HIDDEN"
    FORMULA_IN_INPUT = "FORMULA_IN_INPUT"
    FORMULA_NO_VALUE = "FORMULA_NO_VALUE"
    ROWS_BEYOND_LIMIT = "ROWS_BEYOND_LIMIT"
    WORKBOOK_EMPTY = "WORKBOOK_EMPTY"
    # --- submission (validator)
    PRODUCTION_FIELD_MISSING = "PRODUCTION_FIELD_MISSING"
    PRODUCTION_FIELD_INVALID = "PRODUCTION_FIELD_INVALID"
    PHASE_EMPTY = "PHASE_EMPTY"
    PHASE_LINE_EMPTY = "PHASE_LINE_EMPTY"
    MATERIALITY_EMPTY = "MATERIALITY_EMPTY"
    INTENSITY_IMPLAUSIBLE = "INTENSITY_IMPLAUSIBLE"
    COMPUTED_STALE = "COMPUTED_STALE"
    FORMULA_FOREIGN = "FORMULA_FOREIGN"
    MACROS_FOUND = "MACROS_FOUND"
    EXTERNAL_LINK = "EXTERNAL_LINK"
    FORMULA_DDE = "FORMULA_DDE"


@dataclass(frozen=True)
class CodeInfo:
    severity: Severity
    title: str  # short French title, for the docs table
    template: str  # French message; str.format fields come from the issue's context


_CONTEXT_MAX = 400  # other fields of a message: ours, or short pieces of the user's text

E, W, N = Severity.ERROR, Severity.WARNING, Severity.INFO
CODES: dict[Code, CodeInfo] = {
    Code.POSTE_UNKNOWN: CodeInfo(E, "Poste inconnu",
        "Poste « {value} » inconnu ou vide : utilisez l'un de {choices}."),
    Code.ACTIVITY_MISSING: CodeInfo(E, "Quantité sans activité",
        "Une quantité est saisie sans activité : choisissez l'activité dans la liste."),
    Code.ACTIVITY_UNKNOWN: CodeInfo(E, "Activité inconnue",
        "Activité « {value} » inconnue{hint} : choisissez une activité de la liste ou citez un "
        "facteur « BE:<identifiant> »."),
    Code.ACTIVITY_WRONG_POSTE: CodeInfo(W, "Activité d'un autre poste",
        "L'activité « {value} » relève du poste {expected}, pas de celui-ci : déplacez la ligne "
        "sur la bonne feuille (elle est comptée ici en attendant)."),
    Code.FACTOR_REF_UNKNOWN: CodeInfo(E, "Facteur introuvable",
        "Le facteur « {value} » n'existe pas dans {edition}{hint} : vérifiez l'identifiant."),
    Code.FACTOR_ARCHIVED: CodeInfo(W, "Facteur archivé",
        "Le facteur « {value} » est archivé par sa source : préférez un facteur valide "
        "(il est utilisé en attendant)."),
    Code.FACTOR_UNCERTAINTY_DEFAULT: CodeInfo(N, "Incertitude du facteur non publiée",
        "La source du facteur « {value} » ne publie pas d'incertitude : {default} % est "
        "retenu par convention."),
    Code.NATURE_INFERRED: CodeInfo(N, "Nature déduite",
        "Le facteur « {value} » est cité directement : sa nature est déduite de sa catégorie "
        "({expected})."),
    Code.QUANTITY_MISSING: CodeInfo(W, "Activité sans quantité",
        "L'activité « {value} » n'a de quantité dans aucune phase : saisissez la quantité "
        "prévisionnelle ou définitive, ou supprimez la ligne."),
    Code.QUANTITY_NOT_NUMBER: CodeInfo(E, "Quantité non numérique",
        "La quantité « {value} » n'est pas un nombre : saisissez un nombre (ex. 1200,5)."),
    Code.QUANTITY_TEXT: CodeInfo(W, "Quantité saisie comme texte",
        "La quantité « {value} » est du texte, lue comme {expected} : saisissez un nombre."),
    Code.QUANTITY_NEGATIVE: CodeInfo(E, "Quantité négative",
        "La quantité {value} est négative : saisissez une quantité positive ou nulle."),
    Code.QUANTITY_ABSURD: CodeInfo(E, "Quantité invraisemblable",
        "La quantité {value} donne {expected} pour une seule ligne : vérifiez l'unité et les "
        "zéros."),
    Code.QUANTITY_UNIT_CONFLICT: CodeInfo(
        E,
        "Unité saisie deux fois",
        "La quantité « {value} » porte une unité différente de la colonne Unité ({expected}) : "
        "saisissez le nombre seul et l'unité dans sa colonne.",
    ),
    Code.UNIT_UNKNOWN: CodeInfo(E, "Unité inconnue",
        "Unité « {value} » inconnue{hint} : saisissez l'unité de l'activité ({expected})."),
    Code.UNIT_MISMATCH: CodeInfo(E, "Unité incompatible",
        "Unité « {value} » incompatible avec le facteur (par {expected}) : saisissez la "
        "quantité en {expected} ou dans une unité convertible."),
    Code.DATA_SOURCE_UNKNOWN: CodeInfo(W, "Source de la donnée inconnue",
        "Source de la donnée « {value} » inconnue : choisissez {choices} (« estimation » "
        "retenue en attendant)."),
    Code.COUNT_INVALID: CodeInfo(E, "Nombre invalide",
        "Le nombre « {value} » {problem} : saisissez le nombre de personnes, de véhicules ou de "
        "trajets (vide = 1) ; la ligne n'est pas comptée."),
    Code.COUNT_PASSENGERS_MISSING: CodeInfo(
        W,
        "Distance sans nombre de passagers",
        "Distance en « {value} » sans nombre de passagers alors que le facteur est par "
        "{expected} : {fix} ; "
        "si la distance est déjà le total de tous les passagers, saisissez 1 ou l'unité "
        "passager.km (comptée en attendant comme le total).",
    ),
    Code.MONEY_YEAR_MISMATCH: CodeInfo(
        E,
        "Euros d'une autre année",
        "Montant en « {value} » ({hint}) pour un facteur en euros de {expected} : aucun indice "
        "de prix n'est appliqué, la ligne n'est pas comptée ; saisissez le montant converti en "
        "euros de {expected} (unité « € ({expected}) »).",
    ),
    Code.MONEY_FACTOR_UNDATED: CodeInfo(
        E,
        "Ratio monétaire sans année",
        "Montant en « {value} » pour un facteur par « {expected} », en euros d'une année que "
        "sa source ne précise pas : aucun indice de prix ne peut être appliqué, la ligne n'est "
        "pas comptée ; choisissez un ratio en euros datés (keuro (2023) HT), par exemple une "
        "activité du catalogue.",
    ),
    Code.CSV_EXTRA_FIELDS: CodeInfo(
        E,
        "Champs en trop (CSV)",
        "Ligne {value} : {expected} champs pour {choices} colonnes ; un séparateur « {hint} » "
        "dans un texte crée un champ de trop : mettez le commentaire entre guillemets "
        "(\"Cantine{hint} jour 3\") ; la ligne n'est pas comptée.",
    ),
    Code.NOT_CARBONCLAP_WORKBOOK: CodeInfo(E, "Classeur non reconnu",
        "Ce classeur n'est pas un classeur Carbon'Clap XL ({value}) : partez du modèle "
        "« carbonclap-xl new »."),
    Code.TEMPLATE_VERSION: CodeInfo(E, "Version du modèle",
        "Version du modèle « {value} » non prise en charge (attendue : {expected}) : recopiez "
        "vos lignes dans un modèle à jour."),
    Code.TEMPLATE_OLD: CodeInfo(N, "Modèle d'une version antérieure",
        "Modèle {value}, lu et calculé tel quel ; « carbonclap-xl upgrade » le passe en "
        "{expected} (colonnes Nombre et Source de la donnée (définitif)) en gardant vos "
        "saisies."),
    Code.SHEET_MISSING: CodeInfo(E, "Feuille absente",
        "La feuille « {value} » est absente ou renommée : rétablissez-la depuis le modèle."),
    Code.SHEET_NOT_READ: CodeInfo(
        W,
        "Feuille de lignes non lue",
        "La feuille « {value} » ressemble à une feuille de poste mais n'en est pas une : ses "
        "lignes ne sont pas comptées ; déplacez-les dans la feuille du poste (lignes sans limite "
        "de nombre).",
    ),
    Code.HEADER_CHANGED: CodeInfo(
        E,
        "En-têtes modifiés",
        "En-têtes de colonnes modifiés ({problem}) : {fix}, puis relancez « Recalculer » ; "
        "{lines}.",
    ),
    Code.COLUMNS_MOVED: CodeInfo(
        W,
        "Colonnes déplacées",
        "Colonnes lues par leur en-tête ({problem}) : {lines}, mais les colonnes calculées de "
        "la feuille ne sont plus écrites (ni la Synthèse en formules) tant qu'elles ne sont pas "
        "à leur place ; {fix}, puis relancez « Recalculer ».",
    ),
    Code.TEMPLATE_VERSION_MISMATCH: CodeInfo(W, "Version du modèle à corriger",
        "La cellule indique le modèle {value} mais les feuilles de poste ont les colonnes du "
        "modèle {expected} : le classeur est lu comme un modèle {expected} ; remettez "
        "« {expected} » dans cette cellule."),
    Code.NATURE_COLUMN_TAKEN: CodeInfo(W, "Colonne Nature occupée",
        "La colonne {value}, juste après le tableau, contient vos propres données : elle est "
        "conservée et le calcul n'y écrit pas la nature des lignes ; la Synthèse par nature "
        "est donc écrite en valeurs, sans formules. Pour des totaux vivants, déplacez vos "
        "données dans une autre colonne."),
    Code.SYNTHESE_CELLS_TAKEN: CodeInfo(W, "Cellules de la Synthèse occupées",
        "Les cellules {value} de la Synthèse contiennent vos propres données : elles sont "
        "conservées et le calcul n'y écrit pas {expected}. Déplacez-les pour les voir."),
    Code.COLUMN_EXTRA: CodeInfo(N, "Colonne ajoutée",
        "La colonne « {value} » ne fait pas partie du modèle : elle est conservée mais ignorée."),
    Code.CELL_MERGED: CodeInfo(W, "Cellules fusionnées",
        "Les cellules {value} sont fusionnées dans le tableau : défusionnez-les, seule la "
        "première cellule est lue."),
    Code.ROW_HIDDEN: CodeInfo(N, "Ligne masquée",
        "La ligne {value} est masquée mais elle est comptée : affichez-la pour la vérifier."),
    Code.FORMULA_IN_INPUT: CodeInfo(W, "Formule dans une saisie",
        "La cellule contient une formule ({value}) : sa dernière valeur calculée est lue sans "
        "pouvoir être vérifiée ; saisissez la valeur elle-même."),
    Code.FORMULA_NO_VALUE: CodeInfo(
        E,
        "Formule sans valeur",
        "La cellule contient une formule ({value}) sans valeur utilisable (vide ou en erreur) : "
        "corrigez la formule ou saisissez la valeur ; la ligne n'est pas comptée.",
    ),
    Code.ROWS_BEYOND_LIMIT: CodeInfo(
        E,
        "Lignes au-delà de la limite",
        "Des cellules sont remplies au-delà de la ligne {expected} ({value}) : elles ne sont pas "
        "lues ; regroupez les lignes plus haut.",
    ),
    Code.WORKBOOK_EMPTY: CodeInfo(
        E,
        "Aucune ligne",
        "Aucune ligne d'activité n'est saisie : remplissez les feuilles de postes (Bureaux, Lieux, "
        "Décors, HMC, Transports, Régie, Technique, Postprod).",
    ),
    Code.PRODUCTION_FIELD_MISSING: CodeInfo(E, "Donnée de production manquante",
        "« {expected} » n'est pas renseigné : le CNC l'exige pour le bilan {phase}."),
    Code.PRODUCTION_FIELD_INVALID: CodeInfo(E, "Donnée de production invalide",
        "« {expected} » vaut « {value} » : {hint}"),
    Code.PHASE_EMPTY: CodeInfo(E, "Phase soumise vide",
        "Aucune quantité {phase} alors que l'autre phase en a : remplissez la colonne de la "
        "phase soumise."),
    Code.PHASE_LINE_EMPTY: CodeInfo(
        W,
        "Ligne sans quantité pour la phase soumise",
        "La ligne a une quantité {expected} mais pas de quantité {phase} : saisissez-la (0 si "
        "l'activité n'a pas eu lieu).",
    ),
    Code.MATERIALITY_EMPTY: CodeInfo(W, "Poste significatif vide",
        "Aucune émission de nature « {value} » ({expected}) : un bilan complet en compte "
        "presque toujours ; vérifiez qu'aucune ligne n'a été oubliée."),
    Code.INTENSITY_IMPLAUSIBLE: CodeInfo(W, "Intensité invraisemblable",
        "{value} : hors de la plage observée ({expected}) ; vérifiez les quantités et les unités."),
    Code.COMPUTED_STALE: CodeInfo(W, "Cellule calculée périmée",
        "La valeur calculée {value} diffère du recalcul ({expected}) : le classeur a été "
        "modifié à la main ou n'a pas été recalculé ; relancez « Recalculer »."),
    Code.FORMULA_FOREIGN: CodeInfo(
        W,
        "Formule étrangère dans une cellule calculée",
        "La cellule calculée contient la formule « {value} », qui n'est pas celle de "
        "Carbon'Clap : le chiffre affiché peut ne pas être le nôtre (le contrôle recalcule "
        "sans en tenir compte) ; relancez « Recalculer » pour la rétablir.",
    ),
    Code.MACROS_FOUND: CodeInfo(N, "Macros présentes",
        "Le classeur contient des macros ({value}) : elles n'ont pas été exécutées."),
    Code.EXTERNAL_LINK: CodeInfo(W, "Lien externe",
        "Le classeur contient un lien vers un autre fichier ({value}) : il n'a pas été suivi ; "
        "remplacez-le par des valeurs."),
    Code.FORMULA_DDE: CodeInfo(E, "Formule dangereuse",
        "La formule « {value} » appelle un programme externe (DDE) : elle n'a pas été évaluée ; "
        "supprimez-la."),
}


@dataclass(frozen=True)
class Issue:
    code: Code
    severity: Severity
    message: str
    line: int | None = None  # 0-based index of the input line in the engine's table
    field: str | None = None  # the input column concerned (model.LINE_COLUMNS)
    value: str | None = None  # the value found, as text (shortened to VALUE_MAX characters)
    sheet: str | None = None  # where the user sees it: a sheet and cell of a workbook…
    cell: str | None = None
    row: int | None = None  # …and the row as the user sees it: the sheet's row, or the CSV
    # file's line (its header is line 1)
    count: int = 1  # > 1: several issues of this code folded into one (``group_issues``)
    cells: tuple[str, ...] = ()  # a folded issue: where its first cases are

    def to_dict(self) -> dict[str, Any]:
        doc = {"code": str(self.code), "severity": str(self.severity), "message": self.message,
               "line": self.line, "field": self.field, "value": self.value,
               "sheet": self.sheet, "cell": self.cell, "row": self.row, "count": self.count}
        if self.cells:
            doc["cells"] = list(self.cells)
        return doc

    def located(self, sheet: str | None, cell: str | None, row: int | None = None) -> Issue:
        """This issue at the place the user sees: a workbook cell, or a CSV line (no
        sheet, no cell, the row alone)."""
        return Issue(self.code, self.severity, self.message, self.line, self.field, self.value,
                     sheet, cell, row_of(cell) if row is None else row, self.count, self.cells)

    @property
    def where(self) -> str:
        """« Feuille!B7 », « ligne 7, colonne quantity_forecast », or ''."""
        if self.sheet:
            return f"{self.sheet}!{self.cell}" if self.cell else self.sheet
        if self.row is not None:
            return f"ligne {self.row}" + (f", colonne {self.field}" if self.field else "")
        return ""


def make_issue(code: Code, *, value: Any = None, line: int | None = None,
               field: str | None = None, sheet: str | None = None, cell: str | None = None,
               **context: Any) -> Issue:
    """An issue whose message is the code's template filled with ``value`` and ``context``."""
    info = CODES[code]
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)  # "12345", not "12345.0"
    text_value = "" if value is None else str(value)
    # A value comes from the user's file and may hold 32,767 characters: quoted shortened, so
    # that a message (and the Contrôles cell holding it) stays readable and within Excel's limit.
    # A number is quoted the French way (« 12,5 », not « 12.5 »); the issue's ``value`` keeps
    # it as data.
    fields = {"value": shorten(_quoted(value), QUOTE_MAX), "hint": "", "expected": "",
              "choices": "", "edition": "", "default": "", "phase": "", "problem": "",
              "fix": "", "lines": ""}
    fields.update({k: ("" if v is None else shorten(v, _CONTEXT_MAX) if isinstance(v, str)
                       else _quoted(v)) for k, v in context.items()})
    return Issue(code, info.severity, info.template.format(**fields), line, field,
                 None if value is None else shorten(text_value, VALUE_MAX), sheet, cell,
                 row_of(cell))


def _quoted(value: Any) -> str:
    """A value as a message quotes it: numbers the French way (``fr_general``)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return fr_general(value)
    return str(value)


def severity_counts(issues: list[Issue]) -> dict[str, int]:
    """``{"errors": n, "warnings": n, "infos": n}``, the counts every report shows (a folded
    issue counts for every case it holds)."""
    counts = {Severity.ERROR: 0, Severity.WARNING: 0, Severity.INFO: 0}
    for issue in issues:
        counts[issue.severity] += issue.count
    return {"errors": counts[Severity.ERROR], "warnings": counts[Severity.WARNING],
            "infos": counts[Severity.INFO]}


GROUP_AFTER = 100  # issues of one code listed one by one; the others are folded into one
GROUP_EXAMPLES = 5  # cells a folded issue names


def group_issues(issues: list[Issue], keep: int = GROUP_AFTER,
                 examples: int = GROUP_EXAMPLES,
                 locate: Callable[[Issue], Issue] | None = None) -> list[Issue]:
    """Issues as reports and Contrôles show them: the first ``keep`` of each code one by one,
    the others of that code folded into one issue (at the place of the first of them) that
    counts them and names their first cells, e.g. « Cellules fusionnées ×99 900 : Lieux!A105,
    Lieux!A106… (et 99 898 autres). Premier cas : … ». Apply it once, to the complete list
    (issues already folded pass through). Severity counts are unchanged. ``locate``, when
    given, places each issue shown or named (a CSV's line numbers), not the folded ones:
    10,000 warnings of one code cost 100 of them."""
    place = locate or _same
    shown: dict[Code, int] = {}
    folds: dict[Code, _Fold] = {}
    out: list[Issue | _Fold] = []
    for issue in issues:
        if issue.count > 1:
            out.append(place(issue))
            continue
        n = shown.get(issue.code, 0)
        if n < keep:
            shown[issue.code] = n + 1
            out.append(place(issue))
            continue
        fold = folds.get(issue.code)
        if fold is None:
            fold = folds[issue.code] = _Fold(place(issue))
            out.append(fold)
        else:
            fold.count += 1
            if len(fold.cells) < examples:
                fold.cells.append(_place(place(issue)))
    return [item.issue() if isinstance(item, _Fold) else item for item in out]


def _same(issue: Issue) -> Issue:
    return issue


def _place(issue: Issue) -> str:
    if issue.cell:
        return f"{issue.sheet}!{issue.cell}" if issue.sheet else issue.cell
    if issue.sheet:
        return issue.sheet
    if issue.row is not None:  # a CSV file's line
        return f"ligne {issue.row}"
    return f"ligne {issue.line + 1}" if issue.line is not None else "classeur"


class _Fold:
    """Issues of one code being folded into the first of them."""

    __slots__ = ("cells", "count", "first")

    def __init__(self, first: Issue) -> None:
        self.first = first
        self.count = 1
        self.cells = [_place(first)]

    def issue(self) -> Issue:
        first = self.first
        if self.count == 1:
            return first
        more = self.count - len(self.cells)
        tail = f"… (et {fr_integer(more)} autres)" if more > 0 else ""
        message = (f"{CODES[first.code].title} ×{fr_integer(self.count)} : "
                   f"{', '.join(self.cells)}{tail}. Premier cas : {first.message}")
        return replace(first, message=message, count=self.count, cells=tuple(self.cells))


def counts_text(issues: list[Issue]) -> str:
    c = severity_counts(issues)
    return (f"{fr_integer(c['errors'])} erreur(s), {fr_integer(c['warnings'])} "
            f"avertissement(s), {fr_integer(c['infos'])} info(s)")


def hint_from(suggestions: list[str]) -> str:
    """`` ; vouliez-vous dire « a » ou « b » ?``-style hint, empty when nothing is close."""
    hint = did_you_mean(suggestions)
    return f" ({hint})" if hint else ""


def codes_markdown() -> str:
    """The table of docs/issue-codes.md."""
    rows = ["| code | gravité | titre | message (modèle) |", "|---|---|---|---|"]
    for code, info in CODES.items():
        template = info.template.replace("|", "\\|")
        rows.append(f"| `{code}` | {SEVERITY_FR[info.severity]} | {info.title} | {template} |")
    return "\n".join(rows) + "\n"

