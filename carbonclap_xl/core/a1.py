"""A1 cell references, defined once: column letters, cell names, parsing.

Every room that names a cell (the layout, the reader, the surgical patcher, the safety gate,
issues) uses these functions.
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_ROW = 1_048_576  # Excel's grid
MAX_COL = 16_384
_DIGITS = "0123456789"
_CELL_RE = re.compile(r"^\$?([A-Za-z]{1,3})\$?([0-9]{1,7})$")


@lru_cache(maxsize=4096)
@lru_cache(maxsize=4096)  # the patcher names the same few columns on every row
def col_letter(index: int) -> str:
    """1 -> 'A', 28 -> 'AB', 16384 -> 'XFD'."""
    letters = ""
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


@lru_cache(maxsize=4096)
def col_index(letters: str) -> int:
    """'A' -> 1, 'ab' -> 28, 'XFD' -> 16384 (no bound check: see ``parse_cell``)."""
    index = 0
    for char in letters.upper():
        index = index * 26 + ord(char) - 64
    return index


def cell_ref(row: int, col: int) -> str:
    """(7, 2) -> 'B7'."""
    return f"{col_letter(col)}{row}"


# Column letters already seen in a valid reference -> column number (at most 3 ASCII letters,
# so the cache stays small). Saves re-validating 'G' for each of the thousands of cells in G.
KNOWN_COLUMNS: dict[str, int] = {}


def column_number(letters: str) -> int | None:
    """'G' -> 7 for 1 to 3 ASCII letters naming a column of the grid; None otherwise."""
    col = KNOWN_COLUMNS.get(letters)
    if col is None and 1 <= len(letters) <= 3 and letters.isascii() and letters.isalpha():
        col = col_index(letters)
        if col > MAX_COL:
            return None
        KNOWN_COLUMNS[letters] = col
    return col


def parse_cell(ref: str) -> tuple[int, int] | None:
    """'B7' -> (7, 2); None unless ``ref`` is one cell inside Excel's grid ('$' allowed)."""
    letters = ref.rstrip(_DIGITS)
    digits = len(ref) - len(letters)
    if 0 < digits <= 7:  # the usual spelling, 'B7', without a regular expression
        col = column_number(letters)
        if col is not None:
            row = int(ref[len(letters):])
            return (row, col) if 1 <= row <= MAX_ROW else None
    match = _CELL_RE.match(ref)  # '$B$7', 'b7' and the like
    if match is None:
        return None
    col, row = col_index(match.group(1)), int(match.group(2))
    if not (1 <= row <= MAX_ROW and 1 <= col <= MAX_COL):
        return None
    return row, col


def split_ref(ref: str) -> tuple[str, int]:
    """'$b$7' -> ('B', 7); ValueError for anything that is not one cell of the grid."""
    cell = parse_cell(ref.strip())
    if cell is None:
        raise ValueError(f"référence de cellule invalide : {ref}")
    return col_letter(cell[1]), cell[0]


def row_of(ref: str | None) -> int | None:
    """The row number of a cell reference, None when there is none."""
    if not ref:
        return None
    cell = parse_cell(ref.split(":", 1)[0])
    return cell[0] if cell else None
