"""The safety gate: every hostile file gets its stable code, fast, and nothing is written."""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import re
import struct
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile_corpus import CORPUS, EXTRA_CORPUS, build_all, build_normal_workbook

from carbonclap_xl.core.errors import HostileFile
from carbonclap_xl.core.rejections import GATE_CODES
from carbonclap_xl.validation import safety
from carbonclap_xl.validation.safety import Limits, PackageReport, SafetyCode, inspect_package

REJECTED = {name: code for name, (_b, code) in (CORPUS | EXTRA_CORPUS).items() if code}
MAX_SECONDS = 5.0  # per file: a hang detector (measured < 2 ms), not a speed test


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("corpus")
    build_all(directory, CORPUS | EXTRA_CORPUS)
    return directory


def _reject(path: Path, limits: Limits = Limits()) -> HostileFile:  # noqa: B008
    start = time.perf_counter()
    with pytest.raises(HostileFile) as info:
        inspect_package(path, limits)
    assert time.perf_counter() - start < MAX_SECONDS
    return info.value


# --- every hostile file, its code ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_hostile_file_gets_its_code(corpus_dir: Path, name: str) -> None:
    err = _reject(corpus_dir / name)
    assert err.code == REJECTED[name]
    assert err.code in set(SafetyCode)
    assert err.path == str(corpus_dir / name)
    # One French sentence: what is wrong, a colon, what to send instead.
    assert " : " in err.reason and err.reason.endswith(".")
    assert re.search(r"\.\s+[A-ZÀ-Ý]", err.reason) is None, err.reason
    assert str(err) == f"{corpus_dir / name} : {err.reason} [{err.code}]"


def test_corpus_covers_every_code() -> None:
    assert set(REJECTED.values()) == {code.value for code in GATE_CODES}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.xlsx", "Le fichier est vide (0 octet) : renvoyez le classeur .xlsx complet."),
        (
            "csv_renamed.xlsx",
            "Le fichier n'est pas un classeur Excel (c'est peut-être un CSV, une page web ou un "
            "PDF renommé en .xlsx) : ouvrez-le dans Excel, enregistrez-le au format .xlsx et "
            "renvoyez-le.",
        ),
        (
            "legacy.xls",
            "Le fichier est au format Excel 97-2003 (.xls), qui n'est pas accepté : ouvrez-le "
            "dans Excel et enregistrez-le au format .xlsx.",
        ),
        (
            "encrypted.xlsx",
            "Le classeur est protégé par un mot de passe à l'ouverture : retirez le mot de passe "
            "(Fichier > Informations > Protéger le classeur > Chiffrer avec mot de passe) et "
            "renvoyez-le au format .xlsx.",
        ),
        (
            "ods_renamed.xlsx",
            "Le fichier est un classeur OpenDocument (.ods) : dans LibreOffice, choisissez "
            "Fichier > Enregistrer sous > « Excel 2007-365 (.xlsx) » et renvoyez ce fichier .xlsx.",
        ),
        (
            "truncated.xlsx",
            "Le fichier est tronqué ou endommagé (répertoire de l'archive ZIP absent ou "
            "illisible) : vérifiez que l'envoi est allé jusqu'au bout, sinon ouvrez-le dans "
            "Excel, enregistrez-le au format .xlsx et renvoyez-le.",
        ),
        (
            "path_traversal.xlsx",
            "L'archive contient un chemin interdit (« ../../evil.txt ») qui sort du classeur : "
            "renvoyez le classeur tel qu'Excel l'enregistre, sans le retoucher avec un autre "
            "outil.",
        ),
        (
            "entity_bomb.xlsx",
            "La partie xl/sharedStrings.xml contient une déclaration DOCTYPE ou ENTITY, interdite "
            "dans un classeur Excel : renvoyez le classeur réenregistré par Excel, sans le "
            "retoucher avec un autre outil.",
        ),
        (
            "far_cell.xlsx",
            "L'onglet « Budget » utilise la ligne 1048576, au-delà des limites acceptées "
            "(200\u202f000 lignes, 1\u202f000 colonnes, 2\u202f000\u202f000 cellules) : effacez "
            "les cellules et mises en forme isolées loin du tableau (Ctrl+Fin pour les trouver), "
            "enregistrez et renvoyez le classeur.",
        ),
    ],
)
def test_exact_reasons(corpus_dir: Path, name: str, reason: str) -> None:
    assert _reject(corpus_dir / name).reason == reason


