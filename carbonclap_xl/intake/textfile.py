"""Text input files (lines CSV, production data): read once, with the same limits and the
same French refusals, whatever the encoding a spreadsheet or an editor saved them in."""

from __future__ import annotations

from pathlib import Path

from carbonclap_xl.core.errors import InputFileError

MAX_TEXT_BYTES = 200 * 2**20
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def read_text(path: Path, workbook_hint: str) -> str:
    """The text of ``path``: UTF-8 (with or without BOM), else cp1252 (what French Excel
    writes). A missing file, a folder, a workbook or a binary file is an ``InputFileError``;
    ``workbook_hint`` says what to do when a workbook was given instead of text."""
    try:
        if path.stat().st_size > MAX_TEXT_BYTES:
            raise InputFileError(str(path), "fichier trop volumineux (plus de 200 Mo)")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(str(path), "fichier introuvable") from None
    except IsADirectoryError:
        raise InputFileError(str(path), "c'est un dossier, pas un fichier texte") from None
    except PermissionError:
        raise InputFileError(str(path), "lecture interdite (droits du fichier)") from None
    if raw.startswith((_ZIP_MAGIC, _OLE_MAGIC)):
        raise InputFileError(str(path), f"c'est un classeur, pas un fichier texte : "
                                        f"{workbook_hint}")
    if b"\x00" in raw[:4096]:
        raise InputFileError(str(path), "fichier binaire, pas un fichier texte")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def looks_like_text_table(path: Path) -> bool:
    """Whether ``path`` is a CSV-like text file rather than a workbook: not a zip or OLE
    package, and a ``.csv``/``.tsv``/``.txt`` name or text whose first line holds ``,``,
    ``;`` or a tab. Reads 4 KB; never raises."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    if not head or head.startswith((_ZIP_MAGIC, _OLE_MAGIC)) or b"\x00" in head:
        return False
    if path.suffix.lower() in (".csv", ".tsv", ".txt"):
        return True
    first = head.decode("utf-8", errors="replace").lstrip("\ufeff").split("\n", 1)[0]
    return not first.lstrip().startswith("<") and any(c in first for c in ",;\t")
