"""Activity lines from CSV (the ``compute`` and ``new --from`` format).

Columns: ``poste,activity,quantity_forecast,quantity_final,unit`` and, optionally, ``count``
(persons, vehicles, trips; blank = 1), ``data_source``, ``data_source_final`` (blank = same as
``data_source``) and ``comment``, in any order. Each column may also be named by its header on
the workbook's poste sheets (« Activité », « Quantité prévisionnelle », « Nombre », …: the
names come from ``workbook.layout``), the poste column « Poste » (or « Feuille »); case,
accents, blanks and punctuation do not count. A poste is its id (``regie``), its sheet's name
(« Régie », « Bureaux ») or its French label. UTF-8 (with or without BOM) or cp1252; ``,`` or
``;`` separated (a ``;`` file may use decimal commas, as French Excel writes them).

Lines starting with ``#`` above the header carry the production data (``# titre: Mon
film``; read by ``intake.production``); ``##`` lines and ``#`` lines without a colon are
comments.

A row with more fields than the header (an unquoted ``Cantine, jour 3``) is never cut
silently: it becomes a ``CSV_EXTRA_FIELDS`` issue naming its line, and that line is not
counted (the others are).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from carbonclap_xl.core.errors import InputFileError
from carbonclap_xl.core.factors import match_key
from carbonclap_xl.core.issues import Code, Issue, make_issue
from carbonclap_xl.core.lines import LineTable
from carbonclap_xl.core.model import LINE_COLUMNS, OPTIONAL_LINE_COLUMNS, POSTES
from carbonclap_xl.core.numbers import fr_integer
from carbonclap_xl.intake.production import ProductionEntry, production_values
from carbonclap_xl.intake.textfile import MAX_TEXT_BYTES, read_text
from carbonclap_xl.workbook.layout import CURRENT_LAYOUT, LINE_LAYOUTS

REQUIRED = tuple(c for c in LINE_COLUMNS if c not in OPTIONAL_LINE_COLUMNS)
_NUMBER_COLUMNS = ("quantity_forecast", "quantity_final", "count")
# A number as French Excel writes it in a ``;`` CSV: decimal comma, blanks (often no-break
# spaces) between thousands: « 1 800,5 », « 12,5 », « 1 800 ».
_FRENCH_NUMBER = re.compile(r"^\s*-?(?:\d+|\d{1,3}(?:[ \u00a0\u202f]\d{3})+)(?:,\d+)?\s*$")
MAX_CSV_BYTES = MAX_TEXT_BYTES
# The poste column has no header on the sheets (each sheet is a poste): its French names.
POSTE_HEADERS: tuple[str, ...] = ("Poste", "Feuille")
_WORKBOOK_HINT = "utilisez « carbonclap-xl process »"


@dataclass
class CsvLines:
    """The lines of a CSV file, what reading found wrong, and where each line starts."""

    lines: LineTable  # LINE_COLUMNS, every cell as text (the engine parses numbers)
    issues: list[Issue] = field(default_factory=list)  # located by data line (0-based)
    excluded: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    line_numbers: list[int] = field(default_factory=list)  # file line where each row starts
    header: list[ProductionEntry] = field(default_factory=list)  # the ``# field: value`` lines
    production: dict[str, Any] = field(default_factory=dict)  # ``header``, checked

    def locate(self, issue: Issue) -> Issue:
        """An issue about data line ``issue.line`` located in the file: its line number as a
        text editor shows it (the header is line 1) and its column's name as the cell."""
        if issue.line is None:
            return issue
        number = (self.line_numbers[issue.line] if issue.line < len(self.line_numbers)
                  else issue.line + 2)
        return issue.located(None, None, row=number)


@cache
def column_names() -> dict[str, str]:
    """Every accepted name of a CSV column (as ``match_key``) -> its ``LINE_COLUMNS`` key:
    the key itself, the poste sheets' header of each template version, ``POSTE_HEADERS``."""
    names = {match_key(key): key for key in LINE_COLUMNS}
    for layout in LINE_LAYOUTS.values():
        for column in layout.inputs:
            names.setdefault(match_key(column.header), column.key)
    for header in POSTE_HEADERS:
        names.setdefault(match_key(header), "poste")
    return names


@cache
def poste_names() -> dict[str, str]:
    """Every accepted name of a poste (as ``match_key``) -> its id: the id, the name of its
    sheet (« Régie », « Bureaux »), its French and English labels."""
    names: dict[str, str] = {}
    for poste in POSTES:
        for name in (poste.id, poste.sheet, poste.label_fr, poste.label_en):
            names.setdefault(match_key(name), poste.id)
    return names


