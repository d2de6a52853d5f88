"""Read members of an untrusted zip with bounded work, never trusting a member's header.

``zipfile.ZipFile.read`` asks zlib for up to 2 GiB in one call and only then cuts the result to
the size the header declares: a member whose deflate stream carries 1 GB more than its header
says costs that gigabyte in memory and seconds of CPU before anything notices. The same holds
for python-calamine, which inflates a member to its end before checking its size.

:func:`iter_member` inflates the raw stream itself, one chunk at a time, and never asks zlib for
more than one byte beyond the declared size: the work is bounded by ``min(declared size, cap)``
whatever the stream holds. It then requires the stream to end exactly at the declared size with
the declared CRC. Every reader of a submitted package goes through it: the safety gate (which
inflates every member this way before python-calamine may see the file), the workbook reader,
the package layer and the patcher.

Errors are :class:`~carbonclap_xl.core.errors.HostileFile` with the gate's codes: ``ZIP_BOMB``
(declared size over the cap, or a stream longer than declared), ``CORRUPT_ZIP`` (truncated or
damaged stream, wrong CRC, local header that disagrees with the directory, unknown compression),
``ENCRYPTED``.
"""

from __future__ import annotations

import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import NoReturn

from carbonclap_xl.core.errors import HostileFile
from carbonclap_xl.core.rejections import RejectionCode

__all__ = ["CHUNK", "MAX_MEMBER_BYTES", "iter_member", "member_is_link", "read_member"]

MIB = 2**20
MAX_MEMBER_BYTES = 200 * MIB  # the gate's Limits.max_member_uncompressed
CHUNK = 64 * 1024
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip local file header, 30 bytes
_UTF8_NAME = 0x800
_SEND_XLSX = "ouvrez-le dans Excel, enregistrez-le au format .xlsx et renvoyez-le."


def bomb_reason(detail: str) -> str:
    return (
        f"Le classeur se décompresse en un volume anormal ({detail}) : renvoyez un classeur "
        "ordinaire enregistré par Excel, sans données générées artificiellement."
    )


def corrupt_zip_reason(detail: str) -> str:
    return (
        f"Le fichier est tronqué ou endommagé ({detail}) : vérifiez que l'envoi est allé "
        "jusqu'au bout, sinon " + _SEND_XLSX
    )


ENCRYPTED_REASON = (
    "Le classeur est protégé par un mot de passe à l'ouverture : retirez le mot de passe "
    "(Fichier > Informations > Protéger le classeur > Chiffrer avec mot de passe) et renvoyez-le "
    "au format .xlsx."
)


def member_is_link(info: zipfile.ZipInfo) -> bool:
    """True for a member whose Unix mode is not a regular file or a folder (a symbolic link,
    a device, a FIFO): unzip would recreate it as such."""
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    return info.create_system == 3 and kind not in (0, stat.S_IFREG, stat.S_IFDIR)


def read_member(zf: zipfile.ZipFile, member: str | zipfile.ZipInfo, cap: int = MAX_MEMBER_BYTES,
                where: str | None = None) -> bytes:
    """The whole content of ``member``, read as :func:`iter_member` does."""
    return b"".join(iter_member(zf, member, cap, where=where))


def iter_member(zf: zipfile.ZipFile, member: str | zipfile.ZipInfo, cap: int = MAX_MEMBER_BYTES,
                chunk: int = CHUNK, where: str | None = None) -> Iterator[bytes]:
    """Stream the inflated bytes of ``member`` (at most ``chunk`` bytes at a time).

    Raises HostileFile (``where`` names the file, default the zip's own name) as soon as the
    stream produces more than the declared size, or when the declared size exceeds ``cap``;
    once the stream is exhausted, when it ended short, damaged or with another CRC. A caller
    that stops early (a prefix is enough) has read at most what it consumed plus one chunk.
    """
    info = member if isinstance(member, zipfile.ZipInfo) else zf.getinfo(member)
    place = where or str(zf.filename or "archive")
    name = info.filename[:120]

    def fail(code: RejectionCode, reason: str) -> NoReturn:
        raise HostileFile(place, code.value, reason)

    def corrupt(detail: str) -> NoReturn:
        fail(RejectionCode.CORRUPT_ZIP, corrupt_zip_reason(f"{detail} dans la partie {name}"))

    size = info.file_size
    if size > cap:
        megabytes = f"{size / MIB:.1f}".replace(".", ",")
        fail(RejectionCode.ZIP_BOMB,
             bomb_reason(f"la partie {name} fait {megabytes} Mo décompressée"))
    if info.flag_bits & 0x1:
        fail(RejectionCode.ENCRYPTED, ENCRYPTED_REASON)
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        corrupt("compression non standard")
    fp = zf.fp
    if fp is None:
        raise ValueError("archive fermée")
    try:
        fp.seek(info.header_offset)
        header = fp.read(_LOCAL_HEADER.size)
        fields = _LOCAL_HEADER.unpack(header) if len(header) == _LOCAL_HEADER.size else None
        raw_name = fp.read(fields[-2]) if fields and fields[0] == b"PK\x03\x04" else None
    except (OSError, ValueError) as exc:
        corrupt(f"lecture impossible : {type(exc).__name__}")
    if fields is None or raw_name is None:
        corrupt("en-tête local absent")
    flags, name_length, extra_length = fields[2], fields[-2], fields[-1]
    local_name = raw_name.decode("utf-8" if flags & _UTF8_NAME else "cp437", "replace")
    if local_name != info.orig_filename:
        corrupt("nom différent dans l'en-tête local et dans le répertoire")
    position = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    remaining = info.compress_size

    def read_raw() -> bytes:
        nonlocal position, remaining
        try:  # other readers may have moved the shared file position since our last read
            fp.seek(position)
            data = fp.read(min(chunk, remaining))
        except (OSError, ValueError) as exc:
            corrupt(f"lecture impossible : {type(exc).__name__}")
        if not data:
            corrupt("données compressées interrompues")
        position += len(data)
        remaining -= len(data)
        return data

    crc = 0
    produced = 0
    if info.compress_type == zipfile.ZIP_STORED:
        if info.compress_size != size:
            corrupt("taille stockée différente de la taille déclarée")
        while remaining:
            data = read_raw()
            produced += len(data)
            crc = zlib.crc32(data, crc)
            yield data
    else:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        while not inflater.eof:
            if inflater.unconsumed_tail:
                data = inflater.unconsumed_tail
            elif remaining > 0:
                data = read_raw()
            else:
                corrupt("données compressées interrompues")
            try:  # never more than one byte beyond what the header declares
                out = inflater.decompress(data, min(chunk, size - produced + 1))
            except zlib.error:
                corrupt("données compressées invalides")
            if out:
                produced += len(out)
                if produced > size:
                    fail(RejectionCode.ZIP_BOMB,
                         bomb_reason(f"la partie {name} se décompresse au-delà des {size} "
                                     "octets qu'elle déclare"))
                crc = zlib.crc32(out, crc)
                yield out
    if produced != size:
        corrupt("données plus courtes que la taille déclarée")
    if crc != info.CRC:
        corrupt("somme de contrôle incorrecte")