def test_zip_bomb_reason_names_the_member(corpus_dir: Path) -> None:
    reason = _reject(corpus_dir / "zip_bomb.xlsx").reason
    assert "xl/worksheets/sheet2.xml" in reason and "200,0 Mo" in reason


def test_huge_dimension_reason_quotes_the_range(corpus_dir: Path) -> None:
    reason = _reject(corpus_dir / "huge_dimension.xlsx").reason
    assert reason.startswith("L'onglet « Budget » déclare une plage utilisée A1:XFD1048576,")


# --- accepted files -----------------------------------------------------------------------------


def test_macro_workbook_is_accepted_and_reported(corpus_dir: Path) -> None:
    report = inspect_package(corpus_dir / "macro.xlsm")
    assert report == PackageReport(
        path=str(corpus_dir / "macro.xlsm"),
        kind="xlsm",
        macros=("xl/vbaProject.bin",),
        external_links=(),
        sheets={"Budget": "xl/worksheets/sheet1.xml"},
        sheet_extents={"Budget": (1, 2)},
    )


def test_dde_and_external_link_are_accepted_and_reported(corpus_dir: Path) -> None:
    report = inspect_package(corpus_dir / "dde_formula.xlsx")
    assert report.kind == "xlsx"
    assert report.macros == ()
    assert report.external_links == (
        "xl/externalLinks/_rels/externalLink1.xml.rels",
        "xl/externalLinks/externalLink1.xml",
    )
    assert report.sheets == {"Sheet": "xl/worksheets/sheet1.xml"}
    assert report.sheet_extents == {"Sheet": (2, 1)}


def test_normal_workbook_passes_quickly(tmp_path: Path) -> None:
    path = build_normal_workbook(tmp_path, rows=300)
    report = inspect_package(path)
    assert report == PackageReport(
        path=str(path),
        kind="xlsx",
        macros=(),
        external_links=(),
        sheets={"Budget": "xl/worksheets/sheet1.xml"},
        sheet_extents={"Budget": (301, 12)},
    )


def test_limits_are_parameters(corpus_dir: Path, tmp_path: Path) -> None:
    path = build_normal_workbook(tmp_path, rows=300)
    assert _reject(path, Limits(max_rows=300)).code == "SHEET_TOO_LARGE"
    assert _reject(path, Limits(max_columns=11)).code == "SHEET_TOO_LARGE"
    assert _reject(path, Limits(max_cells=3_000)).code == "SHEET_TOO_LARGE"
    assert _reject(path, Limits(max_file_bytes=1_000)).code == "FILE_TOO_LARGE"
    assert _reject(path, Limits(max_members=5)).code == "ZIP_BOMB"
    assert _reject(path, Limits(max_member_uncompressed=10_000)).code == "ZIP_BOMB"
    assert _reject(path, Limits(max_total_uncompressed=100_000)).code == "ZIP_BOMB"
    assert inspect_package(path, Limits(max_rows=301, max_columns=12, max_cells=301 * 12))


# --- lying headers, odd paths -------------------------------------------------------------------


