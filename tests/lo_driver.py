"""Drive the installed Carbon'Clap extension in a headless LibreOffice, as a user would.

    python3 lo_driver.py SPEC.json      # a Python with `uno` (Debian: /usr/bin/python3)

Run by tests/test_libreoffice_extension.py, which prepares the profile (installed with
`carbonclap-xl libreoffice install`), the workbooks and the configuration, then compares
what this script saved with what `carbonclap-xl process` and `validate` write. This script
only acts and records: dispatches, snapshots, undo, saved copies, messages. It writes its
results (JSON) to SPEC["out"].

SPEC keys: office_dir (carbonclap_xl/libreoffice/office), profile, env (extra environment
of soffice), config (the configuration file the extension reads), workbook, saves
{recalculer, verifier} (paths of the copies to save), stale {sheet, cell, value},
facteurs {sheet, cell, query, choice}, broken, huge (workbooks for the error cases),
repeat (round trips to time).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import traceback
from pathlib import Path

SPEC = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
sys.path.insert(0, SPEC["office_dir"])

import uno  # noqa: E402
from session import Office, pv, soffice_env  # noqa: E402

PROTOCOL = "org.carbonclap.xl:"
COMMANDS = ("Recalculer", "Verifier", "Rapport", "Facteurs")
RESULTS: dict = {"timings": {}, "errors": {}}
CALC_XLSX = "Calc MS Excel 2007 XML"


# ------------------------------------------------------------------------------ snapshots


def used_end(sheet):
    cur = sheet.createCursor()
    cur.gotoEndOfUsedArea(False)
    ra = cur.getRangeAddress()
    return ra.EndRow, ra.EndColumn


def snapshot(doc, max_rows: int = 5000) -> dict:
    """Input text and values of every sheet's used area (its first ``max_rows`` rows)."""
    snap = {}
    for sheet in doc.getSheets():
        er, ec = used_end(sheet)
        rng = sheet.getCellRangeByPosition(0, 0, ec, min(er, max_rows - 1))
        snap[sheet.getName()] = {"formula": [list(r) for r in rng.getFormulaArray()],
                                 "data": [list(r) for r in rng.getDataArray()],
                                 "protected": bool(sheet.isProtected())}
    return snap


def _cell(grid, r, c):
    return grid[r][c] if r < len(grid) and c < len(grid[r]) else ""


def a1(r0: int, c0: int) -> str:
    s, n = "", c0 + 1
    while n:
        n, rest = divmod(n - 1, 26)
        s = chr(65 + rest) + s
    return f"{s}{r0 + 1}"


def changed(a: dict, b: dict) -> list[str]:
    """Cells whose input text or value differs ("Sheet!A1"), and protection changes."""
    out = []
    for name in sorted(set(a) | set(b)):
        sa, sb = a.get(name), b.get(name)
        if sa is None or sb is None:
            out.append(f"{name}: feuille ajoutée ou supprimée")
            continue
        if sa["protected"] != sb["protected"]:
            out.append(f"{name}: protection {sa['protected']} -> {sb['protected']}")
        rows = max(len(sa["formula"]), len(sb["formula"]))
        cols = max([len(r) for r in sa["formula"] + sb["formula"]] or [0])
        for r in range(rows):
            for c in range(cols):
                fa, fb = _cell(sa["formula"], r, c), _cell(sb["formula"], r, c)
                va, vb = _cell(sa["data"], r, c), _cell(sb["data"], r, c)
                if fa != fb or (not str(fa).startswith("=") and va != vb):
                    out.append(f"{name}!{a1(r, c)}")
    return out


# ------------------------------------------------------------------------------ actions


def execute(office, frame, command: str, args: dict | None = None, timeout: float = 120):
    """DispatchHelper.executeDispatch: (seconds, the handler's summary)."""
    helper = office.create("com.sun.star.frame.DispatchHelper")
    props = tuple(pv(k, v) for k, v in (args or {}).items())
    t0 = time.perf_counter()
    with office.guard(timeout, "dispatch " + command):
        res = helper.executeDispatch(frame, PROTOCOL + command, "", 0, props)
    dt = time.perf_counter() - t0
    res = getattr(res, "Result", res)
    return dt, (json.loads(res) if isinstance(res, str) else {"raw": repr(res)})


def parse_url(office, text: str):
    url = uno.createUnoStruct("com.sun.star.util.URL")
    url.Complete = text
    transformer = office.create("com.sun.star.util.URLTransformer")
    _ok, url = transformer.parseStrict(url)
    return url


def save_copy(office, doc, path: str) -> None:
    with office.guard(120, "storeToURL"):
        doc.storeToURL(Path(path).resolve().as_uri(),
                       (pv("FilterName", CALC_XLSX), pv("Overwrite", True)))


