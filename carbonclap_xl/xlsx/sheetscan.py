"""Structure of one worksheet part, read by streaming its XML (no openpyxl).

What a values reader (python-calamine) does not tell: hidden rows, merged ranges, formulas and
the cell each sits in. Parsing is safe (no DTD, no entities, no network) and streaming, so a
5,000-row sheet costs a few tens of milliseconds.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

from lxml import etree

_CELL = re.compile(r"^([A-Z]{1,3})(\d+)$")


@dataclass
class SheetScan:
    hidden_rows: set[int] = field(default_factory=set)
    merged: list[str] = field(default_factory=list)
    formulas: dict[str, str] = field(default_factory=dict)  # "B7" -> formula text


def split_ref(ref: str) -> tuple[str, int]:
    m = _CELL.match(ref.replace("$", "").upper())
    if not m:
        raise ValueError(f"référence de cellule invalide : {ref}")
    return m.group(1), int(m.group(2))


_HIDDEN_ROW = re.compile(rb"<(?:\w+:)?row\b([^>]*)>")
_ROW_NUMBER = re.compile(rb'\br="(\d+)"')
_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\b[^>]*\bref="([A-Z$]+\d+(?::[A-Z$]+\d+)?)"')
_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")


def has_formulas(data: bytes) -> bool:
    return _FORMULA.search(data) is not None


def scan_sheet(data: bytes) -> SheetScan:
    """Hidden rows, merged ranges and formulas of a worksheet part.

    Hidden rows and merges come from a byte-level scan; the XML is parsed only when the part
    holds formulas (most submitted sheets hold none in their data area).
    """
    if not _FORMULA.search(data):
        scan = SheetScan()
        rows = _HIDDEN_ROW.finditer(data) if b"hidden=" in data else ()
        for m in rows:
            attrs = m.group(1)
            number = _ROW_NUMBER.search(attrs)
            if number and (b'hidden="1"' in attrs or b'hidden="true"' in attrs):
                scan.hidden_rows.add(int(number.group(1)))
        scan.merged = [m.group(1).decode() for m in _MERGE.finditer(data)]
        return scan
    return _parse_sheet(data)


def _parse_sheet(data: bytes) -> SheetScan:
    scan = SheetScan()
    context = etree.iterparse(io.BytesIO(data), events=("end",), resolve_entities=False,
                              no_network=True, huge_tree=False, load_dtd=False)
    shared_masters: dict[str, str] = {}
    for _event, el in context:
        tag = etree.QName(el).localname
        if tag == "row":
            r = el.get("r")
            if r and r.isdigit() and el.get("hidden") in ("1", "true"):
                scan.hidden_rows.add(int(r))
            el.clear(keep_tail=False)
        elif tag == "f":
            parent = el.getparent()
            ref = parent.get("r") if parent is not None else None
            text = el.text or ""
            if el.get("t") == "shared" and el.get("si") is not None:
                if text:
                    shared_masters[el.get("si")] = text
                else:
                    text = shared_masters.get(el.get("si"), "")
            if ref:
                scan.formulas[ref] = text
        elif tag == "mergeCell":
            ref = el.get("ref")
            if ref:
                scan.merged.append(ref)
    return scan


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
