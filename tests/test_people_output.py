"""What people read (issue 12): CSV files that French Excel opens as they are (or plain ones
for programs), figures at a sensible precision and the French way, the factor sources'
credit on one terminal line, and a progress bar only on an interactive terminal."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from carbonclap_xl.cli import lines as lines_cli
from carbonclap_xl.cli import main
from carbonclap_xl.cli.progress import ERASE, Progress
from carbonclap_xl.core.csvout import EXCEL_FR, PLAIN, CsvWriter, csv_bytes, rounded
from carbonclap_xl.core.engine import compute
from carbonclap_xl.core.factors import FactorEdition, credit_line, load_edition
from carbonclap_xl.core.issues import Code, make_issue
from carbonclap_xl.core.numbers import NNBSP, fr_general, fr_mass, fr_significant
from carbonclap_xl.report.terminal import summary_text
from tests.devis_budgets import simple_devis

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "workbook" / "examples"
BOM = b"\xef\xbb\xbf"
HEADER = "poste,activity,quantity_forecast,quantity_final,unit,data_source,comment\n"
FULL_LICENCE = "Licence Ouverte / Open Licence 2.0 (Etalab)"  # the full text, files only


class FakeTerminal(io.StringIO):
    """A stream that says it is an interactive terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def edition() -> FactorEdition:
    return load_edition()


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(("x", "shown"), [
    (12.5, "12,5"), (1287.8319999999999, "1287,832"), (0.1 + 0.2, "0,3"), (1e6, "1000000"),
    (-3.0, "-3"), (0.000012345, "0,000012345"), (1234567.891, "1234567,891"),
    (1.5e20, "1,5E+20"), (1e-310, "1E-310"), (0.0, "0"), (float("nan"), "—"),
])
def test_fr_general_quotes_numbers_as_a_spreadsheet_shows_them(x: float, shown: str) -> None:
    assert fr_general(x) == shown


@pytest.mark.parametrize(("kg", "shown"), [
    (0, "0 kg"), (0.4, "0,4 kg"), (0.0123, "0,0123 kg"), (8.5, "8,5 kg"), (12, "12 kg"),
    (850, "850 kg"), (999.4, "999 kg"), (999.6, "1,00 t"), (1234.5, "1,23 t"),
    (12_400, "12,40 t"), (99_994, "99,99 t"), (123_456, "123,5 t"),
    (12_345_678, f"12{NNBSP}345,7 t"), (-500, "-500 kg"), (float("inf"), "—"),
])
def test_fr_mass_kg_under_a_tonne_tonnes_above(kg: float, shown: str) -> None:
    assert fr_mass(kg) == shown


def test_fr_mass_signed_and_fr_significant() -> None:
    assert fr_mass(850, signed=True) == "+850 kg" and fr_mass(-1500, signed=True) == "-1,50 t"
    assert fr_mass(0, signed=True) == "0 kg"
    assert [fr_significant(x) for x in (0.4, 12.34, 1234.6, 0.012345)] == [
        "0,4", "12,3", f"1{NNBSP}235", "0,0123"]


def test_a_number_the_user_typed_is_quoted_the_french_way(edition: FactorEdition) -> None:
    """« lue comme 12,5 », not « 12.5 »; the issue's value keeps the data."""
    line = {"poste": "lieux", "activity": "elec_fr", "quantity_forecast": "12,5 ",
            "quantity_final": None, "unit": "kWh", "data_source": "facture", "comment": ""}
    result = compute([line, {**line, "quantity_forecast": -2.5}], edition)
    (text,) = [i for i in result.issues if i.code is Code.QUANTITY_TEXT]
    assert "lue comme 12,5 :" in text.message and "12.5" not in text.message
    (negative,) = [i for i in result.issues if i.code is Code.QUANTITY_NEGATIVE]
    assert negative.message.startswith("La quantité -2,5 est négative")
    stale = make_issue(Code.COMPUTED_STALE, value=1287.8319999999999, expected="1287,83")
    assert stale.message.startswith("La valeur calculée 1287,832 diffère du recalcul (1287,83)")
    assert stale.value == "1287.8319999999999"


# --------------------------------------------------------------------------- CSV formats


