"""The report as an A4 PDF, drawn locally with fpdf2 (no browser, no system library).

Fonts are embedded (subsets of DejaVu Sans, taken from matplotlib's own data folder so no
system path is involved); charts are real PNG images. Tables break across pages with their
header repeated.
"""

from __future__ import annotations

import io
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import TableBordersLayout, TableCellFillMode, XPos, YPos
from fpdf.fonts import FontFace

from carbonclap_xl.report.content import (
    Block,
    Heading,
    Image,
    KeyFigures,
    Para,
    Table,
    blocks,
    subtitle,
)
from carbonclap_xl.report.document import ReportModel

FONT = "DejaVu"
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 18.0, 16.0, 17.0
ACCENT = (31, 78, 121)
INK = (29, 42, 51)
MUTED = (91, 103, 112)
RULE = (201, 210, 216)
BAND = (241, 245, 248)
HEAD = (227, 233, 238)


def font_files() -> dict[str, Path]:
    """DejaVu Sans as shipped inside matplotlib (the same face the charts use)."""
    import matplotlib

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return {"": ttf / "DejaVuSans.ttf", "B": ttf / "DejaVuSans-Bold.ttf",
            "I": ttf / "DejaVuSans-Oblique.ttf"}


def _breakable(text: str) -> str:
    """Let long identifiers (issue codes, factor ids) wrap after their underscores and colons
    instead of being cut anywhere: a zero-width space is a break opportunity for fpdf2."""
    return text.replace("_", "_\u200b").replace(":", ":\u200b") if len(text) > 14 else text


