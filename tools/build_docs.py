"""Generate docs/issue-codes.md from the code tables (``python -m tools.build_docs``)."""

from __future__ import annotations

from pathlib import Path

from carbonclap_xl.core.issues import codes_markdown
from carbonclap_xl.core.rejections import rejections_markdown
from tools.build_devis_doc import DEVIS_DOC, devis_page

DOCS = Path(__file__).resolve().parent.parent / "docs"
DOC = DOCS / "issue-codes.md"
LAYOUT_DOC = DOCS / "workbook-layout.md"


def layout_page() -> str:
    """The workbook contract, as producers and integrators read it (from ``layout``)."""
    from carbonclap_xl.core.model import DATA_SOURCES, POSTES
    from carbonclap_xl.workbook import layout as L
    from carbonclap_xl.workbook.formulas import STATUS_PENDING

    sheets = "\n".join(f"| {i} | {name} |" for i, name in enumerate(L.SHEET_ORDER, 1))
    postes = "\n".join(f"| `{p.id}` | {p.sheet} | {p.label_fr} | {p.devis_chapter} |"
                        for p in POSTES)
    columns = "\n".join(
        f"| {c.letter} | {c.header} | {'calculée' if c.computed else 'saisie'} | `{c.key}` | "
        f"{c.help} |" for c in L.LINE_COLUMNS_LAYOUT)
    fields = "\n".join(
        f"| {f.cell} | {f.label} | {f.kind} | {'oui' if f.required else ''} | `{f.key}` |"
        for f in L.PRODUCTION_FIELDS)
    nature_row = (f"| {L.NATURE_LETTER} | {L.NATURE_COLUMN.header} | calculée | "
                  f"`{L.NATURE_COLUMN.key}` | after the line table, read by Synthèse's "
                  "by-nature formulas |")
    sources = ", ".join(f"`{d.id}` (±{d.uncertainty_pct:g} %)" for d in DATA_SOURCES)
    current = {c.key: c for c in L.LINE_COLUMNS_LAYOUT}
    older = "\n\n".join(
        f"Template {v.version}: " + ", ".join(
            f"{c.letter} {c.header}"
            + (f" → {current[L.RENAMED_KEYS.get(c.key, c.key)].letter}"
               if L.RENAMED_KEYS.get(c.key, c.key) in current else " (dropped)")
            for c in v.columns) + "."
        for v in L.LINE_LAYOUTS.values() if v.version != L.TEMPLATE_VERSION)
    return f"""# Workbook layout (template version {L.TEMPLATE_VERSION})

Generated from `carbonclap_xl/workbook/layout.py` by `python -m tools.build_docs`; the template
(`workbook/CarbonClap.xlsx`), the reader, the writer and the validator use the same module.

## Sheets, in order

| # | sheet |
|---|---|
{sheets}

The workbook is recognised by `{L.SHEET_PRODUCTION}!{L.PRODUCTION_MARKER_CELL}` =
« {L.WORKBOOK_MARKER} » and its version in
`{L.SHEET_PRODUCTION}!{L.FIELD_BY_KEY['template_version'].cell}` (named range
`{L.NAME_TEMPLATE_VERSION}`).

## One sheet per poste

| poste id | sheet | label | devis chapter |
|---|---|---|---|
{postes}

Headers on row {L.HEADER_ROW}, lines from row {L.FIRST_DATA_ROW}; dropdowns are prepared down
to row {L.LAST_PREPARED_ROW}, and lines typed below are read too (up to row
{L.MAX_LINE_ROWS:,}). Blank rows in the middle are skipped. The activity dropdown of a
poste is the named range `Liste_<poste id>` on the Facteurs sheet; data sources use
`{L.LIST_DATA_SOURCES}`: {sources}.

| column | header | kind | engine field | help |
|---|---|---|---|---|
{columns}
{nature_row}

The count (`Nombre`) multiplies the quantity in both phases: `E = Q × N × F`; what it counts
(passagers, véhicules, personnes…) depends on the factor, and the Facteurs sheet says it for
each activity (column « Saisie »). « Source de la donnée (définitif) » gives the final phase
its own data source (blank = the same as the forecast's).

## Earlier template versions

Every version the reader supports has its column table recorded in the layout module
(`LINE_LAYOUTS`): a workbook is read, computed and written at its own version's positions, so
an older workbook processes unchanged (its lines have no count and one data source).
`carbonclap-xl upgrade OLD.xlsx [-o NEW.xlsx]` moves it to version {L.TEMPLATE_VERSION}
(default output `OLD-v2.xlsx`, never the input) by inserting the new columns in place: every
cell moves to its new column, and so do the references to it (formulas of every sheet,
defined names, charts, comments and their notes, validations, conditional formats, merges,
drawings); every other part of the file is copied byte for byte. Column correspondence
(old letter → current letter):

{older}

## Production

| cell | field | kind | required (CNC) | key |
|---|---|---|---|---|
{fields}

## Synthèse, Contrôles, Facteurs

- Synthèse: by poste rows {L.SYN_POSTE_FIRST_ROW}–{L.SYN_POSTE_TOTAL_ROW - 1} (total
  {L.SYN_POSTE_TOTAL_ROW}, uncertainty {L.SYN_POSTE_UNCERTAINTY_ROW}), by nature rows
  {L.SYN_NATURE_FIRST_ROW}–{L.SYN_NATURE_TOTAL_ROW - 1} (total {L.SYN_NATURE_TOTAL_ROW}),
  indicators from row {L.SYN_INDICATOR_FIRST_ROW}; columns: {", ".join(h for h in
  L.SYN_HEADERS if h)}; two native bar charts read these ranges.
- Contrôles: one issue per row from row {L.CTRL_FIRST_ROW}: {", ".join(L.CTRL_HEADERS)}.
- Facteurs: the catalogue in use from row {L.FACT_FIRST_ROW} ({", ".join(L.FACT_HEADERS)}),
  then the dropdown lists, one column each.

## Live formulas

Every computation (`process`, the Excel ribbon, the LibreOffice extension) writes the emission
and status cells of a counted line, and Synthèse's totals, differences, shares, indicators and
its cell `{L.SYN_PENDING_CELL}` (lines awaiting Recalculer), as formulas
(`carbonclap_xl/workbook/formulas.py`) carrying the engine's value as their cached value:

- emissions: `IF(ISNUMBER(<quantity>),<quantity>*(<factor>*<conversion>),"")`, the
  conversion left out when it is 1; a line in error gets no formula (its cells stay empty and
  count nowhere);
- status: « {STATUS_PENDING} » as soon as the activity, the unit or the data source differs
  from what was computed, or a quantity is no longer blank or a positive number (« Vide » /
  « OK » otherwise);
- Synthèse: `SUM` and `SUMIFS` over the poste sheets' emission columns (by nature through
  column {L.NATURE_LETTER}); uncertainties stay the values of the last computation.

Classic functions only (IF, ISNUMBER, AND, OR, COUNT, COUNTA, MIN, MAX, COUNTIF, COUNTIFS, SUM,
SUMIFS):
Excel and LibreOffice 7.4 compute them alike. Validation reports a formula in a computed cell
that is not one of these (`FORMULA_FOREIGN`) and recomputes the footprint from the inputs.

## What the engine owns

Processing writes only: the calculated columns of the poste sheets that were read (and their
nature column), the computed Production fields, the Synthèse figures and the Contrôles rows.
Every other cell and every other part of the file (styles, charts, comments, images, macros,
ribbon, added sheets, Excel's extension lists) comes back byte-identical.

The columns of a poste sheet are found by their header (case, accents, spaces and
punctuation aside). A sheet whose columns are not at their letters (a column inserted among
the inputs, inputs in another order) is read by header and its lines are counted, but it is
not written (`COLUMNS_MOVED`, once per sheet, naming the column and the fix): the computed
cells, their formulas and Synthèse's ranges are defined by the letters above, and writing
there would overwrite the user's moved columns; Synthèse is then written as values. A sheet
where a column cannot be found (renamed, twice, a computed column moved among the inputs) is
not written either, and its lines are counted as not counted (`HEADER_CHANGED`, once per
sheet).
"""


def issue_codes_page() -> str:
    return f"""# Issue codes

Generated from `carbonclap_xl/issues.py` and `carbonclap_xl/validate.py` by
`python -m tools.build_docs`; a test checks this page is current.

## Issues (in the JSON, the terminal and the Contrôles sheet)

Every problem the engine, the workbook reader and the validator find has one stable code, one
severity and one French message template (fields in braces are filled from the case, and the
issue names its sheet and cell). **erreur**: the file is not acceptable as submitted (exit 1);
**avertissement**: to check, the line is counted; **info**: for the record.

{codes_markdown()}
## Rejections (`validate` and `process`: exit 2)

A file rejected before or while parsing gets one French sentence naming what is wrong and what
to send instead, and one of these codes. In a batch, the other files are still validated.

{rejections_markdown()}"""


PAGES = {DOC: issue_codes_page, LAYOUT_DOC: layout_page, DEVIS_DOC: devis_page}


if __name__ == "__main__":
    for path, page in PAGES.items():
        path.write_text(page(), encoding="utf-8")
        print(f"écrit : {path}")
