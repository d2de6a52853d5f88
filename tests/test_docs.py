"""The documentation's worked examples run, and the issue-code table is up to date."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from carbonclap_xl.issues import codes_markdown

DOCS = Path(__file__).resolve().parent.parent / "docs"


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("page", ["methodology.md"])
def test_worked_examples_run(page: str) -> None:
    blocks = python_blocks(DOCS / page)
    assert len(blocks) >= 4
    namespace: dict[str, object] = {}
    for block in blocks:  # blocks share state, in page order, like a reader's session
        exec(compile(block, f"{page}", "exec"), namespace)


def test_issue_code_table_is_generated_from_the_codes() -> None:
    text = (DOCS / "issue-codes.md").read_text(encoding="utf-8")
    assert codes_markdown() in text, "regenerate with: python -m carbonclap_xl.issues"
