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
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
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
    header_row, rows, by_position, starts = _parse(text, delimiter)
    if header_row is None:
        raise InputFileError(str(path), "fichier vide : la première ligne doit nommer les "
                                        "colonnes " + _expected_header())
    header = [h.strip().lower() for h in header_row]
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
    excluded = np.zeros(len(starts) - 1, dtype=bool)
    count = len(starts) - 1
    if by_position is None or len(by_position) != width:  # rows of other widths: fit each
        body: list[list[str]] = []
        for n, r in enumerate(rows):
            if len(r) > width and any(v.strip() for v in r[width:]):
                issues.append(make_issue(Code.CSV_EXTRA_FIELDS, value=starts[n + 1], line=n,
                                         expected=len(r), choices=width, hint=delimiter))
                excluded[n] = True
            body.append(r + [""] * (width - len(r)) if len(r) < width else r[:width])
        by_position = [[r[i] for r in body] for i in range(width)]
    position = {name: i for i, name in enumerate(header) if name}
    columns: dict[str, Sequence[str | None]] = {}
    for column in LINE_COLUMNS:
        i = position.get(column)
        columns[column] = by_position[i] if i is not None else [None] * count
    for column in _NUMBER_COLUMNS:
        if column in position:  # blanks as None
            values = [v if v and not v.isspace() else None for v in columns[column]]
            if delimiter == ";":  # French Excel's decimal commas
                values = [_decimal_point(v) for v in values]
            columns[column] = values
    return CsvLines(LineTable(columns, count), issues, excluded, starts[1:])


def _decimal_point(v: str | None) -> str | None:
    """A number cell of a ``;`` file with its decimal comma as a point."""
    if v is not None and "," in v and _DECIMAL_COMMA.match(v):
        return v.replace(",", ".")
    return v


_FIELD_SEP = "\x1f"  # the ASCII unit separator: joins the fields of a row while reading


def _parse(text: str, delimiter: str) -> tuple[list[str] | None, list[list[str]],
                                                list[list[str]] | None, list[int]]:
    """(header, data rows, data columns, file line where each row starts) of a CSV text.

    The columns are given (rows then empty) when every row is as wide as the header; else
    they are None. A list per row costs more than the parsing once there are 100,000 of
    them (the cyclic garbage collector walks each one several times): when no quoted field
    spans lines and no field holds the unit separator, each row is joined into one string
    as it is read, and the columns are cut from all rows joined."""
    if _FIELD_SEP not in text:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        joined = list(map(_FIELD_SEP.join, reader))
        if reader.line_num == len(joined):  # no row spans lines: row n is line n
            starts = list(range(1, len(joined) + 1))
            if not joined:
                return None, [], None, starts
            # an empty row ([]) joins as "", as does [""]: both are filled to the header's
            # width with blanks alike
            header, body = joined[0].split(_FIELD_SEP), joined[1:]
            seps = len(header) - 1
            if not body or set(map(str.count, body, repeat(_FIELD_SEP))) == {seps}:
                fields = _FIELD_SEP.join(body).split(_FIELD_SEP) if body else []
                width = seps + 1
                return header, [], [fields[i::width] for i in range(width)], starts
            return header, [r.split(_FIELD_SEP) if r else [] for r in body], None, starts
    rows, starts = _csv_rows(text, delimiter)
    return (rows[0] if rows else None), rows[1:], None, starts


def _csv_rows(text: str, delimiter: str) -> tuple[list[list[str]], list[int]]:
    """Every row, and the file line where each starts (a quoted field may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[list[str]] = []
    starts: list[int] = []
    end = 0
    for row in reader:
        starts.append(end + 1)  # a quoted field may span lines: the row starts after the last
        end = reader.line_num
        rows.append(row)
    return rows, starts
