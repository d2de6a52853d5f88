"""The bounded reader of untrusted zip members (``xlsx.zipread``): a member is inflated at
most one byte past what it declares, whatever its stream holds; every lie is a rejection."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile
import zlib

import pytest

from carbonclap_xl.core.errors import HostileFile
from carbonclap_xl.xlsx.zipread import iter_member, member_is_link, read_member

MB = 2**20


def lying_deflate(data: bytes, extra_mib: int) -> bytes:
    """``data`` then ``extra_mib`` MiB of zeros in one raw deflate stream (1 KB per MiB)."""
    head = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = head.compress(data) + head.flush(zlib.Z_FULL_FLUSH)
    zeros = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = zeros.compress(b"\0" * 2**20) + zeros.flush(zlib.Z_FULL_FLUSH)
    return out + block * extra_mib + zlib.compressobj(6, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)


def _zip_with(name: str, packed: bytes, size: int, crc: int, method: int = 8,
              local_name: str | None = None) -> zipfile.ZipFile:
    raw, local = name.encode(), (local_name or name).encode()
    data = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(packed),
                       size, len(local), 0) + local + packed
    central = struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc,
                          len(packed), size, len(raw), 0, 0, 0, 0, 0, 0) + raw
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(data), 0)
    return zipfile.ZipFile(io.BytesIO(data + central + end))


def _deflate(data: bytes) -> bytes:
    d = zlib.compressobj(6, zlib.DEFLATED, -15)
    return d.compress(data) + d.flush()


@pytest.mark.parametrize(("case", "code"), [
    ("longer", "ZIP_BOMB"), ("shorter", "CORRUPT_ZIP"), ("crc", "CORRUPT_ZIP"),
    ("truncated", "CORRUPT_ZIP"), ("stored_size", "CORRUPT_ZIP"), ("local_name", "CORRUPT_ZIP"),
    ("over_cap", "ZIP_BOMB"), ("garbage", "CORRUPT_ZIP"),
])
def test_bounded_member_reader(case: str, code: str) -> None:
    content = b"<x>" + b"a" * 100_000 + b"</x>"
    crc, size, packed, method, local = zlib.crc32(content), len(content), _deflate(content), 8, None
    if case == "longer":
        packed = lying_deflate(content, 200)  # 200 MiB more than declared
    elif case == "shorter":
        size += 1
    elif case == "crc":
        crc ^= 1
    elif case == "truncated":
        packed = packed[:-20]
    elif case == "stored_size":
        method, packed = 0, content + b"more"
    elif case == "local_name":
        local = "autre.xml"
    elif case == "garbage":
        packed = b"\xff" * 64
    with _zip_with("part.xml", packed, size, crc, method, local) as zf:
        tracemalloc.start()
        with pytest.raises(HostileFile) as caught:
            read_member(zf, "part.xml", cap=50_000 if case == "over_cap" else 10 * MB)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert caught.value.code == code and peak < 2 * MB


def test_bounded_reader_reads_honest_members_and_stops_early() -> None:
    content = b"<x>" + bytes(range(256)) * 4000 + b"</x>"
    with _zip_with("part.xml", _deflate(content), len(content), zlib.crc32(content)) as zf:
        assert read_member(zf, "part.xml") == content
        first = next(iter_member(zf, "part.xml", chunk=1000))
        assert content.startswith(first) and len(first) <= 1000




def test_symbolic_link_members_are_recognised() -> None:
    link = zipfile.ZipInfo("xl/media/a.png")
    link.create_system, link.external_attr = 3, 0o120777 << 16
    plain = zipfile.ZipInfo("xl/media/b.png")
    plain.create_system, plain.external_attr = 3, 0o100644 << 16
    folder = zipfile.ZipInfo("xl/media/")
    folder.create_system, folder.external_attr = 3, (0o040755 << 16) | 0x10
    dos = zipfile.ZipInfo("xl/c.xml")
    dos.create_system, dos.external_attr = 0, 0o120777 << 16  # not Unix: no file type
    assert [member_is_link(i) for i in (link, plain, folder, dos)] == [True, False, False, False]
