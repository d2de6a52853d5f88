"""Build the standard workbook in memory from ``layout``, fill it, save it atomically.

``tools/build_template.py`` (``make template``) writes the committed template and examples;
``carbonclap-xl new`` builds a fresh copy for the user.

openpyxl writes fresh files well (EXCEL-FACTS.md): the template is born here, and after that
the product only patches cells surgically (``xlsx.patch``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import math
import os
import tempfile
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Border, Font, PatternFill, Protection, Side
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.page import PageMargins
from openpyxl.worksheet.worksheet import Worksheet

from carbonclap_xl.core.a1 import col_index, col_letter
from carbonclap_xl.core.factors import FactorEdition, load_edition
from carbonclap_xl.core.lines import LineTable
from carbonclap_xl.core.model import NATURES, POSTE_BY_ID, POSTES
from carbonclap_xl.core.units import entry_label
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.workbook.formulas import STATUS_PENDING, synthese_formulas

GREEN = "1F6F43"
INPUT_FILL = PatternFill("solid", fgColor="FFF9E5")
COMPUTED_FILL = PatternFill("solid", fgColor="EEF3F0")
HEADER_FILL = PatternFill("solid", fgColor=GREEN)
HEADER_FONT = Font(bold=True, color="FFFFFF")
TITLE_FONT = Font(bold=True, size=14, color=GREEN)
THIN = Side(style="thin", color="B7C9BE")
UNLOCKED = Protection(locked=False)


HINT_FONT = Font(size=9, italic=True, color="444444")
# Text columns the calculation writes that can be longer than their column (« ADEME Base
# Empreinte® (Base Carbone®) 23.6 #43642 »): shrunk to fit, so they never spill into the next
# column. Wrapping would need row heights the patcher does not write (LibreOffice does not
# re-fit them on opening: wrapped lines would overlap the next row).
SHRUNK_COLUMNS = ("factor_unit", "factor_id", "source", "status")


def wrapped_lines(text: str, width: float, font_size: float = 11, bold: bool = False) -> int:
    """How many lines ``text`` takes wrapped in a column ``width`` characters wide, at
    ``font_size`` points: a generous estimate (1.1 characters per unit of width at 11 points,
    fewer in bold; Calibri fits about 1.3, the wider DejaVu Sans that replaces it where it is
    missing about 1.2), since openpyxl cannot measure fonts and clients do not fit the row
    heights of a file they open."""
    per_line = max(1, int(width * 11 / font_size * (0.95 if bold else 1.1)))
    return sum(max(1, len(textwrap.wrap(part, per_line, break_long_words=True)))
               for part in str(text).split("\n"))


def fitted_height(cells: Iterable[tuple[Any, float]], font_size: float = 11,
                  bold: bool = False) -> float:
    """The height (points) of a row whose wrapped ``(text, width)`` cells all show whole."""
    lines = max((wrapped_lines(str(t), w, font_size, bold) for t, w in cells if t), default=1)
    return round(lines * font_size * 1.32 + 4, 1)


def _header(ws: Worksheet, row: int, headers: tuple[str, ...], widths: tuple[float, ...]) -> None:
    for i, (text, width) in enumerate(zip(headers, widths, strict=True), start=1):
        c = ws.cell(row=row, column=i, value=text)
        c.font, c.fill = HEADER_FONT, HEADER_FILL
        c.alignment = Alignment(wrap_text=True, vertical="center")
        c.border = Border(bottom=THIN)
        ws.column_dimensions[col_letter(i)].width = width
    ws.row_dimensions[row].height = max(32, fitted_height(zip(headers, widths, strict=True),
                                                          bold=True))


def _print_setup(ws: Worksheet, header_row: int | None, landscape: bool = True) -> None:
    """A4, the sheet's whole width on one page (as many pages down as it takes), the header
    row repeated on every page, the sheet's name and page number in the footer."""
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_margins = PageMargins(left=0.4, right=0.4, top=0.6, bottom=0.6, header=0.3,
                                  footer=0.3)
    if header_row is not None:
        ws.print_title_rows = f"{header_row}:{header_row}"
    ws.oddFooter.center.text = "&A — page &P / &N"