def registration(office) -> dict:
    """The menu, toolbar, images and handler as LibreOffice registered them."""
    provider = office.create("com.sun.star.configuration.ConfigurationProvider")

    def node(path):
        return provider.createInstanceWithArguments(
            "com.sun.star.configuration.ConfigurationAccess", (pv("nodepath", path),))

    addons = node("/org.openoffice.Office.Addons/AddonUI")
    menu = addons.getByName("OfficeMenuBar").getByName("org.carbonclap.xl.menubar")
    items = menu.getByName("Submenu")
    toolbar = addons.getByName("OfficeToolBar").getByName("org.carbonclap.xl.toolbar")
    images = addons.getByName("Images")
    handler = node("/org.openoffice.Office.ProtocolHandler/HandlerSet").getByName(
        "org.carbonclap.xl.ProtocolHandler")
    return {
        "menu_title": menu.Title,
        "menu": sorted([items.getByName(n).URL, items.getByName(n).Title]
                       for n in items.getElementNames()),
        "toolbar": sorted(toolbar.getByName(n).URL for n in toolbar.getElementNames()),
        "images": sorted(images.getByName(n).URL for n in images.getElementNames()),
        "protocols": list(handler.Protocols),
    }


class Session:
    def __init__(self, office):
        self.office = office

    def load(self, path):
        doc = self.office.load(Path(path))
        return doc, doc.getCurrentController().getFrame()

    def run_error(self, name, path, command="Recalculer", config=None):
        """An error case: the summary, and whether the document or its undo list changed."""
        config_path = Path(SPEC["config"])
        saved = config_path.read_text(encoding="utf-8")
        try:
            if config is not None:
                config_path.write_text(json.dumps(config), encoding="utf-8")
            doc, frame = self.load(path)
            try:
                undo = doc.getUndoManager()
                with self.office.guard(60, "snapshot"):
                    before, titles = snapshot(doc), list(undo.getAllUndoActionTitles())
                dt, res = execute(self.office, frame, command)
                with self.office.guard(60, "snapshot"):
                    after, titles_after = snapshot(doc), list(undo.getAllUndoActionTitles())
                RESULTS["errors"][name] = {"seconds": round(dt, 3), "summary": res,
                                           "changed": changed(before, after)[:20],
                                           "undo_added": titles_after != titles,
                                           "modified": bool(doc.isModified())}
            finally:
                with self.office.guard(30, "close"):
                    doc.close(True)
        finally:
            config_path.write_text(saved, encoding="utf-8")


def formulas_round_trip(office, doc, frame) -> dict:
    """Apply a plan of formulas; read each back in Excel syntax (as the extension reads
    formulas) with LibreOffice's value; one Undo restores the document."""
    config_path = Path(SPEC["config"])
    saved = config_path.read_text(encoding="utf-8")
    config_path.write_text(json.dumps({"command": SPEC["formula_engine"]}), encoding="utf-8")
    try:
        undo = doc.getUndoManager()
        with office.guard(60, "snapshot"):
            before = snapshot(doc)
        dt, res = execute(office, frame, "Recalculer")
        C = uno.getConstantByName
        mapper = doc.createInstance("com.sun.star.sheet.FormulaOpCodeMapper")
        parser = doc.createInstance("com.sun.star.sheet.FormulaParser")
        parser.OpCodeMap = mapper.getAvailableMappings(
            C("com.sun.star.sheet.FormulaLanguage.OOXML"),
            C("com.sun.star.sheet.FormulaMapGroup.ALL_EXCEPT_SPECIAL"))
        parser.FormulaConvention = C("com.sun.star.sheet.AddressConvention.XL_OOX")
        cells = {}
        with office.guard(60, "read formulas"):
            for ref in SPEC["formula_cells"]:
                sheet_name, cell_ref = ref.split("!")
                cell = doc.getSheets().getByName(sheet_name).getCellRangeByName(cell_ref)
                text = (parser.printFormula(cell.getTokens(), cell.getCellAddress())
                        if cell.getType().value == "FORMULA" else None)
                cells[ref] = {"formula": text, "value": cell.getValue(),
                              "string": cell.getString(), "error": cell.getError()}
            undo.undo()
            after_undo = changed(before, snapshot(doc))
        return {"summary": res, "seconds": round(dt, 3), "cells": cells,
                "after_undo": after_undo}
    finally:
        config_path.write_text(saved, encoding="utf-8")


