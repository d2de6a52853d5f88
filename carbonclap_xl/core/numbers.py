"""Numbers as people type and read them, defined once: parsing typed text, French formatting.

``parse_number`` reads what a cell or a CSV holds (« 1 200,5 », « 1.000.000 », « 12 km »);
``fr_number`` and friends print figures the French way (12 345,68 with a narrow no-break space).
"""

from __future__ import annotations

import math
import re

NNBSP = "\u202f"  # narrow no-break space: the French thousands separator


_NUMBER = re.compile(
    r"^\s*(?P<num>[-+]?(?:\d[\d\s\u00a0\u202f'’]*)?(?:[.,]\d[\d\s\u00a0\u202f]*)*)\s*"
    r"(?P<unit>(?:[^\W\d_]|[€$£]).*?)?\s*$"
)


def parse_number(text: str) -> tuple[float | None, str | None]:
    """``"1 200,5"`` -> (1200.5, None); ``"12 km"`` -> (12.0, "km"); ``"abc"`` -> (None, None).

    French and English separators alike: a mark that appears more than once groups thousands
    (``1.000.000``); otherwise, with both ``,`` and ``.`` present the last one is the decimal
    mark, and a single one of them is the decimal mark; blanks and apostrophes group thousands.
    """
    m = _NUMBER.match(str(text))
    if not m or not m.group("num") or not re.search(r"\d", m.group("num")):
        return None, None
    num = re.sub(r"[\s\u00a0\u202f'’]", "", m.group("num"))
    marks = [c for c in num if c in ",."]
    repeated = {c for c in marks if marks.count(c) > 1}  # "1.000.000": thousands only
    decimals = [c for c in marks if c not in repeated]
    if marks:
        for c in repeated:
            num = num.replace(c, "")
        if decimals:
            decimal = decimals[-1]
            head, _, tail = num.rpartition(decimal)
            num = f"{head.replace(',', '').replace('.', '')}.{tail}"
    try:
        value = float(num)
    except ValueError:
        return None, None
    unit = (m.group("unit") or "").strip() or None
    return value, unit


def fr_number(x: float, decimals: int = 2) -> str:
    """French formatting: ``12345.678`` -> ``12 345,68`` (narrow no-break spaces)."""
    if not math.isfinite(x):
        return "—"
    return f"{x:,.{decimals}f}".replace(",", NNBSP).replace(".", ",")


def fr_integer(x: float) -> str:
    """``1234567`` -> ``1 234 567``."""
    return fr_number(x, 0)


def fr_significant(x: float, digits: int = 3) -> str:
    """A figure with at most ``digits`` significant digits, French style, trailing zeros
    dropped: ``0,0123``, ``0,4``, ``12,3``, ``1 235``; the integer part keeps every digit."""
    if not math.isfinite(x):
        return "—"
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    text = fr_number(x, max(0, digits - 1 - magnitude))
    if "," in text:
        text = text.rstrip("0").rstrip(",")
    return "0" if text == "-0" else text


def fr_general(x: float) -> str:
    """A number as a spreadsheet's General format shows it, the French way: up to 15
    significant digits (what Excel keeps), decimal comma, no thousands separator, no float
    noise: ``12.5`` -> ``12,5``, ``1287.8319999999999`` -> ``1287,832``, ``1e6`` ->
    ``1000000``. For quoting a number the user typed or a cell holds."""
    if isinstance(x, bool) or not math.isfinite(x):
        return str(x) if isinstance(x, bool) else "—"
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    if not -9 <= magnitude < 15:  # what the General format shows in scientific notation
        mantissa, _, exponent = f"{x:.6g}".partition("e")
        return f"{mantissa.replace('.', ',')}E{int(exponent):+03d}"
    text = f"{x:.{max(0, 14 - magnitude)}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text.replace(".", ",")


def fr_mass(kg: float, signed: bool = False) -> str:
    """A mass at a sensible precision: kg under a tonne (3 significant digits under 10 kg,
    whole kg above), tonnes above with 2 decimals, 1 from 100 t: ``0,4 kg``, ``850 kg``,
    ``1,23 t``, ``12,40 t``, ``1 234,6 t``. ``signed``: a ``+`` before a gain (differences)."""
    if not math.isfinite(kg):
        return "—"
    if round(abs(kg)) < 1000:
        text = f"{fr_significant(kg) if abs(kg) < 10 else fr_integer(kg)} kg"
    else:
        text = f"{fr_number(kg / 1000, 2 if abs(kg) < 99_995 else 1)} t"
    return f"+{text}" if signed and kg > 0 else text


_ARITHMETIC = re.compile(r"^[\d\s.+\-*/()]{1,200}$")


def arithmetic_value(formula: str) -> float | None:
    """The value of a formula made only of numbers and + - * / ( ), computed here rather than
    trusted from the file's cache; None for anything else (references, functions)."""
    import ast
    import operator

    text = formula.lstrip("=").strip()
    if not _ARITHMETIC.match(text):
        return None
    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.USub: operator.neg, ast.UAdd: operator.pos}

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return ops[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in ops:
            return ops[type(node.op)](walk(node.operand))
        raise ValueError(node)

    try:
        return walk(ast.parse(text, mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
        return None