def _lie_about_size(data: bytes, member: str, size: int) -> bytes:
    """Rewrite ``member``'s uncompressed size in its local header and central directory."""
    raw = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo(member)
        struct.pack_into("<I", raw, info.header_offset + 22, size)
        pos = zf.start_dir  # type: ignore[attr-defined]
    while raw[pos : pos + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", raw, pos + 28)
        if raw[pos + 46 : pos + 46 + name_len] == member.encode():
            struct.pack_into("<I", raw, pos + 24, size)
        pos += 46 + name_len + extra_len + comment_len
    return bytes(raw)


def test_lying_size_header_is_caught_while_streaming(tmp_path: Path) -> None:
    """A 20 MB sheet declared as 1 KB: the directory checks pass, the bounded read stops one
    byte past the declared size (a stream longer than it declares is a bomb, not a bad CRC)."""
    sheet = (
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b"<sheetData>" + b" " * 20_000_000 + b"</sheetData></worksheet>"
    )
    base = build_normal_workbook(tmp_path, rows=1).read_bytes()
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(base)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            content = sheet if info.filename == "xl/worksheets/sheet1.xml" else src.read(info)
            dst.writestr(info.filename, content)
    path = tmp_path / "lying.xlsx"
    path.write_bytes(_lie_about_size(out.getvalue(), "xl/worksheets/sheet1.xml", 1_000))
    err = _reject(path)
    assert err.code == "ZIP_BOMB"
    assert "xl/worksheets/sheet1.xml" in err.reason


def test_endless_token_is_refused_before_expat_buffers_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(safety, "_TOKEN_MAX", 100_000)
    sheet = (
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t foo="'
        + b"x" * 300_000
        + b'">a</t></is></c></row></sheetData></worksheet>'
    )
    base = build_normal_workbook(tmp_path, rows=1).read_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            content = sheet if info.filename == "xl/worksheets/sheet1.xml" else src.read(info)
            dst.writestr(info.filename, content)
    path = tmp_path / "token.xlsx"
    path.write_bytes(out.getvalue())
    err = _reject(path)
    assert err.code == "CORRUPT_WORKBOOK"
    assert "démesuré" in err.reason


def test_package_parts_parsed_as_trees_are_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(safety, "_SMALL_PART_MAX", 100)
    err = _reject(build_normal_workbook(tmp_path, rows=1))
    assert err.code == "ZIP_BOMB"


def test_fifo_and_directory_are_not_workbooks(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.xlsx"
    os.mkfifo(fifo)
    codes: list[str] = []

    def run() -> None:
        with pytest.raises(HostileFile) as info:
            inspect_package(fifo)
        codes.append(info.value.code)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "inspect_package blocked on a FIFO"
    assert codes == ["NOT_A_WORKBOOK"]
    assert _reject(tmp_path).code == "NOT_A_WORKBOOK"


def test_missing_file_is_a_caller_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        inspect_package(tmp_path / "absent.xlsx")


# --- nothing is written -------------------------------------------------------------------------


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def no_writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail any file opened for writing while the test body runs."""
    attempts: list[str] = []
    real_open, real_os_open = builtins.open, os.open
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def guarded_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(c in mode for c in "wax+"):
            attempts.append(f"open({file!r}, {mode!r})")
        return real_open(file, mode, *args, **kwargs)

    def guarded_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & write_flags:
            attempts.append(f"os.open({path!r}, {flags})")
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    monkeypatch.setattr(io, "open", guarded_open)
    monkeypatch.setattr(os, "open", guarded_os_open)
    yield attempts


def test_nothing_is_written_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    paths = build_all(files, CORPUS | EXTRA_CORPUS)
    paths["normal.xlsx"] = build_normal_workbook(files)
    cwd = tmp_path / "a" / "b" / "cwd"
    cwd.mkdir(parents=True)
    real_cwd = Path.cwd()
    monkeypatch.chdir(cwd)
    watched = [tmp_path.parent, cwd]
    before = {root: _listing(root) for root in watched}

    attempts = request.getfixturevalue("no_writes")
    for path in paths.values():
        with contextlib.suppress(HostileFile):
            inspect_package(path)
    assert attempts == []

    monkeypatch.undo()  # restores open() and the working directory
    assert {root: _listing(root) for root in watched} == before
    for base in (cwd, real_cwd, files):
        for up in (base, base.parent, base.parent.parent):
            assert not (up / "evil.txt").exists()
    assert not list(tmp_path.parent.rglob("evil.txt"))
