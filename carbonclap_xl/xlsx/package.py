"""Read the Open Packaging Conventions (OPC) layer of an .xlsx/.xlsm file without openpyxl.

A workbook is a zip of XML *parts* tied together by relationship parts (``_rels/*.rels``) and
typed by ``[Content_Types].xml``. This module finds parts by following relationships (never by
assuming ``xl/workbook.xml``), parses XML safely (no DTD, no entities, no network) and writes a
part back with the XML declaration its source had.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from dataclasses import dataclass
from urllib.parse import unquote

from lxml import etree

from carbonclap_xl.core.errors import WorkbookPatchError
from carbonclap_xl.xlsx.zipread import read_member

CONTENT_TYPES_PART = "[Content_Types].xml"
PACKAGE_RELS_PART = "_rels/.rels"

# Transitional (what Excel writes) and Strict (ISO 29500 strict) relationship namespaces and
# relationship types.
_R_NAMESPACES = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "http://purl.oclc.org/ooxml/officeDocument/relationships",
)
_REL_TYPE_PREFIXES = _R_NAMESPACES
REL_OFFICE_DOCUMENT = "officeDocument"
REL_WORKSHEET = "worksheet"
REL_CALC_CHAIN = "calcChain"

_XML_DECLARATION = re.compile(rb"^(?:\xef\xbb\xbf)?<\?xml[^>]*\?>\s*")


@dataclass(frozen=True)
class Relationship:
    """One ``<Relationship>`` of a ``.rels`` part, its target resolved to a zip member name."""

    id: str
    type: str
    target: str
    external: bool

    def is_type(self, short_type: str) -> bool:
        """True when the relationship type is ``<transitional or strict prefix>/<short_type>``."""
        return any(self.type == f"{prefix}/{short_type}" for prefix in _REL_TYPE_PREFIXES)


def local_name(element: etree._Element) -> str:
    """The tag of ``element`` without its namespace (``'c'`` for ``{ns}c`` and ``x:c``)."""
    return etree.QName(element).localname


def parse_xml(data: bytes, part: str) -> etree._ElementTree:
    """Parse one part safely: no DTD, no entity expansion, no network, libxml2's size limits.

    A part carrying a DOCTYPE is refused: OOXML never uses one, and it is how entity bombs and
    external entities get in.
    """
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_blank_text=False,
        remove_comments=False,
        remove_pis=False,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise WorkbookPatchError(part, f"XML illisible ({xml_error_fr(exc)})") from exc
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise WorkbookPatchError(part, "le XML déclare un DOCTYPE, refusé par sécurité")
    return tree


def xml_error_fr(exc: etree.XMLSyntaxError) -> str:
    """libxml2's complaint, in French where it is one that hostile files provoke."""
    text = str(exc)
    line = exc.lineno or (exc.position[0] if exc.position else 0)
    if "Excessive depth" in text:
        return f"éléments imbriqués sur plus de 256 niveaux, ligne {line}"
    return f"XML invalide ligne {line} : {text[:160]}"


def serialize_xml(tree: etree._ElementTree, original: bytes) -> bytes:
    """Serialise ``tree`` in UTF-8, keeping the XML declaration (and what follows it) of
    ``original`` byte for byte; a part that had no declaration gets none."""
    body = etree.tostring(tree, encoding="UTF-8", xml_declaration=False)
    encoding = (tree.docinfo.encoding or "UTF-8").upper().replace("_", "-")
    match = _XML_DECLARATION.match(original)
    if match is None:
        return body
    if encoding in ("UTF-8", "UTF8", "US-ASCII", "ASCII"):
        return match.group(0) + body
    standalone = ' standalone="yes"' if tree.docinfo.standalone else ""
    return f'<?xml version="1.0" encoding="UTF-8"{standalone}?>\r\n'.encode() + body


def rels_part_for(part: str) -> str:
    """The relationship part of ``part``: ``xl/workbook.xml`` -> ``xl/_rels/workbook.xml.rels``."""
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", f"{name}.rels")


def resolve_target(source_part: str, target: str) -> str:
    """Zip member name of a relationship ``target`` written in ``source_part``'s rels.

    Targets are relative to the source part's folder (``worksheets/sheet1.xml``) or absolute
    from the package root (``/xl/worksheets/sheet1.xml``).
    """
    if target.startswith("/"):
        return posixpath.normpath(target.lstrip("/"))
    folder = posixpath.dirname(source_part)
    return posixpath.normpath(posixpath.join(folder, target)).lstrip("/")


def find_member(zf: zipfile.ZipFile, name: str) -> str | None:
    """The zip member that holds part ``name``: exact match first, then OPC's case-insensitive
    part names, then a percent-decoded spelling; None when there is none."""
    names = zf.NameToInfo
    if name in names:
        return name
    for candidate in (name, unquote(name)):
        lowered = candidate.lower()
        for member in names:
            if member.lower() == lowered:
                return member
    return None


