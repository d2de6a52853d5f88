"""Production data (the fields of the Production sheet) from files: one reader for
``new --production``, the ``# field: value`` lines at the top of a lines CSV and the bundled
examples (``tools/build_template``).

Three spellings of the same fields:

- a YAML file (``.yaml``/``.yml``), one ``field: value`` per line;
- a CSV file (``.csv``), either two columns ``champ;valeur`` (a header row with those words is
  optional) or one header row naming the fields and one row of values;
- ``# field: value`` lines above the header of a lines CSV (``## …`` and ``#`` lines without
  a colon are free comments).

A field is named by its English key (``budget_keur``) or by its label on the Production sheet
(« Budget total (k€ HT) »), with or without the part in parentheses; case, accents, blanks
and punctuation do not count. Values are read the French way as well: « prévisionnel » /
« définitif » (or ``forecast`` / ``final``), the work types of the sheet's dropdown list,
decimal commas, dates as jj/mm/aaaa (or aaaa-mm-jj). Every wrong field is reported at once,
each with its file, line and fix (``ProductionDataError``, exit 2 on the command line).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from carbonclap_xl.core.dates import parse_date
from carbonclap_xl.core.errors import InputFileError, close_matches, did_you_mean
from carbonclap_xl.core.factors import match_key
from carbonclap_xl.core.numbers import parse_number
from carbonclap_xl.intake.textfile import read_text
from carbonclap_xl.workbook import layout as L

# First row of a two-column production CSV that names its columns rather than a field.
_HEADER_WORDS = frozenset({"champ", "champs", "field", "donnee", "nom", "cle", "key",
                           "rubrique"})
_WORKBOOK_HINT = "donnez les données de production en .yaml ou en .csv"


@dataclass(frozen=True)
class ProductionEntry:
    """One ``field: value`` as written in its file (before any checking)."""

    name: str
    value: Any  # text from a CSV; text, number, date or None from YAML
    path: Path
    line: int | None  # line in the file (1 = first), when known
    in_header: bool = False  # a ``# field: value`` line above a lines CSV's header

    def where(self, path: Path | None = None) -> str:
        """« ligne 4, champ « budget » » (the file's name too when it is not ``path``)."""
        parts = [] if path == self.path else [str(self.path)]
        if self.line is not None:
            parts.append(f"ligne {self.line}")
        parts.append(f"champ « {self.name} »")
        return ", ".join(parts)


class ProductionDataError(InputFileError):
    """Production data that cannot go into the Production sheet; carries every problem
    (``problems``: where, what, fix), not only the first."""

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        head = ("donnée de production à corriger : " if len(self.problems) == 1
                else f"{len(self.problems)} données de production à corriger : ")
        super().__init__(str(path), head + " ; ".join(self.problems))


# --------------------------------------------------------------------------- names


@cache
def field_names() -> dict[str, L.Field]:
    """Every accepted spelling of a field (as ``match_key``) -> its ``layout.Field``: the
    English key, the Production sheet's label, the label without its part in parentheses,
    and the label's first word when no other field starts with it (« titre », « budget »,
    « début », « fin »)."""
    names: dict[str, L.Field] = {}
    for f in L.PRODUCTION_FIELDS:
        for name in (f.key, f.label, re.sub(r"\s*\(.*?\)\s*", " ", f.label)):
            names.setdefault(match_key(name), f)
    first_words: dict[str, list[L.Field]] = {}
    for f in L.PRODUCTION_FIELDS:
        first_words.setdefault(match_key(f.label).split()[0], []).append(f)
    for word, fields in first_words.items():
        if len(fields) == 1:
            names.setdefault(word, fields[0])
    return names


def find_field(name: str) -> L.Field | None:
    """The Production field ``name`` stands for (see ``field_names``), or None."""
    return field_names().get(match_key(name))


def _field_suggestion(name: str) -> str:
    typed = {match_key(f.label): f.label for f in L.PRODUCTION_FIELDS if f.kind != "computed"}
    typed.update({k: f.label for k, f in field_names().items() if f.kind != "computed"})
    hits = [typed[k] for k in close_matches(match_key(name), typed, n=3, cutoff=0.6)]
    if hits:
        return did_you_mean(dict.fromkeys(hits))
    return "les données sont " + ", ".join(f"« {f.label} »" for f in L.PRODUCTION_FIELDS
                                           if f.kind != "computed")


# --------------------------------------------------------------------------- values


def _text(field: L.Field, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"« {value} » n'est pas un texte : écrivez le texte tel qu'il doit "
                         "figurer (entre guillemets s'il contient « : » ou « # »)")
    return str(value).strip()


def _choice(field: L.Field, value: Any) -> str:
    accepted = {match_key(c): c for c in field.choices}
    if field.key == "phase":  # the English ids too: forecast, final
        accepted.update({match_key(phase): label for label, phase in L.PHASE_CHOICES.items()})
    hit = accepted.get(match_key(str(value)))
    if hit is None:
        hint = did_you_mean([accepted[k] for k in close_matches(match_key(str(value)),
                                                               accepted, n=1)])
        raise ValueError(f"« {value} » n'est pas un choix de la liste"
                         + (f" ({hint})" if hint else "") + " : choisissez "
                         + ", ".join(f"« {c} »" for c in field.choices))
    return hit


def _number(field: L.Field, value: Any) -> int | float:
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        number, unit = parse_number(value)
        if unit is not None:
            raise ValueError(f"« {value} » : écrivez le nombre seul, sans unité ni texte "
                             f"({_number_example(field)})")
    else:
        number = None
    if number is None or not math.isfinite(number):
        raise ValueError(f"« {value} » n'est pas un nombre : {_number_example(field)}")
    if number <= 0:
        raise ValueError(f"{value} : il faut un nombre positif ({_number_example(field)})")
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _number_example(field: L.Field) -> str:
    examples = {"budget_keur": "en k€ HT, par ex. 1 900 ou 1900,5",
                "duration_min": "en minutes, par ex. 90"}
    return examples.get(field.key, "un nombre, par ex. 24")


def _date(field: L.Field, value: Any) -> dt.date:
    date = parse_date(value)
    if date is not None:
        return date
    raise ValueError(f"« {value} » n'est pas une date : écrivez-la jj/mm/aaaa (par ex. "
                     "06/04/2026) ou aaaa-mm-jj")


_PARSERS = {"text": _text, "choice": _choice, "number": _number, "date": _date}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def production_values(entries: Iterable[ProductionEntry], path: Path | None = None
                      ) -> dict[str, Any]:
    """The Production sheet's values (``layout.Field.key`` -> what its cell receives: text,
    the dropdown's exact choice, a number, a ``date``) from ``entries``. A blank value leaves
    its field empty. Raises ``ProductionDataError`` naming every wrong entry (``path``: the
    file the message is about; the others are named in each problem)."""
    entries = list(entries)
    path = path or (entries[0].path if entries else Path("."))
    values: dict[str, Any] = {}
    seen: dict[str, ProductionEntry] = {}
    problems: list[str] = []
    for entry in entries:
        field = find_field(entry.name)
        if field is None:
            problems.append(f"{entry.where(path)} : ce n'est pas une donnée de production ; "
                            + _field_suggestion(entry.name)
                            + (" (un commentaire libre commence par « ## »)"
                               if entry.in_header else ""))
            continue
        if field.kind == "computed":
            problems.append(f"{entry.where(path)} : « {field.label} » est écrit par le calcul, "
                            "pas saisi : retirez cette ligne")
            continue
        if field.key in seen:
            problems.append(f"{entry.where(path)} : « {field.label} » est déjà donné "
                            f"({seen[field.key].where(path)}) : gardez-en un seul")
            continue
        seen[field.key] = entry
        if _blank(entry.value):
            continue
        try:
            values[field.key] = _PARSERS[field.kind](field, entry.value)
        except ValueError as exc:
            problems.append(f"{entry.where(path)} : {exc}")
    start, end = values.get("start_date"), values.get("end_date")
    if start and end and end < start:
        problems.append(f"{seen['end_date'].where(path)} : la fin du tournage "
                        f"({end:%d/%m/%Y}) précède son début ({start:%d/%m/%Y}) : "
                        "corrigez l'une des deux dates")
    if problems:
        raise ProductionDataError(path, problems)
    return values


# --------------------------------------------------------------------------- files


def read_production_entries(path: Path) -> list[ProductionEntry]:
    """The ``field: value`` entries of a production file (``.yaml``/``.yml`` or ``.csv``)."""
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".csv", ".txt"):
        raise InputFileError(str(path), "format inconnu pour des données de production : "
                                        "donnez un fichier .yaml (une ligne « champ: valeur » "
                                        "par donnée) ou .csv (colonnes champ;valeur)")
    text = read_text(path, _WORKBOOK_HINT)
    if suffix in (".yaml", ".yml"):
        return _yaml_entries(path, text)
    return _csv_entries(path, text)


