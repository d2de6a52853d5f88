"""The Excel room on Linux: each ribbon command against a stand-in for xlwings' object model
(backed by a real workbook file) writes what ``process`` writes; the worksheet functions,
called as plain Python, agree with the engine."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest

from carbonclap_xl import excel
from carbonclap_xl.core.engine import compute
from carbonclap_xl.core.factors import load_edition
from carbonclap_xl.core.numbers import fr_number
from carbonclap_xl.core.result import dumps
from carbonclap_xl.excel import commands
from carbonclap_xl.excel.book import XlwingsSink, XlwingsSource, column_runs
from carbonclap_xl.excel.ui import XlwingsUi, numbered_prompt
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.workbook.pipeline import run
from carbonclap_xl.xlsx.files import FileSource, process_workbook, write_processed
from tests.test_live import MIXED
from tests.wbhelpers import make_workbook
from tests.xlstandin import Book, FakeUi


def _grid(path: Path) -> dict[str, dict[str, object]]:
    wb = openpyxl.load_workbook(path)
    return {ws.title: {c.coordinate: c.value for row in ws.iter_rows() for c in row
                       if c.value not in (None, "")} for ws in wb.worksheets}


@pytest.fixture
def workbook(tmp_path: Path) -> Path:
    return make_workbook(tmp_path / "film.xlsx", MIXED)


# --------------------------------------------------------------------------- the port


def test_source_reads_what_the_file_source_reads(workbook: Path) -> None:
    book = Book(workbook)
    ours, theirs = XlwingsSource(book), FileSource(workbook)
    assert ours.sheet_names() == theirs.sheet_names()
    for sheet in ("Production", "Lieux", "Régie", L.SHEET_SYNTHESE):
        a, b = ours.values(sheet), theirs.values(sheet)
        for r in range(max(len(a), len(b))):
            row_a = a[r] if r < len(a) else []
            row_b = b[r] if r < len(b) else []
            for c in range(max(len(row_a), len(row_b))):
                va = row_a[c] if c < len(row_a) else None
                vb = row_b[c] if c < len(row_b) else None
                assert _same_cell(va, vb), (sheet, r + 1, c + 1, va, vb)
    assert ours.structure(L.SHEET_SYNTHESE).formulas == theirs.structure(
        L.SHEET_SYNTHESE).formulas
    a, b = run(ours), run(theirs)
    assert a.result.total_kg == b.result.total_kg
    assert [(i.code, i.cell) for i in a.issues] == [(i.code, i.cell) for i in b.issues]


def _same_cell(a: object, b: object) -> bool:
    """Blank is blank whether None or ""; a date may come as a datetime from one reader."""
    if a in (None, "") and b in (None, ""):
        return True
    date_a = a.date() if hasattr(a, "date") else a
    date_b = b.date() if hasattr(b, "date") else b
    return a == b or date_a == date_b


def test_column_runs_make_one_write_per_block() -> None:
    cells = {(5, 9): 1.0, (6, 9): 2.0, (8, 9): 3.0, (5, 10): "a"}
    assert column_runs(cells) == [(9, 5, [1.0, 2.0]), (9, 8, [3.0]), (10, 5, ["a"])]


# --------------------------------------------------------------------------- the commands


def test_recalculer_writes_the_cells_process_writes(workbook: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.xlsx"
    write_processed(process_workbook(workbook), workbook, out)
    book, ui = Book(workbook), FakeUi()
    processed = commands.recalculer(book, ui)
    assert processed is not None
    expected = _grid(out)
    for sheet in book.sheets:
        assert sheet.grid() == expected[sheet.name], sheet.name
        assert sheet.protected  # protected again after the write
    # block writes: one per run of a column, never one per cell
    plan = processed.plan()
    runs = sum(len(column_runs(plan.sheet_cells(s))) for s in plan.sheets())
    assert len(book.writes) == runs < plan.cell_count() / 3
    assert book.app.calculation == "automatic" and book.app.screen_updating
    assert any("prévisionnel" in (s or "") for s in ui.statuses)
    assert ui.alerts and "erreur(s)" in ui.alerts[0]  # MIXED holds a line in error


def test_recalculer_twice_keeps_the_same_cells(workbook: Path) -> None:
    book = Book(workbook)
    commands.recalculer(book, FakeUi())
    first = {s.name: s.grid() for s in book.sheets}
    commands.recalculer(book, FakeUi())
    assert {s.name: s.grid() for s in book.sheets} == first


def test_verifier_writes_controles_only_and_counts(workbook: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.xlsx"
    write_processed(process_workbook(workbook), workbook, out)
    wb = openpyxl.load_workbook(out)
    wb["Lieux"]["I5"] = "=B5*1000"  # a foreign formula in a computed cell
    wb.create_sheet("Notes")["A1"] = "=[budget.xlsx]Feuil1!A1"  # a link to another file
    wb.save(out)
    book, ui = Book(out), FakeUi()
    before = {s.name: s.grid() for s in book.sheets}
    issues = commands.verifier(book, ui)
    codes = {str(i.code) for i in issues}
    assert {"FORMULA_FOREIGN", "EXTERNAL_LINK"} <= codes
    for sheet in book.sheets:
        if sheet.name != L.SHEET_CONTROLES:
            assert sheet.grid() == before[sheet.name]
    written = book.sheets[L.SHEET_CONTROLES].grid()
    assert "FORMULA_FOREIGN" in written.values()
    errors = sum(1 for i in issues if str(i.severity) == "error")
    assert ui.alerts and ui.alerts[-1].startswith(f"{errors} erreur(s)")


def test_rapport_writes_the_pdf_report_and_the_summary_beside_the_workbook(
        workbook: Path) -> None:
    book, ui = Book(workbook), FakeUi()
    path = commands.rapport(book, ui)
    pdf, summary = workbook.with_name("film-rapport.pdf"), workbook.with_name("film-bilan.json")
    assert path == pdf and pdf.read_bytes().startswith(b"%PDF-")
    doc = json.loads(summary.read_text(encoding="utf-8"))
    expected = json.loads(dumps(process_workbook(workbook).report().to_dict(for_json=True)))
    for key in ("total_kgco2e", "by_poste", "by_nature", "indicators", "counts", "lines"):
        assert doc[key] == expected[key], key
    assert [i["code"] for i in doc["issues"]] == [i["code"] for i in expected["issues"]]
    assert ui.alerts == [f"Rapport écrit : {summary} ; {pdf}"]
    # the PDF carries the total the summary gives (pdftotext, when poppler is here)
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                              text=True, check=True).stdout
        tonnes = doc["total_kgco2e"]["forecast"] / 1000
        assert fr_number(tonnes, 1) in text or fr_number(tonnes, 2) in text
    unsaved = Book(workbook)
    unsaved.fullname = "Classeur1"
    ui = FakeUi()
    assert commands.rapport(unsaved, ui) is None and "Enregistrez" in ui.alerts[0]


def test_rapport_without_the_report_extra_still_writes_the_summary(
        workbook: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import carbonclap_xl.report.writer as writer

    def no_matplotlib(doc: object, fmt: str) -> bytes:
        raise ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib")

    monkeypatch.setattr(writer, "render", no_matplotlib)
    ui = FakeUi()
    assert commands.rapport(Book(workbook), ui) == workbook.with_name("film-bilan.json")
    assert not workbook.with_name("film-rapport.pdf").exists()
    assert "pip install 'carbonclap_xl[report]'" in ui.alerts[0]


def test_facteurs_inserts_the_chosen_label(workbook: Path) -> None:
    book = Book(workbook)
    sheet = book.sheets["Transports"]
    book.selection = sheet.range("A20")
    ui = FakeUi(["train intercites"])
    assert commands.facteurs(book, ui) == "Train – Intercités (km × personnes)"
    assert sheet.cells[(20, 1)][0] == "Train – Intercités (km × personnes)"
    ui = FakeUi(["train", 1])  # several matches: the user picks the second
    chosen = commands.facteurs(book, ui)
    assert sheet.cells[(20, 1)][0] == chosen and chosen.startswith("Train")
    book.selection = sheet.range("I20")  # a computed cell of a protected sheet: refused
    ui = FakeUi(["train intercites"])
    assert commands.facteurs(book, ui) is None and "protégée" in ui.alerts[0]
    ui = FakeUi(["zzzz"])
    book.selection = sheet.range("A21")
    assert commands.facteurs(book, ui) is None and "Aucune activité" in ui.alerts[0]


def test_a_workbook_that_is_not_ours_gets_a_message(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    wb.active["A1"] = "budget"
    wb.save(tmp_path / "other.xlsx")
    book, ui = Book(tmp_path / "other.xlsx"), FakeUi()
    assert commands.recalculer(book, ui) is None
    assert ui.alerts == [commands.NOT_CARBONCLAP] and not book.writes


def test_on_ribbon_reaches_every_handler_through_xlwings(workbook: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import xlwings as xw

    book = Book(workbook)
    monkeypatch.setattr(xw.Book, "caller", staticmethod(lambda: book), raising=False)
    excel.on_ribbon("cc_recalculer")
    assert any(w[0] == "Lieux" for w in book.writes)
    assert isinstance(book.app.status_bar, str)  # XlwingsUi wrote it
    excel.on_ribbon("cc_verifier")
    assert book.app.alerts[-1].endswith(("déposé.", "Contrôles."))
    with pytest.raises(KeyError):
        excel.on_ribbon("cc_inconnu")
    assert set(excel.HANDLERS) == {"cc_recalculer", "cc_verifier", "cc_rapport", "cc_facteurs"}


def test_windows_choice_is_a_numbered_input_box(workbook: Path) -> None:
    book = Book(workbook)
    ui = XlwingsUi(book)
    book.app.answers = ["2"]
    assert ui.choose("Choisissez :", ["a", "b", "c"]) == "b"
    book.app.answers = ["9"]
    assert ui.choose("Choisissez :", ["a", "b"]) is None
    text, shown = numbered_prompt("Choisissez :", ["x" * 60] * 20)
    assert len(text) <= 250 and 0 < shown < 20


def test_sink_never_writes_a_protected_sheet(workbook: Path) -> None:
    book = Book(workbook)
    processed = run(XlwingsSource(book))
    XlwingsSink(book).apply(processed.plan())  # the stand-in raises on a protected write
    assert all(s.protected for s in book.sheets if s.name in L.POSTE_SHEETS.values())


def test_importing_the_excel_package_is_light() -> None:
    import subprocess
    import sys

    code = ("import sys, carbonclap_xl.excel; print(','.join(m for m in ('numpy', 'xlwings', "
            "'openpyxl', 'lxml', 'python_calamine') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""


# --------------------------------------------------------------------------- UDFs


def test_udfs_agree_with_the_engine() -> None:
    from carbonclap_xl.excel import udfs

    edition = load_edition()
    activities = [["Train – Intercités (km × personnes)"], ["elec_fr"], ["BE:43642"],
                  ["inconnue"], ["train_tgv"]]
    quantities = [[1200.0], [3.5], [10.0], [1.0], [None]]
    units = [["mi"], ["MWh"], [None], [None], ["km"]]
    got = udfs.CC_EMISSIONS(activities, quantities, units)
    postes = ["transport", "lieux", "lieux", "lieux", "transport"]
    result = compute({"poste": postes, "activity": [a[0] for a in activities],
                      "quantity_forecast": [q[0] for q in quantities],
                      "quantity_final": [None] * 5, "unit": [u[0] for u in units],
                      "data_source": [None] * 5, "comment": [None] * 5}, edition)
    expected = result.lines["co2e_forecast_kg"].tolist()
    assert got[0][0] == expected[0] and got[1][0] == expected[1] and got[2][0] == expected[2]
    assert got[3][0] == "Activité inconnue" and got[4][0] == ""
    assert udfs.CC_EMISSIONS("elec_fr", 10, "kWh") == pytest.approx(
        10 * edition.activity("elec_fr").factor.value)
    assert udfs.CC_EMISSIONS([["elec_fr"], ["elec_fr"]], [[1], [2]], "parsec") == [
        ["Unité inconnue"], ["Unité inconnue"]]
    assert udfs.CC_EMISSIONS([["elec_fr"], ["elec_fr"]], [[1], [2], [3]], "kWh").startswith(
        "Erreur")
    assert udfs.CC_FACTEUR("elec_fr") == edition.activity("elec_fr").factor.value
    assert udfs.CC_FACTEUR("BE:43642") == edition.factor("BE:43642").value
    assert udfs.CC_FACTEUR("inconnue") == "Activité inconnue" and udfs.CC_FACTEUR(None) == ""
    assert udfs.CC_INCERTITUDE("BE:43642") == edition.factor("BE:43642").uncertainty_pct
    found = udfs.CC_RECHERCHE("train intercites")
    assert found == "Train – Intercités (km × personnes)"
    many = udfs.CC_RECHERCHE("train")
    assert isinstance(many, list) and all(len(row) == 1 for row in many) and len(many) > 3
    assert udfs.CC_RECHERCHE("zzzz") == "Aucune activité"
    assert udfs.CC_FACTEUR(object()) in ("Activité inconnue", "Erreur interne")


def test_udfs_never_return_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from carbonclap_xl.excel import udfs

    def broken() -> None:
        raise RuntimeError("boom\nTraceback")

    monkeypatch.setattr(udfs, "_edition", broken)
    for value in (udfs.CC_FACTEUR("elec_fr"), udfs.CC_INCERTITUDE("elec_fr"),
                  udfs.CC_EMISSIONS("elec_fr", 1, "kWh"), udfs.CC_RECHERCHE("train")):
        assert value == "Erreur interne"
    assert not any(isinstance(v, float) and math.isnan(v) for v in [udfs.CC_FACTEUR("")])


# --------------------------------------------------------------------------- docs


def test_docs_and_lisez_moi_say_what_the_buttons_do() -> None:
    from carbonclap_xl.excel.addin import BUTTONS
    from carbonclap_xl.xlsx.template import build_template

    page = (Path(__file__).resolve().parent.parent / "docs" / "excel.md").read_text("utf-8")
    sheet = build_template()[L.SHEET_README]
    readme = "\n".join(str(c.value) for c in sheet["A"] if c.value)
    for command in L.COMMANDS:
        assert f"| **{command.label}** | {command.help} |" in page
        assert f"{command.label} : {command.help}" in readme
    for name, text in L.WORKSHEET_FUNCTIONS:
        assert f"| `={name}` | {text} |" in page
        assert f"={name} : {text}." in readme
    assert [b.id for b in BUTTONS] == [c.id for c in L.COMMANDS] == list(excel.HANDLERS)
