"""Headless processing speed: `process` on a 5,000-line workbook against a bare openpyxl
load-and-save of the same file, measured side by side in one run (median of 7, interleaved).
Target ≤ 0.5.

    python bench/process.py [--lines N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import openpyxl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine import make_lines

from carbonclap_xl.xlsx.files import process_workbook, write_processed
from carbonclap_xl.xlsx.template import build_template, fill, save


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=5_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "big.xlsx"
        wb = build_template()
        lines = make_lines(args.lines)
        lines["quantity_forecast"] = (lines["quantity_forecast"] / 10).round(1)
        lines["quantity_final"] = (lines["quantity_final"] / 10).round(1)
        fill(wb, lines, {"title": "Bench", "phase": "forecast"})
        save(wb, src)
        done = Path(tmp) / "done.xlsx"  # processed once: its computed cells exist
        write_processed(process_workbook(src), src, done)
        ours, again, theirs, theirs_done = [], [], [], []
        for i in range(7):
            t = time.perf_counter()
            processed = process_workbook(src)
            write_processed(processed, src, Path(tmp) / f"out{i}.xlsx")
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            write_processed(process_workbook(done), done, Path(tmp) / f"again{i}.xlsx")
            again.append(time.perf_counter() - t)
            t = time.perf_counter()
            book = openpyxl.load_workbook(src)
            book.save(Path(tmp) / f"openpyxl{i}.xlsx")
            theirs.append(time.perf_counter() - t)
            t = time.perf_counter()
            book = openpyxl.load_workbook(done)
            book.save(Path(tmp) / f"openpyxl-done{i}.xlsx")
            theirs_done.append(time.perf_counter() - t)
        a, r = statistics.median(ours), statistics.median(again)
        b, bd = statistics.median(theirs), statistics.median(theirs_done)
        print(f"workbook: {args.lines:,} lines, {src.stat().st_size / 1e6:.2f} MB")
        print(f"process, first time (read + compute + write)  median {a:.3f} s")
        print(f"process again (computed cells replaced)      median {r:.3f} s")
        print(f"openpyxl load + save of the same file        median {b:.3f} s")
        print(f"openpyxl load + save of the processed file   median {bd:.3f} s")
        print(f"ratio process/openpyxl: {a / b:.2f} (target ≤ 0.5); "
              f"re-processing: {r / bd:.2f}")


if __name__ == "__main__":
    main()
