"""Validation speed: `validate --jobs 2` on 200 typical 300-line workbooks against a bare
openpyxl `load_workbook(read_only=True)` of the same files, side by side in one run.
Target: ratio ≤ 1.0. The validation time includes starting the worker pool.

    python bench/validate.py [--files N] [--lines N] [--jobs N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import openpyxl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine import make_lines

from carbonclap_xl.validation.batch import BatchOptions, validate_paths
from carbonclap_xl.xlsx.template import build_template, fill, save

PRODUCTION = {"title": "Bench", "work_type": "Téléfilm", "phase": "forecast",
              "budget_keur": 2000, "shooting_days": 20, "duration_min": 90,
              "start_date": "2026-03-02", "end_date": "2026-03-31"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seeds = []
        for seed in range(5):
            wb = build_template()
            lines = make_lines(args.lines, seed=seed)
            lines["quantity_forecast"] = (lines["quantity_forecast"] / 50).round(1)
            lines["quantity_final"] = (lines["quantity_final"] / 50).round(1)
            fill(wb, lines, PRODUCTION)
            path = root / f"seed{seed}.xlsx"
            save(wb, path)
            seeds.append(path)
        paths = []
        for i in range(args.files):
            target = root / f"depot-{i:03d}.xlsx"
            shutil.copyfile(seeds[i % len(seeds)], target)
            paths.append(str(target))

        t = time.perf_counter()
        reports = list(validate_paths(paths, BatchOptions(jobs=args.jobs)))
        ours = time.perf_counter() - t
        t = time.perf_counter()
        for p in paths:
            openpyxl.load_workbook(p, read_only=True).close()
        theirs = time.perf_counter() - t
        rejected = sum(r["status"] == "rejected" for r in reports)
        print(f"files: {args.files} × {args.lines} lines "
              f"({Path(paths[0]).stat().st_size / 1000:.0f} kB each), {rejected} rejected")
        print(f"validate --jobs {args.jobs} (pool start included)  {ours:.2f} s "
              f"({1000 * ours / args.files:.1f} ms/file)")
        print(f"openpyxl load_workbook(read_only=True)     {theirs:.2f} s "
              f"({1000 * theirs / args.files:.1f} ms/file)")
        print(f"ratio validate/openpyxl: {ours / theirs:.2f} (target ≤ 1.0)")


if __name__ == "__main__":
    main()
