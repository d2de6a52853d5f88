"""The documentation's worked examples run, and the issue-code table is up to date."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tools.build_docs import PAGES

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


@pytest.mark.parametrize("path", list(PAGES), ids=lambda p: p.name)
def test_generated_pages_are_current(path: Path) -> None:
    assert path.read_text(encoding="utf-8") == PAGES[path](), (
        "regenerate with: python -m tools.build_docs")


def test_every_rejection_code_is_documented() -> None:
    from carbonclap_xl.core.rejections import REJECTION_TEXT as REJECTION_CODES
    from carbonclap_xl.validation import sandbox
    from carbonclap_xl.validation.safety import SafetyCode

    codes = {str(c) for c in SafetyCode} | {sandbox.TIMEOUT, sandbox.MEMORY,
                                            sandbox.WORKER_CRASHED, sandbox.INTERNAL_ERROR}
    assert codes <= set(REJECTION_CODES)
