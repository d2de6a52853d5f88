"""The live workbook in a real client: LibreOffice (UNO) opens a processed workbook,
recalculates it, and follows edits with no add-in.

``tests/lo_live.py`` runs under the system ``python3`` (``python3-uno``); these tests drive
it as a subprocess (JSON in, JSON out) with a time limit.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from carbonclap_xl.core.a1 import cell_ref
from carbonclap_xl.workbook import formulas as F
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.workbook.port import Formula
from carbonclap_xl.workbook.rules import computed_cell_issues
from carbonclap_xl.xlsx.files import process_workbook, write_processed
from tests.test_live import MIXED
from tests.wbhelpers import SOFFICE, make_workbook

LO_SCRIPT = Path(__file__).with_name("lo_live.py")
N = L.COLUMN_BY_KEY["status"].letter


@functools.cache
def system_python() -> str | None:
    """A python3 outside the venv that imports uno (python3-uno)."""
    for candidate in ("/usr/bin/python3", shutil.which("python3") or ""):
        if candidate and Path(candidate).exists() and subprocess.run(
                [candidate, "-c", "import uno"], capture_output=True, check=False,
                env=_env()).returncode == 0:
            return candidate
    return None


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = ":".join(p for p in env.get("PATH", "").split(":") if ".venv" not in p)
    return env


pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(SOFFICE is None or system_python() is None,
                                 reason="LibreOffice with python3-uno not installed")]


def libreoffice(path: Path, steps: list[dict[str, Any]]) -> dict[str, Any]:
    proc = subprocess.run([system_python() or "python3", str(LO_SCRIPT)],
                          input=json.dumps({"path": str(path), "steps": steps}),
                          capture_output=True, text=True, timeout=300, env=_env(), check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _formula_cells(path: Path) -> dict[tuple[str, str], Formula]:
    plan = process_workbook(path).plan().expanded()
    return {(sheet, cell_ref(*key)): value for sheet, cells in plan.cells.items()
            for key, value in cells.items() if isinstance(value, Formula)}


def _same(got: Any, expected: Any) -> bool:
    if isinstance(expected, float | int) and not isinstance(expected, bool):
        return isinstance(got, float | int) and got == pytest.approx(expected, rel=1e-12,
                                                                     abs=1e-12)
    return got == expected


@pytest.fixture(scope="module")
def processed_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("live")
    src = make_workbook(folder / "in.xlsx", MIXED)
    out = folder / "out.xlsx"
    write_processed(process_workbook(src), src, out)
    return out


def test_recalculation_gives_the_engine_numbers(processed_file: Path, tmp_path: Path) -> None:
    cells = _formula_cells(processed_file)
    refs = [[s, r] for s, r in cells]
    resaved = tmp_path / "resaved.xlsx"
    result = libreoffice(processed_file, [{"op": "read", "cells": refs}, {"op": "calc"},
                                          {"op": "read", "cells": refs},
                                          {"op": "store", "path": str(resaved)}])
    before, after = result["reads"]
    wrong = [(key, f.cached, b, a) for key, f, b, a in zip(cells, cells.values(), before, after,
                                                           strict=True)
             if not (_same(b, f.cached) and _same(a, f.cached))]
    assert not wrong, wrong[:10]
    assert len(cells) > 60
    # what LibreOffice saves validates: our formulas, current values
    assert computed_cell_issues(process_workbook(resaved)) == []


def test_a_quantity_edit_moves_the_line_and_synthese(processed_file: Path,
                                                     tmp_path: Path) -> None:
    # the engine's numbers for the edited inputs, on a copy edited the same way
    edited = tmp_path / "edited.xlsx"
    wb = openpyxl.load_workbook(processed_file)
    wb["Lieux"]["B5"] = 2500
    wb["Transports"]["C5"] = None
    wb.save(edited)
    fresh = process_workbook(edited).plan()
    syn = [ref for ref in F.synthese_formulas() if ref != L.SYN_PENDING_CELL]
    fc, fin = (L.COLUMN_BY_KEY[k].letter for k in ("co2e_forecast_kg", "co2e_final_kg"))
    watched = [("Lieux", f"{fc}5"), ("Transports", f"{fin}5"), ("Transports", f"{N}5"),
               *((L.SHEET_SYNTHESE, ref) for ref in syn)]
    result = libreoffice(processed_file, [
        {"op": "set", "sheet": "Lieux", "cell": "B5", "value": 2500},
        {"op": "set", "sheet": "Transports", "cell": "C5", "value": ""},
        {"op": "calc"},
        {"op": "read", "cells": [list(w) for w in watched]}])
    (after,) = result["reads"]
    for (sheet, ref), got in zip(watched, after, strict=True):
        expected = fresh.get(sheet, ref)
        expected = expected.cached if isinstance(expected, Formula) else expected
        if (sheet, ref) == ("Transports", f"{fin}5"):
            expected = ""  # an emptied quantity empties its emission
        assert _same(got, expected), (sheet, ref, got, expected)


def test_what_a_formula_cannot_follow_says_a_recalculer(processed_file: Path) -> None:
    lines = process_workbook(processed_file).result.lines.to_pandas()
    error_row = int(lines.query("status == 'error'")["row"].iloc[0])
    next_free = int(lines.query("sheet == 'Régie'")["row"].max()) + 1
    steps = [
        {"op": "set", "sheet": "Transports", "cell": "A5", "value": "Avion moyen-courrier"},
        {"op": "set", "sheet": "Lieux", "cell": "D5", "value": "MWh"},
        {"op": "set", "sheet": "Lieux", "cell": f"D{error_row}", "value": "kWh"},  # a fix
        {"op": "set", "sheet": "Régie", "cell": f"A{next_free}", "value": "Nuit d'hôtel"},
        {"op": "set", "sheet": "Régie", "cell": "B5", "value": "quarante"},
        {"op": "calc"},
        {"op": "read", "cells": [["Transports", f"{N}5"], ["Lieux", f"{N}5"],
                                 ["Lieux", f"{N}{error_row}"], ["Régie", f"{N}5"],
                                 ["Lieux", f"{N}6"], [L.SHEET_SYNTHESE, L.SYN_PENDING_CELL]]},
    ]
    (statuses,) = libreoffice(processed_file, steps)["reads"]
    *flagged, untouched, pending = statuses
    assert flagged == [F.STATUS_PENDING] * 4
    assert untouched in ("OK", "À vérifier")
    assert pending == F.pending_text(5)  # 4 flagged lines + 1 new line without status
