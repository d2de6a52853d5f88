"""The README's path from a CSV and a production file to a validated workbook runs as written:
its five commands, in a copy of the files they name, each exiting 0."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from carbonclap_xl.cli import main
from carbonclap_xl.workbook import layout as L
from tests.wbhelpers import sheet_values, value_at

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SECTION = "## From a CSV and a production file to a validated workbook"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    return text[start:text.index("\n## ", start + 1)]


def readme_commands() -> list[list[str]]:
    """The ``sh`` block of the section, one argv per command (comments dropped)."""
    (block,) = re.findall(r"```sh\n(.*?)```", _section(), flags=re.S)
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def readme_excerpts() -> dict[str, list[str]]:
    """The lines the section quotes from each input file."""
    blocks = dict(re.findall(r"```(\w*)\n(.*?)```", _section(), flags=re.S))
    return {"lignes.csv": blocks[""].splitlines(), "production.yaml": blocks["yaml"].splitlines()}


def test_readme_shows_five_commands_over_files_that_exist() -> None:
    commands = readme_commands()
    assert len(commands) == 5 and all(c[0] == "carbonclap-xl" for c in commands)
    named = {Path(a) for c in commands for a in c if a.startswith("workbook/")}
    assert named and all((ROOT / p).is_file() for p in named)
    for name, lines in readme_excerpts().items():  # what the README quotes is in the file
        content = (ROOT / "workbook" / "examples" / "premier-bilan" / name).read_text(
            encoding="utf-8").splitlines()
        assert lines and all(line in content for line in lines), name


def test_readme_commands_run_from_csv_to_validated_workbook(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for source in {Path(a).parent for c in readme_commands() for a in c
                   if a.startswith("workbook/")}:
        shutil.copytree(ROOT / source, tmp_path / source)
    monkeypatch.chdir(tmp_path)
    for argv in readme_commands():
        assert main(argv[1:]) == 0, shlex.join(argv)
    # the workbook is complete (every required production field) and validated
    production = sheet_values(tmp_path / "MonFilm-calcule.xlsx", L.SHEET_PRODUCTION)
    for field in L.PRODUCTION_FIELDS:
        if field.required:
            assert value_at(production, field.cell) not in ("", None), field.label
    assert value_at(production, L.FIELD_BY_KEY["title"].cell) == "Les Heures claires"
    assert value_at(production, L.FIELD_BY_KEY["phase"].cell) == "Prévisionnel"
    controls = sheet_values(tmp_path / "MonFilm-calcule.xlsx", L.SHEET_CONTROLES)
    assert "0 erreur" in str(value_at(controls, L.CTRL_SUMMARY_CELL))
    assert (tmp_path / "MonFilm-bilan.html").stat().st_size > 0
