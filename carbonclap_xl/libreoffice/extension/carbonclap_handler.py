"""Carbon'Clap for LibreOffice Calc: a UNO protocol handler for org.carbonclap.xl:<Command>.

Standard library + uno only (LibreOffice's bundled Python on Windows/macOS has nothing else).
Keep this file Python 3.8 compatible (LibreOffice 7.x bundles 3.8 on Windows). It ships as
package data of carbonclap_xl and goes into CarbonClap.oxt as is (``carbonclap-xl libreoffice
build``); the package never imports it.

Flow of Recalculer, Verifier and Rapport:
  1. read every sheet's used area with getDataArray, with its formulas (Excel syntax), date
     cells, hidden rows and merged areas: the workbook port's source document (JSON exchange
     version 1, docs/architecture.md), plus the request (command, path, active cell),
  2. send it as JSON on the stdin of the user's own `carbonclap-xl libreoffice exchange`
     (found through the configuration file written by `carbonclap-xl libreoffice install`,
     then PATH),
  3. read back the JSON write plan and apply it in place (no reload), as ONE undo step,
     unprotecting / re-protecting (password-less) protected sheets around the writes; the
     whole plan is checked before the first write, and a failed write is rolled back.
Facteurs opens a search dialog (the engine searches the catalogue) and inserts the chosen
activity's label in the current cell.
Errors are French message boxes (logged instead when soffice runs headless), never a traceback.
"""

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import traceback

import uno
import unohelper
from com.sun.star.awt import XActionListener
from com.sun.star.frame import XDispatchProvider, XNotifyingDispatch
from com.sun.star.lang import XInitialization, XServiceInfo

IMPLEMENTATION_NAME = "org.carbonclap.xl.ProtocolHandler"
SERVICE_NAMES = ("com.sun.star.frame.ProtocolHandler",)
PROTOCOL = "org.carbonclap.xl:"
COMMANDS = {
    "Recalculer": "Recalculer",
    "Verifier": "Vérifier",
    "Rapport": "Rapport",
    "Facteurs": "Facteurs",
}
EXCHANGE_VERSION = 1
DEFAULT_TIMEOUT = 300.0
DEFAULT_MAX_CELLS = 5000000  # cells read from the whole document (used areas)
MAX_OUTPUT = 256 * 1024 * 1024
TITLE = "Carbon'Clap"

# com.sun.star.sheet.CellFlags
CELL_VALUE, CELL_DATETIME, CELL_STRING, CELL_FORMULA = 1, 2, 4, 16
# VALUE | DATETIME | STRING | FORMULA: clearContents keeps notes and formats
CLEAR_CONTENTS = CELL_VALUE | CELL_DATETIME | CELL_STRING | CELL_FORMULA
MAX_ROWS, MAX_COLS = 1048576, 16384

_ENV_DROP = ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE",
             "__PYVENV_LAUNCHER__", "PYTHONUSERBASE", "CONDA_PREFIX", "CONDA_DEFAULT_ENV",
             "PYENV_VERSION")


class UserError(Exception):
    """An error whose (French) message is meant for the user, shown as is."""


# --------------------------------------------------------------------------------------------
# configuration, logging, external command
# --------------------------------------------------------------------------------------------

def _config_dir():
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or os.path.expanduser("~")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Application Support")
    else:
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return os.path.join(base, "carbonclap-xl")


def config_path():
    return os.environ.get("CARBONCLAP_XL_CONFIG") or os.path.join(_config_dir(),
                                                                  "libreoffice.json")


def load_config():
    """{"command": [argv...], "timeout": s, "dialogs": "auto|always|never",
    "block_writes": "safe|always|cells", "max_cells": n}; every key optional. Written by
    `carbonclap-xl libreoffice install` (it records which carbonclap-xl / Python to call)."""
    path = config_path()
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UserError("Le fichier de configuration de Carbon'Clap est illisible :\n"
                        f"{path}\n({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"Le fichier de configuration de Carbon'Clap est invalide :\n{path}")
    return data


def log_path():
    if os.environ.get("CARBONCLAP_XL_LOG"):
        return os.environ["CARBONCLAP_XL_LOG"]
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or _config_dir()
        return os.path.join(base, "carbonclap-xl", "libreoffice.log")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Logs/carbonclap-xl/libreoffice.log")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "carbonclap-xl", "libreoffice.log")


_log_lock = threading.Lock()


def log(msg):
    try:
        path = log_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path) and os.path.getsize(path) > 5 * 1024 * 1024:
            os.replace(path, path + ".1")
        with _log_lock, open(path, "a", encoding="utf-8") as fh:
            fh.write("{} {}\n".format(time.strftime("%Y-%m-%d %H:%M:%S"), msg))
    except Exception:
        pass


def _is_venv_dir(d):
    try:
        return os.path.exists(os.path.join(os.path.dirname(d.rstrip("/\\")), "pyvenv.cfg"))
    except Exception:
        return False


def child_env():
    """The environment of the external command: LibreOffice's own Python settings and any
    activated venv removed, so the user's carbonclap-xl runs with its own interpreter."""
    env = dict(os.environ)
    for key in _ENV_DROP:
        env.pop(key, None)
    for key in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "DYLD_FALLBACK_LIBRARY_PATH"):
        if key in env:
            kept = [p for p in env[key].split(os.pathsep)
                    if p and "libreoffice" not in p.lower()]
            if kept:
                env[key] = os.pathsep.join(kept)
            else:
                del env[key]
    parts = [p for p in env.get("PATH", "").split(os.pathsep) if p and not _is_venv_dir(p)]
    env["PATH"] = os.pathsep.join(parts)
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUTF8"] = "1"
    return env


