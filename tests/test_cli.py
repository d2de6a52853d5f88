"""The command-line contract of `factors list` and `compute` (other work builds on it)."""

from __future__ import annotations

import argparse
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


def _all_parsers() -> list[argparse.ArgumentParser]:
    from carbonclap_xl.cli import build_parser

    found, todo = [], [build_parser()]
    while todo:
        parser = todo.pop()
        found.append(parser)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    return found


def test_help_speaks_french_everywhere() -> None:
    for parser in _all_parsers():
        text = parser.format_help()
        assert "usage : " in text and "afficher cette aide et quitter" in text, parser.prog
        for english in ("usage:", "positional arguments", "show this help", "options:\n"):
            assert english not in text, (parser.prog, english)


def test_every_option_has_help_and_every_command_an_example() -> None:
    for parser in _all_parsers():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, f"{parser.prog}: {action.option_strings or action.dest} sans aide"
        leaf = not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
        if leaf:
            assert parser.epilog and "exemples :" in parser.epilog, parser.prog


def test_argument_errors_are_french_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, expected in ((["process"], "arguments obligatoires manquants : CLASSEUR"),
                           (["validate", "x.xlsx", "--timeout", "0"],
                            "--timeout : 0 : donnez un nombre de secondes strictement positif"),
                           (["validate", "x.xlsx", "--memory-mb", "0"],
                            "donnez un nombre entier de Mo strictement positif"),
                           (["valider"], "choix invalide")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert expected in err and "error:" not in err and "Traceback" not in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and "carbonclap-xl" in capsys.readouterr().out


def test_a_row_with_an_extra_field_is_reported_not_cut(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # line 3: « Cantine, jour 3 » unquoted makes 8 fields for 7 columns
    src = write_csv(tmp_path / "l.csv",
                    "regie,meal_vegetarian,40,40,repas,facture,Cantine jour 2\n"
                    "regie,meal_vegetarian,45,45,repas,facture,Cantine, jour 3\n"
                    'regie,meal_vegetarian,50,50,repas,facture,"Cantine, jour 4"\n')
    assert main(["compute", str(src), "--json", "-"]) == 1
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    (issue,) = [i for i in doc["issues"] if i["code"] == "CSV_EXTRA_FIELDS"]
    assert issue["row"] == 3 and issue["line"] == 1 and issue["severity"] == "error"
    assert issue["message"].startswith(
        "Ligne 3 : 8 champs pour 7 colonnes ; un séparateur « , » dans un texte crée un champ "
        "de trop : mettez le commentaire entre guillemets")
    assert doc["lines"][1]["status"] == "error"  # not counted; the two others are
    assert doc["total_kgco2e"]["forecast"] == pytest.approx(90 * 0.51)
    assert doc["lines"][2]["comment"] == "Cantine, jour 4"
    assert "erreur [CSV_EXTRA_FIELDS] ligne 3" in captured.err


def test_a_multiline_quoted_field_keeps_line_numbers_right(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "l.csv",
                    'lieux,elec_fr,10,,kWh,facture,"deux\nlignes"\n'
                    "lieux,elec_fr,abc,,kWh,facture,\n")
    assert main(["compute", str(src), "--json", "-"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [(i["row"], i["code"]) for i in doc["issues"]] == [(4, "QUANTITY_NOT_NUMBER")]


def test_optional_count_and_final_data_source_columns(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header = ("poste,activity,quantity_forecast,quantity_final,unit,count,data_source,"
              "data_source_final,comment\n")
    src = write_csv(tmp_path / "l.csv",
                    "transport,train_tgv,430,430,km,6,devis,facture,Paris-Lyon\n"
                    "lieux,elec_fr,1000,,kWh,,facture,,\n", header=header)
    assert main(["compute", str(src), "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    tgv, elec = doc["lines"]
    assert tgv["co2e_forecast_kg"] == pytest.approx(430 * 6 * 0.00293)
    assert tgv["count"] == "6" and tgv["count_used"] == 6 and tgv["count_unit"] == "passagers"
    assert tgv["data_source_final"] == "facture"
    assert tgv["uncertainty_final_pct"] < tgv["uncertainty_forecast_pct"]
    assert elec["count"] is None and elec["count_used"] == 1
    # a CSV without the optional columns gets them as blanks in the result
    plain = write_csv(tmp_path / "p.csv", "lieux,elec_fr,1000,,kWh,facture,\n")
    assert main(["compute", str(plain), "--json", "-"]) == 0
    (line,) = json.loads(capsys.readouterr().out)["lines"]
    assert line["count"] is None and line["data_source_final"] is None


def test_new_from_csv_does_not_place_a_line_with_extra_fields(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "l.csv",
                    "regie,meal_vegetarian,45,45,repas,facture,Cantine, jour 3\n"
                    ",elec_fr,3,,kWh,,\n")
    assert main(["new", "-o", str(tmp_path / "n.xlsx"), "--from", str(src)]) == 1
    captured = capsys.readouterr()
    assert "(0 ligne(s) reprises, 2 non placée(s) : poste inconnu, champs en trop)" in \
        captured.out
    assert "Ligne 2 : 8 champs pour 7 colonnes" in captured.err
    assert "ligne 3 : poste «  » inconnu" in captured.err  # numbered as in the file