def test_the_two_csv_formats() -> None:
    assert [EXCEL_FR.cell(v) for v in (1287.8319999999999, 0.012345678, 1234567.8, 2900.0,
                                       -0.00000001, 7, None, "=cmd", "-x")] == [
        "1287,83", "0,0123457", "1234568", "2900", "-0,00000001", 7, "", "'=cmd", "'-x"]
    assert [PLAIN.cell(v) for v in (1287.8319999999999, 2900.0, float("nan"), "@A1")] == [
        "1287.8319999999999", "2900.0", "", "'@A1"]
    assert EXCEL_FR.cell(-0.001, 2) == "0,00" and EXCEL_FR.cell(12000.0, 2) == "12000,00"
    assert rounded(-1287.8319999999999) == "-1287.83"
    data = csv_bytes(["titre", "kg"], [{"titre": "Film; « un »", "kg": 1.5}], EXCEL_FR)
    assert data == BOM + "titre;kg\r\n\"Film; « un »\";1,5\r\n".encode()
    assert csv_bytes(["a"], [{"a": 1.5}], PLAIN) == b"a\r\n1.5\r\n"
    out = io.StringIO()
    writer = CsvWriter(out, ["a", "b"], EXCEL_FR, decimals={"b": 2})
    writer.row([1.25, 3.0])
    assert out.getvalue() == "a;b\r\n1,25;3,00\r\n"


def _validate(tmp_path: Path, *options: str) -> tuple[bytes, dict[str, Any]]:
    report, summary = tmp_path / "r.json", tmp_path / "s.csv"
    main(["validate", str(EXAMPLES / "telefilm.xlsx"), "--json", str(report), "--csv",
          str(summary), "--jobs", "1", *options])
    return summary.read_bytes(), json.loads(report.read_text())["files"][0]


def test_validate_csv_opens_in_french_excel(tmp_path: Path) -> None:
    raw, doc = _validate(tmp_path)
    assert raw.startswith(BOM)
    (row,) = list(csv.DictReader(raw.decode("utf-8-sig").splitlines(), delimiter=";"))
    assert row["status"] == "ok" and row["file"].endswith("telefilm.xlsx")
    for phase in ("forecast", "final"):
        cell = row[f"total_{phase}_kgco2e"]
        exact = doc["total_kgco2e"][phase]
        assert cell == rounded(exact).replace(".", ","), (cell, exact)
        assert float(cell.replace(",", ".")) == pytest.approx(exact, rel=1e-6)
    assert FULL_LICENCE in row["attribution"]  # the full text stays in the file


def test_validate_csv_plain(tmp_path: Path) -> None:
    raw, doc = _validate(tmp_path, "--csv-format", "plain")
    assert not raw.startswith(BOM) and raw.splitlines()[0].startswith(b"file,status,")
    (row,) = list(csv.DictReader(raw.decode("utf-8").splitlines()))
    assert float(row["total_final_kgco2e"]) == doc["total_kgco2e"]["final"]  # exact


def test_validate_csv_on_stdout(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
                                ) -> None:
    assert main(["validate", str(EXAMPLES / "telefilm.xlsx"), "--csv", "-", "--jobs", "1"]) == 0
    out, err = capsysbinary.readouterr()
    assert out.startswith(BOM + b"file;status;") and len(out.splitlines()) == 2
    assert b"1 fichier(s) : 1 conforme(s)" in err  # the lines for people leave stdout alone
    assert main(["validate", "x.xlsx", "--csv", "-", "--json", "-"]) == 2


def test_import_devis_report_formats_and_safe_labels(tmp_path: Path) -> None:
    devis = simple_devis(tmp_path / "devis.xlsx", ("Code", "Libellé", "Prévu"),
                         [("511", "@SOMME(A1)", 1200.5), ("512", "-Régie", 300)])
    report = tmp_path / "decisions.csv"
    main(["import-devis", str(devis), "--report", str(report)])
    raw = report.read_bytes()
    assert raw.startswith(BOM)
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines(), delimiter=";"))
    labels = {r["libellé"]: r["prévisionnel (€)"] for r in rows}
    assert labels == {"'@SOMME(A1)": "1200,50", "'-Régie": "300,00"}
    main(["import-devis", str(devis), "--report", str(report), "--csv-format", "plain"])
    rows = list(csv.DictReader(report.read_text(encoding="utf-8").splitlines()))
    assert {r["libellé"]: r["prévisionnel (€)"] for r in rows} == {
        "'@SOMME(A1)": "1200.5", "'-Régie": "300.0"}


# --------------------------------------------------------------------------- terminal


def test_the_summary_prints_kg_under_a_tonne_and_credits_in_one_line(
        edition: FactorEdition) -> None:
    line = {"poste": "lieux", "activity": "elec_fr", "quantity_forecast": 1000,
            "quantity_final": None, "unit": "kWh", "data_source": "facture", "comment": ""}
    result = compute([line], edition)
    kg = result.total_kg.forecast
    assert 1 < kg < 1000
    text = summary_text(result)
    (lieux,) = [t for t in text.splitlines() if t.startswith("Lieux")]
    assert lieux.split()[-4:] == [*fr_mass(kg).split(), "0", "kg"]  # forecast, final
    assert "0,0" not in text
    assert text.splitlines()[-1] == edition.credit()
    assert sum("Facteurs" in t for t in text.splitlines()) == 1 and FULL_LICENCE not in text


