"""Helpers shared by the workbook tests: build filled workbooks, run LibreOffice, read back."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import python_calamine

from carbonclap_xl.core.a1 import col_index
from carbonclap_xl.xlsx.template import build_template, fill, save

SOFFICE = shutil.which("soffice")

LINES = pd.DataFrame([
    {"poste": "lieux", "activity": "elec_fr", "quantity_forecast": 1000, "quantity_final": 1200,
     "unit": "kWh", "data_source": "facture", "comment": "plateau"},
    {"poste": "lieux", "activity": "BE:14015", "quantity_forecast": 300, "quantity_final": None,
     "unit": "L", "data_source": "devis", "comment": None},
    {"poste": "regie", "activity": "hotel_fr", "quantity_forecast": 40, "quantity_final": 44,
     "unit": "nuit", "data_source": "facture", "comment": "équipe"},
    {"poste": "transport", "activity": "train_tgv", "quantity_forecast": 3200,
     "quantity_final": 3500, "unit": "km", "data_source": "facture", "comment": None},
])
PRODUCTION = {"title": "Test", "work_type": "Court métrage", "phase": "forecast",
              "budget_keur": 150, "shooting_days": 5, "duration_min": 18,
              "start_date": "2026-04-06", "end_date": "2026-04-10"}


def make_workbook(path: Path, lines: pd.DataFrame = LINES,
                  production: dict[str, Any] | None = None, customise: Any = None) -> Path:
    wb = build_template()
    fill(wb, lines, PRODUCTION if production is None else production)
    if customise:
        customise(wb)
    save(wb, path)
    return path


def libreoffice_resave(src: Path, outdir: Path, fmt: str = "xlsx:Calc MS Excel 2007 XML") -> Path:
    """Re-save ``src`` as LibreOffice would (private profile); raises if it fails."""
    assert SOFFICE, "LibreOffice (soffice) is not installed"
    outdir.mkdir(parents=True, exist_ok=True)
    profile = outdir / "lo-profile"
    proc = subprocess.run(
        [SOFFICE, "--headless", "--norestore", f"-env:UserInstallation=file://{profile}",
         "--convert-to", fmt, "--outdir", str(outdir), str(src)],
        capture_output=True, text=True, timeout=180, check=False)
    ext = fmt.split(":")[0]
    out = outdir / f"{src.stem}.{ext}"
    assert proc.returncode == 0 and out.exists(), proc.stderr + proc.stdout
    return out


def sheet_values(path: Path, sheet: str) -> list[list[Any]]:
    return python_calamine.CalamineWorkbook.from_path(str(path)).get_sheet_by_name(
        sheet).to_python(skip_empty_area=False)


def value_at(rows: list[list[Any]], ref: str) -> Any:
    col = "".join(c for c in ref if c.isalpha())
    row = int("".join(c for c in ref if c.isdigit()))
    r, c = row - 1, col_index(col) - 1
    return rows[r][c] if r < len(rows) and c < len(rows[r]) else ""


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def sheet_formulas(path: Path, sheet: str) -> dict[str, str]:
    """Every formula of a sheet as the file holds it (shared ones moved to their cell)."""
    from carbonclap_xl.xlsx.package import sheet_parts
    from carbonclap_xl.xlsx.sheetscan import scan_sheet

    with zipfile.ZipFile(path) as zf:
        return dict(scan_sheet(zf.read(sheet_parts(zf)[sheet])).formulas)