def _protect(ws: Worksheet) -> None:
    """UI protection only (no password): computed cells cannot be typed over by mistake."""
    ws.protection.sheet = True
    ws.protection.formatColumns = False
    ws.protection.formatRows = False
    ws.protection.insertRows = False
    ws.protection.deleteRows = False
    ws.protection.sort = False
    ws.protection.autoFilter = False


README_WIDTH = 76  # one column of text, within an A4 page in portrait (LibreOffice does not
# shrink a single wrapped column to fit the width: 92 ran off the page)


def _readme(ws: Worksheet, edition: FactorEdition) -> None:
    ws.column_dimensions["A"].width = README_WIDTH
    lines = [
        ("Carbon'Clap XL — bilan carbone de votre production", TITLE_FONT),
        ("", None),
        ("Comment remplir ce classeur", Font(bold=True)),
        ("1. Feuille « Production » : titre, type d'œuvre, phase soumise, budget, dates, "
         "jours de tournage, épisodes, durée.", None),
        ("2. Une feuille par poste du devis (Bureaux, Lieux, Décors, HMC, Transports, Régie, "
         "Technique, Postprod) : une ligne par activité.", None),
        ("   Colonne Activité : choisissez dans la liste, ou citez un facteur Base Empreinte par "
         "son identifiant, ex. « BE:43642 ».", None),
        ("   Quantité prévisionnelle = devis (bilan prévisionnel) ; quantité définitive = coût "
         "final (bilan définitif). Une phase vide ne compte pas la ligne.", None),
        ("   Unité : vide = unité de l'activité ; les unités convertibles sont acceptées (MWh, m³, "
         "k€, t…). « € » = euros 2023 HT ; « € TTC » est converti avec le taux de TVA de "
         "l'activité ; des euros d'une autre année (« k€ 2025 ») sont refusés.", None),
        ("   Nombre : passagers, véhicules, personnes… selon le facteur (colonne « Saisie » de la "
         "feuille Facteurs) ; vide = 1. Ex. un TGV pour 6 personnes : 430 km, Nombre 6.", None),
        ("   Source de la donnée : facture (±5 %), relevé (±5 %), devis (±10 %), estimation "
         "(±30 %), hypothèse (±50 %) ; « Source de la donnée (définitif) » si le définitif a "
         "une autre source (vide = la même).", None),
        ("3. Calculez : bouton « Recalculer » de l'onglet Carbon'Clap (Excel avec le complément "
         "CarbonClap.xlam, LibreOffice avec l'extension CarbonClap.oxt), ou « carbonclap-xl "
         "process classeur.xlsx » : les colonnes grisées, la colonne Nature, « Synthèse » et "
         "« Contrôles » sont écrites.", None),
        ("   Ne tapez pas dans les colonnes grisées : elles sont recalculées à chaque fois.", None),
        ("4. Lisez « Contrôles » : chaque ligne nomme la feuille, la cellule et la correction.",
         None),
        ("", None),
        ("Un classeur vivant, même sans complément", Font(bold=True)),
        ("Après un calcul, les émissions de chaque ligne et la Synthèse sont des formules : "
         "changez une quantité, la ligne et les totaux suivent aussitôt (Excel, LibreOffice).",
         None),
        (f"Ce qu'une formule ne peut pas suivre (une autre activité, une autre unité, une autre "
         f"source de donnée) fait passer le statut de la ligne à « {STATUS_PENDING} », et la "
         f"Synthèse (cellule {L.SYN_PENDING_CELL}) compte les lignes à recalculer : cliquez "
         "alors « Recalculer ».", None),
        ("Une ligne en erreur n'est comptée nulle part tant qu'elle n'est pas corrigée puis "
         "recalculée. Les incertitudes sont celles du dernier calcul.", None),
        ("", None),
        ("L'onglet Carbon'Clap (Excel, complément CarbonClap.xlam)", Font(bold=True)),
        *((f"{c.label} : {c.help}", None) for c in L.COMMANDS),
        ("Fonctions de feuille de calcul (Excel sous Windows, avec le complément) :", None),
        *((f"   ={name} : {text}.", None) for name, text in L.WORKSHEET_FUNCTIONS),
        ("Installation : « carbonclap-xl addin install » (voir docs/excel.md).", None),
        ("", None),
        ("Les deux phases (obligation CNC depuis le 31 mars 2023)", Font(bold=True)),
        ("Bilan prévisionnel : déposé avec le devis. Bilan définitif : déposé avec le coût final. "
         "Le même classeur porte les deux, côte à côte.", None),
        ("", None),
        ("Méthode", Font(bold=True)),
        ("Émissions = quantité × nombre × facteur d'émission (après conversion d'unité). "
         "Incertitude d'une ligne = √(u facteur² + u donnée²) ; au total, l'erreur d'un facteur "
         "est commune à toutes ses lignes (et à tous les ratios monétaires ADEME), celle des "
         "quantités propre à chaque ligne.", None),
        ("", None),
        (f"Facteurs d'émission : {edition.name}", Font(bold=True)),
        *((a, None) for a in edition.attributions()),
        ("", None),
        (f"Version du modèle : {L.TEMPLATE_VERSION}", Font(italic=True, color="666666")),
    ]
    for i, (text, font) in enumerate(lines, start=1):
        c = ws.cell(row=i, column=1, value=text)
        c.alignment = Alignment(wrap_text=True, vertical="top")
        if font:
            c.font = font
        size = font.sz if font is not None and font.sz else 11
        if text:  # every line whole: no client fits the height of a wrapped row it opens
            ws.row_dimensions[i].height = fitted_height([(text, README_WIDTH)], size,
                                                        bool(font and font.b))
    _print_setup(ws, None, landscape=False)
    _protect(ws)


