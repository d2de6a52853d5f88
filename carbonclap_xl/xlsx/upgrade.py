"""Move a workbook of an older template version to the current one, in place in its package.

Why not a fresh template filled with the old values: that loses what the user added (sheets,
comments, charts, formats, macros). Why not openpyxl: its load/save loses shapes, x14
validations, the ribbon relationship and cached values (EXCEL-FACTS.md). So the upgrade does
what Excel's "insert column" does, on the XML: the columns of the poste sheets are mapped from
the old version's recorded layout to the current one by engine field (``layout.LINE_LAYOUTS``;
new columns are inserted, the columns after them shift right), and every cell moves to its
new column together with what points at it:

- in each poste sheet: cells, column widths and styles, merges, data validations and
  conditional formats (Excel-2010 ``x14`` ones too), hyperlinks, the filter, the selection,
  comments and their notes (VML anchors), threaded comments, drawings anchored on the sheet;
- anywhere: formulas that reference a poste sheet (every worksheet's cells, conditional
  formats and validations), defined names, chart series and pivot-cache sources.

The new columns take the style of their left neighbour (with their own number format) and the
current template's validations; headers, help texts and the version are then written by the
surgical writer (``xlsx.patch``). Every other part of the package is copied byte for byte.
What cannot be moved safely (an Excel table on a poste sheet, a poste sheet whose headers were
changed, a formula that cannot be parsed) stops the upgrade with a French message, and nothing
is written.
"""

from __future__ import annotations

import copy
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from carbonclap_xl.core.a1 import MAX_COL, col_index, col_letter, parse_cell
from carbonclap_xl.core.errors import InputFileError, WorkbookPatchError
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.xlsx.package import (
    find_member,
    local_name,
    parse_xml,
    read_part,
    read_rels,
    serialize_xml,
    sheet_parts,
    workbook_part,
)
from carbonclap_xl.xlsx.patch import (
    calc_chain_edits,
    patch_workbook,
    translate_formula,
    write_package,
)

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


class UpgradeRefused(InputFileError):
    """A workbook the upgrade will not touch: why, and what to do (nothing is written)."""


# --------------------------------------------------------------------------- the column map


@dataclass(frozen=True)
class ColumnMap:
    """Old column number -> new column number, monotonic; ``inserted``: new columns with no
    old counterpart, each with the old column whose style it takes (its left neighbour)."""

    old_to_new: tuple[int, ...]  # index i: new column of old column i + 1
    shift_after: int  # old columns beyond the layout move right by this much
    inserted: tuple[tuple[int, int], ...]  # (new column, old model column)

    def __call__(self, col: int) -> int:
        if col <= len(self.old_to_new):
            return self.old_to_new[col - 1]
        return min(col + self.shift_after, MAX_COL)  # a range to the last column stays so

    @property
    def last_old(self) -> int:
        return len(self.old_to_new)


def column_map(old: L.LineLayout, new: L.LineLayout) -> ColumnMap:
    """Where each column of ``old`` goes in ``new``, by engine field (renames included)."""
    position = {c.key: c.index for c in new.columns}
    mapped = []
    for column in old.columns:
        key = L.RENAMED_KEYS.get(column.key, column.key)
        if key not in position:
            raise ValueError(f"column {column.key} of {old.version} has no place in "
                             f"{new.version}")
        mapped.append(position[key])
    if mapped != sorted(mapped) or len(set(mapped)) != len(mapped):
        raise ValueError(f"columns of {old.version} are not in the order of {new.version}")
    taken = set(mapped)
    inserted = []
    for column in new.columns:
        if column.index not in taken:
            left = max((i for i, n in enumerate(mapped, 1) if n < column.index), default=1)
            inserted.append((column.index, left))
    return ColumnMap(tuple(mapped), len(new.columns) - len(old.columns), tuple(inserted))


# --------------------------------------------------------------------------- references

_CELL = re.compile(r"^(\$?)([A-Za-z]{1,3})(\$?)([0-9]{1,7})$")
_COLUMN = re.compile(r"^(\$?)([A-Za-z]{1,3})$")


def _map_piece(piece: str, cmap: ColumnMap) -> str:
    """One end of a reference (``$E$5``, ``E``, ``5``, a name) with its column mapped."""
    m = _CELL.match(piece)
    if m and col_index(m.group(2)) <= MAX_COL:
        return f"{m.group(1)}{col_letter(cmap(col_index(m.group(2))))}{m.group(3)}{m.group(4)}"
    m = _COLUMN.match(piece)
    if m and col_index(m.group(2)) <= MAX_COL:
        return f"{m.group(1)}{col_letter(cmap(col_index(m.group(2))))}"
    return piece  # a row number, a defined name


