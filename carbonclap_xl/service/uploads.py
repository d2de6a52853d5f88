"""Receiving an untrusted upload: streamed to a private folder, capped while it is read.

The body is parsed as it arrives (python-multipart's streaming parser): the file part goes
straight to disk under a name the server chooses (``classeur.xlsx`` / ``classeur.xlsm``),
the byte count is checked at every chunk, and the whole body is bounded too (the cap plus a
small margin for the multipart framing). The client's file name is never a path: it is only
cleaned for display and for the ``Content-Disposition`` of the processed workbook.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

FRAMING_MARGIN = 64 * 1024  # multipart boundaries, part headers, a few small fields
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


class UploadError(Exception):
    """A request refused before any analysis: HTTP status, stable code, French message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message


@dataclass
class Upload:
    path: Path  # the saved file, under a server-chosen name
    filename: str  # the client's name, cleaned: for display and Content-Disposition only
    size: int


def display_name(raw: str | None, default: str = "classeur.xlsx") -> str:
    """A client file name made harmless: last path component, no control characters,
    normalised, at most 120 characters (the extension kept)."""
    text = unicodedata.normalize("NFC", raw or "")
    text = re.split(r"[/\\]", text)[-1]
    text = _CONTROL.sub("", text).strip().lstrip(".").strip()
    if not text:
        return default
    if len(text) > 120:
        stem, dot, ext = text.rpartition(".")
        text = f"{stem[:110]}.{ext[:8]}" if dot and len(ext) <= 8 else text[:120]
    return text


def processed_name(filename: str, suffix: str) -> str:
    """``Mon film.xlsx`` -> ``Mon film-calcule.xlsx`` (what ``process`` names its output);
    ``suffix`` is the saved file's (a name without a workbook extension gets it)."""
    stem, ext = os.path.splitext(filename)
    if ext.lower() != suffix:
        stem = filename
    return f"{stem}-calcule{suffix}"


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987)."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r'[^A-Za-z0-9._ ()+-]', "_", ascii_name).strip() or "classeur.xlsx"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _part_filename(params: dict[bytes, bytes]) -> str | None:
    if b"filename*" in params:  # RFC 5987: charset''percent-encoded
        value = params[b"filename*"].decode("latin-1")
        charset, _, rest = value.partition("''")
        try:
            return unquote(rest, encoding=charset or "utf-8", errors="replace")
        except LookupError:
            return unquote(rest, errors="replace")
    if b"filename" in params:
        return params[b"filename"].decode("utf-8", errors="replace")
    return None


async def receive_upload(content_type: str | None, content_length: str | None,
                         stream: AsyncIterator[bytes], directory: Path,
                         max_bytes: int) -> Upload:
    """Save the ``file`` field of a multipart body into ``directory``; raise UploadError."""
    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadError(415, "UNSUPPORTED_MEDIA_TYPE",
                          "Envoyez le classeur en multipart/form-data, dans le champ « file ».")
    body_cap = max_bytes + FRAMING_MARGIN
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise UploadError(400, "BAD_REQUEST", "En-tête Content-Length invalide.") from None
        if declared > body_cap:
            raise _too_large(max_bytes)

    state = _PartState(directory, max_bytes)
    parser = MultipartParser(boundary, {
        "on_part_begin": state.part_begin,
        "on_header_field": state.header_field,
        "on_header_value": state.header_value,
        "on_header_end": state.header_end,
        "on_headers_finished": state.headers_finished,
        "on_part_data": state.part_data,
        "on_part_end": state.part_end,
    })
    received = 0
    try:
        async for chunk in stream:
            received += len(chunk)
            if received > body_cap:
                raise _too_large(max_bytes)
            if state.refusal is None:
                parser.write(chunk)
            # after a refusal the rest of the (bounded) body is read and dropped, so that the
            # client, still sending, reads the answer instead of a reset connection
        if state.refusal is None:
            parser.finalize()
    except MultipartParseError:
        state.discard()
        raise UploadError(400, "BAD_REQUEST", "Corps multipart mal formé.") from None
    except BaseException:
        state.discard()
        raise
    if state.refusal is not None:
        state.discard()
        raise state.refusal
    if state.upload is None or not state.complete:
        state.discard()
        raise UploadError(422, "MISSING_FILE",
                          "Aucun fichier reçu : joignez le classeur dans le champ « file ».")
    return state.upload


def _too_large(max_bytes: int) -> UploadError:
    mb = f"{max_bytes / 2**20:g}".replace(".", ",")
    return UploadError(413, "FILE_TOO_LARGE",
                       f"Fichier trop gros : la limite de ce service est de {mb} Mo.")


class _PartState:
    """Callbacks of the streaming parser: the first ``file`` part goes to disk."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""
        self._fh: int | None = None  # descriptor of the file being written
        self.upload: Upload | None = None
        self.complete = False
        self.refusal: UploadError | None = None
        self.size = 0

    def part_begin(self) -> None:
        self.headers = {}

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def header_end(self) -> None:
        self.headers[self._field.strip().lower()] = self._value.strip()
        self._field = self._value = b""

    def headers_finished(self) -> None:
        _disposition, params = parse_options_header(self.headers.get(b"content-disposition", b""))
        if params.get(b"name") != b"file" or self.upload is not None:
            return  # another field, or a second file: ignored
        filename = display_name(_part_filename(params))
        # the safety gate decides by the bytes, as ``validate`` does (a .xls, a CSV or a PDF
        # gets its own explanation); the extension only chooses the saved name
        suffix = os.path.splitext(filename)[1].lower()
        if suffix not in WORKBOOK_SUFFIXES:
            suffix = ".xlsx"
        path = self.directory / f"classeur{suffix}"
        self._fh = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.upload = Upload(path=path, filename=filename, size=0)

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self._fh is None or self.refusal is not None:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            self.refusal = _too_large(self.max_bytes)
            self.discard()
            return
        view = memoryview(data)[start:end]
        while view:
            written = os.write(self._fh, view)
            view = view[written:]

    def part_end(self) -> None:
        if self._fh is not None:
            os.close(self._fh)
            self._fh = None
            assert self.upload is not None
            self.upload.size = self.size
            self.complete = True

    def discard(self) -> None:
        if self._fh is not None:
            os.close(self._fh)
            self._fh = None
        if self.upload is not None:
            self.upload.path.unlink(missing_ok=True)