def read_production(path: Path) -> dict[str, Any]:
    """The Production sheet's values from a production file (see ``production_values``)."""
    return production_values(read_production_entries(path), path)


def workbook_production(header: Sequence[ProductionEntry] = (),
                        path: Path | None = None) -> dict[str, Any]:
    """The values for a new workbook's Production sheet: the ``#`` lines of its lines CSV
    (``header``) and a production file (``path``) together; a field given in both is an
    error (naming both places), never a silent choice."""
    entries = [*header, *(read_production_entries(path) if path else [])]
    return production_values(entries, path or (header[0].path if header else None))


def _yaml_entries(path: Path, text: str) -> list[ProductionEntry]:
    import yaml

    fix = ("écrivez une donnée par ligne, « champ: valeur », et mettez entre guillemets une "
           "valeur qui contient « : » ou « # »")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"ligne {mark.line + 1} : " if mark is not None else ""
        raise InputFileError(str(path), f"{where}YAML illisible : {fix}") from None
    if node is None:
        return []
    if not isinstance(node, yaml.MappingNode):
        raise InputFileError(str(path), f"ligne {node.start_mark.line + 1} : des lignes "
                                        f"« champ: valeur » sont attendues : {fix}")
    constructor = yaml.SafeLoader("")
    entries = []
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode) \
                or not isinstance(value_node, yaml.ScalarNode):
            raise InputFileError(str(path), f"ligne {line} : une seule valeur par donnée "
                                            f"(ni liste ni sous-rubrique) : {fix}")
        try:
            value = constructor.construct_object(value_node)
        except (yaml.YAMLError, ValueError):  # 2026-13-45 looks like a date but is not one
            value = value_node.value
        entries.append(ProductionEntry(str(key_node.value), value, path, line))
    return entries