GRAMMAR_CORPUS = [
    "2*(400+100)", "SUM(I5:I8)", 'IF(A5<>"",1,0)', 'SUMIFS(Régie!I5:I20,Régie!B5:B20,">0")',
    "'Lisez-moi'!A1+'Mon onglet'!$B$2", "IF(TRUE,FALSE,1)", "SUM(A:A)+SUM(2:2)",
    "Feuille2!A1:B2", "SUM(Feuille1:Feuille2!A1)", "A1:B2 B1:C3", "SUM((A1,B2))", "{1,2;3,4}",
    "#N/A", 'IFERROR(1/0,"x;y")', "ROUND(2.5,0)%", "CEILING(A1,2)", 'CONCATENATE("a","b")&"c"',
    "-A1^2", "1E+20*0.5", "'2019'!A1+S1!A1", 'DDE("soffice","c:\\x.ods","a1")',
    "Feuille2!$A$1:$B$3", "SUM( A1 , B2 )", "ma_plage*2", 'COUNTIF(Régie!A5:A504,"<>")',
    "LOG10(100)+ATAN2(1,1)", "A1=B1", "TODAY()", "Régie!C:C", "'Mon onglet'!3:3",
    'IF(Régie!B5="","",Régie!B5*Régie!G5)', "SUMPRODUCT(Régie!B5:B9,Régie!G5:G9)/1000",
]


def grammar_check(office) -> dict:
    """The extension reads formulas in bulk (Calc API grammar) and converts them itself:
    on a corpus, its text must be LibreOffice's own OOXML printing, or None."""
    sys.path.insert(0, SPEC["extension_dir"])
    import carbonclap_handler  # standard library + uno: importable here

    doc = office.desktop.loadComponentFromURL("private:factory/scalc", "_blank", 0,
                                              (pv("Hidden", True),))
    try:
        sheets = doc.getSheets()
        sheets.getByIndex(0).setName("Feuille1")
        for name in ("Régie", "Lisez-moi", "Mon onglet", "Feuille2", "2019", "S1"):
            sheets.insertNewByName(name, sheets.getCount())
        doc.NamedRanges.addNewByName("ma_plage", "$Feuille1.$A$1",
                                     uno.createUnoStruct("com.sun.star.table.CellAddress"), 0)
        parser = carbonclap_handler.ooxml_parser(doc)
        sheet = sheets.getByIndex(0)
        fast, slow, wrong = 0, 0, []
        for i, formula in enumerate(GRAMMAR_CORPUS):
            cell = sheet.getCellByPosition(5, 10 + i)
            cell.setTokens(parser.parseFormula(formula, cell.getCellAddress()))
            printed = parser.printFormula(cell.getTokens(), cell.getCellAddress())
            converted = carbonclap_handler.calc_to_excel(cell.getFormula())
            if converted is None:
                slow += 1
            elif converted == printed:
                fast += 1
            else:
                wrong.append([formula, cell.getFormula(), printed, converted])
        return {"fast": fast, "slow": slow, "wrong": wrong}
    finally:
        doc.close(True)