def _production(ws: Worksheet) -> None:
    ws[L.PRODUCTION_MARKER_CELL] = L.WORKBOOK_MARKER
    ws[L.PRODUCTION_MARKER_CELL].font = TITLE_FONT
    ws["A2"] = "Données de la production (exigées par le CNC pour chaque bilan)"
    ws.column_dimensions["A"].width = 42
    ws.column_dimensions["B"].width = 40
    ws.column_dimensions["C"].width = 60
    for f in L.PRODUCTION_FIELDS:
        ws.cell(row=f.row, column=1, value=f.label + (" *" if f.required else "")).font = Font(
            bold=f.required)
        value = ws[f.cell]
        if f.kind == "computed":
            value.fill = COMPUTED_FILL
        else:
            value.fill = INPUT_FILL
            value.protection = UNLOCKED
            value.border = Border(bottom=THIN)
        if f.kind == "number":
            value.number_format = "#,##0.##"
        if f.kind == "date":
            value.number_format = "dd/mm/yyyy"
        if f.key == "template_version":
            value.value = L.TEMPLATE_VERSION
    ws.cell(row=L.FIELD_BY_KEY["phase"].row, column=3,
            value="Prévisionnel (avec le devis) ou Définitif (avec le coût final)")
    ws.cell(row=L.FIELD_BY_KEY["duration_min"].row, column=3,
            value="Durée totale du programme fini, tous épisodes confondus")
    _print_setup(ws, 3, landscape=False)
    for f in L.PRODUCTION_FIELDS:
        if f.kind == "choice":
            name = L.LIST_WORK_TYPES if f.key == "work_type" else L.LIST_PHASES
            dv = DataValidation(type="list", formula1=name, allow_blank=True,
                                showErrorMessage=True, errorTitle=f.label,
                                error="Choisissez une valeur de la liste.")
            dv.add(f.cell)
            ws.add_data_validation(dv)
        if f.kind == "number":
            dv = DataValidation(type="decimal", operator="greaterThanOrEqual", formula1="0",
                                allow_blank=True, showErrorMessage=True, errorTitle=f.label,
                                error="Saisissez un nombre positif.")
            dv.add(f.cell)
            ws.add_data_validation(dv)
    _protect(ws)


