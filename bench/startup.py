"""Cold start: importing the package and loading the catalogue in a fresh interpreter (what the
Excel button pays on every click), against a bare interpreter start, side by side in one run
(median of 7). The target is well under half a second for import + catalogue.

    python bench/startup.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from installed import ENV, compile_package

CASES = {
    "python -c pass": "pass",
    "import + load catalogue": (
        "from carbonclap_xl.core.factors import load_edition; load_edition()"),
    "import engine (pandas) + catalogue": (
        "import carbonclap_xl.core.engine; from carbonclap_xl.core.factors import load_edition; "
        "load_edition()"),
    "+ one BE: reference (full base)": (
        "from carbonclap_xl.core.factors import load_edition; load_edition().factor('BE:14015')"),
}


def measure(code: str) -> float:
    runs = []
    for _ in range(7):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=ENV)
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    compile_package()
    times = {name: measure(code) for name, code in CASES.items()}
    base = times["python -c pass"]
    for name, t in times.items():
        print(f"{name:<38} {t:.3f} s   (+{t - base:.3f} s over a bare interpreter)")
    load = times["import + load catalogue"] - base
    print(f"import + catalogue costs {load:.3f} s = {load / 0.5:.2f} of the 0.5 s budget")


if __name__ == "__main__":
    main()
