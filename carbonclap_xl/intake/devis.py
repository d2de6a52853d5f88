"""A production budget (CNC *devis*) read into monetary activity lines.

``analyse_budget(path)`` reads an .xlsx/.xlsm or .csv budget and decides, row by row, what
each one is (title, heading, subtotal, line) and where each line goes (a poste and an ADEME
monetary ratio, excluded with a reason, or not placed), following the reviewed mapping
(``devis_mapping.yaml``). Every decision is kept with its reason, so the command can print
what it did and write it to a report; nothing is guessed silently:

- the header row is the row that names a label column and at least one amount column (title
  blocks above it are skipped; a second header row below, or merged headers above, are
  joined to it);
- amount columns are found by their headers: the estimate (*devis, budget, prévisionnel*) and
  the final cost (*coût final, réalisé, définitif*); two equally likely columns for one phase
  stop the import and name them (``--forecast-column``/``--final-column`` decide);
- hidden columns are read for labels and codes but never picked as amount columns (a hidden
  amount column is most often an earlier version or a working column); hidden rows are read,
  since collapsed outline groups hide detail lines, not deleted ones;
- subtotal and total rows are never imported: by their label (*total, sous-total, report*),
  by the code hierarchy (a chapter or sub-chapter row with detail lines under it) and by
  arithmetic (a row equal to the sum of the lines of its block, its chapter or the whole
  budget); rows recognised by arithmetic alone are listed.

Lines are plain dicts with the CSV columns (``model.LINE_COLUMNS``); amounts are euros excluding
VAT of the budget's year (no deflation), unit ``€``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carbonclap_xl.core.errors import InputFileError, close_matches, did_you_mean
from carbonclap_xl.core.factors import FactorEdition, fold, load_edition
from carbonclap_xl.core.model import POSTE_BY_ID
from carbonclap_xl.intake.devis_mapping import (
    EXCLUDE,
    LINE,
    UNPLACED,
    Chapter,
    DevisMapping,
    Family,
    Placement,
    load_mapping,
    phrase_in,
    phrase_starts,
    resolve_poste,
    words_of,
)
from carbonclap_xl.xlsx.budget import SheetGrid

FORECAST, FINAL = "forecast", "final"
PHASES = (FORECAST, FINAL)
PHASE_FR = {FORECAST: "prévisionnel", FINAL: "définitif"}
PHASE_ABBR = {FORECAST: "prév.", FINAL: "déf."}
FILM, TV, FREE = "film", "tv", "libre"
LAYOUT_FR = {FILM: "devis détaillé CNC long métrage (chapitres 1 à 9, sous-chapitres à deux "
                   "chiffres)",
             TV: "grille CNC en 10 catégories (fiction TV, documentaire)",
             FREE: "sans structure reconnue (placement par libellés seulement)"}
MAX_CSV_BYTES = 20 * 2**20
HEADER_SEARCH_ROWS = 60
COMMENT_MAX = 240

# the kinds of row, and what became of a line
EMPTY, TITLE, HEADING, SUBTOTAL = "vide", "titre", "en-tête", "sous-total"
IMPORTED, EXCLUDED, NOT_PLACED, ZERO = "importée", "exclue", "non placée", "à zéro"
DUPLICATE, ALREADY = "doublon probable", "déjà importée"


# --------------------------------------------------------------------------- values


_BLANKS = {"", "-", "--", "---", "–", "—", "/", "x", "néant", "neant", "n/a", "na", "nc",
           "n.c.", "sans objet", "so", "s.o."}
_NOTHING_SPENT = {"offert", "offerts", "gratuit", "gracieux", "inclus", "compris", "pm",
                  "p.m.", "pour memoire", "pour mémoire", "mémoire", "memoire"}
_CURRENCY = re.compile(r"(?i)(?:€|eur(?:os?)?|\b(?:h\.?t\.?|t\.?t\.?c\.?)\b)")
_SCALE = re.compile(r"(?i)^(.*?)\s*(k|m)\s*€?$")
_SPACES = re.compile(r"[\s\u00a0\u202f'’]")


def parse_amount(value: Any) -> tuple[float | None, str | None]:
    """(amount, problem) of one budget cell.

    Numbers as typed in budgets: ``12 500,50 €``, ``12.500``, ``1,250.00``, ``(1 200)`` (a
    negative), ``15 k€``; blanks, dashes, ``néant``, ``offert``, ``PM`` are no amount. A single
    ``.`` or ``,`` followed by exactly three digits groups thousands (euros have at most two
    decimals). A percentage or a date is a problem, never an amount.
    """
    if value is None:
        return None, None
    if isinstance(value, bool):
        return None, "valeur VRAI/FAUX"
    if isinstance(value, int | float):
        number = float(value)
        return (number, None) if math.isfinite(number) else (None, "nombre invalide")
    if isinstance(value, dt.date | dt.datetime | dt.time | dt.timedelta):
        return None, f"date ({value})"
    text = str(value).strip()
    folded = text.lower()
    if folded in _BLANKS or folded in _NOTHING_SPENT:
        return None, None
    if "%" in text:
        return None, f"pourcentage « {text} »"
    negative = text.startswith("(") and text.endswith(")")
    body = text.strip("()").strip()
    body = _CURRENCY.sub("", body).strip()
    scale = 1.0
    m = _SCALE.match(body)
    if m and re.search(r"\d", m.group(1)):
        body, scale = m.group(1), 1e3 if m.group(2).lower() == "k" else 1e6
    body = _SPACES.sub("", body)
    if body.endswith("-") and body[:-1].replace(",", "").replace(".", "").isdigit():
        body, negative = body[:-1], True  # "1200-": accounting style
    if body.startswith(("-", "−")):
        body, negative = body[1:], not negative
    if body.startswith("+"):
        body = body[1:]
    if not re.fullmatch(r"\d[\d.,]*", body):
        return None, f"montant illisible « {text} »"
    marks = [c for c in body if c in ".,"]
    if marks:
        repeated = {c for c in marks if marks.count(c) > 1}
        for c in repeated:
            body = body.replace(c, "")
        single = [c for c in marks if c not in repeated]
        if single:
            decimal = single[-1]
            head, _, tail = body.rpartition(decimal)
            if len(single) == 1 and not repeated and len(tail) == 3:
                body = head + tail  # "12.500", "12,500": thousands
            else:
                body = head.replace(",", "").replace(".", "") + "." + tail
    try:
        number = float(body) * scale
    except ValueError:
        return None, f"montant illisible « {text} »"
    return (-number if negative else number), None


_CODE_CELL = re.compile(r"^\s*(\d{1,6}(?:\s*[.\-/]\s*\d{1,3}){0,3})\s*[.)\-–—:]?\s*$")
_CODE_LABEL = re.compile(r"^\s*(\d{1,5}(?:[.\-]\d{1,3}){0,3})(?:\s*[.)\-–—:]\s*|\s+)(?=\S)(.*)$")
_CHAPTER_WORD = re.compile(r"(?i)^\s*(?:chapitre|chap\.?|cat[ée]gorie|rubrique|poste)\s*"
                           r"(\d{1,2})\b\s*[.)\-–—:]?\s*(.*)$")


@dataclass(frozen=True)
class Code:
    """A budget line code: ``511``, ``5.1``, ``51-01``."""

    text: str
    parts: tuple[str, ...]  # digit groups as written: ("5", "1") for "5.1"

    @property
    def digits(self) -> str:
        return "".join(self.parts)

    @property
    def dotted(self) -> bool:
        return len(self.parts) > 1


def _code_from(value: Any) -> Code | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            return None
        value = str(int(value)) if float(value).is_integer() else repr(float(value))
    m = _CODE_CELL.match(str(value))
    if not m:
        return None
    parts = tuple(p for p in re.split(r"\s*[.\-/]\s*", m.group(1)) if p)
    return Code(m.group(1), parts)


def split_label_code(text: str) -> tuple[Code | None, str, bool]:
    """(code, rest, marked) of a label that may begin with a code: ``"511 - Location"``.
    ``marked`` tells whether a separator or an upper-case initial makes the code clear
    (``"2 camions"`` is a label, not line 2)."""
    m = _CODE_LABEL.match(text)
    if not m or not re.match(r"[^\W\d_]", m.group(2)):
        return None, text.strip(), False
    code = _code_from(m.group(1))
    sep = text[m.end(1):m.start(2)]
    marked = bool(re.search(r"[.)\-–—:]", sep)) or m.group(2)[:1].isupper() or \
        len(code.digits if code else "") >= 3
    return code, m.group(2).strip(), marked


# --------------------------------------------------------------------------- headers

_LABEL_WORDS = {"libelle": 3, "libelles": 3, "designation": 3, "designations": 3,
                "intitule": 3, "intitules": 3, "description": 2, "detail": 1, "details": 1,
                "poste": 1, "postes": 1, "rubrique": 1, "rubriques": 1, "nature": 1}
_CODE_WORDS = {"n", "no", "num", "numero", "code", "codes", "compte", "comptes", "cpte", "ref",
               "reference", "art", "article", "chap"}
_FORECAST_WORDS = {"devis", "budget", "budgete", "budgets", "previsionnel", "previsionnelle",
                   "previsionnels", "prevu", "prevus", "prevue", "estimation", "estime",
                   "estimatif", "initial", "initiale", "previsions", "prevision"}
_FINAL_WORDS = {"realise", "realises", "realisee", "reel", "reels", "reelle", "final", "finale",
                "finaux", "definitif", "definitive", "depense", "depenses", "constate",
                "cf", "actual"}
_STRONG_FINAL = {"realise", "realises", "realisee", "reel", "reels", "reelle", "depense",
                 "depenses", "constate", "actual"}
_GENERIC_WORDS = {"montant", "montants", "total", "totaux", "cout", "couts", "ht", "eur",
                  "euro", "euros", "somme", "keur", "prix", "valeur"}
_NOT_AMOUNT = {"quantite", "quantites", "qte", "qt", "nb", "nbre", "nombre", "unite", "unites",
               "u", "taux", "pu", "tarif", "tarifs", "jour", "jours", "j", "semaine", "semaines",
               "sem", "heure", "heures", "h", "mois", "pourcentage", "pct", "ecart", "ecarts",
               "variation", "difference", "diff", "tva", "dont", "france", "etranger", "note",
               "notes", "observation", "observations", "commentaire", "commentaires",
               "remarque", "remarques", "fournisseur", "fournisseurs", "date", "cumul",
               "unitaire", "coef", "coefficient", "part"}
_NOTE_WORDS = {"note", "notes", "observation", "observations", "commentaire", "commentaires",
               "remarque", "remarques", "precisions", "fournisseur", "fournisseurs"}


@dataclass
class Column:
    index: int  # 1-based
    header: str
    hidden: bool

    @property
    def letter(self) -> str:
        out, n = "", self.index
        while n:
            n, rem = divmod(n - 1, 26)
            out = chr(65 + rem) + out
        return out

    def __str__(self) -> str:
        return f"{self.letter} « {self.header} »" if self.header else self.letter


def _tokens(value: Any) -> tuple[str, ...]:
    return words_of(str(value)) if isinstance(value, str) else ()


def _header_score(cells: list[Any]) -> tuple[int, int, int]:
    """(score, label hits, amount hits) of a candidate header row."""
    label = amount = code = other = numbers = 0
    for v in cells:
        if isinstance(v, int | float) and not isinstance(v, bool):
            numbers += 1
            continue
        toks = set(_tokens(v))
        if not toks:
            continue
        if toks & set(_LABEL_WORDS):
            label += 1
        elif toks & _CODE_WORDS:
            code += 1
        elif toks & (_FORECAST_WORDS | _FINAL_WORDS | _GENERIC_WORDS) or "€" in str(v):
            amount += 1
        elif toks & _NOT_AMOUNT:
            other += 1
    if numbers > 1 or amount == 0 or (label == 0 and code == 0):
        return 0, label, amount
    return label + code + amount + other, label, amount


# --------------------------------------------------------------------------- result


@dataclass
class BudgetRow:
    row: int  # as the spreadsheet numbers it (CSV: the line number)
    label: str
    code: Code | None
    amounts: dict[str, float | None]
    note: str = ""
    hidden: bool = False
    problems: list[str] = field(default_factory=list)
    kind: str = ""  # EMPTY, TITLE, HEADING, SUBTOTAL or LINE
    chapter: Chapter | None = None
    sub: str | None = None
    decision: str = ""  # IMPORTED, EXCLUDED, NOT_PLACED, ZERO, DUPLICATE, ALREADY, or = kind
    poste: str | None = None
    activity: str | None = None
    rule: str = ""  # what decided
    why: str = ""
    by_arithmetic: bool = False
    same_spending: Family | None = None  # the placement's narrower double-counting family

    @property
    def code_text(self) -> str:
        return self.code.text if self.code else ""

    @property
    def tag(self) -> str:
        """What the workbook comment starts with: ``[devis 631]``; a line without code is
        tagged by its chapter (``[devis ch. 6]``), which survives rows inserted above it."""
        if self.code:
            return f"[devis {self.code.text}]"
        if self.chapter is not None:
            number = self.chapter.film or self.chapter.tv
            return f"[devis ch. {number}]" if number else f"[devis {self.chapter.key}]"
        return "[devis]"

    @property
    def shown(self) -> str:
        """``ligne 28 « 651 Hôtels équipe »``, as messages name a budget row."""
        text = " ".join(t for t in (self.code_text, self.label) if t)
        return f"ligne {self.row} « {text} »" if text else f"ligne {self.row} (sans libellé)"

    def amount_text(self) -> str:
        return " ; ".join(f"{PHASE_ABBR[p]} {euros(v)}" for p, v in self.amounts.items()
                          if v is not None)


LINE_KIND = "ligne"


def euros(value: float) -> str:
    text = f"{value:,.2f}".replace(",", "\u202f").replace(".", ",")
    return (text[:-3] if text.endswith(",00") else text) + " €"


@dataclass
class BudgetAnalysis:
    path: Path
    sheet: str
    sheets_skipped: list[str]  # other sheets, with why
    header_row: int
    columns: dict[str, Column | None]  # code, label, forecast, final
    notes_columns: list[Column]
    hidden_columns: list[Column]  # hidden, with a header, not used as amounts
    ignored_columns: list[Column]  # other columns with a header (quantities, rates…)
    layout: str
    layout_forced: bool
    ttc_rate: float | None
    scale: dict[str, float]  # phase -> multiplier to euros (1000 for a k€ column)
    rows: list[BudgetRow]
    messages: list[str]  # notes for the user (subtotal mismatches, truncation…)
    grand_total: dict[str, float | None] | None
    mapping_sources: tuple[str, ...]

    @property
    def phases(self) -> list[str]:
        return [p for p in PHASES if self.columns.get(p) is not None]

    def of(self, *decisions: str) -> list[BudgetRow]:
        return [r for r in self.rows if r.decision in decisions]


# --------------------------------------------------------------------------- reading


def read_csv_grid(path: Path) -> SheetGrid:
    """A CSV budget as a grid of text cells: UTF-8 (BOM or not) or cp1252, separated by
    ``;``, ``,`` or tabs (the one that splits the lines most regularly)."""
    where = str(path)
    try:
        if path.stat().st_size > MAX_CSV_BYTES:
            raise InputFileError(where, "fichier trop volumineux pour un devis (plus de 20 Mo)")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(where, "fichier introuvable") from None
    except IsADirectoryError:
        raise InputFileError(where, "c'est un dossier, pas un fichier") from None
    except PermissionError:
        raise InputFileError(where, "lecture interdite (droits du fichier)") from None
    if raw.startswith(b"PK\x03\x04"):
        raise InputFileError(where, "c'est un classeur, pas un CSV : renommez-le en .xlsx")
    if b"\x00" in raw[:4096]:
        raise InputFileError(where, "fichier binaire, pas un CSV texte")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    sample = text.splitlines()[:80]
    best, best_score = ";", -1.0
    for delimiter in (";", "\t", ","):
        counts = [len(r) for r in csv.reader(sample, delimiter=delimiter) if any(
            c.strip() for c in r)]
        if not counts:
            continue
        mode, freq = Counter(counts).most_common(1)[0]
        score = (freq / len(counts)) * (1 if mode > 1 else 0) + min(mode, 12) / 100
        if score > best_score:
            best, best_score = delimiter, score
    rows = [[c.strip() or None for c in r]
            for r in csv.reader(io.StringIO(text, newline=""), delimiter=best)]
    return SheetGrid(path.stem, rows)


def read_budget_sheets(path: Path) -> list[SheetGrid]:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return [read_csv_grid(path)]
    if suffix in (".xlsx", ".xlsm"):
        from carbonclap_xl.xlsx.budget import read_sheets

        if not path.is_file():
            raise InputFileError(str(path), "fichier introuvable")
        return read_sheets(path)
    raise InputFileError(str(path), "format non pris en charge : enregistrez le devis en .xlsx "
                                    "ou exportez-le en .csv (séparateur ; ou ,)")


# --------------------------------------------------------------------------- analysis


@dataclass
class Options:
    sheet: str | None = None
    header_row: int | None = None
    forecast_column: str | None = None  # letter, header text, or "aucune"
    final_column: str | None = None
    layout: str | None = None  # FILM, TV or None (detected)
    ttc_rate: float | None = None  # % of VAT included in TTC columns


_NONE_CHOICES = {"aucune", "aucun", "none", "non", "-"}


class _Sheet:
    """One sheet under analysis."""

    def __init__(self, grid: SheetGrid, options: Options) -> None:
        self.grid = grid
        self.options = options
        self.width = grid.width
        self.header_row = 0
        self.body_start = 0
        self.headers: dict[int, str] = {}

    # ---- header
    def find_header(self) -> bool:
        grid, forced = self.grid, self.options.header_row
        if forced:
            if forced > len(grid.rows):
                raise InputFileError(grid.name, f"--header-row {forced} : la feuille n'a que "
                                                f"{len(grid.rows)} lignes")
            self.header_row = forced
        else:
            best = (0, 0)
            for r in range(1, min(HEADER_SEARCH_ROWS, len(grid.rows)) + 1):
                score = _header_score(grid.rows[r - 1])[0]
                if score > best[0]:
                    best = (score, r)
            if not best[0]:
                return False
            self.header_row = best[1]
        self.body_start = self.header_row + 1
        self._header_texts()
        return True

    def _merge_at(self, row: int, col: int) -> tuple[int, int, int, int] | None:
        return next((m for m in self.grid.merged
                     if m[0] <= row <= m[2] and m[1] <= col <= m[3]), None)

    def _text_at(self, row: int, col: int, *, wide_ok: bool) -> str:
        value = self.grid.value(row, col)
        merge = self._merge_at(row, col)
        if value is None and merge is not None:
            span = merge[3] - merge[1] + 1
            if wide_ok or span < max(3, 0.6 * self.width):
                value = self.grid.value(merge[0], merge[1])
        return str(value).strip() if isinstance(value, str) else ""

    def _header_texts(self) -> None:
        h = self.header_row
        below = self.grid.rows[h] if h < len(self.grid.rows) else []
        sub_score = _header_score(below)
        numbers = sum(isinstance(v, int | float) and not isinstance(v, bool) for v in below)
        texts = sum(isinstance(v, str) and bool(_tokens(v)) for v in below)
        second = numbers == 0 and texts >= 2 and (sub_score[2] > 0 or sum(
            bool(set(_tokens(v)) & (_NOT_AMOUNT | _GENERIC_WORDS)) for v in below) >= 2)
        for col in range(1, self.width + 1):
            parts = []
            above = self._text_at(h - 1, col, wide_ok=False) if h > 1 and self._merge_at(
                h - 1, col) else ""
            if above:
                parts.append(above)
            parts.append(self._text_at(h, col, wide_ok=True))
            if second:
                parts.append(self._text_at(h + 1, col, wide_ok=True))
            self.headers[col] = " ".join(p for p in parts if p)
        if second:
            self.body_start = h + 2

    # ---- columns
    def body(self) -> range:
        return range(self.body_start, len(self.grid.rows) + 1)

    def numeric_count(self, col: int) -> int:
        n = 0
        for r in self.body():
            v = self.grid.value(r, col)
            if v is not None and parse_amount(v)[0] is not None:
                n += 1
        return n

    def text_count(self, col: int) -> int:
        return sum(isinstance(self.grid.value(r, col), str) and parse_amount(
            self.grid.value(r, col))[0] is None for r in self.body())

    def column(self, col: int) -> Column:
        return Column(col, self.headers.get(col, ""), col in self.grid.hidden_columns)


@dataclass
class _Choice:
    column: Column
    numbers: int
    ttc: bool
    scale: float


def _choose_by_option(sheet: _Sheet, text: str, what: str) -> Column | None:
    folded = fold(text)
    if folded in _NONE_CHOICES:
        return None
    if re.fullmatch(r"[A-Za-z]{1,3}", text.strip()):
        index = 0
        for ch in text.strip().upper():
            index = index * 26 + ord(ch) - 64
        return sheet.column(index)
    hits = [c for c, h in sheet.headers.items() if folded and folded in fold(h)]
    if len(hits) == 1:
        return sheet.column(hits[0])
    known = [h for h in sheet.headers.values() if h]
    if not hits:
        hint = did_you_mean(close_matches(text, known))
        raise InputFileError(sheet.grid.name, f"{what} « {text} » : aucune colonne de ce nom"
                             + (f" ; {hint}" if hint else "")
                             + " ; donnez la lettre de la colonne (ex. F)")
    raise InputFileError(sheet.grid.name, f"{what} « {text} » désigne plusieurs colonnes ("
                         + ", ".join(str(sheet.column(c)) for c in hits)
                         + ") : donnez la lettre de la colonne")


def _header_kind(header: str) -> str | None:
    """FORECAST, FINAL, "generic" or None (not an amount column) from a column header."""
    toks = set(words_of(header))
    if not toks:
        return None
    if toks & _NOT_AMOUNT or "%" in header:
        return None
    forecast, final = toks & _FORECAST_WORDS, toks & _FINAL_WORDS
    if toks & _STRONG_FINAL:
        return FINAL
    if final and not forecast:
        return FINAL
    if forecast:
        return FORECAST
    if toks & _GENERIC_WORDS or "€" in header:
        return "generic"
    return None


def _scale(header: str) -> float:
    folded = fold(header)
    if re.search(r"k\s*€|\bkeur|\bk\s*eur|milliers", header.lower()) or "keur" in folded:
        return 1e3
    return 1.0


def _pick(sheet: _Sheet, candidates: list[_Choice], phase: str) -> _Choice | None:
    if not candidates:
        return None
    plain = [c for c in candidates if not c.ttc] or candidates
    plain.sort(key=lambda c: -c.numbers)
    top = plain[0]
    if len(plain) == 1 or top.numbers > 1.25 * plain[1].numbers:
        return top
    same = all(sheet.grid.value(r, top.column.index) == sheet.grid.value(r, other.column.index)
               for other in plain[1:] for r in sheet.body())
    if same:
        return top if top.column.index < plain[1].column.index else plain[1]
    option = "--forecast-column" if phase == FORECAST else "--final-column"
    raise InputFileError(
        sheet.grid.name,
        f"plusieurs colonnes peuvent porter le montant {PHASE_FR[phase]} : "
        + ", ".join(str(c.column) for c in plain[:4])
        + f" ; choisissez-en une avec {option} LETTRE (ou {option} aucune)")


def _amount_columns(sheet: _Sheet, reserved: set[int], options: Options
                    ) -> tuple[dict[str, _Choice | None], list[Column]]:
    """The forecast and final amount columns, and the hidden columns not used."""
    found: dict[str, list[_Choice]] = {FORECAST: [], FINAL: [], "generic": []}
    hidden_skipped: list[Column] = []
    for col in range(1, sheet.width + 1):
        if col in reserved:
            continue
        header = sheet.headers.get(col, "")
        kind = _header_kind(header)
        if kind is None:
            continue
        column = sheet.column(col)
        numbers = sheet.numeric_count(col)
        if column.hidden:
            hidden_skipped.append(column)
            continue
        if numbers == 0:
            continue
        found[kind].append(_Choice(column, numbers, "ttc" in words_of(header), _scale(header)))
    chosen: dict[str, _Choice | None] = {}
    for phase, option in ((FORECAST, options.forecast_column), (FINAL, options.final_column)):
        if option:
            column = _choose_by_option(sheet, option, f"--{phase}-column")
            chosen[phase] = None if column is None else _Choice(
                column, sheet.numeric_count(column.index), "ttc" in words_of(column.header),
                _scale(column.header))
            if column is not None:
                hidden_skipped = [c for c in hidden_skipped if c.index != column.index]
    if FORECAST not in chosen:
        chosen[FORECAST] = _pick(sheet, found[FORECAST], FORECAST) or _pick(
            sheet, [c for c in found["generic"] if not (
                chosen.get(FINAL) and c.column.index == chosen[FINAL].column.index)], FORECAST)
    if FINAL not in chosen:
        chosen[FINAL] = _pick(sheet, [c for c in found[FINAL] if not (
            chosen[FORECAST] and c.column.index == chosen[FORECAST].column.index)], FINAL)
    return chosen, hidden_skipped


def _label_and_code_columns(sheet: _Sheet, amount_cols: set[int]
                            ) -> tuple[Column | None, Column | None, list[Column]]:
    label = code = None
    notes: list[Column] = []
    best_label = 0
    for col in range(1, sheet.width + 1):
        toks = set(words_of(sheet.headers.get(col, "")))
        if col in amount_cols or not toks:
            continue
        if toks & _NOTE_WORDS:
            notes.append(sheet.column(col))
            continue
        weight = max((_LABEL_WORDS.get(t, 0) for t in toks), default=0)
        if weight > best_label:
            best_label, label = weight, sheet.column(col)
        elif code is None and toks & _CODE_WORDS and not toks & _NOT_AMOUNT:
            code = sheet.column(col)
    taken = amount_cols | {c.index for c in notes} | ({code.index} if code else set())
    if label is None:  # the column with the most text
        counts = [(sheet.text_count(c), c) for c in range(1, sheet.width + 1) if c not in taken]
        counts = [x for x in counts if x[0] > 0]
        if counts:
            label = sheet.column(max(counts)[1])
    if code is None and label is not None:  # a column of codes left of the labels
        for col in range(1, label.index):
            if col in taken:
                continue
            values = [sheet.grid.value(r, col) for r in sheet.body()]
            filled = [v for v in values if v is not None]
            codes = [v for v in filled if _code_from(v) is not None]
            if len(filled) >= 3 and len(codes) >= 0.5 * len(filled):
                code = sheet.column(col)
                break
    return label, code, notes


def _is_total_label(tokens: tuple[str, ...]) -> bool:
    if not tokens:
        return False
    first = tokens[0]
    return first in {"total", "totaux", "stotal", "recapitulatif", "recap", "report", "cumul"} \
        or (first in {"sous", "s", "ss"} and len(tokens) > 1 and tokens[1] == "total") \
        or (first == "a" and len(tokens) > 1 and tokens[1] == "reporter")


def _is_grand_total(tokens: tuple[str, ...]) -> bool:
    return _is_total_label(tokens) and bool(set(tokens) & {
        "general", "generale", "devis", "budget", "ht", "ttc", "film", "production", "global",
        "globale"}) and not ({"chapitre", "chap", "sous", "s", "ss"} & set(tokens[:2]))


@dataclass
class _Columns:
    """The roles the header gives the columns of one sheet."""

    amounts: dict[str, _Choice | None]
    label: Column
    code: Column | None
    notes: list[Column]
    hidden: list[Column]  # hidden columns not used as amounts
    ignored: list[Column]  # other headed columns (quantities, rates…)


@dataclass
class _SheetResult:
    grid: SheetGrid
    header_row: int
    columns: _Columns
    rows: list[BudgetRow]
    layout: str
    layout_forced: bool
    messages: list[str]

    @property
    def line_count(self) -> int:
        return sum(r.kind == LINE_KIND for r in self.rows)


class _Reader:
    """Reads the rows of one sheet under its header."""

    def __init__(self, grid: SheetGrid, options: Options) -> None:
        self.sheet = _Sheet(grid, options)
        self.options = options

    def read(self) -> tuple[_Columns, list[BudgetRow]]:
        sheet, grid = self.sheet, self.sheet.grid
        if not sheet.find_header():
            raise InputFileError(grid.name, "ligne d'en-tête introuvable : aucune ligne des "
                                 f"{HEADER_SEARCH_ROWS} premières ne nomme à la fois un libellé "
                                 "et un montant ; indiquez-la avec --header-row N")
        amounts, hidden_skipped = _amount_columns(sheet, set(), self.options)
        amount_cols = {c.column.index for c in amounts.values() if c}
        label, code, notes = _label_and_code_columns(sheet, amount_cols)
        if not amount_cols:
            raise InputFileError(grid.name, f"ligne d'en-tête {sheet.header_row} : aucune "
                                 "colonne de montant reconnue (devis, budget, montant, coût "
                                 "final, réalisé…) ; choisissez-la avec --forecast-column LETTRE")
        if label is None:
            raise InputFileError(grid.name, "aucune colonne de libellés trouvée sous l'en-tête "
                                            f"(ligne {sheet.header_row})")
        used = amount_cols | {label.index} | ({code.index} if code else set()) | {
            c.index for c in notes}
        ignored = [sheet.column(c) for c in range(1, sheet.width + 1)
                   if c not in used and sheet.headers.get(c) and c not in {
                       h.index for h in hidden_skipped}]
        rows = [self._row(r, amounts, label, code, notes) for r in sheet.body()]
        return _Columns(amounts, label, code, notes, hidden_skipped, ignored), rows

    def _row(self, r: int, amounts: dict[str, _Choice | None], label: Column,
             code_col: Column | None, notes: list[Column]) -> BudgetRow:
        grid = self.sheet.grid
        text = grid.value(r, label.index)
        label_text = "" if text is None else (str(text).strip() if not isinstance(
            text, float) else f"{text:g}")
        if not label_text:  # a label typed in a neighbouring column (merged, shifted)
            skip = {c.column.index for c in amounts.values() if c} | {
                n.index for n in notes} | ({code_col.index} if code_col else set())
            for c in range(1, self.sheet.width + 1):
                v = grid.value(r, c)
                if c not in skip and isinstance(v, str) and v.strip() and parse_amount(
                        v)[0] is None and _code_from(v) is None:
                    label_text = v.strip()
                    break
        row = BudgetRow(r, label_text, None, {}, hidden=r in grid.hidden_rows)
        if code_col is not None:
            raw = grid.value(r, code_col.index)
            row.code = _code_from(raw)
            if row.code is None and isinstance(raw, str) and raw.strip():
                if not label_text:
                    row.label = raw.strip()
                code, rest, _ = split_label_code(raw)
                if code is not None:  # "5 - DÉCORS" typed in the code column
                    row.code, row.label = code, row.label if label_text else rest
        for phase in PHASES:
            choice = amounts.get(phase)
            if choice is None:
                continue
            value, problem = parse_amount(grid.value(r, choice.column.index))
            if problem:
                row.problems.append(f"{PHASE_FR[phase]} : {problem}")
            if value is not None:
                value *= choice.scale
                if choice.ttc and self.options.ttc_rate is not None:
                    value /= 1 + self.options.ttc_rate / 100
            row.amounts[phase] = value
        row.note = " ; ".join(str(grid.value(r, n.index)).strip() for n in notes
                              if grid.value(r, n.index) not in (None, ""))
        return row


def _tolerance(amount: float) -> float:
    return max(1.0, abs(amount) * 1e-5)


def _key_amount(row: BudgetRow) -> tuple[str, float] | None:
    for phase in PHASES:
        v = row.amounts.get(phase)
        if v:
            return phase, v
    return None


def _sum(rows: list[BudgetRow], phase: str) -> float:
    return sum(r.amounts.get(phase) or 0.0 for r in rows)


def _label_codes(rows: list[BudgetRow]) -> dict[int, tuple[Code, str, bool]]:
    """Codes written at the start of labels (no code column): row index -> (code, rest,
    marked). Applied only where the context agrees (see ``_structure``)."""
    out: dict[int, tuple[Code, str, bool]] = {}
    for i, row in enumerate(rows):
        chap = _CHAPTER_WORD.match(row.label)
        if chap:
            out[i] = (Code(chap.group(1), (chap.group(1),)), chap.group(2).strip() or row.label,
                      True)
            continue
        code, rest, marked = split_label_code(row.label)
        if code is not None:
            out[i] = (code, rest, marked)
    return out


def _heading_like(row: BudgetRow, tokens: tuple[str, ...], chapter: Chapter) -> bool:
    """A code-less row naming ``chapter`` is its heading when it carries no amount, or when
    it reads like one (capitals, or the chapter's words make most of the label)."""
    if not any(row.amounts.values()):
        return True
    letters = [c for c in row.label if c.isalpha()]
    if letters and all(c.isupper() for c in letters):
        return True
    longest = max((len(p) for p in chapter.match if phrase_starts(p, tokens)), default=0)
    return longest >= 0.6 * len(tokens)


def _detect_layout(rows: list[BudgetRow], mapping: DevisMapping) -> str:
    long_codes = sum(1 for r in rows if r.code and not r.code.dotted and len(r.code.digits) >= 3)
    film_dotted = sum(1 for r in rows if r.code and r.code.dotted and (
        len(r.code.parts[0]) == 2 or len(r.code.parts) >= 3))
    ten = any(r.code and r.code.parts[0] == "10" for r in rows)
    numbered = sum(1 for r in rows if r.code)
    headings = 0
    for r in rows:
        named = None if r.code else mapping.chapter_by_heading(words_of(r.label))
        if named is not None and _heading_like(r, words_of(r.label), named):
            headings += 1
    chapters_seen: set[str] = set()
    under_chapter = 0  # two-digit codes under their one-digit chapter: film sub-chapters
    for r in rows:
        if r.code is None or r.code.dotted:
            continue
        if len(r.code.digits) == 1:
            chapters_seen.add(r.code.digits)
        elif len(r.code.digits) == 2 and r.code.digits[0] in chapters_seen:
            under_chapter += 1
    if (long_codes + film_dotted >= 2 or under_chapter >= 2) and not ten:
        return FILM
    if numbered or headings >= 2:
        return TV
    return FREE


def _structure(rows: list[BudgetRow], mapping: DevisMapping, layout: str | None,
               has_code_column: bool) -> tuple[str, bool]:
    """Decide codes written in labels, the layout, and each row's chapter and sub-chapter."""
    candidates = {} if has_code_column else _label_codes(rows)
    original = {i: rows[i].label for i in candidates}
    for i, (code, rest, marked) in candidates.items():  # for the layout: clear codes
        if marked:
            rows[i].code, rows[i].label = code, rest
    forced = layout is not None
    layout = layout or _detect_layout(rows, mapping)
    for i, label in original.items():  # decided row by row below, against the context
        rows[i].code, rows[i].label = None, label
    chapter: Chapter | None = None
    sub: str | None = None
    for i, row in enumerate(rows):
        if i in candidates:
            code, rest, marked = candidates[i]
            number = _chapter_of(code, layout)[0]
            current = None if chapter is None else (
                chapter.film if layout == FILM else chapter.tv)
            heading = not any(row.amounts.values())
            if (marked and (current is None or number == current or (
                    heading and number is not None and current is not None
                    and number > current))):
                row.code, row.label = code, rest
        tokens = words_of(row.label)
        if row.code is not None:
            number, sub_code = _chapter_of(row.code, layout)
            found = None if number is None else mapping.chapter_by_number(
                FILM if layout == FILM else TV, number)
            chapter, sub = found, sub_code
        elif tokens and not _is_total_label(tokens):
            named = mapping.chapter_by_heading(tokens, layout)
            if named is not None and _heading_like(row, tokens, named) and (
                    chapter is None or named.key != chapter.key or not any(
                        row.amounts.values())):
                chapter, sub = named, None
                row.kind = HEADING
        row.chapter, row.sub = chapter, sub
    return layout, forced


def _chapter_of(code: Code, layout: str) -> tuple[int | None, str | None]:
    """(chapter or category number, sub-chapter code) of a line code in ``layout``."""
    parts = code.parts
    if layout == FILM:
        if len(parts[0]) == 1:
            digits = parts[0] + (parts[1][:1] if len(parts) > 1 and parts[1] else "")
        else:
            digits = code.digits
        return int(digits[0]), digits[:2] if len(digits) >= 2 else None
    first = parts[0]
    if code.dotted or len(first) <= 2:
        number = int(first) if int(first) <= 10 else int(first[0])
        return number, None
    return int(first[0]), None


def _level(row: BudgetRow, layout: str) -> int:
    """1 chapter, 2 sub-chapter, 3 line; what a row's code makes of it."""
    if row.code is None:
        return 3
    if layout == FILM:
        n = len(row.code.digits) if not (row.code.dotted and len(row.code.parts[0]) == 1) \
            else len(row.code.parts)
        return min(n, 3)
    return 1 if not row.code.dotted and len(row.code.parts[0]) <= 2 else 3


def _classify(rows: list[BudgetRow], layout: str, messages: list[str]) -> None:
    """Kinds: EMPTY, TITLE (text only), HEADING (with or without a total), SUBTOTAL, LINE."""
    for row in rows:
        has_amount = any(v is not None for v in row.amounts.values())
        tokens = words_of(row.label)
        if row.kind == HEADING:
            continue
        if not tokens and row.code is None and not has_amount:
            row.kind = EMPTY if not row.problems else LINE_KIND
        elif _is_total_label(tokens):
            row.kind = SUBTOTAL
        elif not has_amount and not row.problems:
            row.kind = HEADING if row.code is not None and _level(row, layout) < 3 else TITLE
        else:
            row.kind = LINE_KIND
    # code hierarchy: a chapter or sub-chapter row with detail lines under it is a heading
    for i, row in enumerate(rows):
        if row.kind not in (LINE_KIND, HEADING) or row.code is None:
            continue
        level = _level(row, layout)
        if level >= 3:
            continue
        children = _children(rows, i, layout, level)
        if children:
            if row.kind == LINE_KIND:
                _check_total(row, children, messages, "ses lignes")
            row.kind = HEADING
    # label headings (no code) with an amount: the chapter's total when lines follow,
    # else a line of a summary budget
    for i, row in enumerate(rows):
        if row.kind == HEADING and row.code is None and any(row.amounts.values()):
            children = []
            for nxt in rows[i + 1:]:
                if nxt.chapter is not row.chapter or (nxt.kind == HEADING and nxt.code is None):
                    break
                if nxt.kind == LINE_KIND:
                    children.append(nxt)
            if children:
                _check_total(row, children, messages, "ses lignes")
            else:
                row.kind = LINE_KIND
    # arithmetic: a code-less row equal to the sum of its block, chapter or budget
    block: list[BudgetRow] = []
    chapter_lines: list[BudgetRow] = []
    everything: list[BudgetRow] = []
    current = None
    for i, row in enumerate(rows):
        if row.chapter is not current:
            current, block, chapter_lines = row.chapter, [], []
        if row.kind in (HEADING, SUBTOTAL):
            if row.kind == SUBTOTAL or row.code is not None:
                block = []
            continue
        if row.kind != LINE_KIND:
            continue
        key = _key_amount(row)
        if row.code is None and key is not None and not row.problems:
            phase, amount = key
            closes = _closes_block(rows, i)
            for pool, what in ((block, "du bloc"), (chapter_lines, "du chapitre"),
                               (everything, "du devis")):
                lines = [r for r in pool if r.amounts.get(phase) is not None]
                if len(lines) < (1 if not row.label else 2):
                    continue
                if abs(_sum(lines, phase) - amount) <= _tolerance(amount) and (
                        closes or not row.label):
                    row.kind, row.by_arithmetic = SUBTOTAL, True
                    row.why = (f"égal à la somme des {len(lines)} lignes {what} "
                               f"({euros(amount)})")
                    break
            if row.kind == SUBTOTAL:
                block = []
                continue
        block.append(row)
        chapter_lines.append(row)
        everything.append(row)


def _closes_block(rows: list[BudgetRow], i: int) -> bool:
    """The next non-empty row after ``i`` starts something else (a heading, a subtotal, a
    new chapter) or there is none: where subtotals sit."""
    for nxt in rows[i + 1:]:
        if nxt.kind in (EMPTY, TITLE):
            continue
        return nxt.kind in (HEADING, SUBTOTAL) or nxt.chapter is not rows[i].chapter or (
            nxt.code is not None and rows[i].code is None and nxt.sub != rows[i].sub)
    return True


def _children(rows: list[BudgetRow], i: int, layout: str, level: int) -> list[BudgetRow]:
    """The line rows under the heading row ``i`` (until a row of its level or above)."""
    prefix = rows[i].code.digits if rows[i].code else ""
    out: list[BudgetRow] = []
    for row in rows[i + 1:]:
        if row.code is not None:
            row_level = _level(row, layout)
            if row_level <= level:
                break
            if layout == FILM and not row.code.digits.startswith(prefix[:level]):
                break
        elif row.kind == HEADING:
            break
        if row.kind == LINE_KIND:
            out.append(row)
    return out


def _check_total(row: BudgetRow, children: list[BudgetRow], messages: list[str],
                 what: str) -> None:
    for phase, amount in row.amounts.items():
        if amount is None:
            continue
        total = _sum(children, phase)
        if abs(total - amount) > _tolerance(amount):
            messages.append(
                f"{row.shown} : total {PHASE_FR[phase]} "
                f"{euros(amount)} ≠ somme de {what} {euros(total)} ({len(children)} ligne(s)) ; "
                "les lignes sont importées, ce total est ignoré")


def _chapter_name(chapter: Chapter, layout: str) -> str:
    number = chapter.film if layout == FILM else chapter.tv
    return f"chapitre {number} {chapter.label}" if number else f"chapitre {chapter.label}"


def _place(row: BudgetRow, mapping: DevisMapping, edition: FactorEdition, layout: str) -> None:
    amounts = {p: v for p, v in row.amounts.items() if v is not None}
    if row.problems and not amounts:
        row.decision, row.rule = NOT_PLACED, "montant"
        row.why = "montant illisible (" + " ; ".join(row.problems) + ")"
        return
    if not amounts or all(v == 0 for v in amounts.values()):
        row.decision, row.why = ZERO, "aucun montant"
        return
    if any(v < 0 for v in amounts.values()):
        row.decision, row.rule = NOT_PLACED, "montant"
        row.why = ("montant négatif (remise, avoir) : à déduire à la main de la ligne qu'il "
                   "corrige")
        return
    if not row.label:
        row.decision, row.rule = NOT_PLACED, "libellé"
        row.why = "montant sans libellé"
        return
    chapter = row.chapter
    sub = mapping.subchapters.get(row.sub or "") if layout == FILM else None
    context: Placement | None = None
    for candidate in (sub.placement if sub else None, chapter.placement if chapter else None):
        if candidate is not None and candidate.kind == LINE:
            context = candidate
            break
    decided: Placement | None = None
    if chapter is not None and chapter.placement.kind == EXCLUDE:
        decided, row.rule = chapter.placement, _chapter_name(chapter, layout)
    if decided is None:
        rule = mapping.rule_for(words_of(row.label), chapter.key if chapter else None,
                                row.sub if layout == FILM else None)
        if rule is not None:
            decided = rule.placement
            tokens = words_of(row.label)
            row.rule = "libellé « " + next(
                (w for w, p in zip(rule.phrases, rule.words, strict=False)
                 if phrase_in(p, tokens)), rule.phrases[0]) + " »"
    if decided is None and sub is not None:
        decided, row.rule = sub.placement, f"sous-chapitre {sub.code} {sub.label}"
    if decided is None and chapter is not None:
        decided = chapter.placement
        row.rule = _chapter_name(chapter, layout) + " (défaut)"
    if decided is None:
        row.decision, row.rule = NOT_PLACED, "aucune règle"
        row.why = ("ni chapitre reconnu ni libellé connu : classez la ligne, ou ajoutez une "
                   "règle (--mapping)")
        return
    row.why = decided.why
    if decided.kind == EXCLUDE:
        row.decision = EXCLUDED
    elif decided.kind == UNPLACED:
        row.decision = NOT_PLACED
    else:
        row.decision = IMPORTED
        row.activity = decided.activity
        row.same_spending = decided.same_spending
        row.poste = resolve_poste(decided, context.poste if context else None, edition)


def analyse_sheet(grid: SheetGrid, options: Options, mapping: DevisMapping,
                  edition: FactorEdition) -> _SheetResult:
    """Every row of one sheet: its kind, then, for a line, its decision."""
    reader = _Reader(grid, options)
    columns, rows = reader.read()
    messages: list[str] = []
    layout, forced = _structure(rows, mapping, options.layout, columns.code is not None)
    _classify(rows, layout, messages)
    for row in rows:
        if row.kind == LINE_KIND:
            _place(row, mapping, edition, layout)
            if row.decision == IMPORTED and row.problems:
                messages.append(f"{row.shown} : " + " ; ".join(row.problems)
                                + " — seule la phase lisible est importée")
        else:
            row.decision = row.kind
    return _SheetResult(grid, reader.sheet.header_row, columns, rows, layout, forced, messages)


def _grand_total(rows: list[BudgetRow]) -> dict[str, float | None] | None:
    """The amounts of the budget's grand total row: « TOTAL GÉNÉRAL », « Coût total HT »…,
    or a « TOTAL » alone after the last line."""
    found = None
    for i, row in enumerate(rows):
        if row.kind != SUBTOTAL:
            continue
        tokens = words_of(row.label)
        last = not any(r.kind == LINE_KIND for r in rows[i + 1:])
        if _is_grand_total(tokens) or (tokens in (("total",), ("total", "ht")) and last):
            found = row
    return dict(found.amounts) if found is not None else None


def analyse_budget(path: Path, options: Options | None = None,
                   mapping: DevisMapping | None = None,
                   edition: FactorEdition | None = None) -> BudgetAnalysis:
    """Read ``path`` and decide what every row of its budget sheet is and becomes."""
    options = options or Options()
    edition = edition or load_edition()
    mapping = mapping or load_mapping(edition=edition)
    if options.ttc_rate is not None and not 0 < options.ttc_rate < 100:
        raise InputFileError(str(path), f"--ttc {options.ttc_rate:g} : donnez le taux de TVA "
                                        "en %, par exemple --ttc 20")
    grids = read_budget_sheets(path)
    skipped: list[str] = []
    if options.sheet is not None:
        chosen = [g for g in grids if g.name == options.sheet]
        if not chosen:
            hint = did_you_mean(close_matches(options.sheet, [g.name for g in grids]))
            raise InputFileError(str(path), f"feuille « {options.sheet} » absente (feuilles : "
                                 + ", ".join(f"« {g.name} »" for g in grids) + ")"
                                 + (f" ; {hint}" if hint else ""))
        candidates = chosen
    else:
        candidates = []
        for g in grids:
            if not g.visible:
                skipped.append(f"« {g.name} » (masquée)")
            elif not any(any(v is not None for v in row) for row in g.rows):
                skipped.append(f"« {g.name} » (vide)")
            else:
                candidates.append(g)
        if not candidates:
            raise InputFileError(str(path), "aucune feuille visible ne contient de données")
    results: list[_SheetResult] = []
    errors: list[tuple[str, InputFileError]] = []
    for grid in candidates:
        try:
            results.append(analyse_sheet(grid, options, mapping, edition))
        except InputFileError as exc:
            if options.sheet is not None or len(candidates) == 1:
                raise InputFileError(str(path), f"feuille « {grid.name} » : {exc.reason}") \
                    from None
            errors.append((grid.name, exc))
    if not results:
        name, exc = errors[0]
        raise InputFileError(str(path), f"aucune feuille ne ressemble à un devis (« {name} » : "
                                        f"{exc.reason})")
    results.sort(key=lambda res: -res.line_count)
    best = results[0]
    if len(results) > 1:
        second = results[1]
        if second.line_count >= 10 and second.line_count >= 0.5 * best.line_count:
            raise InputFileError(str(path), "plusieurs feuilles ressemblent à un devis : "
                                 + ", ".join(f"« {r.grid.name} » ({r.line_count} lignes)"
                                             for r in results[:4])
                                 + " ; choisissez avec --sheet NOM")
        for res in results[1:]:
            skipped.append(f"« {res.grid.name} » ({res.line_count} ligne(s) de montant, moins "
                           f"que « {best.grid.name} »)")
    skipped += [f"« {name} » ({exc.reason})" for name, exc in errors]
    amounts = best.columns.amounts
    for phase in PHASES:
        choice = amounts.get(phase)
        if choice is not None and choice.ttc and options.ttc_rate is None:
            raise InputFileError(str(path), f"la colonne {choice.column} porte des montants TTC "
                                 "; les ratios de l'ADEME sont hors taxes : relancez avec "
                                 "--ttc 20 (taux de TVA en %) pour les ramener en HT, ou "
                                 "choisissez une colonne HT")
    messages = best.messages
    if best.grid.truncated:
        messages.insert(0, "feuille tronquée : seules les 20 000 premières lignes sont lues")
    return BudgetAnalysis(
        path=path, sheet=best.grid.name, sheets_skipped=skipped, header_row=best.header_row,
        columns={"code": best.columns.code, "label": best.columns.label,
                 FORECAST: amounts[FORECAST].column if amounts.get(FORECAST) else None,
                 FINAL: amounts[FINAL].column if amounts.get(FINAL) else None},
        notes_columns=best.columns.notes, hidden_columns=best.columns.hidden,
        ignored_columns=best.columns.ignored, layout=best.layout,
        layout_forced=best.layout_forced,
        ttc_rate=options.ttc_rate if any(
            c is not None and c.ttc for c in amounts.values()) else None,
        scale={p: c.scale for p, c in amounts.items() if c is not None},
        rows=best.rows, messages=messages, grand_total=_grand_total(best.rows),
        mapping_sources=mapping.sources)


# --------------------------------------------------------------------------- lines


def line_comment(row: BudgetRow, analysis: BudgetAnalysis) -> str:
    """``[devis 631] Location véhicules — note : 2 utilitaires``: the budget line it comes
    from (what a re-import recognises), then its note."""
    text = f"{row.tag} {row.label}"
    if row.note:
        text += f" — note : {row.note}"
    if analysis.ttc_rate is not None:
        text += f" — TTC ÷ {1 + analysis.ttc_rate / 100:.3f}".replace(".", ",")
    return text if len(text) <= COMMENT_MAX else text[:COMMENT_MAX - 1] + "…"


def activity_text(activity: str, edition: FactorEdition) -> str:
    """What the workbook's activity cell shows: the dropdown label, or the BE reference."""
    act = edition.activities.get(activity)
    return act.label_fr if act is not None else activity


def _number(value: float) -> float | int:
    value = round(value, 2)
    return int(value) if float(value).is_integer() else value


def line_record(row: BudgetRow, analysis: BudgetAnalysis, edition: FactorEdition
                ) -> dict[str, Any]:
    """The activity line of an imported budget row (``model.LINE_COLUMNS``, plus
    ``same_spending`` for the double-counting guard)."""
    forecast = row.amounts.get(FORECAST)
    final = row.amounts.get(FINAL)
    return {
        "poste": row.poste,
        "activity": activity_text(row.activity or "", edition),
        "quantity_forecast": None if forecast in (None, 0) else _number(forecast),
        "quantity_final": None if final in (None, 0) else _number(final),
        "unit": "€",
        "data_source": "devis" if forecast else "facture",
        "comment": line_comment(row, analysis),
        "same_spending": row.same_spending,  # not written: read by double_counting
    }


def poste_label(poste: str | None) -> str:
    return POSTE_BY_ID[poste].label_fr if poste in POSTE_BY_ID else str(poste)


def _as_float(value: Any) -> float:
    amount = parse_amount(value)[0]
    return amount or 0.0


def match_previous_import(rows: list[BudgetRow], lines: list[dict[str, Any]]) -> int:
    """Mark the imported rows already in the workbook (``lines``, with ``sheet`` and
    ``row``) by their ``[devis …] label`` comment; returns how many came back with other
    amounts (an updated budget: the old line must be deleted to re-import)."""
    from carbonclap_xl.intake.double_counting import DUPLICATE_MARK

    previous: list[tuple[str, dict[str, Any]]] = []
    for line in lines:
        comment = str(line.get("comment") or "")
        at = comment.find("[devis")
        if at >= 0:
            previous.append((comment[at:], line))
    changed = 0
    for row in rows:
        if row.decision != IMPORTED:
            continue
        key = f"{row.tag} {row.label}".strip()
        line = next((found for tail, found in previous
                     if tail == key or tail.startswith(key + " — ")), None)
        if line is None:
            continue
        row.decision = ALREADY
        where = f"{line.get('sheet')} l. {line.get('row')}"
        differs = []
        if DUPLICATE_MARK not in str(line.get("comment")):
            for phase, key in ((FORECAST, "quantity_forecast"), (FINAL, "quantity_final")):
                old, new = _as_float(line.get(key)), row.amounts.get(phase) or 0.0
                if abs(old - new) > 0.005:
                    differs.append(f"{PHASE_ABBR[phase]} {euros(old)} → {euros(new)}")
        row.why = f"déjà dans le classeur ({where})"
        if differs:
            changed += 1
            row.why += (", montants changés : " + " ; ".join(differs)
                        + " ; supprimez l'ancienne ligne pour réimporter celle-ci")
    return changed
