"""A workbook made from data can be complete: production data from YAML, CSV or ``#`` lines
(``intake.production``), lines CSV in French (``intake.csv_lines``), output folders that are
never created silently, and a CSV given where a workbook is expected."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from carbonclap_xl.cli import main
from carbonclap_xl.core.errors import InputFileError
from carbonclap_xl.core.factors import match_key
from carbonclap_xl.intake.csv_lines import column_names, poste_names, read_lines_csv
from carbonclap_xl.intake.production import (
    ProductionDataError,
    field_names,
    read_production,
    workbook_production,
)
from carbonclap_xl.workbook import layout as L
from tests.wbhelpers import sheet_values, value_at

EXAMPLES = Path(__file__).resolve().parent.parent / "workbook" / "examples"
CELL = {f.key: f.cell for f in L.PRODUCTION_FIELDS}


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_text(text, encoding=encoding)
    return path


# --------------------------------------------------------------------------- names


def test_accepted_names_come_from_the_layout_and_are_unambiguous() -> None:
    names = column_names()
    for layout in L.LINE_LAYOUTS.values():  # every input header of every template version
        for column in layout.inputs:
            assert names[match_key(column.header)] == column.key
    assert names["poste"] == "poste" and names["quantity forecast"] == "quantity_forecast"
    assert names["quantite previsionnelle"] == "quantity_forecast"
    # each poste by id, sheet and label; a sheet name never stands for another poste
    postes = poste_names()
    for poste_id, sheet in L.POSTE_SHEETS.items():
        assert postes[poste_id] == poste_id and postes[match_key(sheet)] == poste_id
    assert postes["regie"] == "regie" and postes["bureaux"] == "production"
    fields = field_names()
    assert {f.key for f in fields.values()} == {f.key for f in L.PRODUCTION_FIELDS}
    assert fields["titre"].key == "title" and fields["budget"].key == "budget_keur"
    assert fields["debut"].key == "start_date" and fields["fin"].key == "end_date"


# --------------------------------------------------------------------------- production


def test_production_yaml_with_french_names_and_values(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", (
        "Titre de l’œuvre: \"L'été : suite\"\n"
        "type d'oeuvre: court-metrage\n"
        "PHASE SOUMISE: définitif\n"
        "Budget total: 1 900,5\n"
        "jours de tournage: 24\n"
        "episodes: 1\n"
        "duration_min: 90\n"
        "début du tournage: 06/04/2026\n"
        "end_date: 2026-05-02\n"
        "producer:\n"))
    assert read_production(path) == {
        "title": "L'été : suite", "work_type": "Court métrage", "phase": "Définitif",
        "budget_keur": 1900.5, "shooting_days": 24, "episodes": 1, "duration_min": 90,
        "start_date": dt.date(2026, 4, 6), "end_date": dt.date(2026, 5, 2)}


def test_production_csv_two_columns_or_one_row(tmp_path: Path) -> None:
    long = write(tmp_path / "long.csv", "champ;valeur\nTitre de l'œuvre;Mon film, le retour\n"
                 "phase;forecast\nbudget_keur;150,5;;\n", encoding="cp1252")
    assert read_production(long) == {"title": "Mon film, le retour", "phase": "Prévisionnel",
                                     "budget_keur": 150.5}
    wide = write(tmp_path / "wide.csv", "title,work_type,start_date\nMon film,Série,"
                 "01/02/2027\n")
    assert read_production(wide) == {"title": "Mon film", "work_type": "Série",
                                     "start_date": dt.date(2027, 2, 1)}


def test_every_bad_value_is_named_with_its_line_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path / "p.yaml", "titre: Mon film\nphase: provisoire\nbudget: 2,9 M€\n"
                 "début: 31/02/2026\ntype: Longmetrage\nzorglub: 3\nedition des facteurs: x\n"
                 "titre: Autre\n")
    with pytest.raises(ProductionDataError) as info:
        read_production(path)
    text = str(info.value)
    assert text.startswith(f"{path} : 7 données de production à corriger : ")
    assert ("ligne 2, champ « phase » : « provisoire » n'est pas un choix de la liste "
            "(vouliez-vous dire « Prévisionnel » ?) : choisissez « Prévisionnel », "
            "« Définitif »") in text
    assert "ligne 3, champ « budget » : « 2,9 M€ » : écrivez le nombre seul, sans unité ni " \
           "texte (en k€ HT, par ex. 1 900 ou 1900,5)" in text
    assert "ligne 4, champ « début » : « 31/02/2026 » n'est pas une date : écrivez-la " \
           "jj/mm/aaaa" in text
    assert "« Longmetrage » n'est pas un choix de la liste (vouliez-vous dire « Long " \
           "métrage » ?)" in text
    assert "ligne 6, champ « zorglub » : ce n'est pas une donnée de production ; les " \
           "données sont « Titre de l'œuvre »" in text
    assert "« Édition des facteurs (écrite au calcul) » est écrit par le calcul" in text
    assert "ligne 8, champ « titre » : « Titre de l'œuvre » est déjà donné (ligne 1, champ " \
           "« titre ») : gardez-en un seul" in text


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("p.yaml", "titre: Mon film: le retour\n", "ligne 1 : YAML illisible : écrivez une "
                                                "donnée par ligne"),
    ("p.yaml", "- titre\n- budget\n", "des lignes « champ: valeur » sont attendues"),
    ("p.yaml", "dates:\n  debut: 1\n", "ligne 1 : une seule valeur par donnée"),
    ("p.json", "{}", "format inconnu pour des données de production"),
    ("p.csv", "titre,Mon film, le retour\n", "ligne 1 : 3 colonnes au lieu de 2 "
                                             "(champ,valeur) : une valeur qui contient « , » "
                                             "doit être entre guillemets"),
    ("p.csv", "titre;phase\nA;final\nB;final\n", "ligne 3 : une seule ligne de valeurs"),
    ("p.yaml", "debut: 10/04/2026\nfin: 06/04/2026\n",
     "ligne 2, champ « fin » : la fin du tournage (06/04/2026) précède son début "
     "(10/04/2026)"),
])
def test_unreadable_production_files_say_what_to_do(tmp_path: Path, name: str, text: str,
                                                    expected: str) -> None:
    with pytest.raises(InputFileError) as info:
        read_production(write(tmp_path / name, text))
    assert expected in str(info.value)


def test_header_lines_of_a_lines_csv(tmp_path: Path) -> None:
    path = write(tmp_path / "l.csv", (
        "# titre: Mon film : le retour;;;\n"
        "## une note : libre\n"
        "# une note sans deux-points\n"
        "\n"
        '"# Type d\'œuvre: Série";;\n'
        "# phase: prévisionnel\n"
        "poste;activity;quantity_forecast;quantity_final;unit\n"
        "Régie;meal_vegetarian;3;;repas\n"
        "regie;meal_vegetarian;x;;repas\n"))
    csv_lines = read_lines_csv(path)
    assert csv_lines.production == {"title": "Mon film : le retour", "work_type": "Série",
                                    "phase": "Prévisionnel"}
    assert [e.line for e in csv_lines.header] == [1, 5, 6]
    assert csv_lines.line_numbers == [8, 9]  # lines as an editor numbers them
    assert list(csv_lines.lines["poste"]) == ["regie", "regie"]
    # the production file completes the header; a field in both is refused, naming both
    prod = write(tmp_path / "p.yaml", "budget: 150\nphase: final\n")
    with pytest.raises(ProductionDataError) as info:
        workbook_production(csv_lines.header, prod)
    assert (f"ligne 2, champ « phase » : « Phase soumise » est déjà donné ({path}, ligne 6, "
            "champ « phase »)") in str(info.value)


def test_bad_header_line_stops_compute_with_exit_2(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "l.csv", "# tpye: Série\nposte,activity,quantity_forecast,"
                 "quantity_final,unit\nregie,meal_vegetarian,3,,repas\n")
    assert main(["compute", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (f"erreur : {path} : donnée de production à corriger : ligne 1, champ « tpye » : "
            "ce n'est pas une donnée de production ; vouliez-vous dire « Type d'œuvre »") in err
    assert "un commentaire libre commence par « ## »" in err


# --------------------------------------------------------------------------- French CSV


def test_french_csv_computes_like_the_english_one(tmp_path: Path) -> None:
    english = write(tmp_path / "en.csv", (
        "poste,activity,quantity_forecast,quantity_final,unit,count,data_source,comment\n"
        "regie,meal_vegetarian,40,42,repas,,facture,cantine\n"
        "transport,train_tgv,430,,km,6,facture,\n"
        "production,elec_fr,1800.5,,kWh,,releve,bureaux\n"))
    french = write(tmp_path / "fr.csv", (
        "POSTE;activite;Quantité prévisionnelle;Quantite definitive;unité;Nombre;"
        "Source de la donnée;Commentaire;Statut\n"
        "Régie;Repas - végétarien;40;42;repas;;facture;cantine;OK\n"
        "transports;train_tgv;430;;km;6;facture;;\n"
        "Bureaux;elec_fr;1\u00a0800,5;;kWh;;relevé;bureaux;\n"), encoding="cp1252")
    out_en, out_fr = tmp_path / "en.json", tmp_path / "fr.json"
    assert main(["compute", str(english), "--json", str(out_en)]) == 0
    assert main(["compute", str(french), "--json", str(out_fr)]) == 0
    en, fr = json.loads(out_en.read_text()), json.loads(out_fr.read_text())
    assert fr["total_kgco2e"] == en["total_kgco2e"] and en["total_kgco2e"]["forecast"] > 0
    assert [i["code"] for i in fr["issues"]] == [i["code"] for i in en["issues"]]


@pytest.mark.parametrize(("header", "expected"), [
    ("Activité,activity,poste,Quantité prévisionnelle,quantity_final,unit",
     "ligne 1 : colonne(s) en double « Activité »/« activity » : gardez une seule colonne"),
    ("Poste;Activité;Unité", "colonne(s) manquante(s) quantity_forecast, quantity_final ; "
                             "l'en-tête attendu est poste,activity,quantity_forecast,"
                             "quantity_final,unit (facultatives : count,data_source,"
                             "data_source_final,comment) ou, en français, Poste;Activité;"
                             "Quantité prévisionnelle;Quantité définitive;Unité;Nombre;"
                             "Source de la donnée;Source de la donnée (définitif);Commentaire"),
])
def test_column_errors_name_both_languages(tmp_path: Path, header: str, expected: str) -> None:
    with pytest.raises(InputFileError) as info:
        read_lines_csv(write(tmp_path / "l.csv", header + "\n"))
    assert expected in str(info.value)


def test_unknown_poste_lists_sheets_and_ids(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "l.csv", "Poste;Activité;Quantité prévisionnelle;"
                 "Quantité définitive;Unité\nPlateau;elec_fr;3;;kWh\n")
    assert main(["compute", str(path)]) == 1
    assert ("ligne 2, colonne poste : Poste « plateau » inconnu ou vide : utilisez l'un de "
            "Bureaux (production), Lieux (lieux), Décors (decors)") in capsys.readouterr().err


# --------------------------------------------------------------------------- new


def test_new_from_french_csv_and_production_is_complete(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = write(tmp_path / "l.csv", (
        "# titre: Mon film\n"
        "Poste;Activité;Quantité prévisionnelle;Quantité définitive;Unité;Nombre;"
        "Source de la donnée;Commentaire\n"
        "Régie;Repas - végétarien;40;;repas;;facture;cantine\n"
        "Transports;train_tgv;430;;km;6;facture;Paris-Lyon\n"
        "Bureaux;elec_fr;1 800,5;;kWh;;relevé;\n"))
    prod = write(tmp_path / "p.csv", "Type d'œuvre;Court métrage\nPhase soumise;définitif\n"
                 "Budget total (k€ HT);150,5\nDébut du tournage;06/04/2026\n")
    out = tmp_path / "n.xlsx"
    assert main(["new", "-o", str(out), "--from", str(lines), "--production", str(prod)]) == 0
    said = capsys.readouterr().out
    assert "Production : 5 donnée(s) reprise(s) ; à compléter dans l'onglet Production (ou " \
           "avec --production) : « Fin du tournage »" in said
    rows = sheet_values(out, L.SHEET_PRODUCTION)
    assert value_at(rows, CELL["title"]) == "Mon film"
    assert value_at(rows, CELL["work_type"]) == "Court métrage"
    assert value_at(rows, CELL["phase"]) == "Définitif"
    assert value_at(rows, CELL["budget_keur"]) == 150.5
    assert value_at(rows, CELL["start_date"]) in (dt.date(2026, 4, 6),
                                                   dt.datetime(2026, 4, 6))
    assert value_at(rows, CELL["end_date"]) == ""
    regie = sheet_values(out, "Régie")
    assert value_at(regie, "A5") == "Repas – végétarien"  # the dropdown's label
    bureaux = sheet_values(out, "Bureaux")
    assert value_at(bureaux, L.COLUMN_BY_KEY["quantity_forecast"].letter + "5") == 1800.5
    transports = sheet_values(out, "Transports")
    assert value_at(transports, L.COLUMN_BY_KEY["count"].letter + "5") == 6


def test_new_production_without_lines(tmp_path: Path) -> None:
    out = tmp_path / "n.xlsx"
    yaml_path = EXAMPLES / "telefilm.production.yaml"
    assert main(["new", "-o", str(out), "--production", str(yaml_path)]) == 0
    rows = sheet_values(out, L.SHEET_PRODUCTION)
    assert value_at(rows, CELL["title"]) == "Les Nuits de Marseille (téléfilm)"
    assert value_at(rows, CELL["phase"]) == "Définitif"


def test_new_with_bad_production_exits_2_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prod = write(tmp_path / "p.yaml", "budget: beaucoup\n")
    out = tmp_path / "n.xlsx"
    assert main(["new", "-o", str(out), "--production", str(prod)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"erreur : {prod} : donnée de production à corriger : ligne 1, "
                          "champ « budget » : « beaucoup » n'est pas un nombre")
    assert "Traceback" not in err and not out.exists()


# --------------------------------------------------------------------------- paths


def test_new_and_process_never_create_folders(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    assert main(["new", "-o", str(missing / "x.xlsx")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"erreur : {missing / 'x.xlsx'} : le dossier « {missing} » n'existe "
                           f"pas : créez-le d'abord (mkdir -p {missing}) ou choisissez un "
                           "autre chemin avec -o")
    assert not (tmp_path / "nonexistent").exists()
    assert main(["process", str(EXAMPLES / "court-metrage.xlsx"), "-o",
                 str(missing / "y.xlsx")]) == 2
    assert "le dossier" in capsys.readouterr().err
    assert not (tmp_path / "nonexistent").exists()
    a_file = write(tmp_path / "plain", "")
    assert main(["new", "-o", str(a_file / "x.xlsx")]) == 2
    assert f"« {a_file} » n'est pas un dossier" in capsys.readouterr().err


def test_a_csv_given_as_a_workbook_points_to_compute_and_new(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = EXAMPLES / "court-metrage.csv"
    assert main(["process", str(csv_path)]) == 2
    err = capsys.readouterr().err
    assert (f"erreur : {csv_path} : c'est un fichier CSV (texte), pas un classeur : calculez "
            f"ses lignes avec « carbonclap-xl compute {csv_path} », ou faites-en un classeur "
            f"avec « carbonclap-xl new --from {csv_path} -o MonFilm.xlsx » puis traitez "
            "celui-ci [NOT_A_WORKBOOK]") in err
    renamed = tmp_path / "depot.xlsx"  # the same CSV, renamed: found by its content
    renamed.write_bytes(csv_path.read_bytes())
    assert main(["process", str(renamed)]) == 2
    assert "« carbonclap-xl compute" in capsys.readouterr().err
    assert main(["validate", str(csv_path)]) == 2
    captured = capsys.readouterr()
    assert f"{csv_path} : c'est un fichier CSV (texte), pas un classeur" in captured.err
    assert "REJETÉ" in captured.out and "[NOT_A_WORKBOOK]" in captured.out


@pytest.mark.parametrize("body, line", [
    ('regie,"Repas, standard",1,,repas,"' + "x" * 140_000 + '"\n', 3),
    ('regie,"Repas, standard,1,,repas,\n' + "regie,x,1,,kg,\n" * 12_000, 3),  # never closed
])
def test_csv_field_past_the_limit_is_a_french_message_with_its_line(
        tmp_path: Path, body: str, line: int) -> None:
    from carbonclap_xl.core.errors import InputFileError
    from carbonclap_xl.intake.csv_lines import read_lines_csv

    path = tmp_path / "long.csv"
    path.write_text("# titre: Essai\nposte,activity,quantity_forecast,quantity_final,unit,"
                    "comment\n" + body, encoding="utf-8")
    with pytest.raises(InputFileError) as caught:
        read_lines_csv(path)
    assert f"ligne {line} : un champ dépasse 131\u202f072 caractères" in str(caught.value)
