"""carbonclap_xl.xlsx.patch_workbook: surgical cell writes into real .xlsx/.xlsm packages.

Two kinds of source workbooks: one saved by openpyxl (styles, a column style, a formula, a data
validation, a comment) and a hand-written "Excel-like" package (XML declaration with
standalone, mc:Ignorable, shared strings, a calculation chain, a shared formula, an array
formula, an x14 data validation), in a default-namespace and an ``x:``-prefixed spelling.
"""

from __future__ import annotations

import gc
import math
import random
import shutil
import subprocess
import warnings
import zipfile
from collections.abc import Collection
from pathlib import Path

import openpyxl
import pytest
from lxml import etree
from openpyxl.comments import Comment
from openpyxl.styles import Font
from openpyxl.worksheet.datavalidation import DataValidation
from python_calamine import CalamineWorkbook

from carbonclap_xl.core.errors import WorkbookPatchError
from carbonclap_xl.xlsx import patch_workbook, sheet_parts

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
NS = {"m": MAIN}
DATE = (2021, 3, 4, 5, 6, 8)


# --------------------------------------------------------------------------- helpers


def load(path: Path, data_only: bool = False) -> openpyxl.Workbook:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Data Validation extension is not supported"
        return openpyxl.load_workbook(path, data_only=data_only)


def calamine_rows(path: Path, sheet: str) -> list[list[object]]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()


