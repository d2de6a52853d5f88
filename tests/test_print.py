"""Print settings, checked on paper: a processed workbook rendered to PDF by LibreOffice.

Every sheet fits the page width (each page of a table shows its first and last column,
Lisez-moi's text is whole), the hints above the headers are not clipped, « Source du
facteur » stays out of « Statut ». Set by ``xlsx/template.py``; the unit checks of the
settings themselves run without LibreOffice.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
import pytest

from carbonclap_xl.workbook import layout as L
from carbonclap_xl.xlsx.files import process_workbook, write_processed
from carbonclap_xl.xlsx.template import build_template, fitted_height, wrapped_lines
from tests.wbhelpers import SOFFICE, libreoffice_resave
from tools.build_template import EXAMPLES_DIR

PDFTOTEXT = shutil.which("pdftotext")
WIDE = {*L.POSTE_SHEETS.values(), L.SHEET_SYNTHESE, L.SHEET_CONTROLES, L.SHEET_FACTEURS}
MARGIN_PT = 0.4 * 72 - 2  # xlsx.template's side margins, less a rounding
FOOTER = re.compile(r"^(.+) — page \d+ / \d+$")


# --------------------------------------------------------------------------- settings


def test_every_sheet_fits_the_page_width_and_repeats_its_headers() -> None:
    wb = build_template()
    for ws in wb.worksheets:
        setup = ws.page_setup
        assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert (setup.fitToWidth, setup.fitToHeight) == (1, 0), ws.title
        assert setup.paperSize == int(ws.PAPERSIZE_A4), ws.title
        assert setup.orientation == ("landscape" if ws.title in WIDE else "portrait"), ws.title
        assert "&A" in ws.oddFooter.center.text, ws.title
    for sheet, row in ((L.SHEET_FACTEURS, L.FACT_HEADER_ROW), (L.SHEET_CONTROLES,
                                                               L.CTRL_HEADER_ROW),
                       *((s, L.HEADER_ROW) for s in L.POSTE_SHEETS.values())):
        assert wb[sheet].print_title_rows == f"${row}:${row}", sheet


def test_rows_are_tall_enough_for_their_wrapped_text() -> None:
    assert wrapped_lines("un deux trois", 100) == 1
    assert wrapped_lines("mot " * 40, 10) > wrapped_lines("mot " * 40, 40) > 1
    wb = build_template()
    ws = wb[L.POSTE_SHEETS["lieux"]]
    hints = [(c.help, c.width) for c in L.LINE_COLUMNS_LAYOUT if c.help]
    assert ws.row_dimensions[L.HEADER_ROW - 1].height >= fitted_height(hints, 9)
    assert ws.row_dimensions[L.HEADER_ROW - 1].height >= 3 * 9  # the tallest hint: 3+ lines
    source = L.COLUMN_BY_KEY["source"]
    assert ws.column_dimensions[source.letter].alignment.shrink_to_fit
    readme = wb[L.SHEET_README]
    for row in readme.iter_rows(min_col=1, max_col=1):
        cell = row[0]
        if cell.value and len(cell.value) > 100:
            assert readme.row_dimensions[cell.row].height >= 2 * 11, cell.coordinate


# --------------------------------------------------------------------------- on paper


@dataclass
class Page:
    number: int
    width: float
    height: float
    words: list[tuple[float, float, float, float, str]] = field(default_factory=list)

    @property
    def sheet(self) -> str:
        lines: dict[int, list[tuple[float, str]]] = {}
        for x0, y0, _, _, text in self.words:
            lines.setdefault(round(y0), []).append((x0, text))
        last = lines[max(lines)]  # the footer: the lowest line of the page
        match = FOOTER.match(" ".join(t for _, t in sorted(last)))
        assert match, f"page {self.number}: no footer"
        return match.group(1)

    def text(self) -> set[str]:
        return {w[4] for w in self.words}

    def find(self, text: str) -> list[tuple[float, float, float, float, str]]:
        return [w for w in self.words if w[4] == text]


_WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">'
                   r"(.*?)</word>")
_PAGE = re.compile(r'<page width="([\d.]+)" height="([\d.]+)">')


def pdf_pages(pdf: Path) -> list[Page]:
    out = subprocess.run([PDFTOTEXT, "-bbox", str(pdf), "-"], capture_output=True,
                         text=True, check=True, timeout=120).stdout
    pages: list[Page] = []
    for line in out.splitlines():
        if m := _PAGE.search(line):
            pages.append(Page(len(pages) + 1, float(m.group(1)), float(m.group(2))))
        elif m := _WORD.search(line):
            x0, y0, x1, y1 = (float(m.group(i)) for i in range(1, 5))
            pages[-1].words.append((x0, y0, x1, y1, html.unescape(m.group(5))))
    return pages


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Page]]:
    if SOFFICE is None or PDFTOTEXT is None:
        pytest.skip("LibreOffice (soffice) or pdftotext not installed")
    root = tmp_path_factory.mktemp("print")
    src = EXAMPLES_DIR / "telefilm.xlsx"  # long factor sources, every poste filled
    out = root / "telefilm.xlsx"
    write_processed(process_workbook(src), src, out)
    pdf = libreoffice_resave(out, root / "pdf", "pdf")
    return out, pdf_pages(pdf)


@pytest.mark.slow
def test_every_sheet_prints_whole_across(printed: tuple[Path, list[Page]]) -> None:
    _, pages = printed
    by_sheet: dict[str, list[Page]] = {}
    for page in pages:
        by_sheet.setdefault(page.sheet, []).append(page)
    assert list(by_sheet) == list(L.SHEET_ORDER)
    last_header = {s: L.NATURE_COLUMN.header for s in L.POSTE_SHEETS.values()}
    last_header |= {L.SHEET_CONTROLES: L.CTRL_HEADERS[-1], L.SHEET_FACTEURS: L.FACT_HEADERS[-1]}
    first_header = {s: L.LINE_COLUMNS_LAYOUT[0].header for s in L.POSTE_SHEETS.values()}
    first_header |= {L.SHEET_CONTROLES: L.CTRL_HEADERS[0], L.SHEET_FACTEURS: L.FACT_HEADERS[0]}
    for sheet, sheet_pages in by_sheet.items():
        for page in sheet_pages:
            landscape = page.width > page.height
            assert landscape == (sheet in WIDE), (sheet, page.number)
            # nothing in the right margin (0.4 in), let alone beyond the page
            assert max(w[2] for w in page.words) <= page.width - MARGIN_PT, \
                (sheet, page.number)
            if sheet in first_header:  # the header row on every page: no page of columns
                assert {first_header[sheet], last_header[sheet]} <= page.text(), \
                    (sheet, page.number)
    # as many pages of Facteurs as the catalogue's rows need, one column of pages
    assert len(by_sheet[L.SHEET_FACTEURS]) > 1


@pytest.mark.slow
def test_lisez_moi_is_printed_whole(printed: tuple[Path, list[Page]]) -> None:
    path, pages = printed
    words: set[str] = set()
    for page in pages:
        if page.sheet == L.SHEET_README:
            words |= page.text()
    wb = openpyxl.load_workbook(path)
    expected = {w for row in wb[L.SHEET_README].iter_rows(values_only=True)
                for v in row if v for w in str(v).split()}
    assert expected - words == set()  # no word cut at the right edge


@pytest.mark.slow
def test_hints_above_the_headers_are_not_clipped(printed: tuple[Path, list[Page]]) -> None:
    _, pages = printed
    page = next(p for p in pages if p.sheet == L.POSTE_SHEETS["lieux"])
    subtitle_bottom = max(w[3] for w in page.find("Une"))  # « Une ligne par activité… » (A2)
    header_top = min(w[1] for w in page.find("Activité"))
    for column in L.LINE_COLUMNS_LAYOUT:
        for word in column.help.split():
            found = page.find(word)
            assert found, (column.key, word)
            assert any(subtitle_bottom <= w[1] and w[3] <= header_top for w in found), \
                (column.key, word)


@pytest.mark.slow
def test_factor_sources_stay_in_their_column(printed: tuple[Path, list[Page]]) -> None:
    _, pages = printed
    checked = 0
    for page in pages:
        if page.sheet not in L.POSTE_SHEETS.values():
            continue
        (status,) = page.find(L.COLUMN_BY_KEY["status"].header)
        (source,) = page.find("Source")[-1:]  # « Source du facteur »: the last « Source »
        below = [w for w in page.words if w[1] > status[3] and source[0] - 2 <= w[0] < status[0]]
        assert below, page.number
        for word in below:
            assert word[2] <= status[0], (page.number, word)
        checked += len(below)
    assert checked > 50
