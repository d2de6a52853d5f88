"""CSV files written for people, in one of two formats defined here once.

Every CSV a command writes for a person (``validate --csv``, ``consolidate -o …csv``,
``import-devis --report``, the service's ``/api/consolidate``) goes through
:class:`CsvFormat`, so all of them open the same way:

- ``excel-fr`` (the default): what French Excel opens with a double click, columns and
  figures in place: ``;`` between fields, decimal comma, UTF-8 with a byte order mark
  (without it Excel reads the file as Windows-1252 and garbles accents), figures rounded to
  what a person reads (:func:`rounded`: at most 6 significant digits, the integer part
  always whole), no thousands separator (Excel would read the figure as text);
- ``plain``: ``,`` between fields, decimal point, UTF-8 without a byte order mark, every
  figure exactly as in the JSON (Python's shortest text that reads back to the same float,
  ``2900.0``): for programs, R, pandas; the format these files had before ``excel-fr``.

In both, every text cell passes through :func:`core.text.spreadsheet_safe`: a title or a file
name such as ``=HYPERLINK(…)`` stays text when the file is opened in a spreadsheet. Numbers
stay numbers (a negative figure is not quoted).
"""

from __future__ import annotations

import csv
import io
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from carbonclap_xl.core.text import spreadsheet_safe

__all__ = ["CSV_FORMATS", "DEFAULT_CSV_FORMAT", "EXCEL_FR", "PLAIN", "CsvFormat", "CsvWriter",
           "csv_bytes", "rounded"]

SIGNIFICANT = 6  # digits of a figure in a CSV for people (integer part always whole)


@dataclass(frozen=True)
class CsvFormat:
    """One way of writing a CSV: separator, decimal mark, encoding, rounding."""

    name: str
    delimiter: str
    decimal: str
    encoding: str  # "utf-8-sig" writes the byte order mark Excel needs
    round_figures: bool
    help_fr: str

    def figure(self, value: float, decimals: int | None = None) -> str:
        """``value`` as this format writes a number (``""`` when not finite).

        ``decimals`` fixes the decimals (amounts in euros: 2) in ``excel-fr``; ``plain``
        always keeps the exact value."""
        if not math.isfinite(value):
            return ""
        if not self.round_figures:
            return repr(float(value))  # what csv and the JSON write: exact, read back as is
        text = rounded(value) if decimals is None else f"{value:.{decimals}f}"
        if float(text) == 0:
            text = text.lstrip("-")  # no "-0,00"
        return text.replace(".", self.decimal)

    def cell(self, value: Any, decimals: int | None = None) -> str | int:
        """One cell: blank for None, a figure for a number, safe text otherwise."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return spreadsheet_safe(str(value))
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            return self.figure(float(value), decimals)
        return spreadsheet_safe(str(value))


EXCEL_FR = CsvFormat("excel-fr", ";", ",", "utf-8-sig", True,
                     "« ; », virgule décimale, UTF-8 avec BOM, chiffres arrondis, pour Excel "
                     "en français")
PLAIN = CsvFormat("plain", ",", ".", "utf-8", False,
                  "« , », point décimal, UTF-8 sans BOM, chiffres exacts, pour les programmes")
CSV_FORMATS: dict[str, CsvFormat] = {f.name: f for f in (EXCEL_FR, PLAIN)}
DEFAULT_CSV_FORMAT = EXCEL_FR


def rounded(value: float, significant: int = SIGNIFICANT) -> str:
    """``value`` with at most ``significant`` significant digits, never rounding its integer
    part, trailing zeros dropped, decimal point: ``1287.8319999999999`` -> ``1287.83``,
    ``0.012345678`` -> ``0.0123457``, ``1234567.8`` -> ``1234568``, ``2900.0`` -> ``2900``."""
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    text = f"{value:.{min(max(0, significant - 1 - magnitude), 15)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


class CsvWriter:
    """Rows of ``columns`` written to a text stream in ``fmt`` (header first).

    Open the stream with ``fmt.encoding`` and ``newline=""``; ``decimals`` fixes the decimals
    of some columns (``{"montant": 2}``) in ``excel-fr``."""

    def __init__(self, out: TextIO, columns: Sequence[str], fmt: CsvFormat,
                 decimals: Mapping[str, int] | None = None, header: bool = True) -> None:
        self.columns = tuple(columns)
        self.fmt = fmt
        self.decimals = dict(decimals or {})
        self._writer = csv.writer(out, delimiter=fmt.delimiter, lineterminator="\r\n")
        if header:
            self._writer.writerow([fmt.cell(c) for c in self.columns])

    def row(self, values: Mapping[str, Any] | Sequence[Any]) -> None:
        """One row, from a mapping (missing columns blank, others ignored) or a sequence in
        the order of the columns."""
        if isinstance(values, Mapping):
            cells = [values.get(c) for c in self.columns]
        else:
            cells = list(values)
        self._writer.writerow([self.fmt.cell(v, self.decimals.get(c))
                               for c, v in zip(self.columns, cells, strict=True)])


def csv_bytes(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], fmt: CsvFormat,
              decimals: Mapping[str, int] | None = None) -> bytes:
    """A whole CSV file in ``fmt``, encoded (with its byte order mark in ``excel-fr``)."""
    buffer = io.StringIO()
    writer = CsvWriter(buffer, columns, fmt, decimals)
    for row in rows:
        writer.row(row)
    return buffer.getvalue().encode(fmt.encoding)
