"""The extension end to end in a real LibreOffice: built and installed by the CLI (as root:
through the ExtensionManager), soffice --headless on that throwaway profile with every venv
off PATH, a workbook made like `new --from` with production data, commands dispatched as a
menu click does, and what LibreOffice saved compared cell by cell with what `process` and
`validate` write for the same content.

The UNO side runs in a Python that has `uno` (tests/lo_driver.py); this side prepares,
then compares with python-calamine and openpyxl.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from carbonclap_xl.cli import main
from carbonclap_xl.intake.csv_lines import read_lines_csv
from carbonclap_xl.libreoffice import install
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.workbook.port import Formula, WritePlan
from carbonclap_xl.xlsx.files import process_workbook
from tests.wbhelpers import make_workbook, sheet_values

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "workbook" / "examples" / "court-metrage.csv"
OFFICE_DIR = ROOT / "carbonclap_xl" / "libreoffice" / "office"
SOFFICE = install.find_soffice()
UNO_PYTHON = install.find_uno_python() if SOFFICE else None

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) not installed"),
    pytest.mark.skipif(UNO_PYTHON is None, reason="no Python with uno (python3-uno)"),
]
TITLE = "Carbon'Clap : "
# (sheet, cell, Excel formula, expected value) for the court-metrage example: cross-sheet
# references to sheets with accents and spaces, SUMIFS, SUMPRODUCT, INDEX/MATCH, IF
FORMULAS = [
    ("Synthèse", "K30", "SUM(Lieux!B5:B7)", 2500 + 300 + 2),
    ("Synthèse", "K31", "SUMIFS('Régie'!B5:B20,'Régie'!D5:D20,\"repas\")", 40 + 60 + 90 + 30),
    ("Synthèse", "K32", "SUMPRODUCT(Production!B8:B9,Production!B8:B9)", 150 ** 2 + 5 ** 2),
    ("Synthèse", "K33", "IF(Production!B8>100,\"grand\",\"petit\")", "grand"),
    ("Synthèse", "K34", "INDEX(Transports!D5:D20,MATCH(\"km\",Transports!D5:D20,0))", "km"),
]
FORMULA_ENGINE = f"""
import json, sys
from carbonclap_xl.workbook.port import Formula, WritePlan, plan_to_json
sys.stdin.buffer.read()
plan = WritePlan()
for sheet, cell, text, value in {FORMULAS!r}:
    plan.set(sheet, cell, Formula(text, value))
