"""Engine speed: 100,000 lines through `engine.compute` against a bare pandas merge-and-multiply
of the same lines, measured side by side in one run (median of 5). Prints the ratio.

    python bench/engine.py [--lines N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from carbonclap_xl.core.engine import compute
from carbonclap_xl.core.factors import load_edition


def make_lines(n: int, seed: int = 1) -> pd.DataFrame:
    edition = load_edition()
    acts = list(edition.activities.values())
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(acts), n)
    return pd.DataFrame({
        "poste": [acts[i].postes[0] for i in pick],
        "activity": [acts[i].label_fr for i in pick],
        "quantity_forecast": rng.uniform(0, 1000, n).round(2),
        "quantity_final": rng.uniform(0, 1000, n).round(2),
        "unit": [acts[i].unit for i in pick],
        "data_source": rng.choice(["facture", "devis", "estimation"], n),
        "comment": "",
    })


def bare(lines: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    merged = lines.merge(table, left_on="activity", right_on="label", how="left")
    merged["e_fc"] = merged["quantity_forecast"] * merged["value"] * merged["conv"]
    merged["e_fi"] = merged["quantity_final"] * merged["value"] * merged["conv"]
    merged.groupby("poste")[["e_fc", "e_fi"]].sum()
    return merged


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args()
    from carbonclap_xl.core.units import conversion

    edition = load_edition()
    table = pd.DataFrame([{"label": a.label_fr, "value": a.factor.value,
                           "conv": conversion(a.unit, a.factor.unit)}
                          for a in edition.activities.values()])
    lines = make_lines(args.lines)
    engine_t, bare_t = [], []
    for _ in range(5):
        t = time.perf_counter()
        result = compute(lines, edition)
        engine_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        bare(lines, table)
        bare_t.append(time.perf_counter() - t)
    errors = sum(i.severity == "error" for i in result.issues)
    e, b = statistics.median(engine_t), statistics.median(bare_t)
    print(f"lines: {args.lines:,} ({errors} flagged absurd by the random quantities)")
    print(f"engine.compute   median {e:.3f} s")
    print(f"bare pandas      median {b:.3f} s")
    print(f"ratio engine/bare: {e / b:.1f}")


if __name__ == "__main__":
    main()