def map_area(text: str, cmap: ColumnMap) -> str:
    """``E5:F10`` -> ``F5:H10``, ``E:E`` -> ``F:F`` (each end mapped); whole rows and names
    (``TVA`` alone is a name, not a column) are unchanged."""
    pieces = text.split(":")
    if len(pieces) == 1:
        return _map_piece(text, cmap) if _CELL.match(text) else text
    if len(pieces) == 2 and all(p.lstrip("$").isdigit() for p in pieces):
        return text
    return ":".join(_map_piece(p, cmap) for p in pieces)


def map_areas(text: str, cmap: ColumnMap) -> str:
    """A space-separated list of areas (an ``sqref``)."""
    return " ".join(map_area(a, cmap) for a in text.split())


def _sheet_of(prefix: str) -> list[str] | None:
    """The sheet(s) a reference prefix names (``'Régie'``, ``Bureaux:Postprod``); None for
    another workbook (``[1]Feuil1``)."""
    if prefix.startswith("'") and prefix.endswith("'"):
        prefix = prefix[1:-1].replace("''", "'")
    if prefix.startswith("["):
        return None
    return prefix.split(":") if ":" in prefix else [prefix]


class _Refs:
    """Maps the references of formulas to the poste sheets being upgraded."""

    def __init__(self, maps: dict[str, ColumnMap], sheet_order: list[str]) -> None:
        self.maps = maps
        self.order = sheet_order

    def _map_for(self, sheets: list[str], where: str) -> ColumnMap | None:
        if len(sheets) == 1:
            return self.maps.get(sheets[0])
        # a 3-D reference (Bureaux:Postprod!E5): every sheet it spans must move alike
        try:
            first, last = self.order.index(sheets[0]), self.order.index(sheets[-1])
        except ValueError:
            return None
        spanned = self.order[min(first, last):max(first, last) + 1]
        moved = [s for s in spanned if s in self.maps]
        if not moved:
            return None
        if len(moved) != len(spanned):
            raise UpgradeRefused(where, "une formule fait référence à plusieurs feuilles à la "
                                        f"fois ({':'.join(sheets)}) dont certaines changent de "
                                        "colonnes : remplacez-la par des références séparées")
        return self.maps[moved[0]]

    def reference(self, token: str, context: str | None, where: str) -> str:
        prefix, bang, ref = token.rpartition("!")
        if "[" in ref or "]" in ref:
            return token  # a structured reference (Table1[Col]): not a position
        if bang:
            sheets = _sheet_of(prefix)
            cmap = None if sheets is None else self._map_for(sheets, where)
        else:
            cmap = self.maps.get(context) if context else None
        if cmap is None:
            return token
        spill = ref.endswith("#")
        body = ref[:-1] if spill else ref
        return prefix + bang + map_area(body, cmap) + ("#" if spill else "")

    def formula(self, text: str, context: str | None, where: str) -> str:
        """A formula (no leading ``=``) with its references to the moving sheets mapped."""
        if not text or not self._concerns(text, context):
            return text
        from openpyxl.formula.tokenizer import Token, Tokenizer, TokenizerError

        try:
            tokens = Tokenizer("=" + text).items
        except TokenizerError:
            tokens = None
        if tokens is None or "".join(t.value for t in tokens) != text:
            raise UpgradeRefused(where, f"formule illisible « ={text[:80]} » : corrigez-la ou "
                                        "remplacez-la par sa valeur avant la mise à niveau")
        out = []
        for t in tokens:
            if t.type == Token.OPERAND and t.subtype == Token.RANGE:
                out.append(self.reference(t.value, context, where))
            else:
                out.append(t.value)
        return "".join(out)

    def _concerns(self, text: str, context: str | None) -> bool:
        if context in self.maps:
            return True
        return any(name in text for name in self.maps) or (":" in text and "!" in text)


# --------------------------------------------------------------------------- sheet XML


def _q(tag: str) -> str:
    return f"{{{_MAIN}}}{tag}"


@dataclass
class _Sheet:
    name: str
    part: str
    tree: etree._ElementTree
    original: bytes
    changed: bool = False
    shared: dict[str, tuple[int, int, str]] = field(default_factory=dict)


