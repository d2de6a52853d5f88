"""Activity lines from and to CSV (the ``compute`` and ``new --from`` format).

Columns: ``poste,activity,quantity_forecast,quantity_final,unit,data_source,comment``.
UTF-8 (with or without BOM) or cp1252; ``,`` or ``;`` separated (a ``;`` file may use decimal
commas, as French Excel writes them).
"""

from __future__ import annotations

import csv
import io
import re
from operator import itemgetter
from pathlib import Path

from carbonclap_xl.core.errors import InputFileError
from carbonclap_xl.core.issues import Issue
from carbonclap_xl.core.lines import LineTable
from carbonclap_xl.core.model import LINE_COLUMNS

REQUIRED = ("poste", "activity", "quantity_forecast", "quantity_final", "unit")
_DECIMAL_COMMA = re.compile(r"^\s*-?\d+,\d+\s*$")
MAX_CSV_BYTES = 200 * 2**20


def read_lines_csv(path: Path) -> LineTable:
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
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    if not rows:
        raise InputFileError(str(path), "fichier vide : la première ligne doit nommer les "
                                        "colonnes " + ",".join(LINE_COLUMNS))
    header = [h.strip().lower() for h in rows[0]]
    doubled = sorted({h for h in header if h and header.count(h) > 1})
    if doubled:
        raise InputFileError(str(path), "colonne(s) en double " + ", ".join(doubled)
                             + " : gardez une seule colonne de chaque nom")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputFileError(str(path), "colonne(s) manquante(s) " + ", ".join(missing)
                             + " ; l'en-tête attendu est " + ",".join(LINE_COLUMNS))
    width = len(header)
    body = rows[1:]
    if any(len(r) != width for r in body):
        body = [r + [""] * (width - len(r)) if len(r) < width else r[:width] for r in body]
    position = {name: i for i, name in enumerate(header) if name}
    columns: dict[str, list[str | None]] = {}
    for column in LINE_COLUMNS:
        i = position.get(column)
        columns[column] = list(map(itemgetter(i), body)) if i is not None else [""] * len(body)
    for column in ("quantity_forecast", "quantity_final"):
        values = columns[column]
        for n, v in enumerate(values):
            if not v or v.isspace():
                values[n] = None
            elif delimiter == ";" and "," in v and _DECIMAL_COMMA.match(v):
                values[n] = v.replace(",", ".")
    return LineTable(columns, len(body))


def locate_csv(issue: Issue) -> Issue:
    """An engine issue located in the CSV file: line number as a spreadsheet shows it
    (the header is line 1) and the column's name as the cell."""
    if issue.line is None:
        return issue
    return issue.located(None, None, row=issue.line + 2)

