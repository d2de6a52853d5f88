"""The command-line contract of `factors list` and `compute` (other work builds on it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from carbonclap_xl.cli import main

CSV_HEADER = "poste,activity,quantity_forecast,quantity_final,unit,data_source,comment\n"


def write_csv(path: Path, body: str, header: str = CSV_HEADER, encoding: str = "utf-8") -> Path:
    path.write_text(header + body, encoding=encoding)
    return path


def test_factors_list_json_has_the_contract_fields(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["factors", "list", "--json", "--search", "gazole non routier"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["count"] == len(doc["factors"]) >= 3
    required = {"id", "label_fr", "value", "unit", "uncertainty_pct", "source_dataset",
                "source_edition", "source_id"}
    for row in doc["factors"]:
        assert required <= set(row)
    ids = {row["id"] for row in doc["factors"]}
    assert "BE:14015" in ids
    assert any("Base Empreinte" in a for a in doc["attribution"])


def test_factors_list_every_factor(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["factors", "list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["count"] > 10_000  # every Base Empreinte element and the other sources


def test_compute_json_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "l.csv",
                    "lieux,elec_fr,1000,1200,kWh,facture,plateau\n"
                    "lieux,BE:14015,300,,L,devis,\n"
                    "transport,train_tgv,,500,km,facture,\n")
    assert main(["compute", str(src), "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["total_kgco2e"]["forecast"] == pytest.approx(1000 * 0.0519 + 300 * 3.16)
    assert set(doc["by_poste"]) >= {"lieux", "transport"}
    assert doc["by_poste"]["lieux"]["final"] == pytest.approx(1200 * 0.0519)
    assert doc["by_nature"]["energie"]["forecast"] == pytest.approx(1000 * 0.0519 + 300 * 3.16)
    assert set(doc["uncertainty_kgco2e"]) == {"forecast", "final"}
    assert len(doc["lines"]) == 3 and doc["lines"][1]["co2e_final_kg"] is None
    assert doc["factor_edition"]["edition"] and doc["factor_edition"]["sources"]
    for issue in doc["issues"]:
        assert {"line", "cell", "code", "severity", "message"} <= set(issue)


def test_compute_exit_1_and_located_french_issues(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "l.csv", "lieux,elec_fr,abc,,kWh,facture,\nlieux,Gazol,3,,L,,\n")
    out = tmp_path / "r.json"
    assert main(["compute", str(src), "--json", str(out)]) == 1
    doc = json.loads(out.read_text())
    found = {(i["row"], i["code"]) for i in doc["issues"]}
    assert (2, "QUANTITY_NOT_NUMBER") in found and (3, "ACTIVITY_UNKNOWN") in found
    err = capsys.readouterr().err
    assert ("erreur [QUANTITY_NOT_NUMBER] ligne 2, colonne quantity_forecast : La quantité "
            "« abc » n'est pas un nombre : saisissez un nombre (ex. 1200,5).") in err
    assert "Traceback" not in err


def test_compute_french_excel_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "l.csv", "lieux;elec_fr;1000,5;;kWh;facture;éclairage\n",
                    header=CSV_HEADER.replace(",", ";"), encoding="cp1252")
    assert main(["compute", str(src), "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["total_kgco2e"]["forecast"] == pytest.approx(1000.5 * 0.0519)
    assert doc["lines"][0]["comment"] == "éclairage"


@pytest.mark.parametrize(("content", "message"), [
    (None, "fichier introuvable"),
    ("poste,activity\nlieux,elec_fr\n", "colonne(s) manquante(s) quantity_forecast"),
    ("", "fichier vide"),
])
def test_compute_unreadable_input_exits_2_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None,
        message: str) -> None:
    path = tmp_path / "l.csv"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert main(["compute", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("erreur : ") and message in err[0]


def test_console_script_runs_without_traceback(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "carbonclap_xl.cli", "compute",
                           str(tmp_path / "nope.csv")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == f"erreur : {tmp_path / 'nope.csv'} : fichier introuvable"