def _poste_sheet(ws: Worksheet, poste_id: str) -> None:
    poste = POSTE_BY_ID[poste_id]
    ws[L.POSTE_TITLE_CELL] = f"{poste.label_fr} — chapitre du devis {poste.devis_chapter}"
    ws[L.POSTE_TITLE_CELL].font = TITLE_FONT
    ws[L.POSTE_HELP_CELL] = ("Une ligne par activité. Colonnes jaunes : saisie ; colonnes grisées "
                             "écrites par le calcul.")
    _header(ws, L.HEADER_ROW, tuple(c.header for c in L.LINE_COLUMNS_LAYOUT),
            tuple(c.width for c in L.LINE_COLUMNS_LAYOUT))
    for column in L.LINE_COLUMNS_LAYOUT:
        dim = ws.column_dimensions[column.letter]
        dim.number_format = column.number_format
        if column.computed:
            dim.fill = COMPUTED_FILL
            if column.key in SHRUNK_COLUMNS:  # cells the calculation adds take this style
                dim.alignment = Alignment(shrink_to_fit=True)
        else:
            dim.protection = UNLOCKED
        if column.help:
            hint = ws.cell(row=L.HEADER_ROW - 1, column=col_index(column.letter),
                           value=column.help)
            hint.alignment = Alignment(wrap_text=True, vertical="bottom")
            hint.font = HINT_FONT
    # the hints above the headers, whole (the tallest one sets the row's height)
    ws.row_dimensions[L.HEADER_ROW - 1].height = fitted_height(
        ((c.help, c.width) for c in L.LINE_COLUMNS_LAYOUT), HINT_FONT.sz)
    nature = L.NATURE_COLUMN  # after the line table: what Synthèse sums by nature
    head = ws.cell(row=L.HEADER_ROW, column=col_index(L.NATURE_LETTER), value=nature.header)
    head.font, head.fill = HEADER_FONT, HEADER_FILL
    head.alignment = Alignment(wrap_text=True, vertical="center")
    dim = ws.column_dimensions[L.NATURE_LETTER]
    dim.width, dim.number_format, dim.fill = nature.width, nature.number_format, COMPUTED_FILL
    last = L.LAST_PREPARED_ROW
    act = L.COLUMN_BY_KEY["activity"].letter
    dv = DataValidation(type="list", formula1=L.list_name(poste_id), allow_blank=True,
                        showErrorMessage=True, errorStyle="warning",
                        errorTitle="Activité hors liste",
                        error="Choisissez une activité de la liste, ou citez un facteur "
                              "« BE:<identifiant> ». Continuer quand même ?",
                        showInputMessage=True, promptTitle="Activité",
                        prompt="Liste du poste, ou BE:<identifiant>")
    dv.add(f"{act}{L.FIRST_DATA_ROW}:{act}{last}")
    ws.add_data_validation(dv)
    for key in ("data_source", "data_source_final"):
        src = L.COLUMN_BY_KEY[key].letter
        dv2 = DataValidation(type="list", formula1=L.LIST_DATA_SOURCES, allow_blank=True,
                             showErrorMessage=True, errorStyle="warning",
                             error="Choisissez facture, relevé, devis, estimation ou hypothèse.")
        dv2.add(f"{src}{L.FIRST_DATA_ROW}:{src}{last}")
        ws.add_data_validation(dv2)
    count = L.COLUMN_BY_KEY["count"].letter
    dv4 = DataValidation(type="decimal", operator="greaterThan", formula1="0",
                         allow_blank=True, showErrorMessage=True, errorStyle="warning",
                         error="Saisissez un nombre positif (personnes, véhicules, trajets) ; "
                               "vide = 1.",
                         showInputMessage=True, promptTitle="Nombre (vide = 1)",
                         prompt="Selon le facteur : km × passagers (train, avion), km × "
                                "véhicules (voiture, camion), nuit × personnes, repas × "
                                "personnes. Voir Facteurs, colonne Saisie.")
    dv4.add(f"{count}{L.FIRST_DATA_ROW}:{count}{last}")
    ws.add_data_validation(dv4)
    qty = f"{L.COLUMN_BY_KEY['quantity_forecast'].letter}{L.FIRST_DATA_ROW}:" \
          f"{L.COLUMN_BY_KEY['quantity_final'].letter}{last}"
    dv3 = DataValidation(type="decimal", operator="greaterThanOrEqual", formula1="0",
                         allow_blank=True, showErrorMessage=True, errorStyle="warning",
                         error="Saisissez un nombre positif (sans unité).")
    dv3.add(qty)
    ws.add_data_validation(dv3)
    ws.freeze_panes = f"B{L.FIRST_DATA_ROW}"
    ws.auto_filter.ref = f"A{L.HEADER_ROW}:{L.NATURE_LETTER}{L.HEADER_ROW}"
    _print_setup(ws, L.HEADER_ROW)
    _protect(ws)


