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
    """A figure with about ``digits`` significant digits, French style: ``0,0123``,
    ``12,3``, ``1 235``; integers above 10^digits keep every digit."""
    if not math.isfinite(x):
        return "—"
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    decimals = max(0, digits - 1 - magnitude)
    return fr_number(x, decimals)


def fr_mass(kg: float) -> str:
    """A mass at a sensible precision: kg under a tonne, tonnes above (``850 kg``,
    ``12,4 t``)."""
    if not math.isfinite(kg):
        return "—"
    if abs(kg) < 1000:
        return f"{fr_significant(kg)} kg" if abs(kg) < 10 else f"{fr_integer(kg)} kg"
    return f"{fr_number(kg / 1000, 2 if abs(kg) < 100_000 else 1)} t"


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