def find_poste(text: str) -> str | None:
    """The id of the poste ``text`` names (see ``poste_names``), or None."""
    return poste_names().get(match_key(text))


def french_header() -> str:
    """The header of a French lines CSV, in template order (``;``-separated)."""
    return ";".join([POSTE_HEADERS[0], *(c.header for c in CURRENT_LAYOUT.inputs)])


def _expected_header() -> str:
    optional = [c for c in LINE_COLUMNS if c in OPTIONAL_LINE_COLUMNS]
    return (",".join(REQUIRED) + " (facultatives : " + ",".join(optional)
            + ") ou, en français, " + french_header())


def _split_preamble(path: Path, text: str) -> tuple[list[ProductionEntry], int, str]:
    """The ``# field: value`` lines above the header, how many lines precede the header,
    and the text from the header on."""
    lines = text.split("\n")
    n = 0
    while n < len(lines) and (not lines[n].strip() or lines[n].lstrip().startswith(("#", '"#'))):
        n += 1
    delimiter = _delimiter(lines[n] if n < len(lines) else "")
    entries = []
    for number, line in enumerate(lines[:n], start=1):
        line = line.strip()
        if line.startswith('"'):  # a spreadsheet quoted the cell: one field, then padding
            line = delimiter.join(next(csv.reader([line], delimiter=delimiter), []))
        line = line.rstrip(delimiter + " \t\r")[1:]  # without the padding and the "#"
        name, colon, value = line.partition(":")
        if line.startswith("#") or not colon or not name.strip():
            continue  # a comment
        entries.append(ProductionEntry(name.strip(), value.strip(), path, number,
                                       in_header=True))
    return entries, n, "\n".join(lines[n:])


def _delimiter(header_line: str) -> str:
    return ";" if header_line.count(";") > header_line.count(",") else ","


def read_lines_csv(path: Path) -> CsvLines:
    """The lines of a CSV file, every cell as text (the engine parses numbers)."""
    text = read_text(path, _WORKBOOK_HINT)
    header_entries, skipped, text = _split_preamble(path, text)
    production = production_values(header_entries, path) if header_entries else {}
    delimiter = _delimiter(text.split("\n", 1)[0])
    try:
        header_row, rows, by_position, starts = _parse(text, delimiter)
    except csv.Error as exc:  # a field past the csv module's limit, say
        reason = (f"un champ dépasse {fr_integer(csv.field_size_limit())} caractères"
                  if "field larger" in str(exc) else f"CSV illisible ({exc})")
        line = _failing_row_start(text, delimiter)
        where = f"ligne {skipped + line} : " if line else ""
        raise InputFileError(str(path), f"{where}{reason} : vérifiez les guillemets (un guillemet "
                                        "ouvert et jamais fermé avale la suite du fichier) et "
                                        "raccourcissez les textes trop longs") from None
    starts = [skipped + s for s in starts]  # lines of the file, its # lines counted
    if header_row is None:
        raise InputFileError(str(path), "fichier vide : la première ligne doit nommer les "
                                        "colonnes " + _expected_header())
    names = column_names()
    header = [h.strip() for h in header_row]
    keys = [names.get(match_key(h)) if h else None for h in header]
    doubled = sorted({k for k in keys if k and keys.count(k) > 1})
    if doubled:
        raise InputFileError(str(path), f"ligne {starts[0]} : colonne(s) en double "
                             + ", ".join("/".join(f"« {h} »" for h, k in zip(header, keys,
                                                                             strict=True)
                                                  if k == key) for key in doubled)
                             + " : gardez une seule colonne de chaque sorte")
    missing = [c for c in REQUIRED if c not in keys]
    if missing:
        raise InputFileError(str(path), f"ligne {starts[0]} : colonne(s) manquante(s) "
                             + ", ".join(missing) + " ; l'en-tête attendu est "
                             + _expected_header())
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
    position = {key: i for i, key in enumerate(keys) if key}
    columns: dict[str, Sequence[str | None]] = {}
    for column in LINE_COLUMNS:
        i = position.get(column)
        columns[column] = by_position[i] if i is not None else [None] * count
    # postes by id, sheet name or label (few distinct values: one look-up each); an unknown
    # poste stays as typed and is reported
    postes = {v: (find_poste(v) or v) if v else v for v in set(columns["poste"])}
    columns["poste"] = list(map(postes.__getitem__, columns["poste"]))
    for column in _NUMBER_COLUMNS:
        if column in position:  # blanks as None
            values = columns[column]
            blank = {v for v in set(values) if not v or v.isspace()}  # mostly none
            if blank:
                values = [None if v in blank else v for v in values]
            if delimiter == ";":  # French Excel's decimal commas, spaces between thousands
                points = {v: _decimal_point(v) for v in set(values)}
                values = list(map(points.__getitem__, values))
            columns[column] = values
    return CsvLines(LineTable(columns, count), issues, excluded, starts[1:],
                    header_entries, production)