def main() -> int:
    env = soffice_env(**SPEC.get("env", {}))
    office = Office(Path(SPEC["profile"]), env=env, log=Path(SPEC["out"]).with_suffix(".log"))
    try:
        RESULTS["timings"]["soffice_start"] = round(office.start(), 3)
        RESULTS["registration"] = registration(office)
        RESULTS["grammar"] = grammar_check(office)
        s = Session(office)
        t0 = time.perf_counter()
        doc, frame = s.load(SPEC["workbook"])
        RESULTS["timings"]["load"] = round(time.perf_counter() - t0, 3)
        reached = {}
        for command in COMMANDS:
            with office.guard(30, "queryDispatch"):
                d = frame.queryDispatch(parse_url(office, PROTOCOL + command), "_self", 0)
            reached[command] = d.getImplementationName() if d is not None else None
        RESULTS["reached"] = reached
        undo = doc.getUndoManager()
        uid = doc.RuntimeUID

        # Recalculer, through DispatchHelper
        with office.guard(60, "snapshot"):
            before = snapshot(doc)
            titles0 = list(undo.getAllUndoActionTitles())
        dt, res = execute(office, frame, "Recalculer")
        RESULTS["timings"]["recalculer_first"] = round(dt, 3)
        with office.guard(60, "snapshot"):
            after = snapshot(doc)
            titles1 = list(undo.getAllUndoActionTitles())
        RESULTS["recalculer"] = {"summary": res, "changed": changed(before, after),
                                 "undo_titles": titles1[:len(titles1) - len(titles0)],
                                 "same_document": doc.RuntimeUID == uid
                                 and frame.getController().getModel().RuntimeUID == uid,
                                 "protected_after": {n: v["protected"]
                                                     for n, v in after.items()}}
        save_copy(office, doc, SPEC["saves"]["recalculer"])

        # one Undo restores everything; Redo re-applies
        with office.guard(60, "undo"):
            undo.undo()
            undone = snapshot(doc)
            undo.redo()
            redone = snapshot(doc)
        RESULTS["undo"] = {"after_undo": changed(before, undone),
                           "after_redo": changed(after, redone)}

        # the menu-click path: frame.queryDispatch(url).dispatch(url, ())
        url = parse_url(office, PROTOCOL + "Recalculer")
        t0 = time.perf_counter()
        with office.guard(120, "plain dispatch"):
            frame.queryDispatch(url, "_self", 0).dispatch(url, ())
        RESULTS["timings"]["recalculer_menu_path"] = round(time.perf_counter() - t0, 3)
        with office.guard(60, "snapshot"):
            again = snapshot(doc)
            titles2 = list(undo.getAllUndoActionTitles())
        RESULTS["menu_path"] = {"changed": changed(after, again),
                                "undo_added": len(titles2) - len(titles1),
                                "undo_title": titles2[0] if titles2 else None}

        # round trips
        times, inner = [], None
        for _ in range(int(SPEC.get("repeat", 5))):
            dt, res = execute(office, frame, "Recalculer")
            times.append(dt)
            inner = res.get("timings")
        RESULTS["timings"]["recalculer_median"] = round(statistics.median(times), 3)
        RESULTS["timings"]["recalculer_inner"] = inner

        # Vérifier after a computed cell was edited by hand (a stale cell)
        stale = SPEC["stale"]
        with office.guard(30, "edit"):
            sheet = doc.getSheets().getByName(stale["sheet"])
            was = sheet.isProtected()
            if was:
                sheet.unprotect("")
            sheet.getCellRangeByName(stale["cell"]).setValue(stale["value"])
            if was:
                sheet.protect("")
            before_v = snapshot(doc)
            titles_v = list(undo.getAllUndoActionTitles())
        dt, res = execute(office, frame, "Verifier")
        with office.guard(60, "snapshot"):
            after_v = snapshot(doc)
            titles_v2 = list(undo.getAllUndoActionTitles())
        RESULTS["verifier"] = {"summary": res, "seconds": round(dt, 3),
                               "changed": changed(before_v, after_v),
                               "undo_titles": titles_v2[:len(titles_v2) - len(titles_v)]}
        save_copy(office, doc, SPEC["saves"]["verifier"])

        # Rapport (the document has a path: beside it)
        dt, res = execute(office, frame, "Rapport")
        RESULTS["rapport"] = {"summary": res, "seconds": round(dt, 3)}

        # Facteurs, driven by dispatch arguments (no modal dialog under --headless)
        fac = SPEC["facteurs"]
        with office.guard(30, "select"):
            target = doc.getSheets().getByName(fac["sheet"]).getCellRangeByName(fac["cell"])
            doc.getCurrentController().select(target)
            titles_f = list(undo.getAllUndoActionTitles())
        dt, res = execute(office, frame, "Facteurs",
                          {"Query": fac["query"], "Choice": fac.get("choice", 0)})
        with office.guard(30, "read"):
            titles_f2 = list(undo.getAllUndoActionTitles())
            RESULTS["facteurs"] = {"summary": res, "seconds": round(dt, 3),
                                   "cell_text": target.getString(),
                                   "undo_titles": titles_f2[:len(titles_f2) - len(titles_f)]}
        # Facteurs without arguments under --headless: no dialog, a French message
        dt, res = execute(office, frame, "Facteurs")
        RESULTS["facteurs_headless"] = res

        # live formulas in a plan (Excel syntax), from an engine that answers only those
        if SPEC.get("formula_engine"):
            RESULTS["formulas"] = formulas_round_trip(office, doc, frame)
        with office.guard(30, "close"):
            doc.close(True)

        # error cases: each must end with a French message and leave the document alone
        s.run_error("no_engine", SPEC["workbook"],
                    config={"command": ["/nonexistent/bin/carbonclap-xl"]})
        s.run_error("engine_crash", SPEC["workbook"], config={"command": [
            sys.executable, "-c", "import sys; sys.stderr.write('Traceback (most recent call "
            "last):\\nValueError: boom\\n'); sys.exit(1)"]})
        s.run_error("broken_workbook", SPEC["broken"])
        s.run_error("huge_sheet", SPEC["huge"])
    except Exception:
        RESULTS["exception"] = traceback.format_exc()
    finally:
        pid = office.proc.pid if office.proc else None
        office.stop()
        RESULTS["soffice_pid"] = pid
    Path(SPEC["out"]).write_text(json.dumps(RESULTS, ensure_ascii=False, indent=1),
                                 encoding="utf-8")
    return 1 if "exception" in RESULTS else 0


if __name__ == "__main__":
    sys.exit(main())
