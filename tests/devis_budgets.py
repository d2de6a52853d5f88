"""Production budgets made in the tests, in the shapes line producers send them: the CNC
feature-film devis détaillé and the TV/documentary 10-category grid, with title blocks,
merged headers, hidden columns and rows, amounts typed as text, notes and subtotals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openpyxl import Workbook

# (code, label, quantity, hidden "V1" amount, devis amount, final quantity, final amount, note)
FILM_ROWS: list[tuple[Any, ...]] = [
    ("1", "DROITS ARTISTIQUES", None, None, None, None, None, None),
    ("11", "Droits d'auteur scénario", None, 1000, "40 000", None, 40000, None),
    (None, "Total chapitre 1", None, None, 40000, None, 40000, None),
    ("2", "PERSONNEL", None, None, None, None, None, None),
    ("21", "Réalisation", None, None, 60000, None, 61000, None),
    ("5 - DÉCORS ET COSTUMES", None, None, None, None, None, None, None),  # merged A:H
    ("51", "STUDIO", None, None, None, None, None, None),
    ("511", "Location plateau Bry", 10, 9000, "12 000,00 €", None, 12500, "5 jours"),
    ("512", "Électricité studio", None, None, "3.000", None, "—", "forfait EDF"),
    ("53", "AMÉNAGEMENTS DÉCORS", None, None, 20000, None, 21000, None),
    ("531", "Construction décor appartement", None, None, 15000, None, 16000, None),
    ("532", "Peinture et enduits", None, None, 5000, None, 5000, None),
    ("58", "COSTUMES", None, None, None, None, None, None),
    ("581", "Location costumes", None, None, 4000, None, 3800, None),
    ("582", "Achats costumes", None, None, 2000, None, "néant", None),
    (None, "Sous-total 5", None, None, 41000, None, None, None),
    ("6", "TRANSPORTS, DÉFRAIEMENTS, RÉGIE", None, None, None, None, None, None),
    ("611", "Billets d'avion repérages", None, None, 3000, None, 3200, None),
    ("612", "Billets de train équipe", None, None, "1 500", None, 1400, None),
    ("631", "Location véhicules de production", None, None, 6000, None, 6000, None),
    ("632", "Carburant", None, None, 2500, None, 2700, None),
    ("641", "Défraiements équipe", None, None, 8000, None, 8000, None),
    ("651", "Hôtels équipe", None, None, 12000, None, 11500, None),
    ("661", "Cantine", None, None, 9000, None, 9100, None),
    ("691", "Consommables régie", None, None, 800, None, 750, None),
    ("692", "Remise loueur", None, None, "(500)", None, None, None),
    (None, None, None, None, 42300, None, None, None),  # a subtotal with no label
    ("7", "MOYENS TECHNIQUES", None, None, None, None, None, None),
    ("711", "Caméra et optiques", None, None, 18000, None, 18000, None),
    ("731", "Matériel électrique", None, None, 9000, None, 9000, None),
    ("8", "POST-PRODUCTION", None, None, None, None, None, None),
    ("831", "Montage image", None, None, 14000, None, 14000, None),
    ("9", "ASSURANCES ET DIVERS", None, None, None, None, None, None),
    ("911", "Assurance tournage", None, None, 5000, None, 5000, None),
    ("931", "Frais divers", None, None, 700, None, 700, None),
    (None, "Frais généraux (7 %)", None, None, 14000, None, 14000, None),
    (None, "Imprévus (10 %)", None, None, 20000, None, None, None),
    (None, "TOTAL GÉNÉRAL HT", None, None, 300000, None, 300000, None),
]
FILM_HEADER_ROW = 5
FILM_FIRST_ROW = 6


def film_row(label: str) -> int:
    """The spreadsheet row of a budget line of FILM_ROWS, by its label."""
    for i, row in enumerate(FILM_ROWS):
        if label in (row[1], row[0]):
            return FILM_FIRST_ROW + i
    raise KeyError(label)


def film_devis(path: Path, rows: list[tuple[Any, ...]] | None = None,
               extra_sheets: bool = True) -> Path:
    """A feature-film devis détaillé: a title block, a two-row header whose top row is
    merged (DEVIS over D:E, COÛT FINAL over F:G), a hidden column D (an earlier version),
    a chapter heading merged across the table, a hidden row (a collapsed group), amounts typed
    as text, a notes column, a summary sheet and an empty sheet."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Devis détaillé"
    ws["A1"] = "DEVIS DÉTAILLÉ — « Le Film »"
    ws.merge_cells("A1:H1")
    ws["A2"] = "Société X — version 3 du 12/01/2026"
    ws["D4"] = "DEVIS"
    ws.merge_cells("D4:E4")
    ws["F4"] = "COÛT FINAL"
    ws.merge_cells("F4:G4")
    header = ["N°", "Désignation", "Qté", "Prévu (V1)", "Montant HT", "Qté", "Réalisé HT",
              "Observations"]
    for c, text in enumerate(header, start=1):
        ws.cell(FILM_HEADER_ROW, c, text)
    ws.column_dimensions["D"].hidden = True
    for r, row in enumerate(rows or FILM_ROWS, start=FILM_FIRST_ROW):
        for c, value in enumerate(row, start=1):
            if value is not None:
                ws.cell(r, c, value)
        if row[0] == "5 - DÉCORS ET COSTUMES":
            ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=8)
    ws.row_dimensions[film_row("Location plateau Bry")].hidden = True
    if extra_sheets:
        recap = wb.create_sheet("Récap")
        recap["A1"], recap["B1"] = "Chapitre", "Total"
        recap["A2"], recap["B2"] = "5 Décors et costumes", 41000
        wb.create_sheet("Notes")
    wb.save(path)
    return path