def _synthese(ws: Worksheet) -> None:
    ws["A1"] = "Synthèse du bilan carbone"
    ws["A1"].font = TITLE_FONT
    ws["A2"] = ("Formules vivantes : elles suivent les quantités saisies. Les incertitudes sont "
                "celles du dernier calcul (Recalculer, ou carbonclap-xl process).")
    for ref, height in ((L.SYN_EDITION_CELL, 30), (L.SYN_ATTRIBUTION_CELL, 60)):
        row = int(ref[1:])
        ws.merge_cells(f"A{row}:{L.SYN_LAST_COLUMN}{row}")
        ws[ref].alignment = Alignment(wrap_text=True, vertical="top")
        ws[ref].font = Font(size=9, color="555555")
        ws.row_dimensions[row].height = height
    widths = (44, *([16] * (len(L.SYN_HEADERS) - 1)))
    _header(ws, L.SYN_POSTE_HEADER_ROW, ("Poste", *L.SYN_HEADERS[1:]), widths)
    for i, p in enumerate(POSTES):
        ws.cell(row=L.SYN_POSTE_FIRST_ROW + i, column=1, value=p.label_fr)
    ws.cell(row=L.SYN_POSTE_TOTAL_ROW, column=1, value="Total").font = Font(bold=True)
    ws.cell(row=L.SYN_POSTE_UNCERTAINTY_ROW, column=1, value="Incertitude totale (±tCO2e)")
    _header(ws, L.SYN_NATURE_HEADER_ROW, ("Nature", *L.SYN_HEADERS[1:]), widths)
    for i, n in enumerate(NATURES):
        ws.cell(row=L.SYN_NATURE_FIRST_ROW + i, column=1, value=n.label_fr)
    ws.cell(row=L.SYN_NATURE_TOTAL_ROW, column=1, value="Total").font = Font(bold=True)
    _header(ws, L.SYN_INDICATOR_HEADER_ROW, ("Indicateur", "Prévisionnel", "Définitif"),
            widths[:3])
    headers = {L.SYN_NATURE_HEADER_ROW, L.SYN_INDICATOR_HEADER_ROW}
    for row in range(L.SYN_POSTE_FIRST_ROW, L.SYN_INDICATOR_FIRST_ROW + L.SYN_INDICATOR_COUNT):
        if row in headers:
            continue
        for col in range(2, len(L.SYN_HEADERS) + 1):
            c = ws.cell(row=row, column=col)
            c.number_format = "0.0" if col in (5, 6, 7) else "#,##0.00"
            c.fill = COMPUTED_FILL
    ws.cell(row=L.SYN_CHANGES_TITLE_ROW, column=1, value=L.SYN_CHANGES_TITLE).font = \
        Font(bold=True)
    _header(ws, L.SYN_CHANGES_HEADER_ROW, L.SYN_CHANGES_HEADERS,
            widths[:len(L.SYN_CHANGES_HEADERS)])
    for row in range(L.SYN_CHANGES_FIRST_ROW, L.SYN_CHANGES_FIRST_ROW + L.SYN_CHANGES_COUNT):
        for col in range(1, len(L.SYN_CHANGES_HEADERS) + 1):
            c = ws.cell(row=row, column=col)
            c.number_format = "0.0" if col == 5 else "#,##0.00"
            c.fill = COMPUTED_FILL
    for ref, text in synthese_formulas().items():  # live; process caches the engine's values
        ws[ref] = "=" + text
    ws[L.SYN_PENDING_CELL].font = Font(bold=True, color="B45309")
    for first, last, title, anchor in (
        (L.SYN_POSTE_FIRST_ROW, L.SYN_POSTE_TOTAL_ROW - 1, "Émissions par poste (tCO2e)", "K6"),
        (L.SYN_NATURE_FIRST_ROW, L.SYN_NATURE_TOTAL_ROW - 1, "Émissions par nature (tCO2e)",
         "K24"),
    ):
        chart = BarChart()
        chart.type = "bar"
        chart.title = title
        chart.y_axis.title = "tCO2e"
        chart.height, chart.width = 8.5, 17
        data = Reference(ws, min_col=2, max_col=3, min_row=first - 1 if first ==
                         L.SYN_POSTE_FIRST_ROW else L.SYN_NATURE_HEADER_ROW, max_row=last)
        chart.add_data(data, titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=first, max_row=last))
        ws.add_chart(chart, anchor)
    _print_setup(ws, L.SYN_POSTE_HEADER_ROW)
    _protect(ws)