class _ReportPDF(FPDF):
    def __init__(self, running_title: str, product: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.running_title = running_title
        self.product = product

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font(FONT, "", 7.5)
        self.set_text_color(*MUTED)
        self.set_y(8)
        self.cell(0, 4, self.running_title, align="L")
        self.set_draw_color(*RULE)
        self.line(MARGIN_X, 12.5, self.w - MARGIN_X, 12.5)
        self.set_y(MARGIN_TOP)
        self.set_text_color(*INK)

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font(FONT, "", 7.5)
        self.set_text_color(*MUTED)
        self.cell(0, 4, f"{self.product} · page {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(*INK)


class _Renderer:
    def __init__(self, model: ReportModel, charts: dict[str, bytes]) -> None:
        self.model = model
        self.charts = charts
        title = f"Bilan carbone — {model.title}"
        pdf = _ReportPDF(title, model.product)
        for style, path in font_files().items():
            pdf.add_font(FONT, style, str(path))
        pdf.set_margins(MARGIN_X, MARGIN_TOP, MARGIN_X)
        pdf.set_auto_page_break(True, margin=MARGIN_BOTTOM)
        pdf.set_title(title)
        pdf.set_subject("Bilan carbone prévisionnel et définitif d'une production audiovisuelle")
        pdf.set_creator(model.product)
        pdf.set_producer(model.product)
        pdf.set_lang("fr-FR")
        pdf.set_creation_date(model.generated)
        self.pdf = pdf
        self.width = pdf.w - 2 * MARGIN_X

    # ------------------------------------------------------------------ helpers
    def room(self) -> float:
        return self.pdf.h - MARGIN_BOTTOM - self.pdf.get_y()

    def ensure(self, height: float) -> None:
        if self.room() < height:
            self.pdf.add_page()

    def image_height(self, name: str) -> float:
        from PIL import Image as PILImage

        png = self.charts.get(name)
        if png is None:
            return 0.0
        with PILImage.open(io.BytesIO(png)) as img:
            w, h = img.size
        return self.width * h / w

    # ------------------------------------------------------------------ blocks
    def title(self) -> None:
        pdf = self.pdf
        pdf.add_page()
        pdf.set_text_color(*ACCENT)
        pdf.set_font(FONT, "B", 18)
        pdf.multi_cell(0, 8.5, f"Bilan carbone — {self.model.title}", align="L",
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(*MUTED)
        pdf.set_font(FONT, "", 9)
        pdf.multi_cell(0, 5, subtitle(self.model), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(*INK)
        pdf.ln(2)

    def heading(self, b: Heading, following: list[Block]) -> None:
        """A heading never ends a page: it goes over with the start of what follows it
        (the paragraphs before the first table or chart, and a few rows or the chart)."""
        pdf = self.pdf
        need = 14.0
        for nxt in following[:3]:
            if isinstance(nxt, Image):
                need += min(self.image_height(nxt.name), 120.0)
                break
            if isinstance(nxt, Table | KeyFigures):
                need += 22.0
                break
            if isinstance(nxt, Heading):
                break
            need += 10.0
        if pdf.get_y() > MARGIN_TOP + 1:
            self.ensure(need)
        pdf.ln(3)
        pdf.set_font(FONT, "B", 12.5 if b.level <= 2 else 11)
        pdf.set_text_color(*ACCENT)
        pdf.multi_cell(0, 6.5, b.text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_draw_color(*ACCENT)
        pdf.set_line_width(0.5)
        pdf.line(MARGIN_X, pdf.get_y(), pdf.w - MARGIN_X, pdf.get_y())
        pdf.set_line_width(0.2)
        pdf.set_text_color(*INK)
        pdf.ln(2)

    def para(self, b: Para) -> None:
        pdf = self.pdf
        if b.style == "note":
            pdf.set_font(FONT, "", 8)
            pdf.set_text_color(*MUTED)
            pdf.multi_cell(0, 3.9, b.text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        elif b.style == "alert":
            pdf.set_font(FONT, "B", 9.5)
            pdf.set_text_color(140, 59, 12)
            pdf.set_fill_color(251, 238, 228)
            pdf.multi_cell(0, 5, b.text, align="L", fill=True, padding=(1.5, 3),
                           new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_fill_color(*BAND)  # fpdf2 tables fill with the current colour
        else:
            pdf.set_font(FONT, "", 9.5)
            pdf.multi_cell(0, 4.8, b.text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(*INK)
        pdf.ln(1.2)

    def figures(self, b: KeyFigures) -> None:
        pdf = self.pdf
        gap, height = 4.0, 21.0
        self.ensure(height + 4)
        n = len(b.items)
        w = (self.width - gap * (n - 1)) / n
        top = pdf.get_y() + 1
        for k, f in enumerate(b.items):
            x = MARGIN_X + k * (w + gap)
            pdf.set_fill_color(*BAND)
            pdf.set_draw_color(*RULE)
            pdf.rect(x, top, w, height, style="DF")
            pdf.set_xy(x + 3, top + 2)
            pdf.set_font(FONT, "", 8)
            pdf.set_text_color(*MUTED)
            pdf.cell(w - 6, 4, f.label)
            pdf.set_xy(x + 3, top + 6.5)
            pdf.set_font(FONT, "B", 14)
            pdf.set_text_color(*INK)
            pdf.cell(w - 6, 7, f.value)
            pdf.set_xy(x + 3, top + 14.5)
            pdf.set_font(FONT, "", 7.5)
            pdf.cell(w - 6, 4, f.detail)
        pdf.set_xy(MARGIN_X, top + height + 3)

    def table(self, b: Table) -> None:
        pdf = self.pdf
        total = sum(b.widths) or 1.0
        widths = [self.width * w / total for w in b.widths]
        headed = any(b.headers)
        pdf.set_font(FONT, "", 7.8)
        pdf.set_draw_color(*RULE)
        pdf.set_line_width(0.2)
        self.ensure(14)
        with pdf.table(
            col_widths=widths, width=self.width, align="LEFT",
            text_align=tuple("RIGHT" if a == "R" else "LEFT" for a in b.align),
            first_row_as_headings=headed,
            headings_style=FontFace(emphasis="BOLD", fill_color=HEAD, color=INK),
            borders_layout=TableBordersLayout.HORIZONTAL_LINES,
            cell_fill_color=BAND, cell_fill_mode=TableCellFillMode.EVEN_ROWS,
            line_height=3.9, padding=(0.9, 1.2), v_align="TOP",
        ) as table:
            if headed:
                row = table.row()
                for h in b.headers:
                    row.cell(h)
            bold = FontFace(emphasis="BOLD")
            for k, cells in enumerate(b.rows):
                row = table.row()
                for c in cells:
                    row.cell(_breakable(c), style=bold if k in b.bold_rows else None)
        if b.caption:
            pdf.set_font(FONT, "", 7.2)
            pdf.set_text_color(*MUTED)
            pdf.multi_cell(0, 3.6, b.caption, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            pdf.set_text_color(*INK)
        pdf.ln(2)

    def image(self, b: Image) -> None:
        png = self.charts.get(b.name)
        if png is None:
            return
        height = self.image_height(b.name)
        self.ensure(height + 2)
        self.pdf.image(io.BytesIO(png), x=MARGIN_X, w=self.width, h=height, alt_text=b.alt)
        self.pdf.ln(1.5)

    def render(self) -> bytes:
        self.title()
        items = blocks(self.model)
        for k, b in enumerate(items):
            if isinstance(b, Heading):
                self.heading(b, items[k + 1:])
            elif isinstance(b, Para):
                self.para(b)
            elif isinstance(b, KeyFigures):
                self.figures(b)
            elif isinstance(b, Table):
                self.table(b)
            elif isinstance(b, Image):
                self.image(b)
        return bytes(self.pdf.output())


def render_pdf(model: ReportModel, charts: dict[str, bytes]) -> bytes:
    return _Renderer(model, charts).render()
