"""Activity lines from CSV (the ``compute`` and ``new --from`` format).

Columns: ``poste,activity,quantity_forecast,quantity_final,unit`` and, optionally, ``count``
(persons, vehicles, trips; blank = 1), ``data_source``, ``data_source_final`` (blank = same as
``data_source``) and ``comment``, in any order. UTF-8 (with or without BOM) or cp1252; ``,`` or
``;`` separated (a ``;`` file may use decimal commas, as French Excel writes them).

A row with more fields than the header (an unquoted ``Cantine, jour 3``) is never cut
silently: it becomes a ``CSV_EXTRA_FIELDS`` issue naming its line, and that line is not
counted (the others are).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from carbonclap_xl.core.errors import InputFileError
from carbonclap_xl.core.issues import Code, Issue, make_issue
from carbonclap_xl.core.lines import LineTable
from carbonclap_xl.core.model import LINE_COLUMNS, OPTIONAL_LINE_COLUMNS

REQUIRED = tuple(c for c in LINE_COLUMNS if c not in OPTIONAL_LINE_COLUMNS)
_NUMBER_COLUMNS = ("quantity_forecast", "quantity_final", "count")
_DECIMAL_COMMA = re.compile(r"^\s*-?\d+,\d+\s*$")
MAX_CSV_BYTES = 200 * 2**20


@dataclass
class CsvLines:
    """The lines of a CSV file, what reading found wrong, and where each line starts."""

    lines: LineTable  # LINE_COLUMNS, every cell as text (the engine parses numbers)
    issues: list[Issue] = field(default_factory=list)  # located by data line (0-based)
    excluded: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    line_numbers: list[int] = field(default_factory=list)  # file line where each row starts

    def locate(self, issue: Issue) -> Issue:
        """An issue about data line ``issue.line`` located in the file: its line number as a
        text editor shows it (the header is line 1) and its column's name as the cell."""
        if issue.line is None:
            return issue
        number = (self.line_numbers[issue.line] if issue.line < len(self.line_numbers)
                  else issue.line + 2)
        return issue.located(None, None, row=number)


def _expected_header() -> str:
    optional = [c for c in LINE_COLUMNS if c in OPTIONAL_LINE_COLUMNS]
    return ",".join(REQUIRED) + " (facultatives : " + ",".join(optional) + ")"


def read_lines_csv(path: Path) -> CsvLines:
    """The lines of a CSV file, every cell as text (the engine parses numbers)."""
    try:
        if path.stat().st_size > MAX_CSV_BYTES:
            raise InputFileError(str(path), "fichier trop volumineux (plus de 200 Mo)")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(str(path), "fichier introuvable") from None
    except IsADirectoryError:
        raise InputFileError(str(path), "c'est un dossier, pas un fichier CSV") from None
    except PermissionError:
        raise InputFileError(str(path), "lecture interdite (droits du fichier)") from None
    if raw.startswith(b"PK\x03\x04"):
        raise InputFileError(str(path), "c'est un classeur, pas un CSV : utilisez "
                                        "« carbonclap-xl process »")
    if b"\x00" in raw[:4096]:
        raise InputFileError(str(path), "fichier binaire, pas un CSV texte")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[list[str]] = []
    starts: list[int] = []
    end = 0
    for row in reader:
        starts.append(end + 1)  # a quoted field may span lines: the row starts after the last
        end = reader.line_num
        rows.append(row)
    if not rows:
        raise InputFileError(str(path), "fichier vide : la première ligne doit nommer les "
                                        "colonnes " + _expected_header())
    header = [h.strip().lower() for h in rows[0]]
    doubled = sorted({h for h in header if h and header.count(h) > 1})
    if doubled:
        raise InputFileError(str(path), "colonne(s) en double " + ", ".join(doubled)
                             + " : gardez une seule colonne de chaque nom")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputFileError(str(path), "colonne(s) manquante(s) " + ", ".join(missing)
                             + " ; l'en-tête attendu est " + _expected_header())
    width = len(header)
    issues: list[Issue] = []
    excluded = np.zeros(len(rows) - 1, dtype=bool)
    body: list[list[str]] = []
    for n, r in enumerate(rows[1:]):
        if len(r) > width and any(v.strip() for v in r[width:]):
            issues.append(make_issue(Code.CSV_EXTRA_FIELDS, value=starts[n + 1], line=n,
                                     expected=len(r), choices=width, hint=delimiter))
            excluded[n] = True
        body.append(r + [""] * (width - len(r)) if len(r) < width else r[:width])
    position = {name: i for i, name in enumerate(header) if name}
    columns: dict[str, list[str | None]] = {}
    for column in LINE_COLUMNS:
        i = position.get(column)
        columns[column] = [r[i] for r in body] if i is not None else [None] * len(body)
    for column in _NUMBER_COLUMNS:
        values = columns[column]
        for n, v in enumerate(values):
            if not v or v.isspace():
                values[n] = None
            elif delimiter == ";" and "," in v and _DECIMAL_COMMA.match(v):
                values[n] = v.replace(",", ".")
    return CsvLines(LineTable(columns, len(body)), issues, excluded, starts[1:])