def sniff_delimiter(lines: Sequence[str]) -> str:
    """``;`` or a tab when every non-blank line holds one (French Excel; a tab-separated
    export), else ``,``."""
    filled = [s for s in lines if s.strip()]
    for delimiter in (";", "\t"):
        if filled and all(delimiter in s for s in filled):
            return delimiter
    return ","


def _csv_entries(path: Path, text: str) -> list[ProductionEntry]:
    delimiter = sniff_delimiter(text.splitlines())
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    end = 0
    for row in reader:
        start, end = end + 1, reader.line_num
        cells = [c.strip() for c in row]
        while cells and not cells[-1]:
            cells.pop()  # spreadsheets pad rows with empty cells
        if cells and not cells[0].startswith("#"):
            rows.append((start, cells))
    if not rows:
        return []
    first_line, first = rows[0]
    if len(first) >= 2 and all(find_field(c) for c in first if c):  # one row of values
        if len(rows) > 2:
            raise InputFileError(str(path), f"ligne {rows[2][0]} : une seule ligne de valeurs "
                                            "est attendue sous la ligne des noms de champ : "
                                            "retirez les suivantes")
        values = rows[1][1] if len(rows) == 2 else []
        if len(values) > len(first):
            raise InputFileError(str(path), f"ligne {rows[1][0]} : {len(values)} valeurs pour "
                                            f"{len(first)} colonnes : {_separator_fix(delimiter)}")
        line = rows[1][0] if len(rows) == 2 else first_line
        return [ProductionEntry(name, values[i] if i < len(values) else "", path, line)
                for i, name in enumerate(first) if name]
    if match_key(first[0]) in _HEADER_WORDS and find_field(first[0]) is None:
        rows = rows[1:]
    entries = []
    for line, cells in rows:
        if len(cells) > 2:
            raise InputFileError(str(path), f"ligne {line} : {len(cells)} colonnes au lieu de "
                                            f"2 (champ{delimiter}valeur) : "
                                            + _separator_fix(delimiter))
        entries.append(ProductionEntry(cells[0], cells[1] if len(cells) > 1 else "", path,
                                       line))
    return entries


def _separator_fix(delimiter: str) -> str:
    return (f"une valeur qui contient « {delimiter} » doit être entre guillemets"
            + (" (ou séparez les colonnes par « ; » pour écrire 1900,5)"
               if delimiter == "," else ""))
