"""One pipeline for every front door: read (a port source), compute, rules, write plan.

The CLI (``process``), the validator, the Excel add-in and the LibreOffice extension all call
``run`` on their own ``port.SheetSource`` and apply ``Processed.plan()`` with their own
``port.PlanSink``, so a workbook gives the same numbers in the same cells whichever door it
came through.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from carbonclap_xl.core.engine import EngineResult, compute
from carbonclap_xl.core.factors import FactorEdition, load_edition
from carbonclap_xl.core.issues import Code, Issue, Severity, group_issues, make_issue
from carbonclap_xl.core.model import Phase
from carbonclap_xl.core.result import Report, WorkbookInfo
from carbonclap_xl.workbook.port import SheetSource, WritePlan
from carbonclap_xl.workbook.read import WorkbookData, locate, read_workbook


@dataclass
class Processed:
    data: WorkbookData
    result: EngineResult
    issues: list[Issue]  # structure issues + engine issues, all located by sheet and cell

    @property
    def has_errors(self) -> bool:
        return any(i.severity is Severity.ERROR for i in self.issues)

    def plan(self) -> WritePlan:
        """The cells this result owns in the workbook (computed columns, Synthèse,
        Contrôles), for any ``port.PlanSink``."""
        from carbonclap_xl.workbook.plan import result_plan

        return result_plan(self.data, self.result, self.issues)

    def report(self, lines: bool = True, issues: list[Issue] | None = None, **extra: Any
               ) -> Report:
        """The result schema's report of this workbook (``core.result``)."""
        data = self.data
        workbook = WorkbookInfo(data.name, data.template_version, data.production)
        return Report(self.result, self.issues if issues is None else issues, workbook,
                      include_lines=lines, **extra)

    def to_dict(self, lines: bool = True) -> dict[str, Any]:
        return self.report(lines).to_dict()


def compute_workbook(data: WorkbookData, edition: FactorEdition | None = None,
                     expected_phase: Phase | None = None, *,
                     package_issues: Sequence[Issue] = (), stale: bool = False) -> Processed:
    """The engine on the lines read, every issue located, and the submission rules
    (``rules``) checked: what the producer sees in Contrôles is what the funder's
    validation reports.

    ``package_issues`` are what the adapter found in the package itself (macros, external
    links, formulas calling programs); ``stale`` adds the computed cells that differ from this
    computation and the formulas in them that are not ours (the validator's check:
    ``process`` rewrites them). Repeated issues are then
    folded (``issues.group_issues``), so no report or Contrôles grows with the input."""
    from carbonclap_xl.workbook.rules import computed_cell_issues, submission_issues

    edition = edition or load_edition()
    # a line on which reading found an error (a formula without usable value…) is not counted
    bad_cells = {(i.sheet, int(m.group(1))) for i in data.issues
                 if i.severity is Severity.ERROR and i.sheet and i.cell
                 and (m := re.search(r"(\d+)$", i.cell))}
    # so is every line of a sheet whose columns could not all be found (``HEADER_CHANGED``,
    # once for the sheet): counted as « non comptées », without an issue of its own
    unread = data.sheets_not_counted
    excluded = [(s, int(r)) in bad_cells or s in unread
                for s, r in zip(data.lines["sheet"], data.lines["row"], strict=True)]
    result = compute(data.lines, edition, data.production, excluded=excluded)
    lines = result.lines
    engine_issues = [locate(i, lines, data.layout, data.sheets_moved) for i in result.issues
                     if not (unread and i.line is not None and lines["sheet"][i.line] in unread)]
    if data.is_carbonclap and (data.sheets_read or data.sheets_moved) and lines.empty:
        engine_issues.append(make_issue(Code.WORKBOOK_EMPTY))
    processed = Processed(data, result, [*data.issues, *engine_issues])
    processed.issues += submission_issues(processed, expected_phase)
    processed.issues += package_issues
    if stale and data.is_carbonclap:
        processed.issues += computed_cell_issues(processed)
    processed.issues = group_issues(processed.issues)
    return processed


def run(source: SheetSource, edition: FactorEdition | None = None,
        expected_phase: Phase | None = None, *, package_issues: Sequence[Issue] = (),
        stale: bool = False) -> Processed:
    """The whole pipeline on any source: read, compute, locate, rules."""
    return compute_workbook(read_workbook(source), edition, expected_phase,
                            package_issues=package_issues, stale=stale)