def _search_path(env):
    """PATH plus the usual user install dirs (a macOS GUI app does not see the shell PATH)."""
    extra = [os.path.expanduser("~/.local/bin"), "/opt/homebrew/bin", "/usr/local/bin"]
    if sys.platform == "win32":
        appdata = os.environ.get("APPDATA", "")
        local = os.environ.get("LOCALAPPDATA", "")
        extra = [os.path.join(os.path.expanduser("~"), ".local", "bin"),
                 os.path.join(appdata, "Python", "Scripts"),
                 os.path.join(local, "Programs", "Python", "Scripts")]
    return os.pathsep.join([env.get("PATH", ""), *extra])


def resolve_command(config, env):
    cmd = config.get("command")
    if cmd:
        if isinstance(cmd, str):
            cmd = [cmd]
        if not isinstance(cmd, list) or not all(isinstance(a, str) for a in cmd):
            raise UserError("La commande configurée pour Carbon'Clap est invalide :\n"
                            + config_path())
        exe = cmd[0]
        found = exe if os.path.isabs(exe) and os.path.isfile(exe) else shutil.which(
            exe, path=_search_path(env))
        if not found:
            raise UserError("Carbon'Clap introuvable : la commande configurée n'existe pas\n"
                            f"« {exe} »\nRelancez « carbonclap-xl libreoffice install ».")
        return [found, *list(cmd[1:])]
    found = shutil.which("carbonclap-xl", path=_search_path(env))
    if not found:
        raise UserError("Carbon'Clap introuvable : la commande « carbonclap-xl » n'est pas "
                        "installée ou pas dans le PATH.\nInstallez carbonclap-xl puis lancez "
                        "« carbonclap-xl libreoffice install ».")
    return [found, "libreoffice", "exchange"]


def run_engine(argv, payload, env, timeout, cwd):
    """Run the external command, JSON on stdin, JSON write plan on stdout."""
    kwargs = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  env=env, cwd=cwd)
    if sys.platform == "win32":
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0x08000000)
    else:
        kwargs["start_new_session"] = True  # own process group: killable as a whole
    log(f"run {argv!r} (timeout {timeout}s, {len(payload)} bytes in)")
    try:
        proc = subprocess.Popen(argv, **kwargs)
    except OSError as exc:
        raise UserError(f"Impossible de lancer Carbon'Clap :\n{argv[0]}\n({exc})") from None
    try:
        out, err = proc.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        out, err = proc.communicate()
        log("timeout; stderr: {}".format(err.decode("utf-8", "replace")[-4000:]))
        raise UserError(f"Carbon'Clap n'a pas répondu en {timeout:.0f} secondes ; l'opération "
                        "est annulée, le classeur n'a pas été modifié.") from None
    err_text = err.decode("utf-8", "replace")
    if err_text.strip():
        log(f"stderr: {err_text[-8000:]}")
    if proc.returncode != 0:
        answer = _json_or_none(out)
        if isinstance(answer, dict) and answer.get("error"):
            raise UserError(str(answer["error"])[:2000])  # a domain error, said in French
        last = [ln.strip() for ln in err_text.splitlines() if ln.strip()]
        detail = last[-1][:300] if last else "aucun détail"
        raise UserError(f"Carbon'Clap a échoué (code {proc.returncode}) ; le classeur n'a pas "
                        f"été modifié.\n{detail}\nDétails dans le journal : {log_path()}")
    if len(out) > MAX_OUTPUT:
        raise UserError("La réponse de Carbon'Clap est trop volumineuse.")
    answer = _json_or_none(out)
    if answer is None:
        log(f"bad JSON: {out[:2000]!r}")
        raise UserError("La réponse de Carbon'Clap est illisible (JSON invalide) ; le classeur "
                        f"n'a pas été modifié.\nDétails dans le journal : {log_path()}")
    return answer


