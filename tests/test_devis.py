"""import-devis: budgets in both CNC layouts and in messy shapes, the mapping, the
double-counting guard, an import followed by `process`, and the command's messages."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from devis_budgets import (
    FILM_HEADER_ROW,
    film_devis,
    film_row,
    simple_devis,
    tv_csv,
    tv_devis_xlsx,
)
from wbhelpers import make_workbook, sheet_values

from carbonclap_xl.cli import main
from carbonclap_xl.core.a1 import col_index
from carbonclap_xl.core.errors import InputFileError
from carbonclap_xl.core.factors import load_edition
from carbonclap_xl.intake.devis import (
    EXCLUDED,
    FILM,
    FINAL,
    FORECAST,
    HEADING,
    IMPORTED,
    NOT_PLACED,
    SUBTOTAL,
    TV,
    BudgetAnalysis,
    Options,
    analyse_budget,
    line_record,
    parse_amount,
    split_label_code,
)
from carbonclap_xl.intake.devis_mapping import load_mapping, mapping_markdown
from carbonclap_xl.intake.double_counting import (
    DUPLICATE_MARK,
    KEEP_MARK,
    double_counting,
    mark_duplicate,
)
from carbonclap_xl.workbook import layout as L


def row_of(analysis: BudgetAnalysis, label: str):
    return next(r for r in analysis.rows if r.label == label)


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> BudgetAnalysis:
    path = film_devis(tmp_path_factory.mktemp("film") / "devis.xlsx")
    return analyse_budget(path)


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(("cell", "amount"), [
    (12000, 12000.0), (1250.5, 1250.5), ("12 000,00 €", 12000.0), ("12\u202f000 € HT", 12000.0),
    ("12.500", 12500.0), ("12,500", 12500.0), ("1.250,50", 1250.5), ("1,250.50", 1250.5),
    ("2,5", 2.5), ("4.5", 4.5), ("1.000.000", 1e6), ("(500)", -500.0), ("-500", -500.0),
    ("1200-", -1200.0), ("15 k€", 15000.0), ("2 M€", 2e6), ("EUR 300", 300.0),
    ("-", None), ("—", None), ("", None), (None, None), ("néant", None), ("PM", None),
    ("offert", None),
])
def test_amounts_as_budgets_type_them(cell: object, amount: float | None) -> None:
    value, problem = parse_amount(cell)
    assert problem is None
    assert value == amount


@pytest.mark.parametrize(("cell", "problem"), [
    ("10 %", "pourcentage « 10 % »"), ("voir note", "montant illisible « voir note »"),
    (True, "valeur VRAI/FAUX"),
])
def test_what_is_not_an_amount_is_said(cell: object, problem: str) -> None:
    assert parse_amount(cell) == (None, problem)


def test_codes_at_the_start_of_labels() -> None:
    code, rest, marked = split_label_code("511 - Location plateau")
    assert (code.digits, rest, marked) == ("511", "Location plateau", True)
    code, rest, marked = split_label_code("5 DÉCORS ET COSTUMES")
    assert (code.digits, rest, marked) == ("5", "DÉCORS ET COSTUMES", True)
    code, rest, marked = split_label_code("2 camions 20 m³")
    assert code.digits == "2" and not marked  # a quantity, not line 2
    assert split_label_code("Location")[0] is None


# --------------------------------------------------------------------------- film layout


def test_film_header_columns_and_layout(film: BudgetAnalysis) -> None:
    assert film.sheet == "Devis détaillé"
    assert film.layout == FILM
    assert film.header_row == FILM_HEADER_ROW  # the title block above is skipped
    cols = film.columns
    assert (cols["code"].letter, cols["label"].letter) == ("A", "B")
    # the merged DEVIS / COÛT FINAL band above is joined to the headers below it
    assert (cols[FORECAST].letter, cols[FORECAST].header) == ("E", "DEVIS Montant HT")
    assert (cols[FINAL].letter, cols[FINAL].header) == ("G", "COÛT FINAL Réalisé HT")
    # the hidden column (an earlier version) is never taken as an amount
    assert [c.letter for c in film.hidden_columns] == ["D"]
    assert [c.letter for c in film.notes_columns] == ["H"]
    assert any("Récap" in s for s in film.sheets_skipped)
    assert any("Notes" in s and "vide" in s for s in film.sheets_skipped)


def test_film_subtotals_never_imported(film: BudgetAnalysis) -> None:
    by_label = {r.row: r for r in film.rows}
    assert by_label[film_row("Total chapitre 1")].decision == SUBTOTAL
    assert by_label[film_row("Sous-total 5")].decision == SUBTOTAL
    assert by_label[film_row("TOTAL GÉNÉRAL HT")].decision == SUBTOTAL
    # a sub-chapter row with detail lines under it: its amount is their total
    assert by_label[film_row("AMÉNAGEMENTS DÉCORS")].decision == HEADING
    # a row without label equal to the sum of its block (negative line included)
    blank = by_label[film_row("Remise loueur") + 1]
    assert blank.decision == SUBTOTAL and blank.by_arithmetic
    assert "somme des 9 lignes du bloc" in blank.why
    assert film.grand_total == {FORECAST: 300000.0, FINAL: 300000.0}
    assert not film.messages  # every total agrees with its lines


def test_film_lines_placed_excluded_or_not_placed(film: BudgetAnalysis) -> None:
    def decided(label: str) -> tuple[str, str | None, str | None]:
        r = row_of(film, label)
        return r.decision, r.poste, r.activity

    assert decided("Location plateau Bry") == (IMPORTED, "lieux", "spend_real_estate")
    assert decided("Construction décor appartement") == (IMPORTED, "decors",
                                                         "spend_construction_works")
    assert decided("Location costumes") == (IMPORTED, "hmc", "hmc_costume_rental_eur")
    assert decided("Achats costumes") == (IMPORTED, "hmc", "hmc_textile_eur")
    assert decided("Billets d'avion repérages") == (IMPORTED, "transport", "spend_air_transport")
    assert decided("Hôtels équipe") == (IMPORTED, "regie", "spend_hotel_eur")
    assert decided("Cantine") == (IMPORTED, "regie", "spend_catering_eur")
    assert decided("Caméra et optiques") == (IMPORTED, "technique", "equipment_camera_eur")
    assert decided("Matériel électrique") == (IMPORTED, "technique", "equipment_light_eur")
    assert decided("Montage image") == (IMPORTED, "postprod", "spend_film_tv_services")
    for label in ("Droits d'auteur scénario", "Réalisation", "Défraiements équipe",
                  "Assurance tournage", "Frais généraux (7 %)", "Imprévus (10 %)"):
        assert decided(label)[0] == EXCLUDED, label
    assert "Salaires" in row_of(film, "Réalisation").why
    for label in ("Électricité studio", "Carburant", "Remise loueur", "Frais divers"):
        assert decided(label)[0] == NOT_PLACED, label
    assert "saisissez les litres" in row_of(film, "Carburant").why
    assert "saisissez les kWh" in row_of(film, "Électricité studio").why


def test_film_amounts_typed_as_text_and_notes(film: BudgetAnalysis) -> None:
    plateau = row_of(film, "Location plateau Bry")
    assert plateau.amounts == {FORECAST: 12000.0, FINAL: 12500.0}
    assert plateau.hidden  # a collapsed group hides lines, it does not delete them
    assert plateau.note == "5 jours"
    assert row_of(film, "Billets de train équipe").amounts[FORECAST] == 1500.0
    assert row_of(film, "Achats costumes").amounts == {FORECAST: 2000.0, FINAL: None}
    record = line_record(plateau, film, load_edition())
    assert record == {
        "poste": "lieux", "activity": "Dépenses – location de lieux, studios, bureaux (€)",
        "quantity_forecast": 12000, "quantity_final": 12500, "unit": "€",
        "data_source": "devis", "comment": "[devis 511] Location plateau Bry — note : 5 jours",
        "same_spending": None}


def test_film_chapter_heading_typed_in_a_merged_code_cell(film: BudgetAnalysis) -> None:
    heading = next(r for r in film.rows if r.row == film_row("5 - DÉCORS ET COSTUMES"))
    assert heading.decision == HEADING and heading.code.digits == "5"
    assert heading.label == "DÉCORS ET COSTUMES"


# --------------------------------------------------------------------------- TV layout


def test_tv_grid_csv_cp1252_semicolons_decimal_commas(tmp_path: Path) -> None:
    a = analyse_budget(tv_csv(tmp_path / "doc.csv"))
    assert a.layout == TV and a.header_row == 4
    assert (a.columns[FORECAST].header, a.columns[FINAL].header) == ("Budget HT",
                                                                    "Coût final HT")
    avion = row_of(a, "Billets d'avion Paris-Genève")
    assert (avion.decision, avion.poste, avion.amounts) == (
        IMPORTED, "transport", {FORECAST: 1200.0, FINAL: 1350.0})
    assert avion.note == "4 A/R"
    assert row_of(a, "Archives INA").decision == EXCLUDED  # category 1: rights
    assert row_of(a, "Frais généraux").decision == EXCLUDED  # category 10
    assert row_of(a, "Frais de régie").poste == "regie"
    accessories = row_of(a, "Accessoires")
    assert accessories.decision == IMPORTED and accessories.rule.endswith("(défaut)")
    subtotal = next(r for r in a.rows if not r.label and r.amounts.get(FORECAST) == 8100)
    assert subtotal.decision == SUBTOTAL and subtotal.by_arithmetic
    assert a.grand_total == {FORECAST: 54650.0, FINAL: 54380.0}
    # the rows of a category carry no sub-chapter: "5.1"-style numbers are not film codes
    assert all(r.sub is None for r in a.rows)


def test_tv_grid_without_codes_headings_carry_totals_in_keur(tmp_path: Path) -> None:
    a = analyse_budget(tv_devis_xlsx(tmp_path / "serie.xlsx"))
    assert a.layout == TV
    assert a.scale == {FORECAST: 1000.0, FINAL: 1000.0}
    assert row_of(a, "DÉCORS ET COSTUMES").decision == HEADING
    assert row_of(a, "Camions décor").amounts == {FORECAST: 4500.0, FINAL: 4700.0}
    assert row_of(a, "Catering").amounts == {FORECAST: 2500.0, FINAL: 2500.0}
    assert [(r.label, r.poste) for r in a.of(IMPORTED)] == [
        ("Construction décor café", "decors"), ("Location costumes", "hmc"),
        ("Camions décor", "transport"), ("Catering", "regie"),
        ("Machinerie et grue", "technique")]
    assert row_of(a, "Droits d'adaptation").decision == EXCLUDED
    assert not a.messages


def test_comma_separated_csv_with_english_numbers(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text('Code,Libellé,Montant\n7,MOYENS TECHNIQUES,\n711,Caméra,"1,200.50"\n'
                    '712,Optiques,800\n,Total 7,"2,000.50"\n', encoding="utf-8")
    a = analyse_budget(path)
    assert [(r.label, r.amounts[FORECAST]) for r in a.of(IMPORTED)] == [
        ("Caméra", 1200.5), ("Optiques", 800.0)]
    assert a.columns[FINAL] is None


# --------------------------------------------------------------------------- choices


def test_two_equally_likely_amount_columns_stop_and_are_named(tmp_path: Path) -> None:
    path = simple_devis(tmp_path / "d.xlsx", ("Code", "Libellé", "Devis A", "Devis B"),
                        [("711", "Caméra", 100, 120), ("712", "Son", 50, 60)])
    with pytest.raises(InputFileError) as err:
        analyse_budget(path)
    assert "plusieurs colonnes peuvent porter le montant prévisionnel : C « Devis A », " \
           "D « Devis B »" in str(err.value)
    a = analyse_budget(path, Options(forecast_column="D"))
    assert row_of(a, "Caméra").amounts[FORECAST] == 120


def test_a_hidden_amount_column_is_used_only_when_chosen(tmp_path: Path) -> None:
    path = simple_devis(tmp_path / "d.xlsx", ("Code", "Libellé", "Montant", "Réalisé"),
                        [("711", "Caméra", 100, 90)], hidden=("D",))
    a = analyse_budget(path)
    assert a.columns[FINAL] is None and [c.letter for c in a.hidden_columns] == ["D"]
    a = analyse_budget(path, Options(final_column="Réalisé"))
    assert row_of(a, "Caméra").amounts == {FORECAST: 100.0, FINAL: 90.0}


def test_ttc_amounts_need_the_vat_rate(tmp_path: Path) -> None:
    path = simple_devis(tmp_path / "d.xlsx", ("Code", "Libellé", "Montant TTC"),
                        [("711", "Caméra", 1200)])
    with pytest.raises(InputFileError, match="--ttc 20"):
        analyse_budget(path)
    a = analyse_budget(path, Options(ttc_rate=20))
    caméra = row_of(a, "Caméra")
    assert caméra.amounts[FORECAST] == pytest.approx(1000.0)
    assert line_record(caméra, a, load_edition())["comment"].endswith("TTC ÷ 1,200")


def test_two_versions_of_the_budget_in_one_file_are_not_guessed(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    path = film_devis(tmp_path / "d.xlsx", extra_sheets=False)
    wb = load_workbook(path)
    wb.copy_worksheet(wb["Devis détaillé"]).title = "Devis V2"
    wb.save(path)
    with pytest.raises(InputFileError, match="plusieurs feuilles ressemblent à un devis"):
        analyse_budget(path)
    assert analyse_budget(path, Options(sheet="Devis V2")).sheet == "Devis V2"
    with pytest.raises(InputFileError, match="vouliez-vous dire « Devis V2 »"):
        analyse_budget(path, Options(sheet="Devis V3"))


def test_no_header_row(tmp_path: Path) -> None:
    path = simple_devis(tmp_path / "d.xlsx", ("a", "b"), [(1, 2), (3, 4)])
    with pytest.raises(InputFileError, match="ligne d'en-tête introuvable"):
        analyse_budget(path)


# --------------------------------------------------------------------------- mapping


def test_shipped_mapping_is_valid_and_covers_the_cnc_structure() -> None:
    edition = load_edition()
    mapping = load_mapping(edition=edition)  # raises on any invalid placement
    assert {c.film for c in mapping.chapters.values()} >= set(range(1, 10))
    assert {c.tv for c in mapping.chapters.values()} >= set(range(1, 11))
    for code in ("51", "52", "53", "54", "58", "59", "61", "62", "63", "65", "66", "68",
                 "69", "71", "82", "83", "84", "85", "86", "87"):
        assert mapping.subchapters[code].placement.kind == "line", code
    for key in ("droits", "personnel", "interpretation", "charges_sociales", "frais_generaux"):
        assert mapping.chapters[key].placement.kind == "exclude", key
    direct = [r.placement.activity for r in mapping.rules
              if (r.placement.activity or "").startswith("BE:")]
    for ref in direct:  # a direct reference is a valid 2023 monetary ratio in the base
        factor = edition.factor(ref)
        assert factor.unit == "keuro (2023) HT" and factor.status == "valid"


def test_user_mapping_rules_come_first_and_chapters_are_replaced(tmp_path: Path) -> None:
    user = tmp_path / "ma-table.yaml"
    user.write_text("""schema: 1