print(json.dumps(plan_to_json(plan, message="formules")))
"""


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "carbonclap-xl"
    argv = [str(script)] if script.is_file() else [sys.executable, "-m", "carbonclap_xl"]
    return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=600,
                          check=False, env=env)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("lo-extension")
    book = make_workbook(tmp / "court-metrage.xlsx", lines=read_lines_csv(EXAMPLE).lines)
    processed_out = tmp / "process" / "court-metrage-calcule.xlsx"
    processed_out.parent.mkdir()
    assert main(["process", str(book), "-o", str(processed_out)]) == 0
    oxt = tmp / "CarbonClap.oxt"
    built = _cli("libreoffice", "build", "-o", str(oxt))
    assert built.returncode == 0, built.stderr
    checked = _cli("libreoffice", "check", str(oxt))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    profile, config, log = tmp / "profile", tmp / "libreoffice.json", tmp / "carbonclap.log"
    # installed by the CLI itself: as root this takes the ExtensionManager route
    installed = _cli("libreoffice", "install", "--oxt", str(oxt), "--profile", str(profile),
                     "--config", str(config))
    assert installed.returncode == 0, installed.stderr
    broken = tmp / "budget.xlsx"  # a workbook, but not a Carbon'Clap one
    wb = openpyxl.Workbook()
    wb.active.title = "Budget"
    wb.active.append(["Poste", "Montant"])
    wb.active.append(["Régie", 1200])
    wb.save(broken)
    huge = tmp / "huge.xlsx"  # a stray cell at the last row: a gigantic used area
    hb = make_workbook(tmp / "huge-src.xlsx", lines=read_lines_csv(EXAMPLE).lines)
    wbh = openpyxl.load_workbook(hb)
    wbh["Lieux"]["Z1048576"] = "x"
    wbh.save(huge)
    engine = tmp / "formula_engine.py"  # answers Recalculer with live formulas only
    engine.write_text(FORMULA_ENGINE, encoding="utf-8")
    spec = {
        "formula_engine": [sys.executable, str(engine)],
        "formula_cells": [f"{s}!{c}" for s, c, _f, _v in FORMULAS],
        "office_dir": str(OFFICE_DIR), "extension_dir": str(OFFICE_DIR.parent / "extension"),
        "profile": str(profile), "config": str(config),
        # soffice starts with venv folders off PATH (session.soffice_env), a stray
        # VIRTUAL_ENV set: the extension must not hand it to the engine either
        "env": {"CARBONCLAP_XL_CONFIG": str(config), "CARBONCLAP_XL_LOG": str(log),
                "VIRTUAL_ENV": str(Path(sys.executable).parent.parent)},
        "workbook": str(book),
        "saves": {"recalculer": str(tmp / "lo-recalcule.xlsx"),
                  "verifier": str(tmp / "lo-verifie.xlsx")},
        "stale": {"sheet": "Lieux", "value": 999.0,
                  "cell": f"{L.COLUMN_BY_KEY['co2e_forecast_kg'].letter}{L.FIRST_DATA_ROW}"},
        "facteurs": {"sheet": "Transports", "cell": f"B{L.FIRST_DATA_ROW + 10}",
                     "query": "tgv", "choice": 0},
        "broken": str(broken), "huge": str(huge), "repeat": 5,
        "out": str(tmp / "results.json"),
    }
    (tmp / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
    driver = subprocess.run([UNO_PYTHON, str(ROOT / "tests" / "lo_driver.py"),
                             str(tmp / "spec.json")], capture_output=True, text=True,
                            timeout=900, check=False, env=install.clean_env())
    results = json.loads(Path(spec["out"]).read_text(encoding="utf-8"))
    assert "exception" not in results, results["exception"] + driver.stderr[-3000:]
    print("\nLibreOffice timings:", json.dumps(results["timings"]), "\ninstall:",
          installed.stdout.splitlines()[0])
    return {"results": results, "book": book, "processed": processed_out, "tmp": tmp,
            "log": log, "config": config, "spec": spec, "installed": installed.stdout}


# ------------------------------------------------------------------------------ comparing


def _formulas(path: Path) -> dict[str, dict[tuple[int, int], str]]:
    wb = openpyxl.load_workbook(path)
    return {ws.title: {(c.row, c.column): c.value for row in ws.iter_rows() for c in row
                       if isinstance(c.value, str) and c.value.startswith("=")}
            for ws in wb.worksheets}


def _normal(formula: str) -> str:
    """A formula's text up to what spreadsheets change on their own: the leading "=",
    spaces, "_xlfn." prefixes, letter case, quotes around a sheet name that needs none
    (LibreOffice writes 'Régie'!A1 as Régie!A1)."""
    text = re.sub(r"'([^' !]+)'!", r"\1!", formula.lstrip("="))
    return text.replace(" ", "").replace("_xlfn.", "").upper()


def _same(a: Any, b: Any) -> bool:
    if a in (None, "") and b in (None, ""):
        return True
    if isinstance(a, int | float) and isinstance(b, int | float) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def _cells_of(plan: WritePlan) -> dict[str, set[tuple[int, int]]]:
    """Every cell a plan owns: the cells it sets and those of the ranges it clears."""
    from carbonclap_xl.core.a1 import parse_cell

    owned: dict[str, set[tuple[int, int]]] = {}
    plan = plan.expanded()
    for sheet, cells in plan.cells.items():
        owned.setdefault(sheet, set()).update(cells)
    for sheet, ranges in plan.clear.items():
        for ref in ranges:
            first, _, last = ref.partition(":")
            (r0, c0), (r1, c1) = parse_cell(first), parse_cell(last or first)
            owned.setdefault(sheet, set()).update(
                (r, c) for r in range(r0, r1 + 1) for c in range(c0, c1 + 1))
    return owned


def compare_owned(plan: WritePlan, ours: Path, theirs: Path) -> tuple[int, list[str]]:
    """Every cell ``plan`` owns, in two saved workbooks: formulas by text (normalised), values
    with a tolerance. Works whether the plan holds plain values or live formulas."""
    fa, fb = _formulas(ours), _formulas(theirs)
    plan = plan.expanded()
    n, diffs = 0, []
    for sheet, cells in _cells_of(plan).items():
        va, vb = sheet_values(ours, sheet), sheet_values(theirs, sheet)
        for r, c in sorted(cells):
            n += 1
            a = va[r - 1][c - 1] if r <= len(va) and c <= len(va[r - 1]) else None
            b = vb[r - 1][c - 1] if r <= len(vb) and c <= len(vb[r - 1]) else None
            ta, tb = fa.get(sheet, {}).get((r, c)), fb.get(sheet, {}).get((r, c))
            expected = plan.cells.get(sheet, {}).get((r, c))
            formula = isinstance(expected, Formula) or ta or tb
            if formula and (ta is None or tb is None or _normal(ta) != _normal(tb)):
                diffs.append(f"{sheet}!R{r}C{c}: formula {ta!r} != {tb!r}")
            if not _same(a, b):
                diffs.append(f"{sheet}!R{r}C{c}: {a!r} != {b!r}")
    return n, diffs


def _a1_of(plan: WritePlan) -> set[str]:
    from carbonclap_xl.core.a1 import cell_ref

    return {f"{s}!{cell_ref(r, c)}" for s, cells in _cells_of(plan).items() for r, c in cells}


# ------------------------------------------------------------------------------ the tests


def test_installed_menu_toolbar_icons_and_handler(run: dict[str, Any]) -> None:
    res = run["results"]
    assert "ExtensionManager" in run["installed"] or "unopkg" in run["installed"]
    reg = res["registration"]
    assert reg["menu_title"] == "~Carbon'Clap"
    assert reg["menu"] == sorted([f"org.carbonclap.xl:{p}", t] for p, t in (
        ("Recalculer", "Recalculer"), ("Verifier", "Vérifier"), ("Rapport", "Rapport"),
        ("Facteurs", "Facteurs")))
    assert len(reg["toolbar"]) == 4 and len(reg["images"]) == 4
    assert reg["protocols"] == ["org.carbonclap.xl:*"]
    assert set(res["reached"].values()) == {"org.carbonclap.xl.ProtocolHandler"}
    config = json.loads(run["config"].read_text(encoding="utf-8"))
    assert Path(config["command"][0]).is_absolute() and "exchange" in config["command"]


def test_recalculer_writes_exactly_what_process_writes(run: dict[str, Any]) -> None:
    rec = run["results"]["recalculer"]
    assert rec["summary"]["ok"], rec["summary"]
    assert rec["summary"]["message"].startswith("Bilan recalculé")
    plan = process_workbook(run["book"]).plan()
    n, diffs = compare_owned(plan, run["processed"], Path(run["spec"]["saves"]["recalculer"]))
    assert n > 300 and not diffs, diffs[:10]
    # and nothing else changed in the open document
    assert rec["changed"] and set(rec["changed"]) <= _a1_of(plan), \
        sorted(set(rec["changed"]) - _a1_of(plan))[:10]
    assert rec["same_document"]  # not reloaded
    assert all(rec["protected_after"].values())  # the template's protection is back


def test_one_undo_step_restores_the_sheets(run: dict[str, Any]) -> None:
    res = run["results"]
    assert res["recalculer"]["undo_titles"] == [TITLE + "Recalculer"]
    assert res["undo"] == {"after_undo": [], "after_redo": []}


def test_menu_click_path_gives_the_same_result(run: dict[str, Any]) -> None:
    menu = run["results"]["menu_path"]
    assert menu == {"changed": [], "undo_added": 1, "undo_title": TITLE + "Recalculer"}


def test_verifier_fills_controles_like_the_server(run: dict[str, Any]) -> None:
    ver = run["results"]["verifier"]
    assert ver["summary"]["ok"] and ver["undo_titles"] == [TITLE + "Vérifier"]
    assert {c.split("!")[0] for c in ver["changed"]} == {L.SHEET_CONTROLES}
    counts = ver["summary"]["counts"]
    assert ver["summary"]["message"].startswith(
        f"Vérification : {counts['errors']} erreur(s), {counts['warnings']} avertissement(s)")
    saved = Path(run["spec"]["saves"]["verifier"])
    rows = sheet_values(saved, L.SHEET_CONTROLES)[L.CTRL_FIRST_ROW - 1:]
    shown = [(r[1], r[2] or None, r[3] or None) for r in rows if r[1]]
    stale = run["spec"]["stale"]
    assert ("COMPUTED_STALE", stale["sheet"], stale["cell"]) in shown
    out = run["tmp"] / "validate.json"
    done = _cli("validate", str(saved), "--json", str(out))
    assert done.returncode in (0, 1), done.stderr
    (report,) = json.loads(out.read_text(encoding="utf-8"))["files"]
    server = sorted((i["code"], i.get("sheet"), i.get("cell")) for i in report["issues"])
    assert sorted(shown) == server


def test_live_formulas_are_written_in_excel_syntax(run: dict[str, Any]) -> None:
    """What issue 9's plans hold: formulas in Excel syntax, parsed by LibreOffice in that
    syntax, read back the same, computing the engine's value; still one undo step."""
    res = run["results"]["formulas"]
    assert res["summary"]["ok"], res["summary"]
    assert res["summary"]["written"]["formulas"] == len(FORMULAS)
    for sheet, cell, text, value in FORMULAS:
        got = res["cells"][f"{sheet}!{cell}"]
        assert got["error"] == 0 and _normal(got["formula"]) == _normal(text), got
        if isinstance(value, str):
            assert got["string"] == value
        else:
            assert got["value"] == pytest.approx(value)
    assert res["after_undo"] == []