def _decimal_point(v: str | None) -> str | None:
    """A number cell of a ``;`` file with its decimal comma as a point."""
    if v is not None and _FRENCH_NUMBER.match(v):
        return re.sub(r"[\s\u00a0\u202f]", "", v).replace(",", ".")
    return v


_FIELD_SEP = "\x1f"  # the ASCII unit separator: joins the fields of a row while reading


def _parse(text: str, delimiter: str) -> tuple[list[str] | None, list[list[str]],
                                                list[list[str]] | None, list[int]]:
    """(header, data rows, data columns, file line where each row starts) of a CSV text.

    The columns are given (rows then empty) when every row is as wide as the header; else
    they are None. A list per row costs more than the parsing once there are 100,000 of
    them (the cyclic garbage collector walks each one several times): when no quoted field
    spans lines and no field holds the unit separator, each row is joined into one string
    as it is read, and the columns are cut from all rows joined. A text without any quote
    needs no reader at all: its lines are the rows, already joined by the delimiter."""
    if _FIELD_SEP not in text:
        plain = _plain_lines(text)
        if plain is not None:
            parsed = _columns_of_joined(plain, delimiter)
            if parsed is not None:
                return parsed
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        joined = list(map(_FIELD_SEP.join, reader))
        if reader.line_num == len(joined):  # no row spans lines: row n is line n
            parsed = _columns_of_joined(joined, _FIELD_SEP)
            if parsed is not None:
                return parsed
            header, body = joined[0].split(_FIELD_SEP), joined[1:]
            return (header, [r.split(_FIELD_SEP) if r else [] for r in body], None,
                    list(range(1, len(joined) + 1)))
    rows, starts = _csv_rows(text, delimiter)
    return (rows[0] if rows else None), rows[1:], None, starts


def _plain_lines(text: str) -> list[str] | None:
    """The lines of a text without any quote (what the csv module reads as rows whose fields
    the delimiter alone separates), or None when it has quotes or a lone carriage return."""
    if '"' in text:
        return None
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            return None
    lines = text.split("\n")
    if lines[-1] == "":  # the final line break ends the last row
        lines.pop()
    return lines


def _columns_of_joined(joined: list[str], sep: str
                       ) -> tuple[list[str] | None, list[list[str]], list[list[str]] | None,
                                  list[int]] | None:
    """``_parse``'s answer when every row (its fields joined by ``sep``) is as wide as the
    header; None when some row is not."""
    starts = list(range(1, len(joined) + 1))
    if not joined:
        return None, [], None, starts
    # an empty row ([]) joins as "", as does [""]: both are filled to the header's width with
    # blanks alike
    header, body = joined[0].split(sep), joined[1:]
    seps = len(header) - 1
    if body and set(map(str.count, body, repeat(sep))) != {seps}:
        return None
    fields = sep.join(body).split(sep) if body else []
    width = seps + 1
    return header, [], [fields[i::width] for i in range(width)], starts


def _failing_row_start(text: str, delimiter: str) -> int | None:
    """The line where the row the csv module cannot read starts (None if it reads them all)."""
    next_start = 1
    try:
        for _start, _row, after in _rows_with_starts(text, delimiter):
            next_start = after
    except csv.Error:
        return next_start
    return None


def _csv_rows(text: str, delimiter: str) -> tuple[list[list[str]], list[int]]:
    """Every row, and the file line where each starts (a quoted field may span lines)."""
    rows: list[list[str]] = []
    starts: list[int] = []
    for start, row, _next in _rows_with_starts(text, delimiter):
        starts.append(start)
        rows.append(row)
    return rows, starts


def _rows_with_starts(text: str, delimiter: str) -> Iterator[tuple[int, list[str], int]]:
    """(line where the row starts, row, line where the next one starts), row by row."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    for row in reader:  # a quoted field may span lines: a row starts after the last one
        yield start, row, reader.line_num + 1
        start = reader.line_num + 1
