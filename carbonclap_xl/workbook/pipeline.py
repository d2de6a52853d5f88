"""One pipeline for every front door: read a workbook, compute, locate issues, write.

The CLI (``process``), the validator and the xlwings adapter all call these functions, so a
workbook gives the same numbers in the same cells whichever door it came through.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from carbonclap_xl.core.engine import EngineResult, compute
from carbonclap_xl.core.errors import InputFileError
from carbonclap_xl.core.factors import FactorEdition, load_edition
from carbonclap_xl.core.issues import Code, Issue, Severity, make_issue, severity_counts
from carbonclap_xl.core.model import Phase
from carbonclap_xl.workbook.read import WorkbookData, locate, read_workbook


@dataclass
class Processed:
    data: WorkbookData
    result: EngineResult
    issues: list[Issue]  # structure issues + engine issues, all located by sheet and cell

    @property
    def has_errors(self) -> bool:
        return any(i.severity is Severity.ERROR for i in self.issues)

    def to_dict(self, lines: bool = True) -> dict:
        doc = self.result.to_dict(lines=lines)
        doc["issues"] = [i.to_dict() for i in self.issues]
        doc["counts"].update(severity_counts(self.issues))
        doc["workbook"] = {"path": str(self.data.path),
                           "template_version": self.data.template_version,
                           "production": {k: v for k, v in vars(self.data.production).items()}}
        return doc


def compute_workbook(data: WorkbookData, edition: FactorEdition | None = None,
                     expected_phase: Phase | None = None) -> Processed:
    """The engine on the lines read, every issue located, and the submission rules
    (``rules``) checked: what the producer sees in Contrôles is what the funder's
    validation reports."""
    from carbonclap_xl.workbook.rules import submission_issues

    edition = edition or load_edition()
    # a line on which reading found an error (a formula without usable value…) is not counted
    bad_cells = {(i.sheet, int(m.group(1))) for i in data.issues
                 if i.severity is Severity.ERROR and i.sheet and i.cell
                 and (m := re.search(r"(\d+)$", i.cell))}
    excluded = [(s, r) in bad_cells for s, r in zip(data.lines["sheet"], data.lines["row"],
                                                      strict=True)]
    result = compute(data.lines, edition, data.production, excluded=excluded)
    lines = result.lines
    engine_issues = [locate(i, lines) for i in result.issues]
    if data.is_carbonclap and data.sheets_read and lines.empty:
        engine_issues.append(make_issue(Code.WORKBOOK_EMPTY))
    processed = Processed(data, result, [*data.issues, *engine_issues])
    processed.issues += submission_issues(processed, expected_phase)
    return processed


def process_workbook(path: Path, edition: FactorEdition | None = None,
                     expected_phase: Phase | None = None) -> Processed:
    return compute_workbook(read_workbook(path), edition, expected_phase)


def default_output(path: Path) -> Path:
    return path.with_name(f"{path.stem}-calcule{path.suffix}")


def backup_path(path: Path) -> Path:
    """A backup name beside ``path`` that no file has yet."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.stem}.sauvegarde-{stamp}{path.suffix}")
    n = 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}.sauvegarde-{stamp}-{n}{path.suffix}")
    return candidate


def write_processed(processed: Processed, src: Path, dst: Path | None,
                    in_place: bool = False, force: bool = False) -> tuple[Path, Path | None]:
    """Write the results; returns (output path, backup path). Never overwrites the source
    unless ``in_place``, and then only after a backup copy, atomically; never replaces an
    existing output unless ``force``."""
    from carbonclap_xl.workbook.plan import write_results

    src = Path(src)
    backup = None
    if in_place:
        dst = src
        backup = backup_path(src)
        with open(src, "rb") as original, open(backup, "xb") as copy:  # never overwrites
            shutil.copyfileobj(original, copy)
        shutil.copystat(src, backup)
    else:
        dst = Path(dst) if dst else default_output(src)
        if dst.exists() and os.path.samefile(dst, src):
            raise InputFileError(str(dst), "la sortie serait le fichier d'entrée : utilisez "
                                           "--in-place (une sauvegarde est gardée) ou -o AUTRE")
        if dst.exists() and not force:
            raise InputFileError(str(dst), "existe déjà : --force pour le remplacer, ou -o "
                                           "AUTRE")
        if dst.is_dir():
            raise InputFileError(str(dst), "c'est un dossier : donnez un nom de fichier")
        if dst.suffix.lower() != src.suffix.lower():
            raise InputFileError(str(dst), f"la sortie doit garder l'extension {src.suffix} "
                                           "du classeur d'entrée")
        dst.parent.mkdir(parents=True, exist_ok=True)
    write_results(src, dst, processed.data, processed.result, processed.issues)
    return dst, backup