def members(path: Path) -> list[tuple[str, int, tuple[int, ...], bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(i.filename, i.compress_type, i.date_time, zf.read(i)) for i in zf.infolist()]


def assert_untouched_except(
    src: Path, dst: Path, changed: Collection[str], gone: Collection[str] = ()
) -> None:
    """Every member of src outside ``changed`` and ``gone`` is in dst, in the same order, with
    the same compression method, timestamp and bytes."""
    before = [m for m in members(src) if m[0] not in gone]
    after = members(dst)
    assert [m[0] for m in after] == [m[0] for m in before]
    for old, new in zip(before, after, strict=True):
        assert new[1:3] == old[1:3], old[0]
        if old[0] in changed:
            assert new[3] != old[3], f"{old[0]} should have changed"
        else:
            assert new[3] == old[3], f"{old[0]} changed"


def sheet_xml(path: Path, part: str) -> etree._Element:
    with zipfile.ZipFile(path) as zf:
        return etree.fromstring(zf.read(part))


def cell(root: etree._Element, ref: str) -> etree._Element | None:
    found = root.xpath(f"//m:c[@r='{ref}']", namespaces=NS)
    return found[0] if found else None


def write_package(path: Path, parts: list[tuple[str, str | bytes]]) -> None:
    """A zip in the given member order; the styles part is stored, the rest deflated."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in parts:
            info = zipfile.ZipInfo(name, DATE)
            info.compress_type = zipfile.ZIP_STORED if name.endswith("styles.xml") else 8
            zf.writestr(info, data.encode() if isinstance(data, str) else data)


DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'

STYLES = (
    DECL + f'<styleSheet xmlns="{MAIN}">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="0.000"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="1" fillId="0" borderId="0" xfId="0" applyNumberFormat="1" '
    'applyFont="1"/>'
    '<xf numFmtId="10" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)

SHARED_STRINGS = (
    DECL + f'<sst xmlns="{MAIN}" count="4" uniqueCount="4">'
    "<si><t>Qté</t></si><si><t>Prix</t></si><si><t>Total</t></si><si><t>rouge</t></si></sst>"
)

# Written with {p} for the element prefix ("" or "x:"); Excel's own habits otherwise.
SHEET1 = (
    DECL + '<{p}worksheet xmlns{decl}="' + MAIN + '" xmlns:r="' + REL + '" '
    'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
    'mc:Ignorable="x14ac xr" '
    'xmlns:x14ac="http://schemas.microsoft.com/office/spreadsheetml/2009/9/ac" '
    'xmlns:xr="http://schemas.microsoft.com/office/spreadsheetml/2014/revision" '
    'xr:uid="{{00000000-0001-0000-0000-000000000000}}">'
    '<{p}dimension ref="A1:E10"/>'
    '<{p}sheetViews><{p}sheetView workbookViewId="0"/></{p}sheetViews>'
    '<{p}sheetFormatPr defaultRowHeight="15" x14ac:dyDescent="0.25"/>'
    '<{p}cols><{p}col min="4" max="4" width="12" style="2" customWidth="1"/></{p}cols>'
    "<{p}sheetData>"
    '<{p}row r="1" spans="1:5" x14ac:dyDescent="0.25">'
    '<{p}c r="A1" t="s"><{p}v>0</{p}v></{p}c><{p}c r="B1" t="s"><{p}v>1</{p}v></{p}c>'
    '<{p}c r="C1" t="s"><{p}v>2</{p}v></{p}c></{p}row>'
    '<{p}row r="2" spans="1:5" x14ac:dyDescent="0.25">'
    '<{p}c r="A2"><{p}v>1</{p}v></{p}c><{p}c r="B2" s="1"><{p}v>10</{p}v></{p}c>'
    '<{p}c r="C2"><{p}f t="shared" ref="C2:C6" si="0">A2*B2</{p}f><{p}v>10</{p}v></{p}c>'
    "</{p}row>"
    + "".join(
        f'<{{p}}row r="{r}" spans="1:5" x14ac:dyDescent="0.25">'
        f'<{{p}}c r="A{r}"><{{p}}v>{r - 1}</{{p}}v></{{p}}c>'
        f'<{{p}}c r="B{r}" s="1"><{{p}}v>10</{{p}}v></{{p}}c>'
        f'<{{p}}c r="C{r}"><{{p}}f t="shared" si="0"/><{{p}}v>{(r - 1) * 10}</{{p}}v></{{p}}c>'
        "</{p}row>"
        for r in range(3, 7)
    )
    + '<{p}row r="8" spans="1:5" s="3" customFormat="1" x14ac:dyDescent="0.25">'
    '<{p}c r="A8" s="3"><{p}v>44000</{p}v></{p}c><{p}c r="B8" t="s"><{p}v>3</{p}v></{p}c>'
    "</{p}row>"
    '<{p}row r="9" spans="1:5"><{p}c r="E9"><{p}f t="array" ref="E9:E10">A2:A3*2</{p}f>'
    "<{p}v>2</{p}v></{p}c></{p}row>"
    '<{p}row r="10" spans="1:5"><{p}c r="E10"><{p}v>4</{p}v></{p}c></{p}row>'
    "</{p}sheetData>"
    '<{p}dataValidations count="1"><{p}dataValidation type="whole" sqref="A2:A6">'
    "<{p}formula1>0</{p}formula1></{p}dataValidation></{p}dataValidations>"
    '<{p}pageMargins left="0.7" right="0.7" top="0.75" bottom="0.75" header="0.3" footer="0.3"/>'
    "<{p}extLst>"
    '<{p}ext uri="{{CCE6A557-97BC-4b89-ADB6-D9C93CAAB3DF}}" '
    'xmlns:x14="http://schemas.microsoft.com/office/spreadsheetml/2009/9/main">'
    '<x14:dataValidations count="1" '
    'xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main">'
    '<x14:dataValidation type="list" allowBlank="1"><x14:formula1><xm:f>Lists!$A$1:$A$3</xm:f>'
    "</x14:formula1><xm:sqref>D2:D6</xm:sqref></x14:dataValidation></x14:dataValidations>"
    "</{p}ext></{p}extLst>"
    "</{p}worksheet>"
)

SHEET2 = (
    DECL
    + f'<worksheet xmlns="{MAIN}"><dimension ref="A1:A3"/><sheetData>'
    + "".join(f'<row r="{r}"><c r="A{r}"><v>{r}</v></c></row>' for r in (1, 2, 3))
    + "</sheetData></worksheet>"
)

CALC_CHAIN = (
    DECL + f'<calcChain xmlns="{MAIN}"><c r="C2" i="1"/><c r="C3"/><c r="C4"/><c r="C5"/>'
    '<c r="C6"/><c r="E9" a="1"/></calcChain>'
)


def excel_like(
    path: Path, prefix: str = "", workbook: str = "xl/workbook.xml", xlsm: bool = False
) -> Path:
    """A package shaped like Excel's, the workbook part at ``workbook``."""
    p = f"{prefix}:" if prefix else ""
    sheet1 = SHEET1.format(p=p, decl=f":{prefix}" if prefix else "")
    wb_name = workbook.rsplit("/", 1)[1]
    wb_type = (
        "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
        if xlsm
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
    )
    ct = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    content_types = (
        DECL + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        + (
            '<Default Extension="bin" ContentType="application/vnd.ms-office.vbaProject"/>'
            if xlsm
            else ""
        )
        + f'<Override PartName="/{workbook}" ContentType="{wb_type}"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{ct}.worksheet+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet2.xml" ContentType="{ct}.worksheet+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{ct}.styles+xml"/>'
        f'<Override PartName="/xl/sharedStrings.xml" ContentType="{ct}.sharedStrings+xml"/>'
        f'<Override PartName="/xl/calcChain.xml" ContentType="{ct}.calcChain+xml"/>'
        "</Types>"
    )
    package_rels = (
        DECL + f'<Relationships xmlns="{PKG_REL}">'
        f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="{workbook}"/>'
        "</Relationships>"
    )
    workbook_xml = (
        DECL + f'<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>'
        '<sheet name="Saisie" sheetId="1" r:id="rId1"/>'
        '<sheet name="Lists" sheetId="2" r:id="rId2"/></sheets><calcPr calcId="191029"/>'
        "</workbook>"
    )
    workbook_rels = (
        DECL + f'<Relationships xmlns="{PKG_REL}">'
        f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{REL}/worksheet" Target="/xl/worksheets/sheet2.xml"/>'
        f'<Relationship Id="rId3" Type="{REL}/styles" Target="styles.xml"/>'
        f'<Relationship Id="rId4" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>'
        f'<Relationship Id="rId5" Type="{REL}/calcChain" Target="calcChain.xml"/>'
        + (
            '<Relationship Id="rId6" Type="http://schemas.microsoft.com/office/2006/'
            'relationships/vbaProject" Target="vbaProject.bin"/>'
            if xlsm
            else ""
        )
        + "</Relationships>"
    )
    parts: list[tuple[str, str | bytes]] = [
        ("[Content_Types].xml", content_types),
        ("_rels/.rels", package_rels),
        (workbook, workbook_xml),
        (f"xl/_rels/{wb_name}.rels", workbook_rels),
        ("xl/worksheets/sheet1.xml", sheet1),
        ("xl/worksheets/sheet2.xml", SHEET2),
        ("xl/styles.xml", STYLES),
        ("xl/sharedStrings.xml", SHARED_STRINGS),
        ("xl/calcChain.xml", CALC_CHAIN),
    ]
    if xlsm:
        parts.append(("xl/vbaProject.bin", bytes(range(256)) * 8))
    write_package(path, parts)
    return path


def openpyxl_workbook(path: Path) -> Path:
    """Three sheets with styles, a column style, a formula, a data validation and a comment."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Saisie"
    ws.append(["Poste", "Quantité", "Unité", "Facteur", "Total"])
    for i in range(2, 12):
        ws.append([f"poste {i}", i * 1.5, "km", 0.25, f"=B{i}*D{i}"])
        ws[f"B{i}"].number_format = "0.000"
        ws[f"B{i}"].font = Font(bold=True, color="FF0000")
    ws.column_dimensions["G"].number_format = "0.00%"
    ws.column_dimensions["G"].font = Font(italic=True)
    ws["A1"].comment = Comment("Saisir un poste par ligne", "CarbonClap")
    dv = DataValidation(type="list", formula1='"km,kg,kWh"', allow_blank=True)
    ws.add_data_validation(dv)
    dv.add("C2:C11")
    results = wb.create_sheet("Résultats")
    results["A1"] = "Bilan"
    results["B2"] = 0
    notes = wb.create_sheet("Notes")
    notes["A1"] = "inchangé"
    wb.save(path)
    return path


# --------------------------------------------------------------------------- sheet_parts


def test_sheet_parts_follow_relationships(tmp_path: Path) -> None:
    src = excel_like(tmp_path / "book.xlsx", workbook="xl/book.xml")
    with zipfile.ZipFile(src) as zf:
        assert sheet_parts(zf) == {
            "Saisie": "xl/worksheets/sheet1.xml",  # relative target
            "Lists": "xl/worksheets/sheet2.xml",  # absolute target
        }


def test_sheet_parts_of_an_openpyxl_workbook_in_workbook_order(tmp_path: Path) -> None:
    with zipfile.ZipFile(openpyxl_workbook(tmp_path / "o.xlsx")) as zf:
        assert list(sheet_parts(zf)) == ["Saisie", "Résultats", "Notes"]


# --------------------------------------------------------------------------- openpyxl source


def test_openpyxl_workbook_round_trip(tmp_path: Path) -> None:
    src = openpyxl_workbook(tmp_path / "src.xlsx")
    dst = tmp_path / "dst.xlsx"
    values = {
        "B3": 0.1 + 0.2,  # full precision
        "C3": "tonnes <&> \"x\" 'y'",
        "E4": 12,  # was a formula
        "G5": "nouvelle",  # new cell in a styled column
        "H2": True,
        "A20": "  espaces  ",  # new row past the end
        "B11": -1.5e-300,
    }
    patch_workbook(src, dst, {"Saisie": values, "Résultats": {"B2": 42.5}})

    wb = load(dst)
    ws = wb["Saisie"]
    for ref, value in values.items():
        assert ws[ref].value == value, ref
    assert ws["E5"].value == "=B5*D5"  # neighbouring formula kept
    assert ws["A2"].value == "poste 2" and ws["D7"].value == 0.25
    assert ws["B3"].number_format == "0.000" and ws["B3"].font.b  # style of a written cell kept
    assert ws["G5"].number_format == "0.00%" and ws["G5"].font.i  # column style taken
    assert ws["A1"].comment is not None and "poste" in ws["A1"].comment.text
    assert [str(dv.sqref) for dv in ws.data_validations.dataValidation] == ["C2:C11"]
    assert wb["Résultats"]["B2"].value == 42.5 and wb["Résultats"]["A1"].value == "Bilan"
    assert ws.max_row == 20

    rows = calamine_rows(dst, "Saisie")
    assert rows[2][1] == 0.1 + 0.2 and rows[2][2] == values["C3"]
    assert rows[4][6] == "nouvelle" and rows[1][7] is True and rows[19][0] == "  espaces  "
    assert rows[3][4] == 12

    assert_untouched_except(src, dst, {"xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml"})


# --------------------------------------------------------------------------- Excel-like source


@pytest.mark.parametrize("prefix", ["", "x"])
def test_excel_like_package(tmp_path: Path, prefix: str) -> None:
    src = excel_like(tmp_path / "src.xlsx", prefix=prefix)
    dst = tmp_path / "dst.xlsx"
    patch_workbook(
        src,
        dst,
        {"Saisie": {"A3": 7, "B3": 2.5, "D4": "nouveau", "C12": "bas", "F8": 3, "A8": None}},
    )
    assert_untouched_except(src, dst, {"xl/worksheets/sheet1.xml"})

    data = dict((m[0], m[3]) for m in members(dst))["xl/worksheets/sheet1.xml"]
    assert data.startswith(DECL.encode())
    root = etree.fromstring(data)
    # namespace declarations, prefix and mc:Ignorable as they were; no stray declarations
    expected_map = etree.fromstring(
        dict((m[0], m[3]) for m in members(src))["xl/worksheets/sheet1.xml"]
    ).nsmap
    assert root.nsmap == expected_map
    assert root.prefix == (prefix or None)
    assert data.count(b"xmlns") == 5 + 2  # 5 on the root, 2 inside the x14 extension
    assert b'mc:Ignorable="x14ac xr"' in data and b"x14:dataValidation " in data

    assert cell(root, "B3").get("s") == "1"  # written cell keeps its style
    assert cell(root, "D4").get("s") == "2"  # new cell: its column's style
    assert cell(root, "F8").get("s") == "3"  # new cell: its row's style (customFormat)
    assert cell(root, "C12").get("s") is None
    a8 = cell(root, "A8")
    assert a8 is not None and a8.get("s") == "3" and len(a8) == 0  # None keeps styled cell
    assert cell(root, "D4").get("t") == "inlineStr"
    assert root.find(".//m:dimension", NS).get("ref") == "A1:F12"
    rows = root.findall(".//m:row", NS)
    assert [int(r.get("r")) for r in rows] == [1, 2, 3, 4, 5, 6, 8, 9, 10, 12]
    for row in rows:
        cols = [c.get("r") for c in row.findall("m:c", NS)]
        assert cols == sorted(cols, key=lambda ref: (len(ref), ref))
    assert rows[6].get("spans") is None  # row 8 grew past its spans
    assert rows[1].get("spans") == "1:5"

    wb = load(dst)
    ws = wb["Saisie"]
    assert (ws["A3"].value, ws["B3"].value, ws["D4"].value, ws["C12"].value) == (
        7,
        2.5,
        "nouveau",
        "bas",
    )
    assert ws["A1"].value == "Qté" and ws["B8"].value == "rouge"  # shared strings untouched
    assert ws["B3"].number_format == "0.000" and ws["B3"].font.b
    assert ws["D4"].number_format == "0.00%"
    assert ws["C4"].value == "=A4*B4"  # shared formula untouched
    rows_c = calamine_rows(dst, "Saisie")
    assert rows_c[2][:2] == [7, 2.5] and rows_c[3][3] == "nouveau" and rows_c[11][2] == "bas"
    assert rows_c[0][:3] == ["Qté", "Prix", "Total"]


def test_writing_plain_cells_keeps_calc_chain(tmp_path: Path) -> None:
    src = excel_like(tmp_path / "src.xlsx")
    dst = tmp_path / "dst.xlsx"
    patch_workbook(src, dst, {"Saisie": {"A2": 3}})
    assert_untouched_except(src, dst, {"xl/worksheets/sheet1.xml"})


def test_overwriting_a_formula_drops_the_calc_chain(tmp_path: Path) -> None:
    src = excel_like(tmp_path / "src.xlsx")
    dst = tmp_path / "dst.xlsx"
    patch_workbook(src, dst, {"Saisie": {"C6": 99}})  # a child of the shared formula
    changed = {"xl/worksheets/sheet1.xml", "xl/_rels/workbook.xml.rels", "[Content_Types].xml"}
    assert_untouched_except(src, dst, changed, gone={"xl/calcChain.xml"})
    parts = dict((m[0], m[3]) for m in members(dst))
    assert b"calcChain" not in parts["xl/_rels/workbook.xml.rels"]
    assert b"calcChain" not in parts["[Content_Types].xml"]
    assert parts["[Content_Types].xml"].startswith(DECL.encode())
    assert b"sharedStrings" in parts["xl/_rels/workbook.xml.rels"]
    c6 = cell(etree.fromstring(parts["xl/worksheets/sheet1.xml"]), "C6")
    assert c6.find("m:f", NS) is None and c6.findtext("m:v", namespaces=NS) == "99"
    assert load(dst)["Saisie"]["C5"].value == "=A5*B5"


def test_overwriting_a_shared_formula_master_moves_it(tmp_path: Path) -> None:
    src = excel_like(tmp_path / "src.xlsx")
    dst = tmp_path / "dst.xlsx"
    patch_workbook(src, dst, {"Saisie": {"C2": "fixé"}})
    root = sheet_xml(dst, "xl/worksheets/sheet1.xml")
    f3 = cell(root, "C3").find("m:f", NS)
    assert (f3.text, f3.get("t"), f3.get("ref"), f3.get("si")) == ("A3*B3", "shared", "C3:C6", "0")
    assert cell(root, "C2").find("m:f", NS) is None
    ws = load(dst)["Saisie"]
    assert [ws[f"C{r}"].value for r in range(2, 7)] == [
        "fixé",
        "=A3*B3",
        "=A4*B4",
        "=A5*B5",
        "=A6*B6",
    ]


def test_shared_formula_left_as_an_l_shape_is_unshared(tmp_path: Path) -> None:
    rows = (
        '<row r="2"><c r="B2"><f t="shared" ref="B2:C3" si="4">$A2+A1+SUM(1:1)+Nom</f><v>1</v></c>'
        '<c r="C2"><f t="shared" si="4"/><v>1</v></c></row>'
        '<row r="3"><c r="B3"><f t="shared" si="4"/><v>1</v></c>'
        '<c r="C3"><f t="shared" si="4"/><v>1</v></c></row>'
    )
    src = tmp_path / "src.xlsx"
    excel_like(src)
    rewrite_sheet(src, f'<worksheet xmlns="{MAIN}"><sheetData>{rows}</sheetData></worksheet>')
    dst = tmp_path / "dst.xlsx"
    patch_workbook(src, dst, {"Saisie": {"B2": 0}})
    root = sheet_xml(dst, "xl/worksheets/sheet1.xml")
    formulas = {ref: cell(root, ref).find("m:f", NS) for ref in ("C2", "B3", "C3")}
    assert {ref: f.text for ref, f in formulas.items()} == {
        "C2": "$A2+B1+SUM(1:1)+Nom",
        "B3": "$A3+A2+SUM(2:2)+Nom",
        "C3": "$A3+B2+SUM(2:2)+Nom",
    }
    assert all(f.get("t") is None and f.get("si") is None for f in formulas.values())


def test_shared_formula_that_cannot_move_is_refused(tmp_path: Path) -> None:
    rows = (
        '<row r="1"><c r="A1"><f t="shared" ref="A1:B1" si="0">XFD1*2</f><v>0</v></c>'
        '<c r="B1"><f t="shared" si="0"/><v>0</v></c></row>'
    )
    src = tmp_path / "src.xlsx"
    excel_like(src)
    rewrite_sheet(src, f'<worksheet xmlns="{MAIN}"><sheetData>{rows}</sheetData></worksheet>')
    dst = tmp_path / "dst.xlsx"
    with pytest.raises(WorkbookPatchError) as info:
        patch_workbook(src, dst, {"Saisie": {"A1": 1}})
    assert "Saisie!A1" in str(info.value) and "B1" in str(info.value)
    assert not dst.exists()
    patch_workbook(src, dst, {"Saisie": {"A1": 1, "B1": 2}})  # the whole group: fine


def test_partial_write_into_an_array_formula_is_refused(tmp_path: Path) -> None:
    src = excel_like(tmp_path / "src.xlsx")
    dst = tmp_path / "dst.xlsx"
    with pytest.raises(WorkbookPatchError, match=r"Saisie!E10.*matricielle E9:E10"):
        patch_workbook(src, dst, {"Saisie": {"E10": 1}})
    with pytest.raises(WorkbookPatchError, match=r"Saisie!E10"):
        patch_workbook(src, dst, {"Saisie": {"E9": 1}})
    assert not dst.exists()
    patch_workbook(src, dst, {"Saisie": {"E9": 1, "E10": 2}})
    assert calamine_rows(dst, "Saisie")[8][4] == 1


def rewrite_sheet(path: Path, xml: str, part: str = "xl/worksheets/sheet1.xml") -> None:
    with zipfile.ZipFile(path) as zf:
        parts = [(i.filename, zf.read(i)) for i in zf.infolist()]
    write_package(path, [(n, xml if n == part else d) for n, d in parts])


# --------------------------------------------------------------------------- clear


def test_clear_removes_values_and_formulas_and_keeps_styles(tmp_path: Path) -> None:
    src = excel_like(tmp_path / "src.xlsx")
    dst = tmp_path / "dst.xlsx"
    patch_workbook(src, dst, {"Saisie": {"A4": "gardé"}}, clear={"Saisie": ["A3:C6", "B8:F2000"]})
    root = sheet_xml(dst, "xl/worksheets/sheet1.xml")
    for r in range(3, 7):
        b = cell(root, f"B{r}")
        assert b is not None and b.get("s") == "1" and len(b) == 0 and b.get("t") is None
        assert cell(root, f"C{r}") is None  # no style: the element goes
    assert cell(root, "A3") is None and cell(root, "A4").get("t") == "inlineStr"  # writes after
    assert cell(root, "B8") is None and cell(root, "E9") is None and cell(root, "E10") is None
    assert cell(root, "A8").findtext("m:v", namespaces=NS) == "44000"  # outside the ranges
    assert cell(root, "C2").find("m:f", NS) is not None  # group master outside the range
    assert not any(m[0] == "xl/calcChain.xml" for m in members(dst))
    rows = calamine_rows(dst, "Saisie")
    assert rows[3][0] == "gardé" and rows[3][1:3] == ["", ""]


def test_clearing_nothing_leaves_the_package_identical(tmp_path: Path) -> None:
    src = excel_like(tmp_path / "src.xlsx")
    dst = tmp_path / "dst.xlsx"
    patch_workbook(src, dst, {"Lists": {"Z99": None}}, clear={"Saisie": ["G1:H50"]})
    assert members(dst) == members(src)


# --------------------------------------------------------------------------- packages


def test_xlsm_keeps_vba_and_content_types(tmp_path: Path) -> None:
    src = excel_like(tmp_path / "src.xlsm", xlsm=True)
    dst = tmp_path / "dst.xlsm"
    patch_workbook(src, dst, {"Lists": {"B1": "x"}})
    assert_untouched_except(src, dst, {"xl/worksheets/sheet2.xml"})


def test_patch_in_place(tmp_path: Path) -> None:
    path = openpyxl_workbook(tmp_path / "book.xlsx")
    patch_workbook(path, path, {"Notes": {"A2": "ajout"}})
    assert load(path)["Notes"]["A2"].value == "ajout"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.xlsx"]


def test_text_escapes_and_numbers_read_back_exactly(tmp_path: Path) -> None:
    src = excel_like(tmp_path / "src.xlsx")
    dst = tmp_path / "dst.xlsx"
    values = {
        "A1": "a_x0041_b",  # looks like Excel's escape: must not be decoded
        "A2": "bip\x07",  # not allowed in XML: escaped as _x0007_
        "A3": "=1+2",  # text, not a formula
        "A4": 1e-310,
        "A5": 123456789.123456789,
        "A6": 2**40,
        "A7": False,
        "A8": "ligne 1\nligne 2",
    }
    patch_workbook(src, dst, {"Lists": values})
    assert [row[0] for row in calamine_rows(dst, "Lists")] == list(values.values())


def test_doctype_is_refused(tmp_path: Path) -> None:
    src = excel_like(tmp_path / "src.xlsx")
    evil = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        f'<worksheet xmlns="{MAIN}"><sheetData/></worksheet>'
    )
    rewrite_sheet(src, evil, "xl/worksheets/sheet2.xml")
    dst = tmp_path / "dst.xlsx"
    with pytest.raises(WorkbookPatchError, match="DOCTYPE"):
        patch_workbook(src, dst, {"Lists": {"A1": 1}})
    assert not dst.exists()


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("writes", "clear", "message"),
    [
        (
            {"Saissie": {"A1": 1}},
            None,
            "« Saissie » introuvable.*« Saisie », « Lists ».*« Saisie » \\?",
        ),
        ({"Saisie": {"B0": 1}}, None, "« B0 »"),
        ({"Saisie": {"7B": 1}}, None, "« 7B »"),
        ({"Saisie": {"XFE1": 1}}, None, "« XFE1 »"),
        ({"Saisie": {"B7": math.nan}}, None, "Saisie!B7.*nan"),
        ({"Saisie": {"B7": -math.inf}}, None, "Saisie!B7.*-inf"),
        ({"Saisie": {"B7": "x" * 40_000}}, None, "Saisie!B7.*40000 caractères"),
        ({"Saisie": {"B7": object()}}, None, "Saisie!B7.*type object"),
        ({}, {"Saisie": ["A1:B"]}, "« A1:B »"),
        ({}, {"Autre feuille": ["A1:B2"]}, "« Autre feuille » introuvable"),
    ],
)
def test_errors_name_the_culprit_and_write_nothing(
    tmp_path: Path, writes: dict, clear: dict | None, message: str
) -> None:
    src = excel_like(tmp_path / "src.xlsx")
    dst = tmp_path / "out" / "dst.xlsx"
    dst.parent.mkdir()
    with pytest.raises(WorkbookPatchError, match=message):
        patch_workbook(src, dst, writes, clear)
    assert list(dst.parent.iterdir()) == []


def test_not_a_zip(tmp_path: Path) -> None:
    src = tmp_path / "faux.xlsx"
    src.write_bytes(b"ceci n'est pas un classeur")
    with pytest.raises(WorkbookPatchError, match=r"faux\.xlsx.*zip"):
        patch_workbook(src, tmp_path / "dst.xlsx", {"A": {"A1": 1}})
    assert not (tmp_path / "dst.xlsx").exists()


# --------------------------------------------------------------------------- written cells


def prefixed_sheet(prefix: str, rows: str) -> str:
    """A worksheet whose rows are ``rows`` ({p} for the element prefix), columns D:E styled."""
    p = f"{prefix}:" if prefix else ""
    decl = f'xmlns:{prefix}="{MAIN}"' if prefix else f'xmlns="{MAIN}"'
    return (
        DECL + f'<{p}worksheet {decl}><{p}dimension ref="A1:H12"/>'
        f'<{p}cols><{p}col min="4" max="5" style="2"/></{p}cols>'
        f"<{p}sheetData>{rows.format(p=p)}</{p}sheetData></{p}worksheet>"
    )


PRETTY_ROWS = (
    '\n  <{p}row r="1" spans="1:4">'
    '\n    <{p}c r="A1" s="1" ph="1" cm="1" t="inlineStr">note'
    "<{p}is><{p}t>old</{p}t></{p}is></{p}c>"
    "\n    <!-- keep -->"
    '\n    <{p}c r="C1"><{p}f>1+1</{p}f><{p}v>2</{p}v></{p}c>'
    '\n    <{p}c r="D1" s="2" t="b"><{p}v>1</{p}v></{p}c>'
    '\n    <{p}extLst><{p}ext uri="x"/></{p}extLst>'
    "\n  </{p}row>"
    '\n  <{p}row r="2">'
    '\n    <{p}c r="A2"><{p}v>1</{p}v></{p}c>'
    '\n    <{p}c r="B2" s="1"><{p}v>2</{p}v></{p}c>'
    '\n    <{p}c r="C2"><{p}v>3</{p}v></{p}c>'
    "\n  </{p}row>\n"
)


@pytest.mark.parametrize("prefix", ["", "x"])
def test_written_cells_keep_the_layout_around_them(tmp_path: Path, prefix: str) -> None:
    """Whitespace, comments and extLst stay where they were; a written cell keeps its other
    attributes and the text before its value, loses t, cm and its formula."""
    src = excel_like(tmp_path / "src.xlsx")
    rewrite_sheet(src, prefixed_sheet(prefix, PRETTY_ROWS))
    dst = tmp_path / "dst.xlsx"
    writes = {"A1": 5, "B1": "b&<\r>", "C1": None, "D1": "", "E1": True}
    writes |= {"A2": 0.5, "B2": "x", "C2": None, "F2": 7}
    patch_workbook(src, dst, {"Saisie": writes}, clear={"Saisie": ["A2"]})
    p = f"{prefix}:" if prefix else ""
    expected = (
        f'\n  <{p}row r="1">'  # E1 is outside the spans: they go
        f'\n    <{p}c r="A1" s="1" ph="1">note<{p}v>5</{p}v></{p}c>'
        "\n    <!-- keep -->"  # B1 goes before C1, after the comment; C1 goes with its tail
        f'\n    <{p}c r="B1" t="inlineStr"><{p}is><{p}t xml:space="preserve">b&amp;&lt;&#13;&gt;'
        f'</{p}t></{p}is></{p}c><{p}c r="D1" s="2" t="inlineStr"><{p}is>'
        f'<{p}t xml:space="preserve"></{p}t></{p}is></{p}c>'
        f'\n    <{p}c r="E1" s="2" t="b"><{p}v>1</{p}v></{p}c>'
        f'<{p}extLst><{p}ext uri="x"/></{p}extLst>'
        f"\n  </{p}row>"
        f'\n  <{p}row r="2">'  # A2, cleared without a style, is a new cell (no tail)
        f'\n    <{p}c r="A2"><{p}v>0.5</{p}v></{p}c><{p}c r="B2" s="1" t="inlineStr"><{p}is>'
        f'<{p}t xml:space="preserve">x</{p}t></{p}is></{p}c>'
        f'\n    <{p}c r="F2"><{p}v>7</{p}v></{p}c></{p}row>\n'
    )
    data = dict((m[0], m[3]) for m in members(dst))["xl/worksheets/sheet1.xml"].decode()
    assert data[data.index(f"<{p}sheetData>") + len(f"<{p}sheetData>") :].startswith(expected)
    assert calamine_rows(dst, "Saisie")[0][:5] == [5, "b&<\r>", "", "", True]
    assert "xl/calcChain.xml" not in [m[0] for m in members(dst)]  # C1's formula went


def test_new_cells_take_their_place_as_if_written_one_by_one(tmp_path: Path) -> None:
    """B1 goes before C1, which then goes (None); D1 goes before E1, after the comment."""
    rows = '<row r="1"><c r="C1"><v>1</v></c><!-- note --><c r="E1"><v>2</v></c></row>'
    src = excel_like(tmp_path / "src.xlsx")
    rewrite_sheet(src, prefixed_sheet("", rows))
    dst = tmp_path / "dst.xlsx"
    patch_workbook(src, dst, {"Saisie": {"B1": 1, "C1": None, "D1": 3}})
    data = dict((m[0], m[3]) for m in members(dst))["xl/worksheets/sheet1.xml"]
    assert (
        b'<row r="1"><c r="B1"><v>1</v></c><!-- note --><c r="D1" s="2"><v>3</v></c>'
        b'<c r="E1"><v>2</v></c></row>'
    ) in data


def test_a_cell_with_an_attribute_in_a_namespace_is_written_in_place(tmp_path: Path) -> None:
    rows = (
        '<row r="1"><c r="A1" xmlns:foo="urn:foo" foo:bar="1" s="1" t="s"><v>0</v></c>'
        '<c r="B1"><v>1</v></c></row>'
    )
    src = excel_like(tmp_path / "src.xlsx")
    rewrite_sheet(src, prefixed_sheet("", rows))
    dst = tmp_path / "dst.xlsx"
    patch_workbook(src, dst, {"Saisie": {"A1": "écrit", "B1": 2.5, "C1": 3}})
    root = sheet_xml(dst, "xl/worksheets/sheet1.xml")
    a1 = cell(root, "A1")
    assert a1.get("{urn:foo}bar") == "1" and a1.get("s") == "1" and a1.get("t") == "inlineStr"
    assert a1.nsmap["foo"] == "urn:foo"
    assert calamine_rows(dst, "Saisie")[0] == ["écrit", 2.5, 3]


def test_the_garbage_collector_is_left_as_it_was(tmp_path: Path) -> None:
    src = excel_like(tmp_path / "src.xlsx")
    dst = tmp_path / "dst.xlsx"
    assert gc.isenabled()
    patch_workbook(src, dst, {"Saisie": {"A2": 1}})
    assert gc.isenabled()
    with pytest.raises(WorkbookPatchError):
        patch_workbook(src, dst, {"Saisie": {"A2": math.nan}})
    with pytest.raises(WorkbookPatchError):
        patch_workbook(src, dst, {"Saisie": {"E10": 1}})  # fails while patching the sheet
    assert gc.isenabled()
    gc.disable()
    try:
        patch_workbook(src, dst, {"Saisie": {"A2": 2}})
        assert not gc.isenabled()
    finally:
        gc.enable()


def reference_patch(
    root: etree._Element, writes: dict[tuple[int, int], object], clear: list[tuple[int, ...]]
) -> None:
    """The documented behaviour, applied naively through lxml's API: the model the patcher is
    checked against. Values are numbers, booleans, None or texts that need no _xHHHH_ escape;
    columns D:E have style 2, rows with customFormat="1" their s; a new cell goes before the
    next cell of its row, else before the row's extLst, else last."""
    m = f"{{{MAIN}}}"
    sheet_data = root.find(f"{m}sheetData")

    def col_of(c: etree._Element) -> int:
        return ord(c.get("r")[0]) - 64

    def rows() -> dict[int, etree._Element]:
        return {int(r.get("r")): r for r in sheet_data.iterchildren(f"{m}row")}

    def strip(c: etree._Element) -> None:
        for child in list(c):
            c.remove(child)
        for name in ("t", "cm", "vm"):
            c.attrib.pop(name, None)

    for top, left, bottom, right in clear:
        for number, row in rows().items():
            for c in list(row.iterchildren(f"{m}c")):
                if top <= number <= bottom and left <= col_of(c) <= right:
                    strip(c)
                    if c.get("s") is None:
                        row.remove(c)
    extent: list[tuple[int, int]] = []
    for (number, col), value in sorted(writes.items()):
        row = rows().get(number)
        if row is None and value is None:
            continue
        if row is None:
            row = etree.SubElement(sheet_data, f"{m}row", r=str(number))
            later = [r for n, r in rows().items() if n > number]
            if later:
                later[0].addprevious(row)
        current = {col_of(c): c for c in row.iterchildren(f"{m}c")}
        c = current.get(col)
        if value is None:
            if c is not None:
                strip(c)
                if c.get("s") is None:
                    row.remove(c)
            continue
        extent.append((number, col))
        if c is None:
            c = etree.SubElement(row, f"{m}c", r=f"{chr(64 + col)}{number}")
            style = "2" if col in (4, 5) else (row.get("s") if row.get("customFormat") else None)
            if style:
                c.set("s", style)
            after = [x for k, x in current.items() if k > col]
            ext = row.find(f"{m}extLst")
            if after:
                after[0].addprevious(c)
            elif ext is not None:
                ext.addprevious(c)
        else:
            strip(c)
        if isinstance(value, bool):
            c.set("t", "b")
            etree.SubElement(c, f"{m}v").text = "1" if value else "0"
        elif isinstance(value, str):
            c.set("t", "inlineStr")
            t = etree.SubElement(etree.SubElement(c, f"{m}is"), f"{m}t")
            t.set("{http://www.w3.org/XML/1998/namespace}space", "preserve")
            t.text = value
        else:
            etree.SubElement(c, f"{m}v").text = repr(value)
    if extent:
        dimension = root.find(f"{m}dimension")
        rows_, cols_ = [1, 12, *(n for n, _ in extent)], [1, 8, *(k for _, k in extent)]
        dimension.set(
            "ref", f"{chr(64 + min(cols_))}{min(rows_)}:{chr(64 + max(cols_))}{max(rows_)}"
        )


@pytest.mark.parametrize("seed", range(60))
def test_random_patches_match_the_reference_behaviour(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    space = rng.choice(["", "\n    "])
    rows = []
    for number in range(1, 13):
        if rng.random() < 0.2:
            continue
        styled = ' s="3" customFormat="1"' if rng.random() < 0.2 else ""
        cells = []
        for col in "ABCDEFGH":
            if rng.random() < 0.4:
                continue
            attrs = f' r="{col}{number}"' + rng.choice(["", ' s="1"', ' s="1" cm="1"', ' ph="1"'])
            inner = rng.choice(
                [
                    "<{p}v>1</{p}v>",
                    "<{p}f>A1+1</{p}f><{p}v>2</{p}v>",
                    "<{p}is><{p}t>t&amp;</{p}t></{p}is>",
                    "",
                ]
            )
            if "is>" in inner:
                attrs += ' t="inlineStr"'
            element = f"<{{p}}c{attrs}>{inner}</{{p}}c>" if inner else f"<{{p}}c{attrs}/>"
            cells.append(element + rng.choice(["", space]))
            if rng.random() < 0.15:
                cells.append("<!-- note -->")
        if rng.random() < 0.2:
            cells.append('<{p}extLst><{p}ext uri="x"/></{p}extLst>')
        rows.append(f'<{{p}}row r="{number}"{styled}>{space}{"".join(cells)}</{{p}}row>{space}')
    sheet = prefixed_sheet(rng.choice(["", "x"]), "".join(rows))
    values = [None, 0.1 + 0.2, -2.5e-300, 7, 2**53, True, False, "", "  a  ", "<&>\r\n\t\"'", "é😀"]
    writes = {}
    for _ in range(rng.randint(1, 30)):
        number, col = rng.randint(1, 14), rng.randint(1, 8)
        writes[(number, col)] = rng.choice(values)
    clear = [
        rng.choice(
            [(1, 1, 3, 8), (2, 2, 12, 5), (1, 4, 1048576, 5), (5, 1, 6, 16384), (7, 3, 7, 3)]
        )
        for _ in range(rng.randint(0, 2))
    ]
    src = excel_like(tmp_path / "src.xlsx")
    rewrite_sheet(src, sheet)
    dst = tmp_path / "dst.xlsx"
    patch_workbook(
        src,
        dst,
        {"Saisie": {f"{chr(64 + col)}{number}": v for (number, col), v in writes.items()}},
        clear={
            "Saisie": [f"{chr(64 + a[1])}{a[0]}:{chr(64 + min(a[3], 26))}{a[2]}" for a in clear]
        },
    )
    expected = etree.fromstring(sheet.encode())
    reference_patch(expected, writes, [(t, le, b, min(r, 26)) for t, le, b, r in clear])
    actual = sheet_xml(dst, "xl/worksheets/sheet1.xml")
    # (serialized and parsed again: an empty text written through the API reads back as none)
    assert etree.tostring(actual) == etree.tostring(etree.fromstring(etree.tostring(expected)))


# --------------------------------------------------------------------------- performance


def test_patching_5000_rows(tmp_path: Path) -> None:
    """A large sheet patches correctly (its speed is measured by bench/process.py, not here:
    the suite holds no timed assertion)."""
    cols = "ABCDEFGHIJKLMN"
    rows = "".join(
        f'<row r="{r}" spans="1:14">'
        + "".join(f'<c r="{c}{r}" s="1"><v>{r}</v></c>' for c in cols)
        + "</row>"
        for r in range(1, 5001)
    )
    src = excel_like(tmp_path / "src.xlsx")
    rewrite_sheet(
        src,
        DECL + f'<worksheet xmlns="{MAIN}"><dimension ref="A1:N5000"/>'
        f"<sheetData>{rows}</sheetData></worksheet>",
    )
    writes = {
        f"{c}{r}": (f"texte {r}" if c == "N" else r * 0.5) for r in range(1, 5001) for c in "BDFHJN"
    }
    patch_workbook(src, tmp_path / "dst.xlsx", {"Saisie": writes})
    assert calamine_rows(tmp_path / "dst.xlsx", "Saisie")[4999][13] == "texte 5000"


def test_writing_computed_columns_twice(tmp_path: Path) -> None:
    """The product's shape: 5 input columns per row, 8 computed columns cleared then written
    (new cells, styled like their row, the first time; the same cells, existing, the next)."""
    rows = "".join(
        f'<row r="{r}" s="1" customFormat="1">'
        + "".join(f'<c r="{c}{r}"><v>{r}</v></c>' for c in "ABCDE")
        + "</row>"
        for r in range(5, 5005)
    )
    src = excel_like(tmp_path / "src.xlsx")
    rewrite_sheet(src, prefixed_sheet("", rows))
    writes = {
        f"{c}{r}": (f"texte {r}" if c in "HLMN" else r * 0.25)
        for r in range(5, 5005)
        for c in "GHIJKLMN"
    }
    clear = {"Saisie": ["G5:N5004"]}
    first, second = tmp_path / "first.xlsx", tmp_path / "second.xlsx"
    patch_workbook(src, first, {"Saisie": writes}, clear)
    patch_workbook(first, second, {"Saisie": writes}, clear)
    assert members(first)[4] == members(second)[4]  # the same sheet both times
    last = calamine_rows(second, "Saisie")[-1]  # row 5004
    assert last[4:8] == [5004, "", 5004 * 0.25, "texte 5004"]


# --------------------------------------------------------------------------- LibreOffice


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")
def test_libreoffice_opens_the_patched_workbook(tmp_path: Path) -> None:
    src = excel_like(tmp_path / "src.xlsx")
    patched = tmp_path / "patched.xlsx"
    values = {"C2": 5.25, "D4": "nouveau", "A20": True, "B3": "a_x0041_b"}
    patch_workbook(src, patched, {"Saisie": values})
    out = tmp_path / "out"
    result = subprocess.run(
        [
            "soffice",
            "--headless",
            "--norestore",
            f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}",
            "--convert-to",
            "xlsx",
            "--outdir",
            str(out),
            str(patched),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = calamine_rows(out / "patched.xlsx", "Saisie")
    assert rows[1][2] == 5.25 and rows[3][3] == "nouveau" and rows[19][0] is True
    assert rows[2][1] == "a_x0041_b"
    assert rows[0][:3] == ["Qté", "Prix", "Total"] and rows[3][2] == 30  # cached value kept


# --------------------------------------------------------------------------- dry run


_SHEETS = {
    "ordinary": '<row r="1"><c r="A1"><v>1</v></c></row><row r="2"><c r="B2"><v>2</v></c></row>',
    "rows_out_of_order": '<row r="2"><c r="A2"><v>1</v></c></row><row r="1"/>',
    "duplicate_row": '<row r="1"/><row r="1"/>',
    "cells_out_of_order": '<row r="1"><c r="B1"><v>1</v></c><c r="A1"><v>2</v></c></row>',
    "bad_reference": '<row r="1"><c r="1A"><v>1</v></c></row>',
    "bad_row_number": '<row r="x"/>',
    "deep": '<row r="1"><c r="A1" t="inlineStr"><is>' + "<r>" * 300 + "<t>x</t>"
            + "</r>" * 300 + "</is></c></row>",
    "shared_unmovable": '<row r="1"><c r="A1"><f t="shared" ref="A1:B1" si="0">XFD1*2</f>'
                        '<v>0</v></c><c r="B1"><f t="shared" si="0"/><v>0</v></c></row>',
    "array": '<row r="1"><c r="A1"><f t="array" ref="A1:A2">1</f><v>1</v></c></row>'
             '<row r="2"><c r="A2"><v>1</v></c></row>',
    "formula_far_row": '<row r="1"><c r="A1"><v>1</v></c></row>'
                       '<row r="9"><c r="C9" t="x"><f>1+1</f><v>2</v></c></row>',
}


@pytest.mark.parametrize("sheet", list(_SHEETS))
@pytest.mark.parametrize("writes", [{"A1": 5}, {"B2": "x", "A1": None}, {"C9": 1}])
def test_check_patch_refuses_what_patch_workbook_refuses(tmp_path: Path, sheet: str,
                                                         writes: dict) -> None:
    """The validator's dry run (``check_patch``) and the real patch agree on every sheet."""
    from carbonclap_xl.xlsx.patch import check_patch

    src = excel_like(tmp_path / "src.xlsx")
    rewrite_sheet(src, f'<worksheet xmlns="{MAIN}"><sheetData>{_SHEETS[sheet]}</sheetData>'
                       "</worksheet>")
    outcomes = []
    for run in (lambda: check_patch(src, {"Saisie": writes}, {"Saisie": ["A1:C9"]}),
                lambda: patch_workbook(src, tmp_path / "dst.xlsx", {"Saisie": writes},
                                       {"Saisie": ["A1:C9"]})):
        try:
            run()
            outcomes.append(None)
        except WorkbookPatchError as exc:
            outcomes.append(type(exc).__name__ + str(exc))
    assert outcomes[0] == outcomes[1]
    if sheet in ("rows_out_of_order", "duplicate_row", "deep", "bad_row_number"):
        assert outcomes[0] is not None