def _controles(ws: Worksheet) -> None:
    ws["A1"] = "Contrôles : à corriger avant dépôt"
    ws["A1"].font = TITLE_FONT
    _header(ws, L.CTRL_HEADER_ROW, L.CTRL_HEADERS, L.CTRL_WIDTHS)
    # messages are not wrapped: a long one spills into the empty cells on its right
    ws.freeze_panes = f"A{L.CTRL_FIRST_ROW}"
    ws.auto_filter.ref = f"A{L.CTRL_HEADER_ROW}:F{L.CTRL_HEADER_ROW}"
    _print_setup(ws, L.CTRL_HEADER_ROW)
    _protect(ws)


def _facteurs(ws: Worksheet, wb: Workbook, edition: FactorEdition) -> None:
    ws["A1"] = "Catalogue des activités et facteurs (lecture seule)"
    ws["A1"].font = TITLE_FONT
    ws["A2"] = f"Édition : {edition.name}. " + " ; ".join(edition.attributions())
    _header(ws, L.FACT_HEADER_ROW, L.FACT_HEADERS, L.FACT_WIDTHS)
    ws["A2"].alignment = Alignment(wrap_text=True, vertical="top")
    ws.merge_cells(f"A2:{col_letter(len(L.FACT_HEADERS))}2")
    ws.row_dimensions[2].height = fitted_height([(ws["A2"].value, sum(L.FACT_WIDTHS))])
    acts = sorted(edition.activities.values(), key=lambda a: a.label_fr)
    wrap = Alignment(wrap_text=True, vertical="top")
    for r, a in enumerate(acts, start=L.FACT_FIRST_ROW):
        f = a.factor
        values = (a.label_fr, a.id, ", ".join(a.postes), a.nature, a.unit,
                  entry_label(a.unit, f.unit), f.value, f.unit, f.uncertainty_pct, f.id,
                  f"{f.source_dataset} {f.source_edition}", a.note)
        for c, v in enumerate(values, start=1):
            ws.cell(row=r, column=c, value=v).alignment = wrap
        # narrow wrapped columns (readable on paper): each row as tall as its longest text
        ws.row_dimensions[r].height = fitted_height(
            (v, w) for v, w in zip(values, L.FACT_WIDTHS, strict=True) if isinstance(v, str))
    ws.freeze_panes = f"B{L.FACT_FIRST_ROW}"
    _print_setup(ws, L.FACT_HEADER_ROW)
    ws.print_area = f"A1:{col_letter(len(L.FACT_HEADERS))}{L.FACT_FIRST_ROW + len(acts) - 1}"
    ws.auto_filter.ref = (f"A{L.FACT_HEADER_ROW}:{col_letter(len(L.FACT_HEADERS))}"
                          f"{L.FACT_FIRST_ROW + len(acts) - 1}")
    lists: list[tuple[str, str, list[str]]] = [
        (L.list_name(p), p.sheet, sorted(a.label_fr for a in edition.activities_for(p.id)))
        for p in POSTES
    ]
    lists += [(L.LIST_DATA_SOURCES, "Sources", list(L.DATA_SOURCE_CHOICES)),
              (L.LIST_WORK_TYPES, "Types d'œuvre", list(L.WORK_TYPES)),
              (L.LIST_PHASES, "Phases", list(L.PHASE_CHOICES))]
    for i, (name, title, values) in enumerate(lists):
        col = L.LIST_FIRST_COLUMN + i
        letter = col_letter(col)
        head = ws.cell(row=L.FACT_HEADER_ROW, column=col, value=title)
        head.font, head.fill = HEADER_FONT, HEADER_FILL
        ws.column_dimensions[letter].width = 30
        for r, v in enumerate(values, start=L.FACT_FIRST_ROW):
            ws.cell(row=r, column=col, value=v)
        ref = (f"'{L.SHEET_FACTEURS}'!${letter}${L.FACT_FIRST_ROW}:${letter}$"
               f"{L.FACT_FIRST_ROW + len(values) - 1}")
        wb.defined_names[name] = DefinedName(name, attr_text=ref)
    _protect(ws)


