"""The fuzz harness (``tests/fuzz.py``) with the budget CI affords: 150 seeded cases, about a
minute. By hand: ``FUZZ_CASES=2000 FUZZ_SEED=7 python -m pytest tests/test_fuzz.py -s``;
replay one case with ``FUZZ_ONLY=<index>`` (same seed)."""

from __future__ import annotations

import os
from pathlib import Path

from tests import fuzz


def test_every_property_holds_on_mutated_workbooks(tmp_path: Path) -> None:
    count = int(os.environ.get("FUZZ_CASES", "150"))
    seed = int(os.environ.get("FUZZ_SEED", "11"))
    only = os.environ.get("FUZZ_ONLY")
    cases = fuzz.make_cases(tmp_path, count, seed, None if only is None else int(only))
    figures = fuzz.check_cases(cases, tmp_path)
    print(f"\nfuzz seed {seed}: {figures.cases} cas ; process au pire "
          f"{figures.worst_process_s:.2f} s et {figures.worst_process_mb:.0f} Mo ; validate "
          f"{figures.validate_s:.1f} s, parent {figures.validate_parent_mb:.0f} Mo ; verdicts "
          f"{dict(sorted(figures.verdicts.items()))}")
    assert not figures.failures, "\n\n".join(figures.failures[:20])