def _cell_position(cell: etree._Element, row: int, previous: int) -> tuple[int, int]:
    parsed = parse_cell(cell.get("r") or "")
    return parsed if parsed is not None else (row, previous + 1)


def _shared_masters(root: etree._Element) -> dict[str, tuple[int, int, str]]:
    """si -> (row, column, text) of each shared formula's master cell."""
    masters: dict[str, tuple[int, int, str]] = {}
    row_number = 0
    for row in root.iter(_q("row")):
        row_number = int(row.get("r") or row_number + 1)
        col = 0
        for cell in row.iter(_q("c")):
            r, col = _cell_position(cell, row_number, col)
            f = cell.find(_q("f"))
            if f is not None and f.get("t") == "shared" and f.get("ref") and f.text:
                masters[f.get("si", "")] = (r, col, f.text)
    return masters


def _unshare(f: etree._Element, position: tuple[int, int],
             masters: dict[str, tuple[int, int, str]], where: str) -> str | None:
    """The formula text of a shared-formula cell, expanded; None when not shared."""
    if f.get("t") != "shared":
        return None
    master = masters.get(f.get("si", ""))
    if master is None:
        raise UpgradeRefused(where, "formule partagée sans cellule maîtresse")
    row, col, text = master
    moved = translate_formula(text, position[0] - row, position[1] - col)
    if moved is None:
        raise UpgradeRefused(where, f"formule partagée « ={text[:80]} » impossible à recopier")
    return moved


def _map_formulas(sheet: _Sheet, refs: _Refs, cmap: ColumnMap | None) -> None:
    """Map the cell formulas of one worksheet. A shared formula's group is expanded into
    plain formulas when any of its cells changes (or the sheet's cells move)."""
    root = sheet.tree.getroot()
    masters = _shared_masters(root)
    found: list[tuple[etree._Element, str | None, str, str]] = []  # f, si, text, mapped
    row_number = 0
    for row in root.iter(_q("row")):
        row_number = int(row.get("r") or row_number + 1)
        col = 0
        for cell in row.iter(_q("c")):
            r, col = _cell_position(cell, row_number, col)
            f = cell.find(_q("f"))
            if f is None:
                continue
            where = f"{sheet.name}!{col_letter(col)}{r}"
            expanded = _unshare(f, (r, col), masters, where)
            text = f.text or "" if expanded is None else expanded
            si = f.get("si") if expanded is not None else None
            found.append((f, si, text, refs.formula(text, sheet.name, where)))
            if cmap is not None and f.get("ref") and f.get("t") == "array":
                f.set("ref", map_area(f.get("ref", ""), cmap))
                sheet.changed = True
    unshare = {si for _f, si, text, mapped in found
               if si is not None and (cmap is not None or mapped != text)}
    for f, si, text, mapped in found:
        if si is not None and si in unshare:
            for attr in ("t", "si", "ref"):
                f.attrib.pop(attr, None)
            f.text = mapped
            sheet.changed = True
        elif si is None and mapped != text:
            f.text = mapped
            sheet.changed = True


_AREA_ATTRIBUTES = {"mergeCell": "ref", "hyperlink": "ref", "autoFilter": "ref",
                    "dimension": "ref", "sortState": "ref", "sortCondition": "ref"}
_CELL_ATTRIBUTES = ("activeCell", "topLeftCell")
_FORMULA_ELEMENTS = ("formula", "formula1", "formula2")


def _map_other_formulas(sheet: _Sheet, refs: _Refs, cmap: ColumnMap | None) -> None:
    """Conditional-format and validation formulas (x14 ones too), and, on a moving sheet,
    every area it holds outside its cells."""
    for el in sheet.tree.getroot().iter():
        if not isinstance(el.tag, str):
            continue
        name = local_name(el)
        is_xm_f = name == "f" and etree.QName(el).namespace != _MAIN
        if (name in _FORMULA_ELEMENTS or is_xm_f) and el.text:
            mapped = refs.formula(el.text, sheet.name, f"{sheet.name} ({name})")
            if mapped != el.text:
                el.text, sheet.changed = mapped, True
        if name == "hyperlink" and el.get("location"):
            location = refs.reference(el.get("location", ""), None, sheet.name)
            if location != el.get("location"):
                el.set("location", location)
                sheet.changed = True
        if cmap is None:
            continue
        if name == "sqref" and el.text:
            el.text = map_areas(el.text, cmap)
        if el.get("sqref"):
            el.set("sqref", map_areas(el.get("sqref", ""), cmap))
        if name in _AREA_ATTRIBUTES and el.get(_AREA_ATTRIBUTES[name]):
            el.set("ref", map_area(el.get("ref", ""), cmap))
        for attr in _CELL_ATTRIBUTES:
            if el.get(attr):
                el.set(attr, map_area(el.get(attr, ""), cmap))