def test_credit_line() -> None:
    assert load_edition().credit() == (
        "Facteurs 2026.12 : ADEME Base Empreinte® 23.6 (Licence Ouverte 2.0) et 7 autres "
        "sources (OGL v3.0, domaine public, MIT) — détail : carbonclap-xl factors sources")
    assert credit_line("X", [{"key": "ZZ", "dataset": "Data", "edition": "1",
                              "licence": "CC-BY 4.0"}]) == (
        "Facteurs X : Data 1 (CC-BY 4.0) — détail : carbonclap-xl factors sources")


def test_every_run_ends_with_one_credit_line_and_files_keep_the_full_text(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "l.csv"
    src.write_text(HEADER + "lieux,elec_fr,1000,,kWh,facture,\n", encoding="utf-8")
    assert main(["compute", str(src), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert out.rstrip("\n").splitlines()[-1] == load_edition().credit()
    assert FULL_LICENCE not in out
    doc = json.loads((tmp_path / "r.json").read_text())
    assert any(FULL_LICENCE in a for a in doc["attribution"])
    main(["validate", str(EXAMPLES / "telefilm.xlsx"), "--jobs", "1"])
    out = capsys.readouterr().out
    assert out.rstrip("\n").splitlines()[-1] == load_edition().credit()
    assert "prévisionnel " in out and " t, définitif " in out
    assert main(["factors", "sources"]) == 0
    out = capsys.readouterr().out
    assert FULL_LICENCE in out and "Open Government Licence v3.0" in out


# --------------------------------------------------------------------------- progress


def test_progress_bar_draws_only_on_a_terminal() -> None:
    tty = FakeTerminal()
    with Progress.on(tty, 4, "a.xlsx") as bar:
        assert bar.active
        bar.advance(label="b.xlsx")
        bar.echo("une ligne")
        bar.advance(3)
    text = tty.getvalue()
    assert "[" + "#" * 6 + "-" * 18 + "] 1/4  25 % b.xlsx" in text
    assert f"{ERASE}une ligne\n{ERASE}[" in text  # erased, printed above, drawn again
    assert "4/4 100 %" in text and text.endswith(ERASE)
    pipe = io.StringIO()
    with Progress.on(pipe, 4) as bar:
        bar.advance()
        bar.echo("une ligne")
    assert pipe.getvalue() == "une ligne\n"  # no carriage return in logs
    assert not Progress.on(FakeTerminal(), 4, wanted=False).active


def test_validate_shows_a_bar_on_a_terminal_never_on_stdout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    files = [shutil.copy(EXAMPLES / "telefilm.xlsx", tmp_path / f"f{i}.xlsx") for i in range(3)]
    tty = FakeTerminal()
    monkeypatch.setattr("sys.stderr", tty)
    assert main(["validate", *map(str, files), "--json", "-", "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert [Path(d["file"]).name for d in json.loads(out)["files"]] == [
        "f0.xlsx", "f1.xlsx", "f2.xlsx"]  # stdout: the JSON, nothing else
    err = tty.getvalue()
    assert "3/3 100 %" in err and ERASE in err
    assert "3 fichier(s) : 3 conforme(s)" in err
    assert "OK       " not in err  # with the bar, files without problems are only counted
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert main(["validate", *map(str, files[:2]), "--jobs", "2"]) == 0
    assert "\r" not in capsys.readouterr().out


def test_compute_of_a_large_file_shows_its_stages(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "l.csv"
    src.write_text(HEADER + "lieux,elec_fr,1000,,kWh,facture,\n" * 50, encoding="utf-8")
    monkeypatch.setattr(lines_cli, "PROGRESS_MIN_BYTES", 100)
    tty = FakeTerminal()
    monkeypatch.setattr("sys.stderr", tty)
    assert main(["compute", str(src), "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["total_kgco2e"]["forecast"] > 0
    err = tty.getvalue()
    assert "lecture du CSV" in err and "calcul de 50 lignes" in err and "3/3 100 %" in err
    monkeypatch.setattr(lines_cli, "PROGRESS_MIN_BYTES", 10**9)  # a small file: no bar
    tty.seek(0)
    tty.truncate()
    assert main(["compute", str(src), "--json", str(tmp_path / "r.json")]) == 0
    assert ERASE not in tty.getvalue()
