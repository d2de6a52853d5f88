"""Server-side validation: a corpus of faulty workbooks (each rule fires at its cell) and a
corpus of hostile files (each rejected with its code), through the real CLI and worker pool."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from carbonclap_xl.cli import main
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.xlsx.files import process_workbook, write_processed
from tests import hostile_corpus
from tests.wbhelpers import LINES, PRODUCTION, make_workbook

EXAMPLES = Path(__file__).resolve().parent.parent / "workbook" / "examples"


def _set(**cells: Any):
    """A customiser writing ``Sheet__A1=value`` cells."""
    def customise(wb: openpyxl.Workbook) -> None:
        for key, value in cells.items():
            sheet, ref = key.split("__")
            wb[sheet.replace("_", " ")][ref] = value
    return customise


def _rename(old: str, new: str):
    def customise(wb: openpyxl.Workbook) -> None:
        wb[old].title = new
    return customise


FAULTY: dict[str, tuple[dict[str, Any], list[tuple[str | None, str | None, str]]]] = {
    # name: (make_workbook kwargs, expected (sheet, cell, code) — all must be present)
    "missing_title.xlsx": ({"production": {**PRODUCTION, "title": None}},
                           [("Production", "B4", "PRODUCTION_FIELD_MISSING")]),
    "missing_dates.xlsx": ({"production": {**PRODUCTION, "start_date": None,
                                           "end_date": None}},
                           [("Production", "B12", "PRODUCTION_FIELD_MISSING"),
                            ("Production", "B13", "PRODUCTION_FIELD_MISSING")]),
    "bad_budget.xlsx": ({"production": {**PRODUCTION, "budget_keur": "beaucoup"}},
                        [("Production", "B8", "PRODUCTION_FIELD_INVALID")]),
    "dates_reversed.xlsx": ({"production": {**PRODUCTION, "start_date": "2026-05-01",
                                            "end_date": "2026-04-01"}},
                            [("Production", "B13", "PRODUCTION_FIELD_INVALID")]),
    "bad_work_type.xlsx": ({"production": {**PRODUCTION, "work_type": "Opéra"}},
                           [("Production", "B5", "PRODUCTION_FIELD_INVALID")]),
    "quantities.xlsx": ({"customise": _set(Lieux__B5="abc", Lieux__B6=-3, Régie__B5=1e12)},
                        [("Lieux", "B5", "QUANTITY_NOT_NUMBER"),
                         ("Lieux", "B6", "QUANTITY_NEGATIVE"),
                         ("Régie", "B5", "QUANTITY_ABSURD")]),
    "activities.xlsx": ({"customise": _set(Lieux__A5="Electricite reseau France",
                                           Régie__A5="Électricité – réseau France (mix moyen "
                                                     "2024)")},
                        [("Lieux", "A5", "ACTIVITY_UNKNOWN"),
                         ("Régie", "A5", "ACTIVITY_WRONG_POSTE")]),
    "units.xlsx": ({"customise": _set(Lieux__D5="kg")}, [("Lieux", "D5", "UNIT_MISMATCH")]),
    "half_lines.xlsx": ({"customise": _set(Lieux__B8=5, Lieux__A9="elec_fr")},
                        [("Lieux", "A8", "ACTIVITY_MISSING"), ("Lieux", "B9", "QUANTITY_MISSING")]),
    "phase_empty.xlsx": ({"production": {**PRODUCTION, "phase": "final"},
                          "lines": LINES.assign(quantity_final=None)},
                         [("Lieux", "C4", "PHASE_EMPTY")]),
    "phase_line_empty.xlsx": ({"production": {**PRODUCTION, "phase": "final"}},
                              [("Lieux", "C6", "PHASE_LINE_EMPTY")]),
    "materiality.xlsx": ({"lines": LINES.head(1)},
                         [(None, None, "MATERIALITY_EMPTY")]),
    "implausible.xlsx": ({"production": {**PRODUCTION, "budget_keur": 0.01}},
                         [("Production", "B8", "INTENSITY_IMPLAUSIBLE")]),
    "version.xlsx": ({"customise": _set(Production__B16="0.9")},
                     [("Production", "B16", "TEMPLATE_VERSION")]),
    "sheet_renamed.xlsx": ({"customise": _rename("Régie", "Regie")},
                           [("Régie", None, "SHEET_MISSING")]),
    "header_renamed.xlsx": ({"customise": _set(Transports__C4="Qté finale")},
                            [("Transports", "C4", "HEADER_CHANGED")]),
    "dde.xlsx": ({"customise": _set(Lieux__H5="=cmd|' /C calc'!A0")},
                 [("Lieux", "H5", "FORMULA_DDE")]),
}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    root = tmp_path_factory.mktemp("faulty")
    paths = [make_workbook(root / name, **kwargs) for name, (kwargs, _) in FAULTY.items()]
    # a processed workbook whose computed cell was edited by hand
    clean = make_workbook(root / "clean.xlsx")
    done = root / "processed.xlsx"
    write_processed(process_workbook(clean), clean, done)
    wb = openpyxl.load_workbook(done)
    wb["Lieux"]["K5"] = 1.0  # Émissions prévisionnelles (template 2.0)
    wb.save(root / "stale.xlsx")
    wb = openpyxl.load_workbook(done)
    wb["Synthèse"][f"B{L.SYN_POSTE_TOTAL_ROW}"] = 0.001
    wb.save(root / "stale_total.xlsx")
    wb = openpyxl.load_workbook(done)
    wb["Production"]["B11"] = 1e-310  # a duration that would make an infinite indicator
    wb.save(root / "tiny_duration.xlsx")
    other = openpyxl.Workbook()
    other.active["A1"] = "Budget"
    other.save(root / "other.xlsx")
    paths += [clean, done, root / "stale.xlsx", root / "other.xlsx",
              EXAMPLES / "court-metrage.xlsx", EXAMPLES / "telefilm.xlsx",
              root / "stale_total.xlsx", root / "tiny_duration.xlsx", root / "missing.xlsx"]
    report = root / "report.json"
    code = main(["validate", *map(str, paths), "--jobs", "2", "--json", str(report),
                 "--csv", str(root / "summary.csv")])
    docs = json.loads(report.read_text())["files"]
    assert [d["file"] for d in docs] == [str(p) for p in paths]
    assert code == 2  # missing.xlsx is rejected
    return {Path(d["file"]).name: d for d in docs} | {"__csv__": {"path": root / "summary.csv"}}


def _found(doc: dict[str, Any]) -> set[tuple[str | None, str | None, str]]:
    return {(i["sheet"], i["cell"], i["code"]) for i in doc["issues"]}


@pytest.mark.parametrize("name", list(FAULTY))
def test_each_rule_fires_at_its_cell(faulty: dict[str, dict[str, Any]], name: str) -> None:
    doc = faulty[name]
    assert doc["status"] in ("ok", "errors")
    for expected in FAULTY[name][1]:
        assert expected in _found(doc), (name, sorted(_found(doc)))


@pytest.mark.parametrize("name", ["clean.xlsx", "processed.xlsx", "court-metrage.xlsx",
                                  "telefilm.xlsx"])
def test_clean_workbooks_have_no_error(faulty: dict[str, dict[str, Any]], name: str) -> None:
    doc = faulty[name]
    assert doc["status"] == "ok" and doc["counts"]["errors"] == 0, doc["issues"]
    assert doc["total_kgco2e"]["forecast"] > 0


def test_stale_computed_cell(faulty: dict[str, dict[str, Any]]) -> None:
    stale = [i for i in faulty["stale.xlsx"]["issues"] if i["code"] == "COMPUTED_STALE"]
    assert [(i["sheet"], i["cell"]) for i in stale] == [("Lieux", "K5")]
    assert stale[0]["value"] == "1" or float(stale[0]["value"]) == 1.0


def test_stale_synthese_total(faulty: dict[str, dict[str, Any]]) -> None:
    stale = [(i["sheet"], i["cell"]) for i in faulty["stale_total.xlsx"]["issues"]
             if i["code"] == "COMPUTED_STALE"]
    assert stale == [("Synthèse", f"B{L.SYN_POSTE_TOTAL_ROW}")]


def test_no_infinity_reaches_the_report(faulty: dict[str, dict[str, Any]]) -> None:
    doc = faulty["tiny_duration.xlsx"]
    assert doc["status"] == "ok" and "tco2e_per_hour" not in doc["indicators"]


def test_missing_file_is_rejected_in_french(faulty: dict[str, dict[str, Any]]) -> None:
    doc = faulty["missing.xlsx"]
    assert doc["status"] == "rejected" and doc["rejection"]["code"] == "FILE_NOT_FOUND"
    assert "introuvable" in doc["rejection"]["reason"]


def test_other_workbook_is_not_ours(faulty: dict[str, dict[str, Any]]) -> None:
    doc = faulty["other.xlsx"]
    assert [i["code"] for i in doc["issues"]] == ["NOT_CARBONCLAP_WORKBOOK"]


def test_messages_name_the_fix(faulty: dict[str, dict[str, Any]]) -> None:
    (issue,) = [i for i in faulty["missing_title.xlsx"]["issues"]
                if i["code"] == "PRODUCTION_FIELD_MISSING"]
    assert issue["message"] == ("« Titre de l'œuvre » n'est pas renseigné : le CNC l'exige "
                                "pour le bilan prévisionnel.")


def test_summary_csv(faulty: dict[str, dict[str, Any]]) -> None:
    """French Excel's format by default: BOM, « ; », decimal comma, rounded figures."""
    raw = faulty["__csv__"]["path"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines(), delimiter=";"))
    assert len(rows) == len(FAULTY) + 9
    clean = next(r for r in rows if r["file"].endswith("clean.xlsx"))
    total = clean["total_forecast_kgco2e"]
    assert clean["status"] == "ok" and float(total.replace(",", ".")) > 0 and "." not in total
    digits = total.replace(",", "").lstrip("0")  # rounded: at most 6 significant digits
    assert len(digits) <= max(6, len(total.split(",")[0])), total
    assert "Source : ADEME, Base Empreinte®, version 23.6" in clean["attribution"]


