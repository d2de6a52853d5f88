"""Safety gate for submitted workbooks: cheap checks before any spreadsheet parser sees a file.

``inspect_package`` treats a submitted ``.xlsx`` / ``.xlsm`` as untrusted bytes. It reads the file
signature, the zip central directory and a handful of small XML parts, streams each sheet once
to find how far it really extends, and either returns a :class:`PackageReport` or raises
:class:`~carbonclap_xl.core.errors.HostileFile`
with one of the stable codes below. It never writes to
disk and never extracts a member; every decompression is streamed with a byte cap.

====================  =====================================================================
code                  situation
====================  =====================================================================
``EMPTY_FILE``        the file has 0 bytes
``FILE_TOO_LARGE``    the file is bigger than ``Limits.max_file_bytes``
``ENCRYPTED``         a password-protected workbook (OLE file with ``EncryptionInfo``, or an
                      encrypted zip member)
``LEGACY_XLS``        an Excel 97-2003 ``.xls`` (OLE file with a ``Workbook``/``Book`` stream)
``ODS_FILE``          an OpenDocument spreadsheet (zip whose first member is ``mimetype``)
``NOT_A_WORKBOOK``    not a zip at all (CSV, HTML, PDF renamed), another OLE document, a zip
                      without ``[Content_Types].xml``, ``_rels/.rels`` or a workbook part,
                      or a binary ``.xlsb``
``CORRUPT_ZIP``       truncated or damaged archive (no central directory, bad CRC, broken
                      deflate stream, unsupported compression, two members with one name)
``ZIP_BOMB``          too many members, a member or a total too big, or a member compressed
                      more than ``max_ratio`` times (decided from the central directory)
``PATH_TRAVERSAL``    a member name or relationship target that escapes the package
                      (``../``, leading ``/``, backslash, drive letter)
``XML_ENTITY``        an XML part with a DOCTYPE or ENTITY declaration
``SHEET_TOO_LARGE``   a sheet whose declared ``<dimension>``, last cell, last row or merged
                      range exceeds ``max_rows`` / ``max_columns`` / ``max_cells``
``CORRUPT_WORKBOOK``  the zip is fine but the workbook inside is broken or ambiguous (invalid
                      XML, missing sheet part, two workbook parts, odd XML encoding)
====================  =====================================================================

Macro parts are not an error: they are listed in ``PackageReport.macros`` so the validator can
say "macros found, never run". External links are listed in ``PackageReport.external_links``.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO, NoReturn
from xml.etree.ElementTree import Element, ParseError
from xml.parsers import expat

import defusedxml.ElementTree as DefusedET
from defusedxml import DefusedXmlException

from carbonclap_xl.core.a1 import cell_ref, col_index
from carbonclap_xl.core.errors import HostileFile
from carbonclap_xl.core.numbers import fr_integer
from carbonclap_xl.core.rejections import RejectionCode
from carbonclap_xl.xlsx.zipread import (
    ENCRYPTED_REASON,
    bomb_reason,
    corrupt_zip_reason,
    iter_member,
    member_is_link,
)

__all__ = ["Limits", "PackageReport", "SafetyCode", "inspect_package"]

MIB = 2**20


SafetyCode = RejectionCode  # the gate's codes are rejection codes


@dataclass(frozen=True)
class Limits:
    """Bounds a submitted workbook must stay within (sizes in bytes)."""

    max_file_bytes: int = 50 * MIB
    max_members: int = 2_000
    max_total_uncompressed: int = 300 * MIB
    max_member_uncompressed: int = 200 * MIB
    max_ratio: float = 200.0  # per member, uncompressed/compressed, for members > 1 MiB
    max_cells: int = 2_000_000  # declared sheet extent (<dimension ref>) and actual max ref
    max_columns: int = 1_000
    max_rows: int = 200_000


@dataclass(frozen=True)
class PackageReport:
    """What :func:`inspect_package` learned about a workbook it let through."""

    path: str
    kind: str  # "xlsx" or "xlsm" (from the workbook part's content type)
    macros: tuple[str, ...]  # vbaProject*.bin, xl/macrosheets/*, xl/activeX/*, xl/embeddings/*
    external_links: tuple[str, ...]  # xl/externalLinks/*, xl/connections.xml
    sheets: dict[str, str]  # sheet name -> part path, in workbook order
    sheet_extents: dict[str, tuple[int, int]]  # sheet name -> (max_row, max_col), (0, 0) if empty


# --- constants ----------------------------------------------------------------------------------

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_CONTENT_TYPES = "[Content_Types].xml"
_ROOT_RELS = "_rels/.rels"
_DEFAULT_WORKBOOK = "xl/workbook.xml"
_WORKBOOK_KINDS = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": "xlsx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml": "xlsx",
    "application/vnd.ms-excel.sheet.macroenabled.main+xml": "xlsm",
    "application/vnd.ms-excel.template.macroenabled.main+xml": "xlsm",
    "application/vnd.ms-excel.addin.macroenabled.main+xml": "xlsm",
}
_XLSB_TYPE = "application/vnd.ms-excel.sheet.binary.macroenabled.main"
_OFFICE_DOCUMENT_REL = "/officedocument"  # suffix of the transitional and strict types
_MACRO_DIRS = ("xl/macrosheets/", "xl/activex/", "xl/embeddings/")
_EXTERNAL_DIR = "xl/externallinks/"
_CONNECTIONS = "xl/connections.xml"
_XML_SUFFIXES = (".xml", ".rels", ".vml")
_XML_ENCODINGS = {
    "utf-8", "utf8", "utf-16", "utf16", "utf-16le", "utf-16be", "us-ascii", "ascii",
    "iso-8859-1", "latin-1", "latin1", "windows-1252", "cp1252",
}  # fmt: skip
_CHUNK = 64 * 1024
_SMALL_PART_MAX = 8 * MIB  # content types, relationships, workbook.xml: parsed as trees
_TOKEN_MAX = 4 * MIB  # a cell holds 32,767 characters at most: no tag or text is longer
_PROLOG_CHUNK = 4 * 1024
_PROLOG_MAX = 64 * 1024  # bytes of an XML part read to find its root element
_MAX_CD_ENTRY = 1024  # generous bytes per central-directory entry, for the pre-check
_BIG = 10**9  # stands for "a number too long to be a real row or column"
_CELL_RE = re.compile(r"\$?([A-Za-z]+)\$?([0-9]+)")
_DIGITS = "0123456789"
_CELL_CONTENT = frozenset({"v", "f", "is", "t", "r", "rPr"})  # elements the scan skips at once
_DRIVE_RE = re.compile(r"[A-Za-z]:")
_ENCODING_RE = re.compile(r"""<\?xml[^>]*?encoding\s*=\s*["']([^"']*)["']""")


# --- entry point --------------------------------------------------------------------------------


def inspect_package(path: Path, limits: Limits = Limits()) -> PackageReport:
    """Cheap checks before any parser sees the file; raises ``HostileFile``.

    ``path`` must name an existing file (a missing file raises ``FileNotFoundError``: that is
    a caller bug, not a hostile submission).
    """
    where = str(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block us
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        _reject(where, SafetyCode.NOT_A_WORKBOOK, _NOT_A_FILE)
    with os.fdopen(fd, "rb") as f:
        size = info.st_size
        if size == 0:
            _reject(where, SafetyCode.EMPTY_FILE, _EMPTY)
        if size > limits.max_file_bytes:
            _reject(
                where,
                SafetyCode.FILE_TOO_LARGE,
                f"Le fichier pèse {_mb(size)} Mo, au-delà de la limite de "
                f"{_mb(limits.max_file_bytes)} Mo : allégez le classeur (images, onglets "
                "inutiles) ou répartissez les données sur plusieurs fichiers.",
            )
        head = f.read(8)
        if head.startswith(_OLE_MAGIC):
            f.seek(0)
            _classify_ole(where, f.read())
        if not head.startswith((_ZIP_MAGIC, _EMPTY_ZIP_MAGIC)):
            _reject(where, SafetyCode.NOT_A_WORKBOOK, _NOT_ZIP)
        _precheck_directory(where, f, size, limits)
        try:
            archive = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, struct.error, EOFError,
                OSError, NotImplementedError) as exc:  # fmt: skip
            _reject(where, SafetyCode.CORRUPT_ZIP, _corrupt_zip(_zip_damage(exc)))
        with archive:
            return _Inspection(where, archive, limits).run()


# --- French reasons -----------------------------------------------------------------------------

_SEND_XLSX = "ouvrez-le dans Excel, enregistrez-le au format .xlsx et renvoyez-le."
_EMPTY = "Le fichier est vide (0 octet) : renvoyez le classeur .xlsx complet."
_NOT_A_FILE = "Ce n'est pas un fichier ordinaire : envoyez le classeur .xlsx lui-même."
_NOT_ZIP = (
    "Le fichier n'est pas un classeur Excel (c'est peut-être un CSV, une page web ou un PDF "
    "renommé en .xlsx) : " + _SEND_XLSX
)
_ENCRYPTED = ENCRYPTED_REASON
_LEGACY = (
    "Le fichier est au format Excel 97-2003 (.xls), qui n'est pas accepté : ouvrez-le dans Excel "
    "et enregistrez-le au format .xlsx."
)
_ODS = (
    "Le fichier est un classeur OpenDocument (.ods) : dans LibreOffice, choisissez Fichier > "
    "Enregistrer sous > « Excel 2007-365 (.xlsx) » et renvoyez ce fichier .xlsx."
)
_OTHER_OLE = (
    "Le fichier est un ancien document Office qui n'est pas un classeur Excel : " + _SEND_XLSX
)
_XLSB = "Le classeur est au format binaire Excel (.xlsb), qui n'est pas accepté : " + _SEND_XLSX


def _reject(where: str, code: SafetyCode, reason: str) -> NoReturn:
    raise HostileFile(where, code.value, reason)


def _mb(n: int) -> str:
    return f"{n / MIB:.1f}".replace(".", ",")


_corrupt_zip = corrupt_zip_reason


def _zip_damage(exc: BaseException, member: str | None = None) -> str:
    """A French description of why zipfile or zlib gave up."""
    text = str(exc)
    where = f" dans la partie {member[:120]}" if member else ""
    if "CRC" in text:
        return f"somme de contrôle incorrecte{where}"
    if isinstance(exc, zlib.error | EOFError):
        return f"données compressées interrompues ou invalides{where}"
    if member is None:
        return "répertoire de l'archive ZIP absent ou illisible"
    return f"archive ZIP illisible{where}"


def _corrupt_workbook(detail: str) -> str:
    return f"Le classeur est endommagé ({detail}) : " + _SEND_XLSX


_bomb = bomb_reason


def _traversal(name: str) -> str:
    return (
        f"L'archive contient un chemin interdit (« {name[:120]} ») qui sort du classeur : "
        "renvoyez le classeur tel qu'Excel l'enregistre, sans le retoucher avec un autre outil."
    )


def _link(name: str) -> str:
    return (
        f"L'archive contient un lien symbolique ou un fichier spécial (« {name[:120]} ») : "
        "renvoyez le classeur tel qu'Excel l'enregistre, sans le retoucher avec un autre outil."
    )


def _entity(part: str) -> str:
    return (
        f"La partie {part} contient une déclaration DOCTYPE ou ENTITY, interdite dans un "
        "classeur Excel : renvoyez le classeur réenregistré par Excel, sans le retoucher avec "
        "un autre outil."
    )


# --- OLE: encrypted OOXML or .xls ---------------------------------------------------------------


def _classify_ole(where: str, data: bytes) -> NoReturn:
    import olefile  # a dependency of msoffcrypto-tool; only needed for this rare branch

    try:
        ole = olefile.OleFileIO(io.BytesIO(data))
        try:
            streams = {"/".join(entry).casefold() for entry in ole.listdir()}
        finally:
            ole.close()
    except Exception:  # third-party parser on hostile bytes: any failure means "unreadable"
        _reject(where, SafetyCode.NOT_A_WORKBOOK, _OTHER_OLE)
    if "encryptioninfo" in streams or "encryptedpackage" in streams:
        _reject(where, SafetyCode.ENCRYPTED, _ENCRYPTED)
    if "workbook" in streams or "book" in streams:
        _reject(where, SafetyCode.LEGACY_XLS, _LEGACY)
    _reject(where, SafetyCode.NOT_A_WORKBOOK, _OTHER_OLE)


# --- zip directory ------------------------------------------------------------------------------


def _precheck_directory(where: str, f: BinaryIO, size: int, limits: Limits) -> None:
    """Refuse an absurd member count from the end record, before zipfile builds its list."""
    tail_len = min(size, 22 + 65_535)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    pos = tail.rfind(_EMPTY_ZIP_MAGIC)
    if pos < 0 or len(tail) - pos < 22:
        return  # zipfile will say what is wrong
    count, cd_size = struct.unpack("<HI", tail[pos + 10 : pos + 16])
    if count == 0xFFFF or cd_size == 0xFFFFFFFF:  # zip64: the real numbers are in its record
        rec = pos - 20 - 56
        if rec >= 0 and tail[rec : rec + 4] == b"PK\x06\x06":
            count, cd_size = struct.unpack("<QQ", tail[rec + 32 : rec + 48])
    if count > limits.max_members or cd_size > limits.max_members * _MAX_CD_ENTRY:
        _reject(
            where,
            SafetyCode.ZIP_BOMB,
            _bomb(f"{count} parties déclarées, limite {limits.max_members}"),
        )


def _unsafe_name(name: str) -> bool:
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        return True
    if _DRIVE_RE.match(name):
        return True
    return ".." in name.split("/")


# --- the inspection proper ----------------------------------------------------------------------


class _Inspection:
    """One pass over one open archive; methods raise HostileFile."""

    def __init__(self, where: str, archive: zipfile.ZipFile, limits: Limits) -> None:
        self.where = where
        self.archive = archive
        self.limits = limits
        self.infos = archive.infolist()
        self.by_name: dict[str, zipfile.ZipInfo] = {}
        self.overrides: dict[str, str] = {}
        self.defaults: dict[str, str] = {}
        self.verified: set[str] = set()  # members inflated to their end, size and CRC checked

    def run(self) -> PackageReport:
        self._check_directory()
        self._check_xml_prologs()
        workbook, kind = self._find_workbook()
        sheets = self._read_sheets(workbook)
        extents: dict[str, tuple[int, int]] = {}
        scanned: dict[str, tuple[int, int]] = {}
        for name, part in sheets.items():
            if part not in scanned:
                scanned[part] = self._scan_sheet(name, part)
            extents[name] = scanned[part]
        macros, links = self._classify_parts()
        self._verify_members()
        return PackageReport(
            path=self.where,
            kind=kind,
            macros=macros,
            external_links=links,
            sheets=sheets,
            sheet_extents=extents,
        )

    # -- directory --------------------------------------------------------------------------

    def _check_directory(self) -> None:
        limits = self.limits
        if len(self.infos) > limits.max_members:
            self._reject(
                SafetyCode.ZIP_BOMB,
                _bomb(f"{len(self.infos)} parties, limite {limits.max_members}"),
            )
        if self.infos and self.infos[0].filename == "mimetype":
            self._check_opendocument(self.infos[0])
        total = 0
        for info in self.infos:
            name = info.filename
            if _unsafe_name(name) or _unsafe_name(info.orig_filename):
                self._reject(SafetyCode.PATH_TRAVERSAL, _traversal(info.orig_filename))
            if member_is_link(info):
                self._reject(SafetyCode.PATH_TRAVERSAL, _link(info.orig_filename))
            key = name.casefold()
            if key in self.by_name:
                self._reject(
                    SafetyCode.CORRUPT_ZIP,
                    _corrupt_zip(f"la partie {name[:120]} figure deux fois dans l'archive"),
                )
            self.by_name[key] = info
            if info.flag_bits & 0x1:
                self._reject(SafetyCode.ENCRYPTED, _ENCRYPTED)
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                self._reject(
                    SafetyCode.CORRUPT_ZIP,
                    _corrupt_zip(f"compression non standard pour la partie {name[:120]}"),
                )
            if info.file_size > limits.max_member_uncompressed:
                self._reject(
                    SafetyCode.ZIP_BOMB,
                    _bomb(f"la partie {name[:120]} fait {_mb(info.file_size)} Mo décompressée"),
                )
            total += info.file_size
            if total > limits.max_total_uncompressed:
                self._reject(
                    SafetyCode.ZIP_BOMB,
                    _bomb(f"plus de {_mb(limits.max_total_uncompressed)} Mo une fois décompressé"),
                )
            if info.file_size > MIB and info.file_size > limits.max_ratio * max(
                info.compress_size, 1
            ):
                self._reject(
                    SafetyCode.ZIP_BOMB,
                    _bomb(
                        f"la partie {name[:120]} passe de {info.compress_size} octets à "
                        f"{_mb(info.file_size)} Mo"
                    ),
                )

    def _check_opendocument(self, info: zipfile.ZipInfo) -> None:
        mimetype = b"".join(self._iter_member(info, cap=256, chunk=256, bounded=False))
        if mimetype.startswith(b"application/vnd.oasis.opendocument.spreadsheet"):
            self._reject(SafetyCode.ODS_FILE, _ODS)
        if mimetype.startswith(b"application/vnd.oasis.opendocument"):
            self._reject(SafetyCode.NOT_A_WORKBOOK, _NOT_ZIP)

    # -- member reading ---------------------------------------------------------------------

    def _iter_member(
        self, info: zipfile.ZipInfo, cap: int, chunk: int = _CHUNK, bounded: bool = True
    ) -> Iterator[bytes]:
        """Stream a member's decompressed bytes (``zipread``: never more than it declares);
        past ``cap`` bytes: ZIP_BOMB, or stop quietly when ``bounded`` is False (the caller
        only wants a prefix). A member read to its end is marked verified."""
        read = 0
        for data in iter_member(self.archive, info, self.limits.max_member_uncompressed, chunk,
                                where=self.where):
            read += len(data)
            if read > cap:
                if not bounded:
                    return
                self._reject(
                    SafetyCode.ZIP_BOMB,
                    _bomb(f"la partie {info.filename[:120]} dépasse {_mb(cap)} Mo"),
                )
            yield data
        self.verified.add(info.filename)

    def _verify_members(self) -> None:
        """Inflate every member not read yet to its end (bounded by its declared size): what
        python-calamine or a later reader inflates must not hold more than it declares."""
        for info in self.infos:
            if info.filename not in self.verified and not info.filename.endswith("/"):
                for _data in self._iter_member(info, self.limits.max_member_uncompressed):
                    pass

    def _parse_small_xml(self, info: zipfile.ZipInfo) -> Element:
        """Parse a package-structure part (content types, relationships, workbook) as a tree."""
        if info.file_size > _SMALL_PART_MAX:
            self._reject(
                SafetyCode.ZIP_BOMB,
                _bomb(f"la partie {info.filename[:120]} fait {_mb(info.file_size)} Mo"),
            )
        data = b"".join(self._iter_member(info, cap=_SMALL_PART_MAX))
        try:
            return DefusedET.fromstring(data, forbid_dtd=True)
        except DefusedXmlException:
            self._reject(SafetyCode.XML_ENTITY, _entity(info.filename))
        except ParseError as exc:
            line = exc.position[0] if exc.position else 0
            self._reject(
                SafetyCode.CORRUPT_WORKBOOK,
                _corrupt_workbook(
                    f"la partie {info.filename} n'est pas un XML valide, ligne {line}"
                ),
            )

    # -- XML prologs ------------------------------------------------------------------------

    def _is_xml_part(self, info: zipfile.ZipInfo) -> bool:
        name = info.filename.casefold()
        if name.endswith("/"):
            return False
        if name.endswith(_XML_SUFFIXES):
            return True
        ctype = self.overrides.get(name) or self.defaults.get(posixpath.splitext(name)[1][1:])
        return ctype is not None and ctype.endswith("xml")

    def _check_xml_prologs(self) -> None:
        """Refuse a DOCTYPE/ENTITY declaration in any XML part, whoever would read it later."""
        ct_info = self.by_name.get(_CONTENT_TYPES.casefold())
        if ct_info is None:
            self._reject(
                SafetyCode.NOT_A_WORKBOOK,
                "Le fichier est une archive ZIP mais pas un classeur Excel (il manque "
                "[Content_Types].xml) : " + _SEND_XLSX,
            )
        self._check_prolog(ct_info)
        self._read_content_types(ct_info)
        for info in self.infos:
            if info is not ct_info and self._is_xml_part(info):
                self._check_prolog(info)

    def _check_prolog(self, info: zipfile.ZipInfo) -> None:
        head = b""
        verdict: bool | None = None
        for data in self._iter_member(info, self.limits.max_member_uncompressed, _PROLOG_CHUNK):
            head += data
            verdict = _prolog_verdict(head)
            if verdict is not None or len(head) >= _PROLOG_MAX:
                break
        text = head.decode("latin-1").replace("\x00", "")
        encoding = _ENCODING_RE.match(text.lstrip("\ufeffÿþï»¿ \t\r\n"))
        if encoding and encoding.group(1).strip().lower() not in _XML_ENCODINGS:
            self._reject(
                SafetyCode.CORRUPT_WORKBOOK,
                _corrupt_workbook(
                    f"la partie {info.filename} est codée en « {encoding.group(1)[:40]} »"
                ),
            )
        if verdict is True:
            self._reject(SafetyCode.XML_ENTITY, _entity(info.filename))
        if verdict is None and len(head) >= _PROLOG_MAX:
            self._reject(
                SafetyCode.CORRUPT_WORKBOOK,
                _corrupt_workbook(f"la partie {info.filename} commence par un en-tête anormal"),
            )

    def _read_content_types(self, info: zipfile.ZipInfo) -> None:
        root = self._parse_small_xml(info)
        for el in root:
            tag = _local(el.tag)
            ctype = el.get("ContentType", "").strip().lower()
            if tag == "Override":
                self.overrides[el.get("PartName", "").lstrip("/").casefold()] = ctype
            elif tag == "Default":
                self.defaults[el.get("Extension", "").lstrip(".").casefold()] = ctype

    # -- workbook and sheets ----------------------------------------------------------------

    def _member(self, part: str) -> zipfile.ZipInfo | None:
        return self.by_name.get(part.casefold())

    def _content_type(self, part: str) -> str:
        key = part.casefold()
        return self.overrides.get(key) or self.defaults.get(posixpath.splitext(key)[1][1:], "")

    def _find_workbook(self) -> tuple[str, str]:
        """The one workbook part every reader will agree on, and the package kind.

        openpyxl finds the workbook by content type, OPC by ``_rels/.rels``, some readers
        open ``xl/workbook.xml`` directly: all three must name the same part.
        """
        rels_info = self._member(_ROOT_RELS)
        if rels_info is None:
            self._reject(
                SafetyCode.NOT_A_WORKBOOK,
                "Le fichier est une archive ZIP mais pas un classeur Excel (il manque "
                "_rels/.rels) : " + _SEND_XLSX,
            )
        named = [
            rel.target
            for rel in self._relationships(rels_info, "")
            if rel.type.lower().endswith(_OFFICE_DOCUMENT_REL) and not rel.external
        ]
        named += [part for part, ctype in self.overrides.items() if ctype in _WORKBOOK_KINDS]
        named.append(_DEFAULT_WORKBOOK)
        candidates: dict[str, zipfile.ZipInfo] = {}
        for part in named:
            info = self._member(part)
            if info is not None:
                candidates.setdefault(info.filename.casefold(), info)
        if len(candidates) > 1:
            names = ", ".join(sorted(info.filename for info in candidates.values()))
            self._reject(
                SafetyCode.CORRUPT_WORKBOOK,
                _corrupt_workbook(f"plusieurs parties se présentent comme le classeur : {names}"),
            )
        if not candidates:
            if _XLSB_TYPE in self.overrides.values():
                self._reject(SafetyCode.NOT_A_WORKBOOK, _XLSB)
            self._reject(
                SafetyCode.NOT_A_WORKBOOK,
                "Le fichier est une archive ZIP mais pas un classeur Excel (aucune partie "
                "classeur xl/workbook.xml) : " + _SEND_XLSX,
            )
        part = next(iter(candidates.values())).filename
        ctype = self._content_type(part)
        kind = _WORKBOOK_KINDS.get(ctype)
        if kind is None:
            self._reject(
                SafetyCode.NOT_A_WORKBOOK,
                f"Le fichier est une archive ZIP mais pas un classeur Excel (la partie {part} "
                f"est de type « {ctype[:80]} ») : " + _SEND_XLSX,
            )
        return part, kind

    def _relationships(self, info: zipfile.ZipInfo, source_dir: str) -> list[_Rel]:
        rels = []
        for el in self._parse_small_xml(info):
            if _local(el.tag) != "Relationship":
                continue
            external = el.get("TargetMode", "").lower() == "external"
            target = el.get("Target", "")
            if not external:
                target = self._resolve(source_dir, target)
            rels.append(_Rel(el.get("Id", ""), el.get("Type", ""), target, external))
        return rels

    def _resolve(self, source_dir: str, target: str) -> str:
        raw = target
        target = target.replace("\\", "/")
        if _DRIVE_RE.match(target):
            self._reject(SafetyCode.PATH_TRAVERSAL, _traversal(raw))
        joined = target[1:] if target.startswith("/") else posixpath.join(source_dir, target)
        resolved = posixpath.normpath(joined) if joined else joined
        if resolved == ".." or resolved.startswith(("../", "/")):
            self._reject(SafetyCode.PATH_TRAVERSAL, _traversal(raw))
        return resolved

    def _read_sheets(self, workbook: str) -> dict[str, str]:
        folder, base = posixpath.split(workbook)
        rels_info = self._member(posixpath.join(folder, "_rels", base + ".rels"))
        rels = {r.id: r for r in self._relationships(rels_info, folder)} if rels_info else {}
        workbook_info = self._member(workbook)
        assert workbook_info is not None  # found by _find_workbook
        root = self._parse_small_xml(workbook_info)
        sheets: dict[str, str] = {}
        seen: set[str] = set()
        for el in root.iter():
            if _local(el.tag) != "sheet":
                continue
            name = el.get("name", "")
            rid = next((v for k, v in el.attrib.items() if _local(k) == "id"), "")
            rel = rels.get(rid)
            if rel is None or rel.external:
                self._reject(
                    SafetyCode.CORRUPT_WORKBOOK,
                    _corrupt_workbook(f"l'onglet « {name[:60]} » ne renvoie à aucune partie"),
                )
            info = self._member(rel.target)
            if info is None:
                self._reject(
                    SafetyCode.CORRUPT_WORKBOOK,
                    _corrupt_workbook(f"la partie {rel.target[:120]} de l'onglet est absente"),
                )
            if name.casefold() in seen:
                self._reject(
                    SafetyCode.CORRUPT_WORKBOOK,
                    _corrupt_workbook(f"deux onglets s'appellent « {name[:60]} »"),
                )
            seen.add(name.casefold())
            sheets[name] = info.filename
        return sheets

    def _scan_sheet(self, sheet: str, part: str) -> tuple[int, int]:
        info = self._member(part)
        assert info is not None  # checked by _read_sheets
        chunks: list[bytes] = []
        run = longest = 0  # bytes between two ">": the longest tag or text of the part
        for data in self._iter_member(info, cap=self.limits.max_member_uncompressed):
            first = data.find(b">")
            if first < 0:
                run += len(data)
            else:
                longest = max(longest, run + first)
                run = len(data) - data.rfind(b">") - 1
            longest = max(longest, run)
            chunks.append(data)
        data = b"".join(chunks)
        del chunks  # one copy of the part in memory, not two
        fast = _fast_extent(data, longest > _TOKEN_MAX, self.limits)
        if fast is not None:
            scanner = _ExtentScanner(self.where, sheet, self.limits)
            for kind, row, col, ref in fast:  # the same verdicts as the full scan
                if kind == "count":
                    scanner._counted(row, col)
                elif kind != "dimension":
                    scanner._grow(row, col, kind, ref)
                elif scanner._too_large(row, col):
                    scanner._reject(f"L'onglet « {sheet} » déclare une plage utilisée {ref}")
            return scanner.max_row, scanner.max_col
        return self._scan_sheet_xml(sheet, part, data)

    def _scan_sheet_xml(self, sheet: str, part: str, whole: bytes) -> tuple[int, int]:
        scanner = _ExtentScanner(self.where, sheet, self.limits)
        parser = scanner.parser
        run = 0  # bytes since the last ">": expat would buffer one endless token whole
        try:
            for at in range(0, len(whole), _CHUNK):
                data = whole[at : at + _CHUNK]
                end = data.rfind(b">")
                run = run + len(data) if end < 0 else len(data) - end - 1
                if run > _TOKEN_MAX:
                    self._reject(
                        SafetyCode.CORRUPT_WORKBOOK,
                        _corrupt_workbook(
                            f"la partie {part} contient un texte ou une balise démesuré"
                        ),
                    )
                parser.Parse(data, False)
            parser.Parse(b"", True)
        except expat.ExpatError as exc:
            self._reject(
                SafetyCode.CORRUPT_WORKBOOK,
                _corrupt_workbook(f"la partie {part} n'est pas un XML valide, ligne {exc.lineno}"),
            )
        except _DoctypeFound:
            self._reject(SafetyCode.XML_ENTITY, _entity(part))
        return scanner.max_row, scanner.max_col

    def _classify_parts(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        macros: list[str] = []
        links: list[str] = []
        for info in self.infos:
            name = info.filename
            key = name.casefold()
            if key.endswith("/"):
                continue
            base = posixpath.basename(key)
            is_vba = base.startswith("vbaproject") and base.endswith(".bin")
            if is_vba or key.startswith(_MACRO_DIRS) or "vbaproject" in self._content_type(key):
                macros.append(name)
            elif key.startswith(_EXTERNAL_DIR) or key == _CONNECTIONS:
                links.append(name)
        return tuple(sorted(macros)), tuple(sorted(links))

    def _reject(self, code: SafetyCode, reason: str) -> NoReturn:
        _reject(self.where, code, reason)


@dataclass(frozen=True)
class _Rel:
    id: str
    type: str
    target: str  # package part path when not external
    external: bool


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _prolog_verdict(head: bytes) -> bool | None:
    """True: a markup declaration (DOCTYPE, ENTITY...) before the root element; False: the root
    element starts first; None: not decided yet. NULs are dropped so UTF-16 reads like ASCII."""
    text = head.decode("latin-1").replace("\x00", "")
    i = 0
    while True:
        j = text.find("<", i)
        if j < 0 or j + 1 >= len(text):
            return None
        nxt = text[j + 1]
        if nxt == "?":
            end = text.find("?>", j + 2)
            if end < 0:
                return None
            i = end + 2
        elif text.startswith("<!--", j):
            end = text.find("-->", j + 4)
            if end < 0:
                return None
            i = end + 3
        else:
            return nxt == "!"


# --- fast path of the sheet extent ------------------------------------------------------------

# The common sheet, as Excel, LibreOffice and openpyxl write it: unprefixed tags, every row and
# cell with its r attribute first, in double quotes, no DOCTYPE, comment or CDATA. Such a sheet's
# extent is read with C-speed regular expressions; anything else takes the full XML scan.
_F_CELL_ANY = re.compile(rb"<c[\s/>]")
_F_CELL = re.compile(rb'<c\s+r="([A-Z]{1,3})([0-9]{1,7})"')
_F_ROW_ANY = re.compile(rb"<row[\s/>]")
_F_ROW = re.compile(rb'<row\s+r="([0-9]{1,7})"')
_F_MERGE_ANY = re.compile(rb"<mergeCell[\s/>]")
_F_MERGE = re.compile(rb'<mergeCell\s+ref="([A-Z$]{1,4}[0-9$]{1,8}(?::[A-Z$]{1,4}[0-9$]{1,8})?)"')
_F_DIMENSION = re.compile(rb'<dimension\s+ref="([^"]{0,40})"')
_F_PREFIXED_TAG = re.compile(rb"</?[A-Za-z_][\w.-]*:")


def _fast_extent(data: bytes, long_token: bool, limits: Limits
                 ) -> list[tuple[str, int, int, str | None]] | None:
    """The (kind, row, column, ref) marks of a common sheet, or None to take the full scan."""
    # A cell or row whose r is missing, single-quoted or spaced makes the counts below differ.
    if long_token or b"<!" in data or _F_PREFIXED_TAG.search(data):
        return None  # the full scan refuses an endless token, a DOCTYPE...
    # Counted before any list is built: a million repeated rows costs no memory here. "<row"
    # and "<c" bound the counts from above (<c also starts <col>, <cfRule>…): the exact counts
    # are taken only past a limit.
    if data.count(b"<row") > limits.max_rows or data.count(b"<c") > limits.max_cells:
        n_rows = data.count(b"<row ") + data.count(b"<row>")
        n_cells = data.count(b"<c ") + data.count(b"<c>") + data.count(b"<c/>")
        if n_rows > limits.max_rows or n_cells > limits.max_cells:
            return [("count", n_rows, n_cells, None)]
    cells = _F_CELL.findall(data)
    rows = _F_ROW.findall(data)
    merges = _F_MERGE.findall(data)
    if (len(cells) != len(_F_CELL_ANY.findall(data))
            or len(rows) != len(_F_ROW_ANY.findall(data))
            or len(merges) != len(_F_MERGE_ANY.findall(data))):
        return None
    marks: list[tuple[str, int, int, str | None]] = [("count", len(rows), len(cells), None)]
    dimension = _F_DIMENSION.search(data)
    if dimension is not None:
        end = _range_end(dimension.group(1).decode("ascii", "replace"))
        if end is not None:
            marks.append(("dimension", end[0], end[1], dimension.group(1).decode("ascii")))
    if rows:
        marks.append(("row", max(map(int, rows)), 0, None))
    if cells:  # a row's cells share its digits: each distinct number converted once
        top_row = max(map(int, set(map(itemgetter(1), cells))))
        top_col = max(_column(letters.decode("ascii")) for letters in set(map(itemgetter(0),
                                                                              cells)))
        marks.append(("cell", top_row, top_col, None))
    for ref in merges:
        end = _range_end(ref.decode("ascii"))
        if end is not None:
            marks.append(("merge", end[0], end[1], ref.decode("ascii")))
    return marks


# --- streaming sheet extent -------------------------------------------------------------------


class _DoctypeFound(Exception):
    """Raised from expat handlers; turned into XML_ENTITY."""


class _ExtentScanner:
    """Track the last row and column a sheet really uses, reading only ``r``/``ref`` attributes.

    Cells and rows without ``r`` take the next position, as readers do; ``<mergeCell ref>``
    counts too (openpyxl materialises every cell of a merged range). Element names are matched
    by local name in any namespace, which can only over-count.
    """

    __slots__ = ("col", "columns", "limits", "max_col", "max_row", "parser", "row", "row_text")
    __slots__ += ("cells", "rows", "sheet", "where")

    def __init__(self, where: str, sheet: str, limits: Limits) -> None:
        self.where = where
        self.sheet = sheet
        self.limits = limits
        self.max_row = 0
        self.max_col = 0
        self.row = 0  # current row
        self.row_text = ""  # its r attribute, to skip parsing the digits of each cell
        self.col = 0  # last column seen in the current row
        self.columns: dict[str, int] = {}  # column letters -> number, for short letters
        self.rows = 0  # <row> and <c> elements seen: repeated row numbers count too
        self.cells = 0
        parser = expat.ParserCreate()
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = _forbid
        parser.EntityDeclHandler = _forbid
        parser.ExternalEntityRefHandler = _forbid
        parser.ordered_attributes = True  # a flat [name, value, ...] list: cheaper than a dict
        parser.StartElementHandler = self._start
        self.parser = parser

    def _start(self, name: str, attrs: list[str]) -> None:
        # Hot path: called for every element of the sheet; cells are most of them, and Excel
        # and openpyxl both write a cell's r first.
        if name != "c":
            if name not in _CELL_CONTENT:
                self._other(name, dict(zip(attrs[::2], attrs[1::2], strict=True)))
            return
        self.cells += 1
        if self.cells > self.limits.max_cells:
            self._counted(self.rows, self.cells)
        ref = attrs[1] if attrs and attrs[0] == "r" else _attr(attrs, "r")
        if ref is None:
            row, col = (self.row or 1), self.col + 1
        else:
            letters = ref.rstrip(_DIGITS)
            col = self.columns.get(letters) or self._column(ref, letters)
            digits = ref[len(letters) :]
            row = self.row if digits == self.row_text else self._cell_row(ref, digits)
        self.col = col
        if row > self.max_row or col > self.max_col:
            self._grow(row, col, "cell", ref)

    def _other(self, name: str, attrs: dict[str, str]) -> None:
        if ":" in name:
            local = name.rpartition(":")[2]
            if local == "c":
                self._start(local, [x for pair in attrs.items() for x in pair])
                return
            name = local
        if name == "row":
            self.rows += 1
            if self.rows > self.limits.max_rows:
                self._counted(self.rows, self.cells)
            ref = attrs.get("r")
            if ref is None:
                self.row += 1
                self.row_text = ""
            else:
                if not (ref.isascii() and ref.isdigit()):
                    self._corrupt(f"un numéro de ligne invalide « {ref[:40]} »")
                self.row = _number(ref)
                self.row_text = ref
            self.col = 0
            if self.row > self.max_row:
                self._grow(self.row, 0, "row", ref)
        elif name == "mergeCell":
            ref = attrs.get("ref", "")
            end = _range_end(ref)
            if end is not None and (end[0] > self.max_row or end[1] > self.max_col):
                self._grow(end[0], end[1], "merge", ref)
        elif name == "dimension":
            end = _range_end(attrs.get("ref", ""))
            if end is not None and self._too_large(*end):
                self._reject(
                    f"L'onglet « {self.sheet} » déclare une plage utilisée "
                    f"{attrs.get('ref', '')[:40]}"
                )

    def _column(self, ref: str, letters: str) -> int:
        clean = letters.replace("$", "")
        if not (clean.isascii() and clean.isalpha()):
            self._corrupt(f"une référence de cellule invalide « {ref[:40]} »")
        col = _column(clean)
        if len(clean) <= 3:
            self.columns[letters] = col
        return col

    def _cell_row(self, ref: str, digits: str) -> int:
        if not (digits.isascii() and digits.isdigit()):
            self._corrupt(f"une référence de cellule invalide « {ref[:40]} »")
        return _number(digits)

    def _corrupt(self, what: str) -> NoReturn:
        _reject(
            self.where,
            SafetyCode.CORRUPT_WORKBOOK,
            _corrupt_workbook(f"l'onglet « {self.sheet} » contient {what}"),
        )

    def _grow(self, row: int, col: int, kind: str, ref: str | None) -> None:
        self.max_row = max(self.max_row, row)
        self.max_col = max(self.max_col, col)
        if self._too_large(self.max_row, self.max_col):
            if kind == "row":
                what = f"la ligne {row}"
            elif kind == "merge":
                what = f"la plage fusionnée {(ref or '')[:40]}"
            else:
                what = f"la cellule {(ref or _cell_name(row, col))[:40]}"
            self._reject(f"L'onglet « {self.sheet} » utilise {what}")

    def _counted(self, rows: int, cells: int) -> None:
        """Rows and cells the sheet holds, whatever their numbers (repeated rows count)."""
        if rows > self.limits.max_rows:
            self._reject(f"L'onglet « {self.sheet} » contient {_fr(rows)} lignes")
        if cells > self.limits.max_cells:
            self._reject(f"L'onglet « {self.sheet} » contient {_fr(cells)} cellules")

    def _too_large(self, rows: int, cols: int) -> bool:
        lim = self.limits
        return rows > lim.max_rows or cols > lim.max_columns or rows * cols > lim.max_cells

    def _reject(self, what: str) -> NoReturn:
        lim = self.limits
        _reject(
            self.where,
            SafetyCode.SHEET_TOO_LARGE,
            f"{what}, au-delà des limites acceptées ({_fr(lim.max_rows)} lignes, "
            f"{_fr(lim.max_columns)} colonnes, {_fr(lim.max_cells)} cellules) : effacez les "
            "cellules et mises en forme isolées loin du tableau (Ctrl+Fin pour les trouver), "
            "enregistrez et renvoyez le classeur.",
        )


def _attr(attrs: list[str], name: str) -> str | None:
    for i in range(0, len(attrs), 2):
        if attrs[i] == name:
            return attrs[i + 1]
    return None


def _forbid(*_args: object) -> NoReturn:
    raise _DoctypeFound


def _number(digits: str) -> int:
    return int(digits) if len(digits) <= 9 else _BIG


def _column(letters: str) -> int:
    return _BIG if len(letters) > 5 else col_index(letters)


def _range_end(ref: str) -> tuple[int, int] | None:
    """Largest (row, col) named by ``A1`` or ``A1:B2``; None when unreadable."""
    row = col = 0
    for corner in ref.strip().split(":", 1):
        match = _CELL_RE.fullmatch(corner)
        if match is None:
            return None
        row = max(row, _number(match.group(2)))
        col = max(col, _column(match.group(1)))
    return row, col


def _cell_name(row: int, col: int) -> str:
    return cell_ref(row, col)


def _fr(n: int) -> str:
    return fr_integer(n)
