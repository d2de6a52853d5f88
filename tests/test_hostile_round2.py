"""Issue 11, second red-team round: each case is built here, and each fix is checked where a
user meets it (``process``, ``validate``, the files they write)."""

from __future__ import annotations

import csv
import json
import shutil
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from carbonclap_xl.cli import main
from carbonclap_xl.core.errors import HostileFile, WorkbookPatchError
from carbonclap_xl.core.issues import Code, group_issues, make_issue, severity_counts
from carbonclap_xl.core.numbers import fr_integer
from carbonclap_xl.core.text import printable, shorten, spreadsheet_safe
from carbonclap_xl.validation.safety import inspect_package
from carbonclap_xl.validation.sandbox import REPORT_TOO_LARGE, WorkerPool
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.xlsx.files import FileSource, process_workbook
from carbonclap_xl.xlsx.patch import check_patch, patch_workbook
from tests import hostile_corpus as hc
from tests.clihelpers import run_cli, temporaries
from tests.wbhelpers import sheet_values, value_at

MB = 2**20


@pytest.fixture(scope="module")
def round2(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("round2")
    return {name: build(root) for name, (build, _verdict) in hc.ROUND2.items()}


def _process(path: Path, out: Path, *extra: str) -> tuple[int, dict[str, Any] | None]:
    report = out.with_suffix(".json")
    code = main(["process", str(path), "-o", str(out), "--force", "--json", str(report),
                 *extra])
    return code, json.loads(report.read_text()) if report.exists() else None


# --- 1. a zip that lies about its members' sizes ------------------------------------------------


def test_lying_members_are_rejected_by_the_gate_fast_and_small(round2: dict[str, Path]) -> None:
    for name in ("lying_sheet.xlsx", "lying_every_sheet.xlsx"):
        tracemalloc.start()
        started = time.perf_counter()
        with pytest.raises(HostileFile) as caught:
            inspect_package(round2[name])
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert caught.value.code == "ZIP_BOMB"
        assert "octets qu'elle déclare" in caught.value.reason
        assert seconds < 1.0 and peak < 20 * MB, (name, seconds, peak)


def test_every_reader_of_the_package_is_bounded(round2: dict[str, Path], tmp_path: Path) -> None:
    """Past the gate (a library caller that skips it), the readers still never inflate more
    than a member declares: FileSource, the package layer, the patcher."""
    path = round2["lying_sheet.xlsx"]
    tracemalloc.start()
    with pytest.raises(HostileFile) as caught:
        FileSource(path)
    with pytest.raises(HostileFile):
        patch_workbook(path, tmp_path / "out.xlsx", {"Lieux": {"Z1": 1}})
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert caught.value.code == "ZIP_BOMB" and peak < 20 * MB
    assert not (tmp_path / "out.xlsx").exists() and not temporaries(tmp_path)


@pytest.mark.parametrize("command", ["process", "validate"])
def test_lying_zip_on_every_sheet_costs_under_a_second_and_100_mb(
        round2: dict[str, Path], tmp_path: Path, command: str) -> None:
    path = round2["lying_every_sheet.xlsx"]
    args = ["process", str(path), "-o", str(tmp_path / "o.xlsx")] if command == "process" \
        else ["validate", str(path)]
    run = run_cli(args)
    assert run.code == 2 and "[ZIP_BOMB]" in run.text and "Traceback" not in run.text
    assert run.maxrss_mb < 100, run.maxrss_mb  # the parent; validate's worker is capped apart
    assert not (tmp_path / "o.xlsx").exists()


# --- symbolic links inside the archive ----------------------------------------------------------


def test_symlink_member_is_rejected_and_never_copied(round2: dict[str, Path],
                                                     tmp_path: Path) -> None:
    path = round2["symlink_member.xlsx"]
    with pytest.raises(HostileFile) as caught:
        inspect_package(path)
    assert caught.value.code == "PATH_TRAVERSAL" and "lien symbolique" in caught.value.reason
    with pytest.raises(WorkbookPatchError):
        patch_workbook(path, tmp_path / "out.xlsx", {"Lieux": {"Z1": 1}})
    with pytest.raises(WorkbookPatchError):
        check_patch(path, {"Lieux": {"Z1": 1}})
    assert not (tmp_path / "out.xlsx").exists() and not temporaries(tmp_path)


# --- 2. formula injection in what a spreadsheet opens -------------------------------------------


@pytest.mark.parametrize(("text", "safe"), [
    ("=1+1", "'=1+1"), ("+33 6 12", "'+33 6 12"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("\n=1", "'\n=1"), ("  =1", "'  =1"),
    ("\u00a0=1", "'\u00a0=1"), ("＝HYPERLINK()", "'＝HYPERLINK()"), ("＋1", "'＋1"),
    ("－1", "'－1"), ("＠A1", "'＠A1"), ("Court métrage", "Court métrage"), ("", ""),
    ("a=b", "a=b"), ("'=déjà", "'=déjà"),
])
def test_spreadsheet_safe(text: str, safe: str) -> None:
    assert spreadsheet_safe(text) == safe


def test_validate_csv_holds_no_formula(round2: dict[str, Path], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    named = [Path(n) for n in ("=cmd.xlsx", "+1.xlsx", "@SOMME(A1).xlsx", "-x.xlsx")]
    for name in named:
        shutil.copy(round2["tiny_budget.xlsx"], name)
    shutil.copy(round2["formula_title.xlsx"], "titre.xlsx")
    main(["validate", "--csv", "synthese.csv", "--jobs", "2", "--", "titre.xlsx",
          *map(str, named)])
    with open("synthese.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))  # French Excel's format, the default
    assert len(rows) == 5 and "file" in rows[0]
    for row in rows:
        for key, cell in row.items():
            assert not cell or cell[0] not in "=+@\t\r", (key, cell)
            if key not in ("total_forecast_kgco2e", "total_final_kgco2e"):
                assert not cell.startswith("-"), (key, cell)
    assert rows[0]["title"] == "'" + hc.FORMULA_TITLE
    assert [r["file"] for r in rows[1:]] == ["'" + str(n) for n in named]


# --- 3. text as long as Excel allows ------------------------------------------------------------


def test_longest_activity_is_quoted_shortened(round2: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.xlsx"
    code, doc = _process(round2["long_activity.xlsx"], out)
    assert code == 1 and out.exists() and doc is not None
    (issue,) = [i for i in doc["issues"] if i["code"] == "ACTIVITY_UNKNOWN"]
    assert issue["cell"] == "A7" and len(issue["message"]) < 400 and "…" in issue["message"]
    assert len(issue["value"]) == 200
    rows = sheet_values(out, L.SHEET_CONTROLES)
    texts = [str(v) for row in rows for v in row if v]
    assert max(map(len, texts)) < 2_100 and any("…" in t for t in texts)


def test_shorten_and_printable() -> None:
    assert shorten("abc", 5) == "abc" and shorten("abcdef", 5) == "abcd…"
    assert printable("titre\x1b[2J\nREJETÉ faux") == "titre [2J REJETÉ faux"
    message = make_issue(Code.ACTIVITY_UNKNOWN, value="y" * 40_000).message
    assert len(message) < 300


# --- 4. too many issues -------------------------------------------------------------------------


def test_repeated_issues_are_folded() -> None:
    issues = [make_issue(Code.CELL_MERGED, value=f"A{r}:B{r}", sheet="Lieux", cell=f"A{r}")
              for r in range(5, 100_005)]
    issues.append(make_issue(Code.ROW_HIDDEN, value=3, sheet="Lieux", cell="A3"))
    grouped = group_issues(issues)
    assert len(grouped) == 102 and severity_counts(grouped) == severity_counts(issues)
    fold = grouped[100]
    assert fold.count == 99_900 and fold.cells[:2] == ("Lieux!A105", "Lieux!A106")
    assert fold.message.startswith("Cellules fusionnées ×99\u202f900 : Lieux!A105, Lieux!A106")
    assert "(et 99\u202f895 autres). Premier cas : Les cellules A105:B105" in fold.message
    assert fold.to_dict()["count"] == 99_900 and group_issues(grouped) == grouped


def test_merge_bomb_gives_a_bounded_report_and_controles(round2: dict[str, Path],
                                                        tmp_path: Path) -> None:
    out = tmp_path / "out.xlsx"
    run = run_cli(["process", str(round2["merges_100k.xlsx"]), "-o", str(out), "--json",
                   str(tmp_path / "r.json")])
    assert run.code == 0, run.err[-2000:]
    doc = json.loads((tmp_path / "r.json").read_text())
    merged = [i for i in doc["issues"] if i["code"] == "CELL_MERGED"]
    assert len(merged) == 101 and sum(i["count"] for i in merged) == 100_000
    assert doc["counts"]["warnings"] >= 100_000
    assert (tmp_path / "r.json").stat().st_size < 200_000
    rows = sheet_values(out, L.SHEET_CONTROLES)
    assert len(rows) < L.CTRL_FIRST_ROW + 120
    # the Contrôles summary counts what the report counts (the folded issues unfolded)
    assert f"{fr_integer(doc['counts']['warnings'])} avertissement(s)" in str(
        value_at(rows, L.CTRL_SUMMARY_CELL))
    assert run.maxrss_mb < 400, run.maxrss_mb


def huge_result(size: int) -> str:
    return "x" * size


def test_worker_reply_is_capped() -> None:
    with WorkerPool(jobs=1, memory_mb=256, timeout_s=60, max_reply_bytes=100_000) as pool:
        small, big = pool.map(huge_result, [10, 1_000_000])
    assert small.ok and small.value == "x" * 10
    assert big.error_code == REPORT_TOO_LARGE and "au-delà de" in (big.error or "")


def test_validate_parent_memory_stays_flat(round2: dict[str, Path], tmp_path: Path) -> None:
    files = []
    for i in range(4):
        files.append(tmp_path / f"fusions-{i}.xlsx")
        shutil.copy(round2["merges_100k.xlsx"], files[-1])
    report = tmp_path / "r.json"
    run = run_cli(["validate", *map(str, files), "--jobs", "2", "--json", str(report),
                   "--csv", str(tmp_path / "s.csv")])
    assert run.code == 0, run.text[-2000:]
    doc = json.loads(report.read_text())
    assert doc["summary"] == {"ok": 4, "errors": 0, "rejected": 0}
    assert [d["file"] for d in doc["files"]] == [str(f) for f in files]
    assert report.stat().st_size < 4 * 100_000
    assert run.maxrss_mb < 150, run.maxrss_mb


# --- 5. process and validate give the same verdict ----------------------------------------------


def _verdicts(paths: dict[str, Path], out: Path) -> dict[str, tuple[str, set[str]]]:
    """validate's verdict per file: (status or rejection code, issue codes)."""
    report = out / "validate.json"
    main(["validate", *map(str, paths.values()), "--json", str(report), "--jobs", "2"])
    docs = json.loads(report.read_text())["files"]
    found = {}
    for name, doc in zip(paths, docs, strict=True):
        verdict = doc["rejection"]["code"] if doc["status"] == "rejected" else doc["status"]
        found[name] = (verdict, {i["code"] for i in doc["issues"]} - {"COMPUTED_STALE"})
    return found


def test_process_and_validate_agree_on_the_whole_corpus(
        tmp_path: Path, round2: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    paths = {**hc.build_all(corpus, hc.CORPUS), **hc.build_all(corpus, hc.EXTRA_CORPUS)}
    paths |= round2
    validated = _verdicts(paths, tmp_path)
    capsys.readouterr()
    for name, path in paths.items():
        out = tmp_path / "out" / name
        out.parent.mkdir(exist_ok=True)
        code, doc = _process(path, out)
        err = capsys.readouterr().err
        assert "Traceback" not in err
        if code == 2:
            line = err.strip().splitlines()[-1]
            verdict, codes = line[line.rindex("[") + 1 : -1], set()
        else:
            assert doc is not None
            verdict, codes = ("ok", "errors")[code], {i["code"] for i in doc["issues"]}
        assert (verdict, codes) == validated[name], name
        expected = hc.ROUND2.get(name, (None, None))[1] or dict(
            hc.CORPUS, **hc.EXTRA_CORPUS).get(name, (None, None))[1]
        if expected:
            assert verdict == expected, name


# --- also noticed -------------------------------------------------------------------------------


def test_merges_outside_the_table_are_not_reported(round2: dict[str, Path]) -> None:
    codes = {i.code for i in process_workbook(round2["merge_outside_table.xlsx"]).issues}
    assert Code.CELL_MERGED not in codes


def test_nan_cell_is_reported(round2: dict[str, Path]) -> None:
    issues = process_workbook(round2["nan_quantity.xlsx"]).issues
    assert ("Lieux", "B5", Code.QUANTITY_NOT_NUMBER) in {(i.sheet, i.cell, i.code)
                                                         for i in issues}


def test_tiny_budget_says_why_the_indicator_is_missing(round2: dict[str, Path]) -> None:
    processed = process_workbook(round2["tiny_budget.xlsx"])
    assert "kgco2e_per_keur" not in processed.result.indicators
    (issue,) = [i for i in processed.issues if i.code is Code.INTENSITY_IMPLAUSIBLE]
    assert (issue.sheet, issue.cell) == ("Production", L.FIELD_BY_KEY["budget_keur"].cell)
    assert "kgCO2e par k€ de budget non calculable" in issue.message