def _json_or_none(data):
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _kill_tree(proc):
    try:
        if sys.platform == "win32":  # console-script .exe launchers spawn python.exe: /T
            subprocess.run(["taskkill", "/T", "/F", "/PID", str(proc.pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0x08000000),
                           timeout=30)
            proc.kill()
        else:
            import signal
            os.killpg(proc.pid, signal.SIGKILL)
    except Exception:
        with contextlib.suppress(Exception):
            proc.kill()


# --------------------------------------------------------------------------------------------
# reading the document
# --------------------------------------------------------------------------------------------

def col_letters(col0):
    s, n = "", col0 + 1
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def a1(row0, col0):
    return f"{col_letters(col0)}{row0 + 1}"


def range_a1(addr):
    first = a1(addr.StartRow, addr.StartColumn)
    if addr.StartRow == addr.EndRow and addr.StartColumn == addr.EndColumn:
        return first
    return first + ":" + a1(addr.EndRow, addr.EndColumn)


def used_end(sheet):
    cur = sheet.createCursor()
    cur.gotoEndOfUsedArea(False)
    ra = cur.getRangeAddress()
    return ra.EndRow, ra.EndColumn


def ooxml_parser(doc):
    """A FormulaParser speaking Excel's (OOXML) formula syntax: the exchange's formulas are
    Excel syntax, while setFormula/getFormula speak the Calc API grammar (';', $Sheet.A1)."""
    C = uno.getConstantByName
    mapper = doc.createInstance("com.sun.star.sheet.FormulaOpCodeMapper")
    parser = doc.createInstance("com.sun.star.sheet.FormulaParser")
    parser.OpCodeMap = mapper.getAvailableMappings(
        C("com.sun.star.sheet.FormulaLanguage.OOXML"),
        C("com.sun.star.sheet.FormulaMapGroup.ALL_EXCEPT_SPECIAL"))
    parser.FormulaConvention = C("com.sun.star.sheet.AddressConvention.XL_OOX")
    return parser


# A sheet prefix of the Calc API grammar: $Sheet. or $'Sheet name'. before a reference
_CALC_SHEET = re.compile(r"\$?(?:'((?:[^']|'')+)'|([^\W\d]\w*))\."
                         r"(?=\$?[A-Za-z]{1,3}\$?[0-9]|\$?[A-Za-z]{1,3}:|\$?[0-9]+:)")
_CALC_NAME = re.compile(r"[\w.$]+")


def calc_to_excel(formula):
    """A formula as getFormula gives it (Calc API grammar: "=SUM($Régie.B5:B9;2)") in Excel
    syntax without "=" ("SUM(Régie!B5:B9,2)"), the same text LibreOffice's OOXML printer
    gives, about a hundred times faster; None when the formula holds anything where the two
    grammars differ in ways not handled here (inline arrays, errors and external links,
    3D references, dotted function names such as CEILING.XCL, quotes elsewhere): the caller
    then asks LibreOffice's printer."""
    text = formula[1:] if formula.startswith("=") else formula
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':  # a string literal, "" inside it
            j = i + 1
            while True:
                k = text.find('"', j)
                if k < 0:
                    return None
                if text[k + 1:k + 2] == '"':
                    j = k + 2
                    continue
                break
            out.append(text[i:k + 1])
            i = k + 1
        elif ch == ";":
            out.append(",")
            i += 1
        elif ch in "{}#[]'" and not _CALC_SHEET.match(text, i):
            return None
        elif ch == "$" or ch == "'" or ch.isalpha() or ch == "_":
            m = _CALC_SHEET.match(text, i)
            if m:
                if text[i - 1:i] == ":":  # $Sheet1.A1:$Sheet2.A1, a 3D reference
                    return None
                quoted, plain = m.group(1), m.group(2)
                out.append(f"'{quoted}'!" if quoted is not None else f"{plain}!")
                i = m.end()
                continue
            m = _CALC_NAME.match(text, i)
            name = m.group(0)
            if "." in name:  # CEILING.XCL(…), a dotted name: leave it to LibreOffice
                return None
            out.append(name)
            i = m.end()
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _hidden_rows(area, end_row):
    """1-based rows of the used area that are hidden (or filtered out)."""
    visible = set()
    for addr in area.queryVisibleCells().getRangeAddresses():
        visible.update(range(addr.StartRow, addr.EndRow + 1))
    return [r + 1 for r in range(end_row + 1) if r not in visible]


def _merged_areas(sheet, area):
    """Merged areas starting in the used area, as "A5:C5". Cell format ranges split where
    the merge attribute starts, so only their first cells need a look."""
    found = []
    ranges = area.getCellFormatRanges()
    for i in range(ranges.getCount()):
        part = ranges.getByIndex(i)
        if not part.getIsMerged():
            continue
        addr = part.getRangeAddress()
        for r in range(addr.StartRow, addr.EndRow + 1):
            for c in range(addr.StartColumn, addr.EndColumn + 1):
                cursor = sheet.createCursorByRange(sheet.getCellByPosition(c, r))
                cursor.collapseToMergedArea()
                m = cursor.getRangeAddress()
                if (m.StartRow, m.StartColumn) == (r, c) and (m.EndRow, m.EndColumn) != (r, c):
                    found.append(range_a1(m))
    return found


def read_document(doc, max_cells=DEFAULT_MAX_CELLS, timings=None):
    """Every sheet as the exchange's source document: the used area's values from A1
    (numbers as floats, text as str, empty as "", error cells as their displayed text, e.g.
    "#DIV/0!"), formulas in Excel syntax without "=", date cells (their values are serial
    numbers), hidden rows, merged areas and protection. Refuses a document whose used areas
    exceed ``max_cells`` (a stray cell at row 1,048,576 would make LibreOffice build a
    gigantic array) before reading any value."""
    parser = None
    sheets = {}
    total = 0
    spent = {"values": 0.0, "formulas": 0.0, "structure": 0.0}
    for sheet in doc.getSheets():
        name = sheet.getName()
        end_row, end_col = used_end(sheet)
        total += (end_row + 1) * (end_col + 1)
        if total > max_cells:
            raise UserError(
                f"La feuille « {name} » est trop grande pour Carbon'Clap : sa zone utilisée va "
                f"jusqu'à la cellule {a1(end_row, end_col)} ({end_row + 1} lignes × "
                f"{end_col + 1} colonnes). Supprimez les lignes et colonnes vides au-delà de "
                "vos données (une cellule isolée tout en bas suffit à agrandir la zone), puis "
                "recommencez ; le classeur n'a pas été modifié.")
        t0 = time.perf_counter()
        area = sheet.getCellRangeByPosition(0, 0, end_col, end_row)
        data = [list(r) for r in area.getDataArray()]
        for r, row in enumerate(data):
            for c, v in enumerate(row):
                if v is None:  # getDataArray gives None (void) for error results
                    row[c] = sheet.getCellByPosition(c, r).getString()
        t1 = time.perf_counter()
        formulas = {}
        address = uno.createUnoStruct("com.sun.star.table.CellAddress")
        address.Sheet = area.getRangeAddress().Sheet
        for block in sheet.queryContentCells(CELL_FORMULA).getRangeAddresses():
            texts = sheet.getCellRangeByPosition(
                block.StartColumn, block.StartRow, block.EndColumn, block.EndRow
            ).getFormulaArray()  # Calc API grammar, one call per block
            for r in range(block.StartRow, block.EndRow + 1):
                for c in range(block.StartColumn, block.EndColumn + 1):
                    text = calc_to_excel(texts[r - block.StartRow][c - block.StartColumn])
                    if text is None:  # not sure: LibreOffice's own OOXML printer (slower)
                        if parser is None:
                            parser = ooxml_parser(doc)
                        address.Row, address.Column = r, c  # tokens are relative
                        text = parser.printFormula(
                            sheet.getCellByPosition(c, r).getTokens(), address)
                    formulas[a1(r, c)] = text
        t2 = time.perf_counter()
        dates = [range_a1(a) for a in
                 sheet.queryContentCells(CELL_DATETIME).getRangeAddresses()]
        sheets[name] = {"values": data, "formulas": formulas, "dates": dates,
                        "hidden_rows": _hidden_rows(area, end_row),
                        "merged": _merged_areas(sheet, area),
                        "protected": bool(sheet.isProtected())}
        t3 = time.perf_counter()
        spent["values"] += t1 - t0
        spent["formulas"] += t2 - t1
        spent["structure"] += t3 - t2
    if timings is not None:
        timings.update({f"read_{k}": round(v, 4) for k, v in spent.items()})
    return sheets


def doc_path(doc):
    url = doc.getURL()
    if url and url.startswith("file:"):
        try:
            return url, uno.fileUrlToSystemPath(url)
        except Exception:
            return url, None
    return url or None, None


def doc_title(doc):
    try:
        return doc.getTitle()
    except Exception:
        return "classeur"


def active_cell(doc):
    try:
        sel = doc.getCurrentController().getSelection()
        addr = sel.getRangeAddress()
        sheet = doc.getSheets().getByIndex(addr.Sheet).getName()
        return {"sheet": sheet, "cell": a1(addr.StartRow, addr.StartColumn),
                "range": range_a1(addr)}
    except Exception:
        return None


# --------------------------------------------------------------------------------------------
# applying a write plan
# --------------------------------------------------------------------------------------------

def _plan_error(msg):
    return UserError(f"La réponse de Carbon'Clap est invalide ({msg}) ; le classeur n'a pas été "
                     "modifié.")


def validate_plan(plan, doc):
    """Check everything before the first write; returns {sheet: {(r0, c0): item}}, clears."""
    if not isinstance(plan, dict):
        raise _plan_error("pas un objet JSON")
    if plan.get("version") != EXCHANGE_VERSION:
        raise _plan_error(f"version {plan.get('version')!r}, attendue {EXCHANGE_VERSION}")
    sheets = doc.getSheets()
    cells, clears = {}, {}
    raw_cells = plan.get("cells") or {}
    raw_clear = plan.get("clear") or {}
    if not isinstance(raw_cells, dict) or not isinstance(raw_clear, dict):
        raise _plan_error("« cells » et « clear » doivent être des objets")
    for name in list(raw_cells) + list(raw_clear):
        if not sheets.hasByName(name):
            raise UserError(f"La feuille « {name} » est introuvable dans ce classeur ; le classeur "
                            "n'a pas été modifié.")
    for name, ranges in raw_clear.items():
        if not isinstance(ranges, list):
            raise _plan_error(f"clear[{name}]")
        sheet = sheets.getByName(name)
        addrs = []
        for ref in ranges:
            try:
                addrs.append(sheet.getCellRangeByName(ref).getRangeAddress())
            except Exception:
                raise _plan_error(f"plage « {ref} » de la feuille « {name} »") from None
        clears[name] = addrs
    for name, entries in raw_cells.items():
        if not isinstance(entries, list):
            raise _plan_error(f"cells[{name}]")
        target = cells.setdefault(name, {})
        for e in entries:
            if not (isinstance(e, list) and len(e) == 3 and isinstance(e[0], int)
                    and isinstance(e[1], int) and not isinstance(e[0], bool)
                    and 1 <= e[0] <= MAX_ROWS and 1 <= e[1] <= MAX_COLS):
                raise _plan_error(f"cellule {e!r} de la feuille « {name} »")
            v = e[2]
            if isinstance(v, dict):
                f = v.get("formula")
                if not (isinstance(f, str) and f.startswith("=") and len(f) > 1):
                    raise _plan_error(f"formule {v!r}")
                item = ("f", f[1:])
            elif v is None:
                item = ("x", None)
            elif isinstance(v, bool):
                item = ("v", 1.0 if v else 0.0)
            elif isinstance(v, (int, float)):
                if v != v or v in (float("inf"), float("-inf")):
                    raise _plan_error(f"nombre non fini en {a1(e[0] - 1, e[1] - 1)}")
                item = ("v", float(v))
            elif isinstance(v, str):
                item = ("v", v)
            else:
                raise _plan_error(f"valeur {v!r}")
            target[(e[0] - 1, e[1] - 1)] = item
    return cells, clears


def _rectangles(coords):
    """Group cells into rectangles: row runs of consecutive columns, merged downwards while
    the next row has exactly the same run. Returns [(r0, c0, r1, c1)]."""
    runs = {}
    for r, c in sorted(coords):
        lst = runs.setdefault(r, [])
        if lst and lst[-1][1] == c - 1:
            lst[-1][1] = c
        else:
            lst.append([c, c])
    rects, open_ = [], {}  # open_: (c0, c1) -> [first_row, last_row]
    for r in sorted(runs):
        still = {}
        for c0, c1 in runs[r]:
            o = open_.pop((c0, c1), None)
            if o is not None and o[1] == r - 1:
                o[1] = r
            else:
                if o is not None:
                    rects.append((o[0], c0, o[1], c1))
                o = [r, r]
            still[(c0, c1)] = o
        rects.extend((o[0], k[0], o[1], k[1]) for k, o in open_.items())
        open_ = still
    rects.extend((o[0], k[0], o[1], k[1]) for k, o in open_.items())
    return rects


class PlanWriter:
    """Applies a validated plan: contiguous values in blocks (setDataArray), formulas one by
    one (FormulaParser in OOXML grammar + setTokens), everything undoable.

    LibreOffice 7.4 pitfall: the Undo of setDataArray/setFormulaArray restores only the cells
    that held something before; cells that were EMPTY keep the new values after Undo. So with
    block_writes="safe" (default), a rectangle that contains a previously empty cell first
    gets a placeholder array formula (setArrayFormula("=0"): every cell non-empty, formats
    untouched, its own Undo exact), then setDataArray: one Undo restores everything exactly.
    "always" skips the placeholder (fastest, inexact Undo); "cells" writes cell by cell
    (setValue/setString, exact, ~10x slower)."""

    def __init__(self, doc, before, block_writes="safe"):
        self.doc = doc
        self.before = before  # {sheet: data array read before}
        self.block_writes = block_writes
        self.stats = {"blocks": 0, "block_cells": 0, "placeholders": 0, "single_cells": 0,
                      "formulas": 0, "cleared_ranges": 0, "emptied_cells": 0,
                      "formula_parse_s": 0.0, "formula_set_s": 0.0}
        self._parser = None

    def parser(self):
        if self._parser is None:
            self._parser = ooxml_parser(self.doc)
        return self._parser

    def _was_filled(self, name, r, c, cleared):
        if (r, c) in cleared:
            return False
        data = self.before.get(name) or []
        if r >= len(data) or c >= len(data[r]):
            return False
        return data[r][c] != ""

    def apply_sheet(self, sheet, name, items, clear_addrs):
        cleared = set()
        for addr in clear_addrs:
            sheet.getCellRangeByPosition(addr.StartColumn, addr.StartRow, addr.EndColumn,
                                         addr.EndRow).clearContents(CLEAR_CONTENTS)
            self.stats["cleared_ranges"] += 1
            if self.block_writes == "safe":  # cleared cells are empty now
                for r in range(addr.StartRow, min(addr.EndRow, MAX_ROWS) + 1):
                    for c in range(addr.StartColumn, addr.EndColumn + 1):
                        if (r, c) in items:
                            cleared.add((r, c))
        values = {rc: it[1] for rc, it in items.items() if it[0] == "v"}
        singles = []
        blockable = set() if self.block_writes == "cells" else set(values)
        if self.block_writes == "cells":
            singles = list(values)
        for r0, c0, r1, c1 in _rectangles(blockable):
            if r0 == r1 and c0 == c1:
                singles.append((r0, c0))
                continue
            block = tuple(tuple(values[(r, c)] for c in range(c0, c1 + 1))
                          for r in range(r0, r1 + 1))
            rng = sheet.getCellRangeByPosition(c0, r0, c1, r1)
            if self.block_writes == "safe" and not all(
                    self._was_filled(name, r, c, cleared)
                    for r in range(r0, r1 + 1) for c in range(c0, c1 + 1)):
                rng.setArrayFormula("=0")  # placeholder: makes the block's Undo exact
                self.stats["placeholders"] += 1
            rng.setDataArray(block)
            self.stats["blocks"] += 1
            self.stats["block_cells"] += (r1 - r0 + 1) * (c1 - c0 + 1)
        for r, c in sorted(singles):
            cell = sheet.getCellByPosition(c, r)
            v = values[(r, c)]
            if isinstance(v, str):
                cell.setString(v)  # text stays text, even "=..." or "001"
            else:
                cell.setValue(v)
            self.stats["single_cells"] += 1
        for (r, c), it in sorted(items.items()):
            if it[0] == "x":
                sheet.getCellRangeByPosition(c, r, c, r).clearContents(CLEAR_CONTENTS)
                self.stats["emptied_cells"] += 1
            elif it[0] == "f":
                cell = sheet.getCellByPosition(c, r)
                t = time.perf_counter()
                tokens = self.parser().parseFormula(it[1], cell.getCellAddress())
                t2 = time.perf_counter()
                cell.setTokens(tokens)
                self.stats["formula_parse_s"] += t2 - t
                self.stats["formula_set_s"] += time.perf_counter() - t2
                self.stats["formulas"] += 1


# --------------------------------------------------------------------------------------------
# the protocol handler
# --------------------------------------------------------------------------------------------

def is_headless():
    if os.environ.get("SAL_USE_VCLPLUGIN") == "svp":
        return True
    try:
        with open("/proc/self/cmdline", "rb") as fh:
            args = fh.read().split(b"\0")
        return any(a in (b"--headless", b"-headless") for a in args)
    except OSError:
        pass
    if sys.platform == "win32":
        try:
            import ctypes
            get = ctypes.windll.kernel32.GetCommandLineW
            get.restype = ctypes.c_wchar_p
            line = get() or ""
            return "-headless" in line
        except Exception:
            pass
    return False


def _undo_added(undo, titles_before, title):
    """Did our undo context add a step? (An empty context adds none; the list is capped at
    the profile's undo step count, so compare the lists, not only their lengths.)"""
    titles = tuple(undo.getAllUndoActionTitles())
    return bool(titles) and titles[0] == title and titles != titles_before


def _args(args):
    """Dispatch arguments (a sequence of PropertyValue) as a dict."""
    out = {}
    for a in args or ():
        name = getattr(a, "Name", None)
        if name:
            out[name] = a.Value
    return out


class _Action(unohelper.Base, XActionListener):
    """An action listener calling ``callback()``: button pressed, list item double-clicked."""

    def __init__(self, callback):
        self.callback = callback

    def actionPerformed(self, event):
        try:
            self.callback()
        except Exception:
            log(f"dialog action failed:\n{traceback.format_exc()}")

    def disposing(self, event):
        pass


class FactorDialog:
    """Facteurs: a search field, the matching catalogue activities, Insérer / Annuler.

    Each search asks the engine (``{"command": "Facteurs", "query": …}``); the chosen
    activity's French label is what goes into the cell. Built programmatically (no dialog
    file in the extension). ``run()`` shows it; ``run_preset()`` drives the same controls
    without the modal loop (dispatch arguments ``Query`` and ``Choice``: tests, macros)."""

    def __init__(self, handler, config, initial, active):
        self.handler = handler
        self.config = config
        self.initial = initial or ""
        self.active = active
        self.matches = []
        self.dialog = None

    def build(self):
        ctx = self.handler.ctx
        smgr = ctx.getServiceManager()
        model = smgr.createInstanceWithContext("com.sun.star.awt.UnoControlDialogModel", ctx)
        model.Title = "Carbon'Clap : facteurs d'émission"
        model.Width, model.Height = 300, 196

        def add(kind, name, x, y, w, h, **props):
            m = model.createInstance(f"com.sun.star.awt.UnoControl{kind}Model")
            m.PositionX, m.PositionY, m.Width, m.Height = x, y, w, h
            for key, value in props.items():
                setattr(m, key, value)
            model.insertByName(name, m)

        add("FixedText", "prompt", 6, 6, 288, 10,
            Label="Activité à chercher (mots du libellé, ex. « train », « gazole ») :")
        add("Edit", "query", 6, 18, 222, 14, Text=self.initial)
        add("Button", "search", 234, 18, 60, 14, Label="Rechercher", DefaultButton=True)
        add("ListBox", "list", 6, 38, 288, 124, Border=1)
        add("FixedText", "status", 6, 166, 288, 10, Label="")
        add("Button", "ok", 168, 178, 60, 14, Label="Insérer", PushButtonType=1)  # OK
        add("Button", "cancel", 234, 178, 60, 14, Label="Annuler", PushButtonType=2)  # CANCEL
        dialog = smgr.createInstanceWithContext("com.sun.star.awt.UnoControlDialog", ctx)
        dialog.setModel(model)
        toolkit = smgr.createInstanceWithContext("com.sun.star.awt.Toolkit", ctx)
        frame = self.handler.frame
        dialog.createPeer(toolkit, frame.getContainerWindow() if frame is not None else None)
        dialog.getControl("search").addActionListener(_Action(self.search))
        dialog.getControl("list").addActionListener(_Action(self._double_click))
        self.dialog = dialog
        return dialog

    def search(self, query=None):
        """Ask the engine for the activities matching the field's text; fill the list."""
        edit = self.dialog.getControl("query")
        if query is not None:
            edit.setText(query)
        text = edit.getText().strip()
        status = self.dialog.getModel().getByName("status")
        answer = self.handler.call_engine(
            {"version": EXCHANGE_VERSION, "command": "Facteurs", "query": text,
             "active": self.active}, self.config)
        self.matches = [m for m in answer.get("matches") or [] if isinstance(m, dict)
                        and isinstance(m.get("label"), str)]
        items = tuple(str(m.get("display") or m["label"]) for m in self.matches)
        listbox = self.dialog.getControl("list")
        listbox.removeItems(0, listbox.getItemCount())
        if items:
            listbox.addItems(items, 0)
            listbox.selectItemPos(0, True)
        status.Label = str(answer.get("message") or
                           f"{len(items)} activité(s) ; choisissez-en une puis « Insérer ».")
        return self.matches

    def _double_click(self):
        if self.chosen() is not None:
            self.dialog.endDialog(1)

    def chosen(self):
        pos = self.dialog.getControl("list").getSelectedItemPos()
        return self.matches[pos] if 0 <= pos < len(self.matches) else None

    def run(self):
        self.build()
        try:
            if self.initial.strip():
                self.search()
            return self.chosen() if self.dialog.execute() == 1 else None
        finally:
            self.dialog.dispose()

    def run_preset(self, query, choice=0):
        self.build()
        try:
            self.search(query)
            if self.matches and 0 <= choice < len(self.matches):
                self.dialog.getControl("list").selectItemPos(choice, True)
            return self.chosen()
        finally:
            self.dialog.dispose()


class CarbonClapHandler(unohelper.Base, XInitialization, XDispatchProvider,
                        XNotifyingDispatch, XServiceInfo):

    def __init__(self, ctx, *args):
        self.ctx = ctx
        self.frame = None

    # XInitialization: the framework passes the frame
    def initialize(self, args):
        if args:
            self.frame = args[0]

    # XServiceInfo
    def getImplementationName(self):
        return IMPLEMENTATION_NAME

    def supportsService(self, name):
        return name in SERVICE_NAMES

    def getSupportedServiceNames(self):
        return SERVICE_NAMES

    # XDispatchProvider
    def queryDispatch(self, url, target, flags):
        if url.Protocol == PROTOCOL and url.Path in COMMANDS:
            return self
        return None

    def queryDispatches(self, requests):
        return tuple(self.queryDispatch(r.FeatureURL, r.FrameName, r.SearchFlags)
                     for r in requests)

    # XDispatch: what a menu or toolbar click calls
    def dispatch(self, url, args):
        self._run(url.Path, _args(args))

    def addStatusListener(self, listener, url):
        try:  # toolbar/menu items ask for a state: always enabled
            ev = uno.createUnoStruct("com.sun.star.frame.FeatureStateEvent")
            ev.FeatureURL, ev.IsEnabled, ev.Requery, ev.Source = url, True, False, self
            listener.statusChanged(ev)
        except Exception:
            pass

    def removeStatusListener(self, listener, url):
        pass

    # XNotifyingDispatch: what DispatchHelper.executeDispatch calls. The listener MUST be
    # notified on every path: DispatchHelper waits for it without a timeout.
    def dispatchWithNotification(self, url, args, listener):
        summary = {"ok": False, "message": "erreur interne"}
        try:
            summary = self._run(url.Path, _args(args))
        finally:
            if listener is not None:
                ev = uno.createUnoStruct("com.sun.star.frame.DispatchResultEvent")
                ev.Source = self
                ev.State = 1 if summary.get("ok") else 2  # DispatchResultState SUCCESS/FAILURE
                ev.Result = json.dumps(summary, ensure_ascii=False)
                listener.dispatchFinished(ev)

    # -- the work ------------------------------------------------------------------------------
    def _run(self, command, args=None):
        t0 = time.perf_counter()
        summary = {"ok": False, "command": command}
        config = {}
        try:
            config = load_config()
            if command == "Facteurs":
                summary.update(self._facteurs(config, args or {}))
            else:
                summary.update(self._execute(command, config))
            summary["ok"] = True
        except UserError as exc:
            summary["message"] = str(exc)
            self._notify("error", str(exc), config)
        except Exception as exc:  # never a traceback in a dialog; it goes to the log
            log(f"internal error in {command}:\n{traceback.format_exc()}")
            msg = (f"Erreur interne de l'extension Carbon'Clap ({type(exc).__name__}) ; le "
                   f"classeur n'a pas été modifié. Détails dans le journal :\n{log_path()}")
            summary["message"] = msg
            self._notify("error", msg, config)
        summary["timings"] = dict(summary.get("timings") or {},
                                  total=round(time.perf_counter() - t0, 4))
        log(f"{command} -> {json.dumps(summary, ensure_ascii=False)[:2000]}")
        return summary

    def _document(self):
        if self.frame is None:
            raise UserError("Aucun document ouvert.")
        controller = self.frame.getController()
        doc = controller.getModel() if controller is not None else None
        if doc is None or not hasattr(doc, "getSheets"):
            raise UserError("Carbon'Clap fonctionne dans un classeur LibreOffice Calc : "
                            "ouvrez le classeur de la production puis recommencez.")
        return doc

    def call_engine(self, payload, config, cwd=None):
        """The engine's answer to ``payload`` (a dict); raises UserError on any failure,
        including an ``{"error": …}`` answer."""
        env = child_env()
        argv = resolve_command(config, env)
        timeout = float(config.get("timeout", DEFAULT_TIMEOUT))
        if cwd is None or not os.path.isdir(cwd):
            cwd = os.path.expanduser("~")
        answer = run_engine(argv, json.dumps(payload, ensure_ascii=False).encode("utf-8"), env,
                            timeout, cwd if os.path.isdir(cwd) else None)
        if not isinstance(answer, dict):
            raise _plan_error("pas un objet JSON")
        if answer.get("error"):
            raise UserError(str(answer["error"])[:2000])
        return answer

    def _execute(self, command, config):
        timings = {}
        doc = self._document()
        t = time.perf_counter()
        sheets = read_document(doc, int(config.get("max_cells", DEFAULT_MAX_CELLS)), timings)
        url, path = doc_path(doc)
        timings["read"] = round(time.perf_counter() - t, 4)
        payload = {
            "version": EXCHANGE_VERSION,
            "command": command,
            "name": path or doc_title(doc),
            "path": path,
            "url": url,
            "modified": bool(doc.isModified()),
            "active": active_cell(doc),
            "sheets": sheets,
        }
        t = time.perf_counter()
        plan = self.call_engine(payload, config, os.path.dirname(path) if path else None)
        timings["engine"] = round(time.perf_counter() - t, 4)
        t = time.perf_counter()
        cells, clears = validate_plan(plan, doc)
        result = {"timings": timings, "counts": plan.get("counts"),
                  "outputs": plan.get("outputs")}
        if cells or clears:
            before = {name: sheet["values"] for name, sheet in sheets.items()}
            result.update(self._apply(doc, command, cells, clears, before,
                                      config.get("block_writes", "safe")))
        timings["apply"] = round(time.perf_counter() - t, 4)
        message = plan.get("message")
        if message:
            result["message"] = str(message)[:2000]
            self._notify(plan.get("level", "info"), result["message"], config)
        return result

    def _facteurs(self, config, args):
        doc = self._document()
        active = active_cell(doc)
        if active is None:
            raise UserError("Sélectionnez d'abord la cellule où insérer l'activité.")
        sheet = doc.getSheets().getByName(active["sheet"])
        cell = sheet.getCellRangeByName(active["cell"])
        current = cell.getString()
        dialog = FactorDialog(self, config, current, active)
        if "Query" in args:  # driven by dispatch arguments: the same controls, no modal loop
            chosen = dialog.run_preset(str(args["Query"]), int(args.get("Choice", 0)))
        else:
            if self._quiet(config):
                raise UserError("La recherche de facteurs ouvre une fenêtre : elle n'est pas "
                                "disponible quand LibreOffice tourne sans interface.")
            chosen = dialog.run()
        if chosen is None:
            return {"message": None, "inserted": None}
        addr = cell.getCellAddress()
        result = self._apply(doc, "Facteurs", {active["sheet"]: {
            (addr.Row, addr.Column): ("v", chosen["label"])}}, {}, {},
            config.get("block_writes", "safe"))
        result.update(inserted=chosen["label"], cell=f"{active['sheet']}!{active['cell']}")
        return result

    def _apply(self, doc, command, cells, clears, before, block_writes):
        sheets = doc.getSheets()
        targets = list(dict.fromkeys(list(cells) + list(clears)))
        undo = doc.getUndoManager()
        title = f"Carbon'Clap : {COMMANDS.get(command, command)}"
        writer = PlanWriter(doc, before, block_writes)
        unprotected = []
        adjust = None
        titles_before = tuple(undo.getAllUndoActionTitles())
        doc.lockControllers()
        doc.addActionLock()
        try:
            try:
                adjust = doc.IsAdjustHeightEnabled
                doc.IsAdjustHeightEnabled = False  # row heights once at the end, not per cell
            except Exception:
                adjust = None
            undo.enterUndoContext(title)
            try:
                try:
                    for name in targets:  # unprotect all first: fail before any write
                        sheet = sheets.getByName(name)
                        if sheet.isProtected():
                            try:
                                sheet.unprotect("")
                            except Exception:
                                raise UserError(
                                    f"La feuille « {name} » est protégée par un mot de passe : "
                                    "Carbon'Clap ne peut pas y écrire. Retirez le mot de passe "
                                    "(Outils > Protéger la feuille) puis recommencez ; le "
                                    "classeur n'a pas été modifié.") from None
                            unprotected.append(sheet)
                    for name in targets:
                        writer.apply_sheet(sheets.getByName(name), name, cells.get(name, {}),
                                           clears.get(name, []))
                finally:
                    for sheet in unprotected:
                        try:
                            sheet.protect("")
                        except Exception:
                            log(f"could not re-protect {sheet.getName()}")
            finally:
                undo.leaveUndoContext()
        except Exception:
            # roll the partial change back through our own undo step
            try:
                if _undo_added(undo, titles_before, title):
                    undo.undo()
                    undo.clearRedo()
            except Exception:
                log(f"rollback failed:\n{traceback.format_exc()}")
            raise
        finally:
            if adjust is not None:
                with contextlib.suppress(Exception):
                    doc.IsAdjustHeightEnabled = adjust
            doc.removeActionLock()
            doc.unlockControllers()
        grouped = _undo_added(undo, titles_before, title)
        stats = dict(writer.stats)
        for key in ("formula_parse_s", "formula_set_s"):
            stats[key] = round(stats[key], 4)
        return {"written": stats, "undo": f"one step: {title}" if grouped else "none"}

    def _quiet(self, config):
        """True when no window may be shown: headless (unless "dialogs": "always")."""
        mode = config.get("dialogs", "auto") if isinstance(config, dict) else "auto"
        return mode == "never" or (mode == "auto" and is_headless())

    def _notify(self, level, text, config):
        log(f"{level}: {text}")
        if self._quiet(config):
            return
        try:
            smgr = self.ctx.getServiceManager()
            toolkit = smgr.createInstanceWithContext("com.sun.star.awt.Toolkit", self.ctx)
            parent = self.frame.getContainerWindow() if self.frame is not None else None
            kind = {"error": "ERRORBOX", "warning": "WARNINGBOX"}.get(level, "INFOBOX")
            box = toolkit.createMessageBox(
                parent, uno.Enum("com.sun.star.awt.MessageBoxType", kind),
                uno.getConstantByName("com.sun.star.awt.MessageBoxButtons.BUTTONS_OK"),
                TITLE, text)
            box.execute()
            box.dispose()
        except Exception:
            log(f"message box failed:\n{traceback.format_exc()}")


g_ImplementationHelper = unohelper.ImplementationHelper()
g_ImplementationHelper.addImplementation(CarbonClapHandler, IMPLEMENTATION_NAME, SERVICE_NAMES)