# a documentary in the TV grid, as a French Excel CSV export (cp1252, ';', decimal commas)
TV_CSV = """Documentaire « Les Glaciers » — devis de production;;;;
Producteur : Prod SARL;;;;
;;;;
Catégorie;Poste de dépense;Budget HT;Coût final HT;Commentaires
1;DROITS ARTISTIQUES;;;
;Droits d'auteur réalisateur;12 000,00;12 000,00;
;Archives INA;3 500,00;3 200,00;droits d'archives
2;PERSONNEL;;;
;Chef opérateur;8 000,00;8 000,00;
5;DÉCORS ET COSTUMES;;;
;Accessoires;450,00;-;
6;TRANSPORTS, DÉFRAIEMENTS, RÉGIE;;;
;Billets d'avion Paris-Genève;1 200,00;1 350,00;4 A/R
;Location véhicule 4x4;2 100,00;2 300,00;
;Hébergement équipe;3 000,00;2 800,00;
;Repas;1 800,00;1 750,00;
;;8 100,00;8 200,00;
;Frais de régie;300,00;280,00;
7;MOYENS TECHNIQUES;;;
;Location caméra;4 000,00;4 000,00;
;Drone;1 000,00;900,00;
8;POST-PRODUCTION;;;
;Montage (6 semaines);9 000,00;9 500,00;
;Mixage;2 500,00;2 500,00;
;Étalonnage;2 000,00;2 000,00;
9;ASSURANCES ET DIVERS;;;
;Assurance;800,00;800,00;
10;FRAIS GÉNÉRAUX ET IMPRÉVUS;;;
;Frais généraux;3 000,00;3 000,00;
;TOTAL;54 650,00;54 380,00;
"""


def tv_csv(path: Path, encoding: str = "cp1252") -> Path:
    path.write_bytes(TV_CSV.replace("\n", "\r\n").encode(encoding))
    return path


def tv_devis_xlsx(path: Path) -> Path:
    """A TV fiction budget with no codes at all: category headings in capitals that carry
    their total, "Budget" and "Réalisé" columns in k€, numbers typed with either mark."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Budget"
    ws["A1"] = "Série « Rivages » — épisode 3"
    rows = [
        ("Rubrique", "Budget (k€)", "Réalisé (k€)", "Notes"),
        ("DROITS ARTISTIQUES", 20, 20, None),
        ("Droits d'adaptation", 20, 20, None),
        ("DÉCORS ET COSTUMES", 13.5, 14, None),
        ("Construction décor café", 10, 10.5, None),
        ("Location costumes", 3.5, 3.5, "loueur"),
        ("TRANSPORTS, DÉFRAIEMENTS, RÉGIE", 7, 7.2, None),
        ("Camions décor", "4.5", "4.7", None),
        ("Catering", "2,5", "2,5", None),
        ("MOYENS TECHNIQUES", 6, 6, None),
        ("Machinerie et grue", 6, 6, None),
        ("TOTAL", 46.5, 47.2, None),
    ]
    for r, row in enumerate(rows, start=3):
        for c, value in enumerate(row, start=1):
            if value is not None:
                ws.cell(r, c, value)
    wb.save(path)
    return path


def simple_devis(path: Path, header: tuple[str, ...], rows: list[tuple[Any, ...]],
                 hidden: tuple[str, ...] = ()) -> Path:
    """A one-sheet budget: header on row 1, rows below."""
    wb = Workbook()
    ws = wb.active
    ws.title = "Devis"
    ws.append(list(header))
    for row in rows:
        ws.append(list(row))
    for letter in hidden:
        ws.column_dimensions[letter].hidden = True
    wb.save(path)
    return path