def test_formulas_are_read_in_excel_syntax_fast_and_exactly(run: dict[str, Any]) -> None:
    """Formulas are read in bulk and converted by the extension; on a corpus its text is
    LibreOffice's own OOXML printing, or it leaves the formula to that printer."""
    grammar = run["results"]["grammar"]
    assert grammar["wrong"] == [] and grammar["fast"] >= 20 and grammar["slow"] >= 4


def test_rapport_saved_beside_the_workbook(run: dict[str, Any]) -> None:
    rap = run["results"]["rapport"]["summary"]
    assert rap["ok"], rap
    target, pdf = rap["outputs"]
    assert Path(target) == run["book"].with_name("court-metrage-bilan.json")
    assert Path(pdf) == run["book"].with_name("court-metrage-rapport.pdf")
    assert Path(pdf).read_bytes().startswith(b"%PDF-")
    report = json.loads(Path(target).read_text(encoding="utf-8"))
    expected = process_workbook(run["book"]).result.total_kg
    assert report["total_kgco2e"]["forecast"] == pytest.approx(expected.forecast)
    assert report["total_kgco2e"]["final"] == pytest.approx(expected.final)
    assert report["file"] == str(run["book"])


def test_facteurs_inserts_the_chosen_label_in_one_undo_step(run: dict[str, Any]) -> None:
    from carbonclap_xl.core.factors import load_edition

    fac = run["results"]["facteurs"]
    assert fac["summary"]["ok"], fac["summary"]
    assert fac["cell_text"] == load_edition().activities["train_tgv"].label_fr
    assert fac["undo_titles"] == [TITLE + "Facteurs"]
    headless = run["results"]["facteurs_headless"]
    assert not headless["ok"] and "sans interface" in headless["message"]