def _move_cells(sheet: _Sheet, cmap: ColumnMap, header_rows: Iterable[int]) -> None:
    """Every cell of a poste sheet to its new column; on ``header_rows``, an empty cell with
    the model's style in each inserted column (headers and help are written afterwards)."""
    heads = set(header_rows)
    row_number = 0
    for row in sheet.tree.getroot().iter(_q("row")):
        row_number = int(row.get("r") or row_number + 1)
        row.set("r", str(row_number))
        row.attrib.pop("spans", None)  # optional: Excel recomputes it
        cells: list[tuple[int, etree._Element]] = []
        col = 0
        for cell in list(row.iter(_q("c"))):
            _r, col = _cell_position(cell, row_number, col)
            new = cmap(col)
            cell.set("r", f"{col_letter(new)}{row_number}")
            cells.append((new, cell))
        if row_number not in heads:
            continue
        at = dict(cells)
        for new_col, model_old in cmap.inserted:
            model = at.get(cmap(model_old))
            if model is None or new_col in at:
                continue
            blank = etree.Element(_q("c"))
            blank.set("r", f"{col_letter(new_col)}{row_number}")
            if model.get("s"):
                blank.set("s", model.get("s", ""))
            after = next((cell for c, cell in sorted(at.items()) if c > new_col), None)
            if after is not None:
                after.addprevious(blank)
            else:
                row.insert(row.index(at[max(at)]) + 1, blank)
            at[new_col] = blank
    sheet.changed = True


def _map_columns(sheet: _Sheet, cmap: ColumnMap, new_styles: dict[int, str | None],
                 widths: dict[int, float]) -> None:
    """``<cols>``: each old column definition to its new columns; inserted columns copy
    their model's definition, with their own style and width."""
    root = sheet.tree.getroot()
    cols = root.find(_q("cols"))
    if cols is None:
        return
    per_column: dict[int, etree._Element] = {}
    beyond: list[etree._Element] = []
    for el in list(cols):
        if not isinstance(el.tag, str) or local_name(el) != "col":
            continue
        low, high = int(el.get("min", "1")), int(el.get("max", el.get("min", "1")))
        for c in range(low, min(high, cmap.last_old) + 1):
            one = copy.deepcopy(el)
            per_column[cmap(c)] = one
        if high > cmap.last_old:
            rest = copy.deepcopy(el)
            rest.set("min", str(cmap(max(low, cmap.last_old + 1))))
            rest.set("max", str(min(MAX_COL, cmap(high))))
            beyond.append(rest)
        cols.remove(el)
    for new_col, model_old in cmap.inserted:
        model = per_column.get(cmap(model_old))
        one = copy.deepcopy(model) if model is not None else etree.Element(_q("col"))
        style = new_styles.get(new_col)
        if style is not None:
            one.set("style", style)
        if new_col in widths:
            one.set("width", f"{widths[new_col]:g}")
            one.set("customWidth", "1")
        per_column[new_col] = one
    for c in sorted(per_column):
        el = per_column[c]
        el.set("min", str(c))
        el.set("max", str(c))
        cols.append(el)
    for el in beyond:
        cols.append(el)


def _add_validations(sheet: _Sheet, template_validations: list[etree._Element],
                     inserted: set[int]) -> None:
    """The current template's validations of the inserted columns."""
    new = [v for v in template_validations
           if any(_area_columns(a) & inserted for a in (v.get("sqref") or "").split())]
    if not new:
        return
    root = sheet.tree.getroot()
    holder = root.find(_q("dataValidations"))
    if holder is None:
        holder = etree.Element(_q("dataValidations"))
        # schema order: after conditionalFormatting, before hyperlinks and the rest
        after = [e for e in root if isinstance(e.tag, str) and local_name(e) in
                 ("sheetData", "sheetCalcPr", "sheetProtection", "protectedRanges",
                  "scenarios", "autoFilter", "sortState", "dataConsolidate", "customSheetViews",
                  "mergeCells", "phoneticPr", "conditionalFormatting")]
        after[-1].addnext(holder)
    for v in new:
        holder.append(copy.deepcopy(v))
    holder.set("count", str(sum(1 for e in holder if isinstance(e.tag, str))))


