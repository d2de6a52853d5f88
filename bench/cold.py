"""Whole-process speed, as a user waits for it: each command started cold in a fresh
interpreter, measured side by side with its reference in one run (A B A B …, medians,
the ratio pair by pair). A click in Excel starts a fresh interpreter, so start-up counts.

    python bench/cold.py [--runs N] [--only compute|process300|process5000]

- compute: `carbonclap-xl compute 100k.csv --json out.json` against bare pandas (read the
  CSV, merge the factors, multiply, write per-line records as JSON); target ≤ 1.5.
- process300: `carbonclap-xl process` of a 300-line workbook against
  `openpyxl.load_workbook(f)` alone; target ≤ 1.0.
- process5000: `carbonclap-xl process` of a 5,000-line workbook against an openpyxl load +
  save of the same file; target ≤ 0.5.

The package's bytecode is compiled first, as pip compiles an installed wheel's: the references
(pandas, openpyxl, numpy in site-packages) start from theirs, and with PYTHONDONTWRITEBYTECODE
set each run of a source checkout would compile every module of the package again (about
0.07 s of `process`).
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from installed import ENV, compile_package

from carbonclap_xl.core.factors import load_edition
from carbonclap_xl.core.units import conversion

PY = sys.executable

BARE_PANDAS = """
import sys, pandas as pd
lines = pd.read_csv(sys.argv[1], dtype={"unit": str, "comment": str})
table = pd.read_csv(sys.argv[2])
merged = lines.merge(table, left_on="activity", right_on="label", how="left")
merged["co2e_forecast_kg"] = merged["quantity_forecast"] * merged["value"] * merged["conv"]
merged["co2e_final_kg"] = merged["quantity_final"] * merged["value"] * merged["conv"]
merged.to_json(sys.argv[3], orient="records", force_ascii=False)
"""


def make_csv(path: Path, n: int, seed: int = 1) -> None:
    edition = load_edition()
    acts = [a for a in edition.activities.values()]
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(acts), n)
    q1 = rng.uniform(0, 100, n).round(2)
    q2 = rng.uniform(0, 100, n).round(2)
    sources = rng.choice(["facture", "devis", "estimation"], n)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["poste", "activity", "quantity_forecast", "quantity_final", "unit",
                    "data_source", "comment"])
        for i, k in enumerate(pick):
            a = acts[k]
            w.writerow([a.postes[0], a.label_fr, q1[i], q2[i], a.unit, sources[i], ""])


def make_table(path: Path) -> None:
    edition = load_edition()
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["label", "value", "conv"])
        for a in edition.activities.values():
            w.writerow([a.label_fr, a.factor.value, conversion(a.unit, a.factor.unit)])


def make_workbook(path: Path, n: int) -> None:
    from carbonclap_xl.core.lines import LineTable
    from carbonclap_xl.intake.csv_lines import read_lines_csv
    from carbonclap_xl.xlsx.template import build_template, fill, save

    tmp = path.with_suffix(".csv")
    make_csv(tmp, n)
    lines: LineTable = read_lines_csv(tmp).lines
    wb = build_template()
    fill(wb, lines, {"title": "Bench", "work_type": "Téléfilm", "phase": "forecast",
                     "budget_keur": 2000, "shooting_days": 24, "duration_min": 90,
                     "start_date": "2026-03-02", "end_date": "2026-04-03"})
    save(wb, path)


def run(cmd: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one whole process; CPU (user + system, the child's own
    accounting) moves less than wall time on a shared machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=ENV)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def compare(name: str, ours: list[str], theirs: list[str], runs: int, target: float) -> dict:
    run(ours), run(theirs)  # warm-up: page cache, byte-compiled modules
    a, b, ratios, cpu_ratios = [], [], [], []
    for _ in range(runs):
        (ta, ca), (tb, cb) = run(ours), run(theirs)
        a.append(ta), b.append(tb), ratios.append(ta / tb), cpu_ratios.append(ca / cb)
    ma, mb, mr = statistics.median(a), statistics.median(b), statistics.median(ratios)
    mc = statistics.median(cpu_ratios)
    verdict = "ok" if mr <= target else "OVER TARGET"
    print(f"{name:<12} ours {ma:6.3f} s   reference {mb:6.3f} s   ratio {mr:5.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f}; CPU ratio {mc:.2f}; "
          f"target ≤ {target}) {verdict}")
    return {"case": name, "ours_s": ma, "reference_s": mb, "ratio": mr, "cpu_ratio": mc,
            "target": target}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--only", choices=["compute", "process300", "process5000"])
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    compile_package()
    results = []
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        cli = [PY, "-m", "carbonclap_xl"]
        if args.only in (None, "compute"):
            lines, table = tmp / "lines.csv", tmp / "table.csv"
            make_csv(lines, 100_000)
            make_table(table)
            script = tmp / "bare.py"
            script.write_text(BARE_PANDAS)
            results.append(compare(
                "compute", [*cli, "compute", str(lines), "--json", str(tmp / "ours.json")],
                [PY, str(script), str(lines), str(table), str(tmp / "theirs.json")],
                args.runs, 1.5))
        if args.only in (None, "process300"):
            wb = tmp / "w300.xlsx"
            make_workbook(wb, 300)
            results.append(compare(
                "process300", [*cli, "process", str(wb), "-o", str(tmp / "o300.xlsx"),
                               "--force"],
                [PY, "-c", f"import openpyxl; openpyxl.load_workbook({str(wb)!r})"],
                args.runs, 1.0))
        if args.only in (None, "process5000"):
            wb = tmp / "w5000.xlsx"
            make_workbook(wb, 5000)
            out = tmp / "s5000.xlsx"
            results.append(compare(
                "process5000", [*cli, "process", str(wb), "-o", str(tmp / "o5000.xlsx"),
                                "--force"],
                [PY, "-c", f"import openpyxl; b = openpyxl.load_workbook({str(wb)!r}); "
                           f"b.save({str(out)!r})"],
                args.runs, 0.5))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