@pytest.mark.parametrize(("case", "needle"), [
    ("no_engine", "Carbon'Clap introuvable"),
    ("engine_crash", "a échoué (code 1)"),
    ("broken_workbook", "n'est pas un classeur Carbon'Clap"),
    ("huge_sheet", "trop grande pour Carbon'Clap"),
])
def test_errors_are_one_french_message_and_change_nothing(run: dict[str, Any], case: str,
                                                          needle: str) -> None:
    err = run["results"]["errors"][case]
    message = err["summary"]["message"]
    assert not err["summary"]["ok"] and needle in message, message
    assert "Traceback" not in message and "File \"" not in message
    assert err["changed"] == [] and not err["undo_added"] and not err["modified"]
    # headless: the message box is replaced by the log
    assert f"error: {message}" in run["log"].read_text(encoding="utf-8")


def test_no_soffice_process_left(run: dict[str, Any]) -> None:
    pid = run["results"]["soffice_pid"]
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)


# ------------------------------------------------------------------------------ unopkg


@pytest.mark.skipif(not install.is_root(), reason="runs unopkg as root and as nobody")
def test_unopkg_route_for_a_normal_user(tmp_path: Path) -> None:
    """As root unopkg refuses (the CLI says so in French); the exact command the CLI runs
    for a normal user installs, and installs again over itself (-f)."""
    from carbonclap_xl.libreoffice.build import oxt_bytes

    unopkg, runuser = install.find_unopkg(), shutil.which("runuser")
    if unopkg is None or runuser is None:
        pytest.skip("unopkg or runuser missing")
    oxt = tmp_path / "CarbonClap.oxt"
    oxt.write_bytes(oxt_bytes())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(install, "is_root", lambda: False)
        with pytest.raises(install.LibreOfficeError, match="unopkg a refusé l'extension"):
            install.install_extension(oxt, tmp_path / "root-profile")
    # pytest's temporary folders are private to root: nobody could not reach them
    shared = Path(tempfile.mkdtemp(prefix="carbonclap-unopkg-"))
    try:
        shared.chmod(0o755)
        home = shared / "home"
        home.mkdir()
        shutil.copy(oxt, home / oxt.name)
        (home / oxt.name).chmod(0o644)
        shutil.chown(home, "nobody")
        # runuser resets HOME: set it (and a PATH without venvs) inside
        user = [runuser, "-u", "nobody", "--", "env", f"HOME={home}",
                f"PATH={install.clean_env()['PATH']}"]
        command = install.unopkg_command(unopkg, home / oxt.name, home / "profile")
        for _ in range(2):  # the second time replaces the first
            # from the home of the user « nobody »: unopkg cds back to the working folder, and
            # a clone in a private mktemp folder is closed to that user
            done = subprocess.run([*user, *command], capture_output=True, text=True,
                                  timeout=300, check=False, stdin=subprocess.DEVNULL, cwd=home)
            assert done.returncode == 0, done.stdout + done.stderr
        listed = subprocess.run([*user, unopkg, "list", command[-1]], capture_output=True,
                                text=True, timeout=300, check=False, stdin=subprocess.DEVNULL,
                                cwd=home)
        assert "Identifier: org.carbonclap.xl" in listed.stdout
    finally:
        shutil.rmtree(shared, ignore_errors=True)