def _area_columns(area: str) -> set[int]:
    first, _sep, last = area.partition(":")
    a, b = parse_cell(first), parse_cell(last or first)
    if a is None or b is None:
        return set()
    return set(range(min(a[1], b[1]), max(a[1], b[1]) + 1))


# --------------------------------------------------------------------------- other parts

# Excel writes the prefix x:, openpyxl and others their own: any prefix of ClientData.
_VML_COLUMN = re.compile(rb"(<(?:[\w.-]+:)?Column>\s*)(\d+)(\s*</(?:[\w.-]+:)?Column>)")
_VML_ANCHOR = re.compile(rb"(<(?:[\w.-]+:)?Anchor>)([^<]*)(</(?:[\w.-]+:)?Anchor>)")


def _map_vml(data: bytes, cmap: ColumnMap) -> bytes:
    """A legacy drawing (notes of comments, form controls): columns are 0-based in
    ``x:Column`` and at the first and fifth places of ``x:Anchor``."""
    def column(m: re.Match[bytes]) -> bytes:
        return m.group(1) + str(cmap(int(m.group(2)) + 1) - 1).encode() + m.group(3)

    def anchor(m: re.Match[bytes]) -> bytes:
        parts = [p.strip() for p in m.group(2).split(b",")]
        if len(parts) == 8 and all(p.isdigit() for p in parts):
            for i in (0, 4):
                parts[i] = str(cmap(int(parts[i]) + 1) - 1).encode()
            return m.group(1) + b", ".join(parts) + m.group(3)
        return m.group(0)

    return _VML_ANCHOR.sub(anchor, _VML_COLUMN.sub(column, data))


def _edit_xml(zf: zipfile.ZipFile, part: str, edit: Callable[[etree._Element], bool],
              replaced: dict[str, bytes]) -> None:
    data = replaced.get(part) or read_part(zf, part)
    tree = parse_xml(data, part)
    if edit(tree.getroot()):
        replaced[part] = serialize_xml(tree, data)


def _map_anchors(root: etree._Element, cmap: ColumnMap) -> bool:
    """Drawings anchored on a moving sheet (pictures, charts, shapes): 0-based ``xdr:col``."""
    changed = False
    for el in root.iter():
        if isinstance(el.tag, str) and local_name(el) == "col" and el.text and \
                el.text.strip().isdigit() and el.getparent() is not None and \
                local_name(el.getparent()) in ("from", "to"):
            el.text = str(cmap(int(el.text) + 1) - 1)
            changed = True
    return changed


def _map_refs_attr(root: etree._Element, names: tuple[str, ...], cmap: ColumnMap) -> bool:
    changed = False
    for el in root.iter():
        if isinstance(el.tag, str) and local_name(el) in names and el.get("ref"):
            el.set("ref", map_area(el.get("ref", ""), cmap))
            changed = True
    return changed


# --------------------------------------------------------------------------- styles


def _style_with_format(zf: zipfile.ZipFile, replaced: dict[str, bytes], base: str | None,
                       number_format: str) -> str | None:
    """Index of a cell format like ``base`` (an index in cellXfs) with ``number_format``,
    added to the styles part when needed; None when the workbook has no styles part."""
    wb = workbook_part(zf)
    styles = next((r.target for r in read_rels(zf, wb) if r.type.endswith("/styles")), None)
    member = find_member(zf, styles) if styles else None
    if member is None:
        return base
    result: list[str | None] = [base]

    def edit(root: etree._Element) -> bool:
        xfs = root.find(_q("cellXfs"))
        if xfs is None:
            return False
        entries = [e for e in xfs if isinstance(e.tag, str)]
        index = int(base) if base and base.isdigit() and int(base) < len(entries) else 0
        fmt_id = _number_format_id(root, number_format)
        xf = copy.deepcopy(entries[index]) if entries else etree.Element(_q("xf"))
        if xf.get("numFmtId") == str(fmt_id):
            result[0] = str(index)
            return False
        xf.set("numFmtId", str(fmt_id))
        xf.set("applyNumberFormat", "1")
        xfs.append(xf)
        xfs.set("count", str(len(entries) + 1))
        result[0] = str(len(entries))
        return True

    _edit_xml(zf, member, edit, replaced)
    return result[0]


_BUILTIN_FORMATS = {"General": 0, "0": 1, "0.00": 2, "#,##0": 3, "#,##0.00": 4, "@": 49}