def read_part(zf: zipfile.ZipFile, part: str) -> bytes:
    """The bytes of ``part`` (found as :func:`find_member` does); WorkbookPatchError if absent,
    HostileFile if its stream is damaged or longer than it declares (``zipread``)."""
    member = find_member(zf, part)
    if member is None:
        raise WorkbookPatchError(part, "partie absente du classeur")
    return read_member(zf, member)  # bounded: never trusts the member's declared size


def read_rels(zf: zipfile.ZipFile, source_part: str) -> list[Relationship]:
    """The relationships of ``source_part`` ('' for the package itself), targets resolved.

    A part without a ``.rels`` part has no relationships.
    """
    rels_part = PACKAGE_RELS_PART if source_part == "" else rels_part_for(source_part)
    if find_member(zf, rels_part) is None:
        return []
    tree = parse_xml(read_part(zf, rels_part), rels_part)
    result: list[Relationship] = []
    for element in tree.getroot():
        if not isinstance(element.tag, str) or local_name(element) != "Relationship":
            continue
        target = element.get("Target", "")
        external = element.get("TargetMode", "Internal") == "External"
        result.append(
            Relationship(
                id=element.get("Id", ""),
                type=element.get("Type", ""),
                target=target if external else resolve_target(source_part, target),
                external=external,
            )
        )
    return result


def workbook_part(zf: zipfile.ZipFile) -> str:
    """Zip member name of the workbook part, found through ``_rels/.rels``."""
    for rel in read_rels(zf, ""):
        if rel.is_type(REL_OFFICE_DOCUMENT) and not rel.external:
            member = find_member(zf, rel.target)
            if member is None:
                raise WorkbookPatchError(rel.target, "partie principale du classeur absente")
            return member
    raise WorkbookPatchError(
        PACKAGE_RELS_PART, "aucune relation officeDocument : ce n'est pas un classeur Excel"
    )


def sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name -> part path inside the zip (e.g. 'xl/worksheets/sheet3.xml'), in workbook
    order, resolved through the workbook part and its rels (relationship targets may be relative,
    'worksheets/sheet1.xml', or absolute, '/xl/worksheets/sheet1.xml'). The workbook part is
    found through _rels/.rels (officeDocument relationship), not assumed to be xl/workbook.xml.

    Chart sheets and dialog sheets are listed too: they are sheets of the workbook, even though
    they hold no cells.
    """
    wb_part = workbook_part(zf)
    rels = {rel.id: rel for rel in read_rels(zf, wb_part)}
    root = parse_xml(read_part(zf, wb_part), wb_part).getroot()
    result: dict[str, str] = {}
    for sheets in root:
        if not isinstance(sheets.tag, str) or local_name(sheets) != "sheets":
            continue
        for sheet in sheets:
            if not isinstance(sheet.tag, str) or local_name(sheet) != "sheet":
                continue
            name = sheet.get("name")
            rid = next(
                (sheet.get(f"{{{ns}}}id") for ns in _R_NAMESPACES if sheet.get(f"{{{ns}}}id")), None
            )
            if name is None or rid is None:
                raise WorkbookPatchError(wb_part, "élément <sheet> sans nom ou sans r:id")
            rel = rels.get(rid)
            if rel is None or rel.external:
                raise WorkbookPatchError(
                    rels_part_for(wb_part), f"relation {rid} de la feuille « {name} » introuvable"
                )
            member = find_member(zf, rel.target)
            if member is None:
                raise WorkbookPatchError(rel.target, f"partie de la feuille « {name} » absente")
            result[name] = member
    return result


def drop_part(zf: zipfile.ZipFile, part: str, owner_part: str) -> dict[str, bytes]:
    """Remove every reference to ``part``: its relationship from ``owner_part``'s rels and its
    ``<Override>`` from ``[Content_Types].xml``.

    Returns the new bytes of the parts that changed (the caller omits ``part`` itself).
    """
    def internal_target(element: etree._Element) -> bool:
        return (element.get("TargetMode", "Internal") != "External"
                and resolve_target(owner_part, element.get("Target", "")).lower() == part.lower())

    def override_of_part(element: etree._Element) -> bool:
        return element.get("PartName", "").lstrip("/").lower() == part.lower()

    changed: dict[str, bytes] = {}
    for member, tag, matches in ((rels_part_for(owner_part), "Relationship", internal_target),
                                 (CONTENT_TYPES_PART, "Override", override_of_part)):
        found = find_member(zf, member)
        if found is None:
            continue
        original = read_member(zf, found)
        tree = parse_xml(original, found)
        doomed = [el for el in tree.getroot()
                  if isinstance(el.tag, str) and local_name(el) == tag and matches(el)]
        for element in doomed:
            _remove(element)
        if doomed:
            changed[found] = serialize_xml(tree, original)
    return changed


def _remove(element: etree._Element) -> None:
    """Remove ``element`` from its parent (its tail, whitespace between siblings, goes with it)."""
    parent = element.getparent()
    if parent is not None:
        parent.remove(element)
