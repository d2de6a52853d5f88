"""Structure of one worksheet part, read by streaming its XML (no openpyxl).

What a values reader (python-calamine) does not tell: hidden rows, merged ranges, formulas and
the cell each sits in. Parsing is safe (no DTD, no entities, no network) and streaming, so a
5,000-row sheet costs a few tens of milliseconds.
"""

from __future__ import annotations

import io
import re

from lxml import etree

from carbonclap_xl.core.a1 import parse_cell
from carbonclap_xl.workbook.port import SheetStructure
from carbonclap_xl.xlsx.patch import translate_formula

SheetScan = SheetStructure  # what a scan returns: the port's structure of a sheet


_HIDDEN_ROW = re.compile(rb"<(?:\w+:)?row\b([^>]*)>")
_ROW_NUMBER = re.compile(rb'\br="(\d+)"')
_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\b[^>]*\bref="([A-Z$]+\d+(?::[A-Z$]+\d+)?)"')
_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")


def has_formulas(data: bytes) -> bool:
    return _FORMULA.search(data) is not None


def parses_sheet(data: bytes) -> bool:
    """Whether :func:`scan_sheet` reads ``data`` with lxml (it does when the part holds
    formulas): lxml's refusals are then behind the caller."""
    return has_formulas(data)


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
    # only the elements scanned reach Python: a processed sheet holds a formula or two on
    # every line, and walking every <c>, <v> and <is> cost seconds on 5,000 lines
    context = etree.iterparse(io.BytesIO(data), events=("end",),
                              tag=("{*}row", "{*}f", "{*}mergeCell"), resolve_entities=False,
                              no_network=True, huge_tree=False, load_dtd=False)
    shared_masters: dict[str, tuple[str, tuple[int, int] | None]] = {}
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
                    shared_masters[el.get("si")] = (text, parse_cell(ref or ""))
                else:  # the master's formula, moved to this cell as Excel fills it
                    text, origin = shared_masters.get(el.get("si"), ("", None))
                    here = parse_cell(ref or "")
                    if text and origin and here:
                        text = translate_formula(text, here[0] - origin[0],
                                                 here[1] - origin[1]) or text
            if ref:
                scan.formulas[ref] = text
        elif tag == "mergeCell":
            ref = el.get("ref")
            if ref:
                scan.merged.append(ref)
    return scan