def _number_format_id(root: etree._Element, code: str) -> int:
    if code in _BUILTIN_FORMATS:
        return _BUILTIN_FORMATS[code]
    fmts = root.find(_q("numFmts"))
    if fmts is None:
        fmts = etree.Element(_q("numFmts"))
        root.insert(0, fmts)
    ids = []
    for f in fmts:
        if isinstance(f.tag, str):
            ids.append(int(f.get("numFmtId", "0")))
            if f.get("formatCode") == code:
                return int(f.get("numFmtId", "0"))
    new = max([163, *ids]) + 1
    el = etree.SubElement(fmts, _q("numFmt"))
    el.set("numFmtId", str(new))
    el.set("formatCode", code)
    fmts.set("count", str(len(ids) + 1))
    return new


# --------------------------------------------------------------------------- the upgrade


@dataclass(frozen=True)
class UpgradeReport:
    source: Path
    output: Path
    from_version: str
    to_version: str
    sheets: tuple[str, ...]  # poste sheets whose columns moved
    formulas_elsewhere: int  # parts outside the poste sheets whose references were mapped


def default_output(path: Path) -> Path:
    return path.with_name(f"{path.stem}-v{L.TEMPLATE_VERSION.split('.')[0]}{path.suffix}")


def upgrade_workbook(src: Path | str, dst: Path | str | None = None,
                     force: bool = False) -> UpgradeReport:
    """Write ``dst`` (default ``<name>-v2.xlsx``), the workbook ``src`` moved to the current
    template version. Never writes over ``src``; never replaces ``dst`` unless ``force``."""
    from carbonclap_xl.xlsx.files import read_file

    src = Path(src)
    dst = Path(dst) if dst else default_output(src)
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise InputFileError(str(dst), "la sortie serait le classeur d'entrée : la mise à "
                                       "niveau écrit toujours un autre fichier (-o AUTRE)")
    if dst.exists() and not force:
        raise InputFileError(str(dst), "existe déjà : --force pour le remplacer, ou -o AUTRE")
    if dst.suffix.lower() != src.suffix.lower():
        raise InputFileError(str(dst), f"la sortie doit garder l'extension {src.suffix} du "
                                       "classeur d'entrée")
    data = read_file(src)
    if not data.is_carbonclap:
        raise UpgradeRefused(str(src), "ce n'est pas un classeur Carbon'Clap XL")
    version = data.template_version
    if version == L.TEMPLATE_VERSION:
        raise UpgradeRefused(str(src), f"le classeur est déjà au modèle {version} : rien à "
                                       "mettre à niveau")
    if version not in L.LINE_LAYOUTS:
        raise UpgradeRefused(str(src), f"version du modèle « {version or 'vide'} » inconnue "
                                       f"(connues : {', '.join(L.LINE_LAYOUTS)})")
    unread = [s for s in L.POSTE_SHEETS.values() if s in data.sheet_names
              and s not in data.sheets_read]
    if unread:
        raise UpgradeRefused(str(src), "en-têtes modifiés dans la feuille « "
                             + " », « ".join(unread) + " » : rétablissez-les (voir Contrôles "
                             "après « carbonclap-xl process ») avant la mise à niveau")
    old, new = L.LINE_LAYOUTS[version], L.CURRENT_LAYOUT
    cmap = column_map(old, new)
    from carbonclap_xl.core.atomic import require_folder

    require_folder(dst)  # a missing folder is refused, never created
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".upgrade-") as tmp:
        moved = Path(tmp) / f"moved{src.suffix}"
        moving = [s for s in L.POSTE_SHEETS.values() if s in data.sheets_read]
        sheets, elsewhere = _remap_package(src, moved, moving, cmap, new)
        _write_new_texts(moved, dst, moving, data, new)
    return UpgradeReport(src, dst, version, L.TEMPLATE_VERSION, tuple(sheets), elsewhere)


def _template_validations() -> list[etree._Element]:
    """The data validations of a poste sheet of the current template (built in memory)."""
    import io

    from carbonclap_xl.xlsx.template import build_template

    buffer = io.BytesIO()
    build_template().save(buffer)
    with zipfile.ZipFile(buffer) as zf:
        part = sheet_parts(zf)[L.POSTE_SHEETS["transport"]]
        root = parse_xml(zf.read(part), part).getroot()
    holder = root.find(_q("dataValidations"))
    return [] if holder is None else [v for v in holder if isinstance(v.tag, str)]


