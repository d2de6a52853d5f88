"""Text that came from a submitted file, made safe for where it goes.

Three outputs, three rules, each defined here once:

- a cell of a spreadsheet that a user will open (a CSV, an XLSX or HTML table that Excel or
  LibreOffice imports): :func:`spreadsheet_safe` neutralises formula injection;
- a message that quotes a value: :func:`shorten` keeps it readable and within Excel's 32,767
  characters per cell;
- a terminal line: :func:`printable` drops control characters (ANSI escapes, line breaks that
  would forge report lines).
"""

from __future__ import annotations

import re

__all__ = ["QUOTE_MAX", "VALUE_MAX", "printable", "shorten", "spreadsheet_safe"]

QUOTE_MAX = 80  # characters of a value quoted inside a message
VALUE_MAX = 200  # characters of a value shown on its own (Contrôles « Valeur », reports)
ELLIPSIS = "…"

# What makes Excel, LibreOffice or Google Sheets read a cell as a formula or a command (OWASP
# "CSV injection"): = + - @, and tab or carriage return before them. Their fullwidth forms are
# included: some spreadsheet locales and input methods turn them into the ASCII ones.
_FORMULA_START = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
# Leading characters a spreadsheet may skip before reading the first one that matters.
_SKIPPED = " \u00a0\u3000\ufeff\u200b"
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def spreadsheet_safe(text: str) -> str:
    """``text`` as a spreadsheet will show it, never run it: a leading ``'`` when it starts
    (after any spaces) with ``= + - @``, a tab or a line break, or their fullwidth forms.

    Use it on every text field of every file a spreadsheet may open (CSV, XLSX written by a
    library that turns ``=…`` strings into formulas, HTML tables pasted into Excel); numbers
    stay numbers, so pass only text. The quote is what Excel itself adds to show such text.
    """
    head = text.lstrip(_SKIPPED)[:1]
    if head and head in _FORMULA_START:
        return "'" + text
    return text


def shorten(text: str, limit: int = QUOTE_MAX) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + ELLIPSIS


def printable(text: str) -> str:
    """``text`` for one terminal line: control characters (escape sequences, line breaks,
    bidirectional overrides) become spaces."""
    return _CONTROL.sub(" ", text)