def build_template(edition: FactorEdition | None = None) -> Workbook:
    edition = edition or load_edition()
    wb = Workbook()
    wb.remove(wb.active)
    for name in L.SHEET_ORDER:
        wb.create_sheet(name)
    _readme(wb[L.SHEET_README], edition)
    _production(wb[L.SHEET_PRODUCTION])
    for poste_id, sheet in L.POSTE_SHEETS.items():
        _poste_sheet(wb[sheet], poste_id)
    _synthese(wb[L.SHEET_SYNTHESE])
    _controles(wb[L.SHEET_CONTROLES])
    _facteurs(wb[L.SHEET_FACTEURS], wb, edition)
    version_ref = f"'{L.SHEET_PRODUCTION}'!$B${L.FIELD_BY_KEY['template_version'].row}"
    wb.defined_names[L.NAME_TEMPLATE_VERSION] = DefinedName(L.NAME_TEMPLATE_VERSION,
                                                            attr_text=version_ref)
    wb.active = 1
    wb.properties.creator = "carbonclap_xl"
    wb.properties.title = "Carbon'Clap XL"
    wb.properties.created = dt.datetime(2026, 1, 1)
    wb.properties.modified = dt.datetime(2026, 1, 1)
    return wb


def fill(wb: Workbook, lines: LineTable | Any = None,
         production: Mapping[str, Any] | None = None,
         edition: FactorEdition | None = None,
         line_numbers: Sequence[int] | None = None) -> list[str]:
    """Write lines and production data as given (even invalid ones, so the user can fix them
    in the spreadsheet); a catalogue activity cited by id is written as its dropdown label.
    Returns the warnings about lines that could not be placed (named by ``line_numbers``,
    the lines' numbers in their file; by default the header is line 1)."""
    edition = edition or load_edition()
    warnings: list[str] = []
    ws_prod = wb[L.SHEET_PRODUCTION]
    for key, value in (production or {}).items():
        field = L.FIELD_BY_KEY.get(key)
        if field is None or field.kind == "computed":
            warnings.append(f"donnée de production inconnue ignorée : {key}")
            continue
        if field.key == "phase" and value in ("forecast", "final"):
            value = {v: k for k, v in L.PHASE_CHOICES.items()}[value]
        if field.kind == "date" and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = dt.date.fromisoformat(value)
        ws_prod[field.cell] = value
        if isinstance(value, str) and value.startswith("="):
            ws_prod[field.cell].data_type = "s"  # a title "=HYPERLINK(…)" stays text
    if lines is None:
        return warnings
    next_row = {p: L.FIRST_DATA_ROW for p in L.POSTE_SHEETS}
    records = LineTable.coerce(lines).records()
    numbers = list(line_numbers) if line_numbers is not None else range(2, len(records) + 2)
    for n, row in zip(numbers, records, strict=True):
        poste = str(row.get("poste") or "").strip().lower()
        if poste not in L.POSTE_SHEETS:
            warnings.append(f"ligne {n} : poste « {row.get('poste') or ''} » inconnu ou vide, "
                            "ligne non placée (postes : " + ", ".join(
                                f"{sheet} ({pid})" for pid, sheet in L.POSTE_SHEETS.items())
                            + ")")
            continue
        ws = wb[L.POSTE_SHEETS[poste]]
        r = next_row[poste]
        next_row[poste] += 1
        for column in L.INPUT_COLUMNS:
            value = row.get(column.key)
            if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
                continue
            if column.key == "activity" and isinstance(value, str):
                known = edition.activity(value)
                value = known.label_fr if known else value
            if column.key.startswith("quantity_") or column.key == "count":
                value = _as_typed_number(value)
            if isinstance(value, str) and ILLEGAL_CHARACTERS_RE.search(value):
                warnings.append(f"ligne {n} : caractères de contrôle retirés de « {column.key} »")
                value = ILLEGAL_CHARACTERS_RE.sub("", value)
            target = ws[f"{column.letter}{r}"]
            target.value = value
            if isinstance(value, str) and value.startswith("="):
                target.data_type = "s"  # text that looks like a formula stays text
    return warnings