def _remap_package(src: Path, dst: Path, moving: list[str], cmap: ColumnMap,
                   new: L.LineLayout) -> tuple[list[str], int]:
    """The package with the columns of ``moving`` sheets mapped, and every reference."""
    maps = {name: cmap for name in moving}
    replaced: dict[str, bytes] = {}
    dropped: set[str] = set()
    elsewhere = 0
    try:
        with zipfile.ZipFile(src) as zf:
            parts = sheet_parts(zf)
            refs = _Refs(maps, list(parts))
            wb = workbook_part(zf)
            for name in moving:  # refuse before writing anything
                for rel in read_rels(zf, parts[name]):
                    if rel.type.endswith("/table") and not rel.external:
                        raise UpgradeRefused(str(src), f"la feuille « {name} » contient un "
                                             "tableau Excel (Insertion > Tableau) : convertissez"
                                             "-le en plage avant la mise à niveau")
            # styles of the inserted columns: their model's, with their own number format
            template_dv = _template_validations()
            first = zf.read(parts[moving[0]]) if moving else b""
            new_styles: dict[int, str | None] = {}
            if moving:
                model_cols = _col_styles(parse_xml(first, parts[moving[0]]).getroot())
                for new_col, model_old in cmap.inserted:
                    fmt = new.columns[new_col - 1].number_format
                    new_styles[new_col] = _style_with_format(zf, replaced,
                                                             model_cols.get(model_old), fmt)
            widths = {c: new.columns[c - 1].width for c, _m in cmap.inserted}
            header_rows = (L.HEADER_ROW - 1, L.HEADER_ROW)
            for name, part in parts.items():
                if not part.endswith(".xml") or "worksheets/" not in part:
                    continue
                data = zf.read(part)
                sheet = _Sheet(name, part, parse_xml(data, part), data)
                if etree.QName(sheet.tree.getroot()).namespace != _MAIN:
                    raise UpgradeRefused(str(src), f"feuille « {name} » au format OOXML "
                                         "Strict : enregistrez le classeur au format « Classeur "
                                         "Excel (.xlsx) » puis relancez")
                own = maps.get(name)
                _map_formulas(sheet, refs, own)
                _map_other_formulas(sheet, refs, own)
                if own is not None:
                    _move_cells(sheet, own, header_rows)
                    _map_columns(sheet, own, new_styles, widths)
                    _add_validations(sheet, template_dv, {c for c, _m in own.inserted})
                    _map_sheet_parts(zf, part, own, replaced)
                elif sheet.changed:
                    elsewhere += 1
                if sheet.changed:
                    replaced[part] = serialize_xml(sheet.tree, data)
            elsewhere += _map_workbook_names(zf, wb, refs, replaced)
            elsewhere += _map_charts_and_pivots(zf, refs, maps, replaced)
            calc_chain, edits = calc_chain_edits(zf)
            if calc_chain is not None:  # cells moved: Excel rebuilds its calculation chain
                dropped.add(calc_chain)
                replaced.update(edits)
            write_package(zf, src, dst, replaced, dropped)
    except zipfile.BadZipFile as exc:
        raise WorkbookPatchError(src.name, f"archive zip illisible ({exc})") from exc
    return moving, elsewhere


def _col_styles(root: etree._Element) -> dict[int, str | None]:
    """Old column number -> the style of its ``<col>`` definition."""
    styles: dict[int, str | None] = {}
    cols = root.find(_q("cols"))
    for el in [] if cols is None else cols:
        if isinstance(el.tag, str):
            low, high = int(el.get("min", "1")), int(el.get("max", el.get("min", "1")))
            for c in range(low, min(high, 64) + 1):
                styles[c] = el.get("style")
    return styles


def _map_sheet_parts(zf: zipfile.ZipFile, part: str, cmap: ColumnMap,
                     replaced: dict[str, bytes]) -> None:
    """Comments, notes, threaded comments and drawings of a moving sheet."""
    for rel in read_rels(zf, part):
        if rel.external:
            continue
        member = find_member(zf, rel.target)
        if member is None:
            continue
        kind = rel.type.rsplit("/", 1)[-1]
        if kind == "comments":
            _edit_xml(zf, member, lambda root: _map_refs_attr(root, ("comment",), cmap),
                      replaced)
        elif kind == "threadedComment":
            _edit_xml(zf, member, lambda root: _map_refs_attr(root, ("threadedComment",),
                                                              cmap), replaced)
        elif kind == "vmlDrawing":
            data = zf.read(member)
            mapped = _map_vml(data, cmap)
            if mapped != data:
                replaced[member] = mapped
        elif kind == "drawing":
            _edit_xml(zf, member, lambda root: _map_anchors(root, cmap), replaced)