def _listing(path: Path) -> set[str]:
    return {str(p) for p in path.rglob("*")} if path.exists() else set()


def test_hostile_corpus_is_rejected_cleanly(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    built = {name: build(corpus) for name, (build, _code) in hostile_corpus.CORPUS.items()}
    good = make_workbook(corpus / "good.xlsx")
    watched = [tmp_path.parent, Path.cwd()]
    before = [_listing(p) if p == tmp_path.parent else set(os.listdir(p)) for p in watched]
    report = tmp_path / "out" / "report.json"
    report.parent.mkdir()
    started = dt.datetime.now()
    code = main(["validate", *map(str, built.values()), str(good), "--json", str(report),
                 "--timeout", "20", "--memory-mb", "1024"])
    elapsed = (dt.datetime.now() - started).total_seconds()
    assert code == 2
    docs = {Path(d["file"]).name: d for d in json.loads(report.read_text())["files"]}
    for name, (_build, expected) in hostile_corpus.CORPUS.items():
        doc = docs[name]
        if expected is None:
            assert doc["status"] != "rejected", doc
        else:
            assert doc["status"] == "rejected", doc
            assert doc["rejection"]["code"] == expected
            assert "\n" not in doc["rejection"]["reason"]
    assert docs["good.xlsx"]["status"] == "ok"
    macro = {i["code"] for i in docs["macro.xlsm"]["issues"]}
    assert "MACROS_FOUND" in macro
    dde = {i["code"] for i in docs["dde_formula.xlsx"]["issues"]}
    assert {"FORMULA_DDE", "EXTERNAL_LINK"} <= dde
    out = capsys.readouterr().out
    assert "Traceback" not in out and out.count("REJETÉ") == sum(
        1 for _b, c in hostile_corpus.CORPUS.values() if c)
    after = [_listing(p) if p == tmp_path.parent else set(os.listdir(p)) for p in watched]
    new_outside = (after[0] - before[0]) - {s for s in after[0] if s.startswith(str(tmp_path))}
    assert not new_outside and after[1] == before[1]
    assert not (tmp_path.parent / "evil.txt").exists()
    assert elapsed < 120