chapters:
  assurances_divers:
    label: "Assurances et divers"
    film: 9
    tv: 9
    match: ["assurances et divers"]
    poste: production
    activity: spend_legal_accounting
    why: "Chez nous, le divers est du conseil."
rules:
  - words: ["assurance"]
    poste: production
    activity: spend_insurance
    why: "Nous comptons l'assurance."
""", encoding="utf-8")
    a = analyse_budget(film_devis(tmp_path / "d.xlsx"),
                       mapping=load_mapping(user))
    assert (row_of(a, "Assurance tournage").decision, row_of(a, "Assurance tournage").activity
            ) == (IMPORTED, "spend_insurance")
    assert row_of(a, "Frais divers").activity == "spend_legal_accounting"
    assert a.mapping_sources == ("devis_mapping.yaml", str(user))


def test_invalid_user_mapping_lists_its_problems(tmp_path: Path) -> None:
    user = tmp_path / "bad.yaml"
    user.write_text("""schema: 1
rules:
  - words: ["hotel"]
    poste: regie
    activity: spend_hotel
    why: "x"
  - words: ["loges"]
    poste: technique
    activity: spend_hotel_eur
    why: "x"
  - words: ["essence"]
    poste: transport
    activity: fuel_petrol_l
    why: "x"
""", encoding="utf-8")
    with pytest.raises(InputFileError) as err:
        load_mapping(user)
    text = str(err.value)
    assert "rules[1] : activité « spend_hotel » inconnue du catalogue ; vouliez-vous dire " \
           "« spend_hotel_eur »" in text
    assert "rules[2] : l'activité spend_hotel_eur ne va pas dans le poste technique" in text
    assert "rules[3] : fuel_petrol_l n'est pas un ratio monétaire en euros" in text


def test_docs_mapping_table_is_generated_from_the_file() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "devis.md").read_text(
        encoding="utf-8")
    assert mapping_markdown() in page


# --------------------------------------------------------------------------- double counting


def _line(activity: str, forecast: object, unit: str, comment: str = "", **extra: object
          ) -> dict[str, object]:
    return {"poste": "regie", "activity": activity, "quantity_forecast": forecast,
            "quantity_final": None, "unit": unit, "data_source": "devis", "comment": comment,
            **extra}


def test_double_counting_monetary_against_physical_lines() -> None:
    lines = [
        _line("hotel_fr", 40, "nuit", sheet="Régie", row=5),
        _line("spend_hotel_eur", 12000, "€"),
        _line("spend_catering_eur", 9000, "€"),  # no meal line: counted
        _line("spend_hotel_eur", None, "€"),  # nothing to count
        _line("spend_hotel_eur", 500, "€", comment=f"{KEEP_MARK} chambre de la régisseuse"),
        _line("BE:43525", 100, "€"),  # a direct reference belongs to no family
        _line("meal_average", None, "repas"),  # a physical line without quantity
    ]
    assert double_counting(lines) == [(1, "nuitées déjà dans le classeur (Régie l. 5)")]


def test_double_counting_narrower_family_of_the_rule() -> None:
    mapping = load_mapping()
    train = next(r for r in mapping.rules if "train" in r.phrases).placement.same_spending
    lines = [_line("car_diesel", 300, "km"),
             _line("spend_land_transport_people", 1500, "€", same_spending=train),
             _line("spend_land_transport_people", 6000, "€")]
    # car km duplicate a vehicle budget (the activity's family), not train tickets
    assert [i for i, _ in double_counting(lines)] == [2]


def test_a_probable_duplicate_is_written_uncounted_with_its_amounts() -> None:
    marked = mark_duplicate(_line("spend_hotel_eur", 12000, "€", "[devis 651] Hôtels"),
                            "nuitées déjà dans le classeur (Régie l. 5)")
    assert marked["quantity_forecast"] is None and marked["quantity_final"] is None
    assert marked["comment"] == (
        "[doublon probable : nuitées déjà dans le classeur (Régie l. 5) ; non comptée : "
        "prév. 12\u202f000 €] Pour la compter, remettez ces montants dans les quantités et "
        "remplacez le crochet précédent par [pas un doublon]. [devis 651] Hôtels")
    assert double_counting([_line("hotel_fr", 4, "nuit"), marked]) == []


# --------------------------------------------------------------------------- end to end


def by_poste(capsys: pytest.CaptureFixture[str], workbook: Path) -> dict:
    capsys.readouterr()
    main(["process", str(workbook), "--json", "-", "--force"])
    return json.loads(capsys.readouterr().out)


def test_import_then_process_gives_amount_times_ratio_per_poste(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bilan.xlsx"
    code = main(["import-devis", str(film_devis(tmp_path / "devis.xlsx")), "-o", str(out)])
    assert code == 1  # fuel, studio electricity, a rebate and "frais divers" are not placed
    printed = capsys.readouterr().out
    assert "Classeur créé : " in printed and "(14 ligne(s) ; budget total 300\u202f000 € repris " \
           "dans Production)" in printed
    doc = by_poste(capsys, out)
    expected = {  # amount (€) × ADEME ratio (kgCO2e per k€ 2023 HT) / 1000
        "lieux": (12000 * 21, 12500 * 21),
        "decors": (15000 * 245 + 5000 * 603, 16000 * 245 + 5000 * 603),
        "hmc": (4000 * 157 + 2000 * 271, 3800 * 157),
        "transport": (3000 * 914 + 1500 * 319 + 6000 * 319, 3200 * 914 + 1400 * 319 + 6000 * 319),
        "regie": (12000 * 250 + 9000 * 250 + 800 * 231, 11500 * 250 + 9100 * 250 + 750 * 231),
        "technique": (18000 * 216 + 9000 * 273, 18000 * 216 + 9000 * 273),
        "postprod": (14000 * 156, 14000 * 156),
        "production": (0, 0),
    }
    for poste, (forecast, final) in expected.items():
        assert doc["by_poste"][poste]["forecast"] == pytest.approx(forecast / 1000), poste
        assert doc["by_poste"][poste]["final"] == pytest.approx(final / 1000), poste
    assert doc["workbook"]["production"]["budget_keur"] == 300.0


def test_tv_import_then_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "doc.xlsx"
    assert main(["import-devis", str(tv_csv(tmp_path / "doc.csv")), "-o", str(out)]) == 0
    doc = by_poste(capsys, out)
    assert doc["by_poste"]["postprod"]["forecast"] == pytest.approx(13500 * 156 / 1000)
    assert doc["by_poste"]["transport"]["final"] == pytest.approx(
        (1350 * 914 + 2300 * 319) / 1000)


def test_into_marks_duplicates_and_leaves_the_rest_of_the_file_alone(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the workbook already holds 40 hotel nights (Régie) and 3,200 TGV km (Transports)
    wb = make_workbook(tmp_path / "classeur.xlsx")
    before = by_poste(capsys, wb)["by_poste"]
    original = {i.filename: zipfile.ZipFile(wb).read(i) for i in zipfile.ZipFile(wb).infolist()}
    devis = film_devis(tmp_path / "devis.xlsx")
    assert main(["import-devis", str(devis), "--into", str(wb)]) == 1
    printed = capsys.readouterr().out
    assert "Doublons probables (écrits sans quantité, donc non comptés ; montants en " \
           "commentaire) :" in printed
    assert "ligne 28 « 651 Hôtels équipe » — prév. 12\u202f000 € ; déf. 11\u202f500 € : " \
           "nuitées déjà dans le classeur (Régie l. 5)" in printed
    assert "« 612 Billets de train équipe » — prév. 1\u202f500 € ; déf. 1\u202f400 € : " \
           "km en train déjà dans le classeur (Transports l. 5)" in printed
    assert "Lignes ajoutées à " in printed
    backups = list(tmp_path.glob("classeur.sauvegarde-*.xlsx"))
    assert len(backups) == 1 and zipfile.ZipFile(backups[0]).read("xl/workbook.xml") == \
        original["xl/workbook.xml"]
    after_zip = zipfile.ZipFile(wb)
    changed = {n for n in original if after_zip.read(n) != original[n]}
    parts = {f"xl/worksheets/sheet{L.SHEET_ORDER.index(L.POSTE_SHEETS[p]) + 1}.xml"
             for p in ("lieux", "decors", "hmc", "transport", "regie", "technique",
                       "postprod")}
    assert changed <= parts  # only the poste sheets that received lines
    regie = sheet_values(wb, "Régie")
    hotel = regie[L.FIRST_DATA_ROW]  # row 6: after the hotel nights of row 5
    at = {c.key: col_index(c.letter) - 1 for c in L.INPUT_COLUMNS}
    assert [hotel[at[k]] for k in ("activity", "quantity_forecast", "quantity_final", "unit",
                                   "data_source")] == \
        ["Dépenses – hôtellerie, hébergement (€)", "", "", "€", "devis"]
    comment = hotel[at["comment"]]
    assert comment.startswith(DUPLICATE_MARK) and "prév. 12\u202f000 €" in comment
    after = by_poste(capsys, wb)
    # Régie gains the canteen and consumables, not the hotel budget (already in nights)
    assert after["by_poste"]["regie"]["forecast"] - before["regie"]["forecast"] == \
        pytest.approx((9000 * 250 + 800 * 231) / 1000)
    # Transports gains the plane tickets and the vehicles, not the train tickets
    assert after["by_poste"]["transport"]["forecast"] - before["transport"]["forecast"] == \
        pytest.approx((3000 * 914 + 6000 * 319) / 1000)
    warned = {(i["sheet"], i["cell"]) for i in after["issues"]
              if i["code"] == "QUANTITY_MISSING"}
    assert ("Régie", f"B{L.FIRST_DATA_ROW + 1}") in warned  # Contrôles lists the mark
    # a second import adds nothing and leaves the file as it was
    snapshot = wb.read_bytes()
    assert main(["import-devis", str(devis), "--into", str(wb)]) == 1
    printed = capsys.readouterr().out
    assert "Rien à ajouter à " in printed
    assert "Déjà importé dans ce classeur (non réécrit) : 14 ligne(s)" in printed
    assert wb.read_bytes() == snapshot


def test_reimporting_an_updated_budget_names_the_changed_lines(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = simple_devis(tmp_path / "d.xlsx", ("N°", "Libellé", "Budget"),
                        [("7", "MOYENS TECHNIQUES", None), ("711", "Caméra", 1000),
                         ("712", "Machinerie", 500)])
    wb = make_workbook(tmp_path / "w.xlsx")
    assert main(["import-devis", str(path), "--into", str(wb)]) == 0
    simple_devis(path, ("N°", "Libellé", "Budget"),
                 [("7", "MOYENS TECHNIQUES", None), ("711", "Caméra", 1200),
                  ("712", "Machinerie", 500), ("713", "Son", 300)])
    capsys.readouterr()
    assert main(["import-devis", str(path), "--into", str(wb)]) == 1
    out, err = capsys.readouterr()
    assert "Déjà importé dans ce classeur (non réécrit) : 2 ligne(s)" in out
    assert "  ligne 3 « 711 Caméra » : déjà dans le classeur (Technique l. 5), montants " \
           "changés : prév. 1\u202f000 € → 1\u202f200 € ; supprimez l'ancienne ligne pour " \
           "réimporter celle-ci" in out
    assert "Lignes ajoutées à " in out and ": 1 (sauvegarde" in out  # only « Son »
    assert err == "1 ligne(s) déjà importée(s) avec d'autres montants : le classeur ne suit " \
                  "plus ce devis (liste ci-dessus).\n"


def test_summary_budget_at_sub_chapter_level(tmp_path: Path) -> None:
    path = simple_devis(tmp_path / "d.xlsx", ("Poste", "Intitulé", "Devis", "Coût final"), [
        ("5", "DÉCORS ET COSTUMES", 30000, 31000),
        ("51", "Studio", 10000, 10000), ("58", "Costumes", 20000, 21000),
        ("6", "TRANSPORTS, DÉFRAIEMENTS, RÉGIE", 5000, 5500),
        ("65", "Hébergement", 5000, "voir facture"),
    ])
    a = analyse_budget(path)
    assert a.layout == FILM
    assert [(r.label, r.decision, r.poste) for r in a.rows] == [
        ("DÉCORS ET COSTUMES", HEADING, None), ("Studio", IMPORTED, "lieux"),
        ("Costumes", IMPORTED, "hmc"), ("TRANSPORTS, DÉFRAIEMENTS, RÉGIE", HEADING, None),
        ("Hébergement", IMPORTED, "regie")]
    assert a.messages == [
        "ligne 5 « 6 TRANSPORTS, DÉFRAIEMENTS, RÉGIE » : total définitif 5\u202f500 € ≠ "
        "somme de ses lignes 0 € (1 ligne(s)) ; les lignes sont importées, ce total est ignoré",
        "ligne 6 « 65 Hébergement » : définitif : montant illisible « voir facture » — seule "
        "la phase lisible est importée"]


def test_lines_without_code_are_tagged_by_their_chapter(tmp_path: Path) -> None:
    a = analyse_budget(tv_csv(tmp_path / "doc.csv"))
    assert line_record(row_of(a, "Repas"), a, load_edition())["comment"] == \
        "[devis ch. 6] Repas"


def test_dry_run_prints_the_decisions(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    report = tmp_path / "decisions.csv"
    code = main(["import-devis", str(film_devis(tmp_path / "devis.xlsx")), "--report",
                 str(report)])
    out, err = capsys.readouterr()
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "Devis lu : devis.xlsx, feuille « Devis détaillé »"
    assert "Mise en page (détectée) : devis détaillé CNC long métrage (chapitres 1 à 9, " \
           "sous-chapitres à deux chiffres)" in lines
    assert "Ligne d'en-tête : 5 (au-dessus : titre, lignes 1 à 4)" in lines
    assert "Colonnes : code A « N° » ; libellé B « Désignation » ; prévisionnel E « DEVIS " \
           "Montant HT » ; définitif G « COÛT FINAL Réalisé HT »" in lines
    assert "  colonnes masquées, jamais prises comme montants (--forecast-column ou " \
           "--final-column pour en choisir une) : D « DEVIS Prévu (V1) »" in lines
    assert "Unité : montants lus comme € HT, de l'année du devis, sans déflation (ratios " \
           "ADEME en kgCO2e par k€ 2023 HT)." in lines
    assert "  Lieux de tournage & studios                             1         12\u202f000 €" \
           "         12\u202f500 €" in lines
    assert "  ligne 26 « 632 Carburant » — prév. 2\u202f500 € ; déf. 2\u202f700 € : Carburant : " \
           "l'ADEME ne publie pas de ratio monétaire pour les produits pétroliers ; " \
           "saisissez les litres (factures, cartes carburant) avec une activité « Carburant " \
           "– … » (Transports) ou « Groupe électrogène – … » (Lieux, Technique)." in lines
    assert "Sous-totaux reconnus par le calcul seul (vérifiez) :" in lines
    assert "Aucun classeur écrit : ajoutez -o NOUVEAU.xlsx ou --into CLASSEUR.xlsx." in lines
    assert err == "4 ligne(s) non placée(s) : à saisir en données physiques ou à classer " \
                  "(liste ci-dessus).\n"
    rows = report.read_text(encoding="utf-8-sig").splitlines()
    assert rows[0] == "ligne;code;libellé;chapitre;sous-chapitre;prévisionnel (€);" \
                      "définitif (€);décision;poste;activité;règle;motif;note"
    assert any(r.startswith("13;511;Location plateau Bry;Décors et costumes;51;12000,00;"
                            "12500,00;importée;lieux;spend_real_estate;sous-chapitre 51 "
                            "Studio;") for r in rows)


def test_everything_placed_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                   ) -> None:
    path = simple_devis(tmp_path / "d.xlsx", ("N°", "Libellé", "Budget"),
                        [("7", "MOYENS TECHNIQUES", None), ("711", "Caméra", 1000),
                         ("2", "PERSONNEL", None), ("211", "Chef opérateur", 5000)])
    assert main(["import-devis", str(path), "-o", str(tmp_path / "w.xlsx")]) == 0
    out = capsys.readouterr().out
    assert "1 importée(s), 1 exclue(s), 0 non placée(s)" in out


@pytest.mark.parametrize(("args", "message"), [
    (["nope.xlsx"], "nope.xlsx : fichier introuvable"),
    (["{dir}/b.ods"], "format non pris en charge : enregistrez le devis en .xlsx ou "
                      "exportez-le en .csv"),
    (["{dir}/d.xlsx", "-o", "{dir}/d.xlsx"], "existe déjà : --force pour le remplacer"),
    (["{dir}/d.xlsx", "-o", "{dir}/w.xlsm"], "le nouveau classeur s'enregistre en .xlsx"),
    (["{dir}/d.xlsx", "--into", "{dir}/d.xlsx"], "ce n'est pas un classeur Carbon'Clap XL"),
    (["{dir}/d.xlsx", "--header-row", "99"], "--header-row 99 : la feuille n'a que"),
    (["{dir}/d.xlsx", "--ttc", "120"], "--ttc 120 : donnez le taux de TVA en %"),
])
def test_unusable_input_one_french_line_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    simple_devis(tmp_path / "d.xlsx", ("Code", "Libellé", "Montant"), [("711", "Caméra", 1)])
    (tmp_path / "b.ods").write_bytes(b"PK\x03\x04 not really")
    argv = ["import-devis", *[a.format(dir=tmp_path) for a in args]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("erreur : ") and err.count("\n") == 1
    assert message in err



@pytest.mark.slow
def test_libreoffice_reopens_a_workbook_imported_into(tmp_path: Path) -> None:
    from wbhelpers import SOFFICE, libreoffice_resave

    if not SOFFICE:
        pytest.skip("LibreOffice (soffice) is not installed")
    wb = make_workbook(tmp_path / "classeur.xlsx")
    assert main(["import-devis", str(film_devis(tmp_path / "devis.xlsx")), "--into",
                 str(wb)]) == 1
    resaved = libreoffice_resave(wb, tmp_path / "lo")
    regie = sheet_values(resaved, "Régie")
    row = regie[L.FIRST_DATA_ROW + 1]
    got = {key: row[L.COLUMN_BY_KEY[key].index - 1]
           for key in ("activity", "quantity_forecast", "quantity_final", "unit",
                       "data_source", "comment")}
    assert got == {"activity": "Dépenses – restauration, traiteur, cantine (€)",
                   "quantity_forecast": 9000.0, "quantity_final": 9100.0, "unit": "€",
                   "data_source": "devis", "comment": "[devis 661] Cantine"}