def _map_workbook_names(zf: zipfile.ZipFile, wb: str, refs: _Refs,
                        replaced: dict[str, bytes]) -> int:
    order = refs.order

    def edit(root: etree._Element) -> bool:
        changed = False
        for el in root.iter(_q("definedName")):
            local = el.get("localSheetId")
            context = order[int(local)] if local and local.isdigit() and \
                int(local) < len(order) else None
            mapped = refs.formula(el.text or "", context, f"nom « {el.get('name')} »")
            if mapped != (el.text or ""):
                el.text, changed = mapped, True
        return changed

    before = wb in replaced
    _edit_xml(zf, wb, edit, replaced)
    return int(wb in replaced and not before)


def _map_charts_and_pivots(zf: zipfile.ZipFile, refs: _Refs, maps: dict[str, ColumnMap],
                           replaced: dict[str, bytes]) -> int:
    count = 0
    for member in zf.namelist():
        lowered = member.lower()
        if lowered.startswith("xl/charts/") and lowered.endswith(".xml") and \
                "/_rels/" not in lowered:
            def edit(root: etree._Element, member: str = member) -> bool:
                changed = False
                for el in root.iter():
                    if isinstance(el.tag, str) and local_name(el) == "f" and el.text:
                        mapped = refs.formula(el.text, None, member)
                        if mapped != el.text:
                            el.text, changed = mapped, True
                return changed

            _edit_xml(zf, member, edit, replaced)
            count += member in replaced
        elif lowered.startswith("xl/pivotcache/pivotcachedefinition") and \
                lowered.endswith(".xml"):
            def pivot(root: etree._Element) -> bool:
                changed = False
                for el in root.iter(_q("worksheetSource")):
                    cmap = maps.get(el.get("sheet") or "")
                    if cmap is not None and el.get("ref"):
                        el.set("ref", map_area(el.get("ref", ""), cmap))
                        changed = True
                return changed

            _edit_xml(zf, member, pivot, replaced)
            count += member in replaced
    return count


def _write_new_texts(src: Path, dst: Path, sheets: list[str], data: object,
                     new: L.LineLayout) -> None:
    """Headers, help texts, the version, a note in Contrôles: through the surgical writer."""
    writes: dict[str, dict[str, object]] = {}
    for sheet in sheets:
        cells: dict[str, object] = {}
        for column in new.columns:
            cells[f"{column.letter}{L.HEADER_ROW}"] = column.header
            cells[f"{column.letter}{L.HEADER_ROW - 1}"] = column.help or None
        writes[sheet] = cells
    writes[L.SHEET_PRODUCTION] = {L.FIELD_BY_KEY["template_version"].cell: L.TEMPLATE_VERSION}
    clear: dict[str, list[str]] = {}
    names = getattr(data, "sheet_names", [])
    if L.SHEET_CONTROLES in names:
        rows = getattr(data, "control_rows", 0)
        writes[L.SHEET_CONTROLES] = {L.CTRL_SUMMARY_CELL: (
            f"Classeur mis à niveau au modèle {L.TEMPLATE_VERSION} : relancez le calcul "
            "(carbonclap-xl process) pour mettre à jour les contrôles.")}
        if rows:
            clear[L.SHEET_CONTROLES] = [f"A{L.CTRL_FIRST_ROW}:F{L.CTRL_FIRST_ROW + rows}"]
    readme = _readme_version_cell(src)
    if readme:
        writes[L.SHEET_README] = {readme: f"Version du modèle : {L.TEMPLATE_VERSION}"}
    patch_workbook(src, dst, writes, clear)


def _readme_version_cell(path: Path) -> str | None:
    """The Lisez-moi cell that states the template version, if the sheet still has it."""
    from carbonclap_xl.xlsx.files import FileSource

    source = FileSource(path)
    if L.SHEET_README not in source.sheet_names():
        return None
    for r, row in enumerate(source.values(L.SHEET_README), start=1):
        if row and isinstance(row[0], str) and row[0].startswith("Version du modèle : "):
            return f"A{r}"
    return None


__all__ = ["ColumnMap", "UpgradeRefused", "UpgradeReport", "column_map", "default_output",
           "map_area", "upgrade_workbook"]