def _as_typed_number(value: Any) -> Any:
    """A quantity as a number when it is one (finite), else the text as typed, so the
    spreadsheet shows it and processing reports it."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    if not math.isfinite(number):
        return str(value)
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def save(wb: Workbook, path: Path, replace: bool = True) -> None:
    """Save atomically (``core.atomic``): the workbook is serialised in memory first (a full
    disk cannot leave openpyxl's zip half-closed), then written to a temporary file in the
    same folder, fsynced and renamed. ``replace=False``: never replaces an existing file."""
    import io

    from carbonclap_xl.core.atomic import require_folder, write_atomic

    require_folder(path)  # a missing folder is refused, never created
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    buffer = io.BytesIO()
    _save_quietly(wb, buffer)
    write_atomic(path, buffer.getvalue(), replace=replace)


def _save_quietly(wb: Workbook, buffer: Any) -> None:
    """``wb.save(buffer)``; openpyxl still writes each sheet to a temporary file first: when
    that fails (a full /tmp), an OSError, without the « Exception ignored » that openpyxl's
    abandoned writers would print when collected."""
    import gc
    import sys

    from lxml import etree

    error: OSError | None = None
    hook = sys.unraisablehook

    def quiet(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, etree.SerialisationError | OSError):
            hook(unraisable)

    sys.unraisablehook = quiet
    try:
        try:
            wb.save(buffer)
        except etree.SerialisationError as exc:  # "IO_ENOSPC", "IO_EFBIG"...
            name = str(exc).removeprefix("IO_")
            number = getattr(errno, name, errno.EIO)
            error = OSError(number, os.strerror(number), tempfile.gettempdir())
        gc.collect()  # the abandoned writers close now, quietly
    finally:
        sys.unraisablehook = hook
    if error is not None:
        raise error
