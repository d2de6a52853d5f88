"""Drive a headless LibreOffice over UNO: open a workbook, edit cells, recalculate, read back.

Run with the system ``python3`` (``python3-uno``), never the project's venv: a venv on PATH
makes LibreOffice's embedded Python fail (EXCEL-FACTS.md). The tests call it as a subprocess
with a JSON document on stdin and read a JSON document on stdout:

    {"path": "in.xlsx", "steps": [
        {"op": "set", "sheet": "Lieux", "cell": "B5", "value": 2000},   # number or text
        {"op": "calc"},                                                 # calculateAll()
        {"op": "read", "cells": [["Lieux", "I5"], ...]},               # -> one list per read
        {"op": "formula", "cells": [["Lieux", "I5"], ...]},            # formulas as stored
        {"op": "store", "path": "out.xlsx"}]}                          # save as .xlsx

Start hygiene: a private profile, ``--headless``, ``Hidden=True`` loads, PATH without the venv,
its own process group (killed at the end), a watchdog (SIGALRM) around the whole session.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import uno  # type: ignore[import-not-found]
from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]

WATCHDOG_S = 240


def _prop(name: str, value: object) -> PropertyValue:
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME",
                                                            "PYTHONPATH")}
    env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":")
                           if p and ".venv" not in p and "pyenv" not in p)
    return env


def _cell(doc: object, sheet: str, ref: str) -> object:
    return doc.Sheets.getByName(sheet).getCellRangeByName(ref)  # type: ignore[attr-defined]


def _value(cell: object) -> object:
    """A cell's value as a user sees it: None, text, a number, or "#ERR<code>"."""
    kind = cell.getType().value  # type: ignore[attr-defined]
    if kind == "EMPTY":
        return None
    if kind == "TEXT":
        return cell.getString()  # type: ignore[attr-defined]
    if kind == "FORMULA":
        if cell.getError():  # type: ignore[attr-defined]
            return f"#ERR{cell.getError()}"  # type: ignore[attr-defined]
        if cell.FormulaResultType2 == 2:  # com.sun.star.sheet.FormulaResult.STRING
            return cell.getString()  # type: ignore[attr-defined]
    return cell.getValue()  # type: ignore[attr-defined]


def run(doc_spec: dict) -> dict:
    profile = tempfile.mkdtemp(prefix="cc-lo-profile-")
    pipe = f"cc_lo_{os.getpid()}_{int(time.time() * 1000)}"
    soffice = shutil.which("soffice", path=_clean_env()["PATH"]) or "soffice"
    proc = subprocess.Popen(
        [soffice, "--headless", "--invisible", "--norestore", "--nologo", "--nodefault",
         f"-env:UserInstallation=file://{profile}", f"--accept=pipe,name={pipe};urp;"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=_clean_env(), start_new_session=True)
    out: dict = {"reads": [], "timings": {}}
    started = time.perf_counter()
    try:
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext(
            "com.sun.star.bridge.UnoUrlResolver", local)
        for _ in range(120):
            try:
                ctx = resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
                break
            except Exception:  # NoConnectException until soffice listens
                time.sleep(0.25)
        else:
            raise RuntimeError("soffice did not answer")
        out["timings"]["connect_s"] = time.perf_counter() - started
        desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        url = uno.systemPathToFileUrl(os.path.abspath(doc_spec["path"]))
        t = time.perf_counter()
        doc = desktop.loadComponentFromURL(url, "_blank", 0, (_prop("Hidden", True),))
        if doc is None:
            raise RuntimeError(f"LibreOffice could not load {doc_spec['path']}")
        out["timings"]["load_s"] = time.perf_counter() - t
        try:
            for step in doc_spec["steps"]:
                op = step["op"]
                if op == "set":
                    cell = _cell(doc, step["sheet"], step["cell"])
                    value = step["value"]
                    if isinstance(value, int | float):
                        cell.setValue(value)
                    else:
                        cell.setString(value)
                elif op == "calc":
                    t = time.perf_counter()
                    doc.calculateAll()
                    out["timings"].setdefault("calc_s", []).append(time.perf_counter() - t)
                elif op == "read":
                    out["reads"].append([_value(_cell(doc, s, r)) for s, r in step["cells"]])
                elif op == "formula":
                    out["reads"].append([_cell(doc, s, r).getFormula() for s, r in step["cells"]])
                elif op == "store":
                    target = uno.systemPathToFileUrl(os.path.abspath(step["path"]))
                    doc.storeToURL(target, (_prop("FilterName", "Calc MS Excel 2007 XML"),))
                else:
                    raise ValueError(f"unknown step {op!r}")
        finally:
            doc.close(True)
        return out
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)
        shutil.rmtree(profile, ignore_errors=True)


def main() -> int:
    def watchdog(_signum: int, _frame: object) -> None:
        raise TimeoutError(f"LibreOffice session over {WATCHDOG_S} s")

    signal.signal(signal.SIGALRM, watchdog)
    signal.alarm(WATCHDOG_S)
    result = run(json.load(sys.stdin))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
