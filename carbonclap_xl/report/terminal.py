"""Plain-text summaries of a result, for the terminal (French first)."""

from __future__ import annotations

from typing import TextIO

from carbonclap_xl.core.engine import INDICATORS, EngineResult
from carbonclap_xl.core.issues import SEVERITY_FR, Issue, Severity, counts_text
from carbonclap_xl.core.model import NATURE_BY_ID, POSTES
from carbonclap_xl.core.numbers import fr_number
from carbonclap_xl.core.text import printable, shorten

number = fr_number


def tonnes(kg: float) -> str:
    return number(kg / 1000)


def print_issues(issues: list[Issue], stream: TextIO, verbose: bool = False) -> None:
    """Errors and warnings, one line each (infos too when ``verbose``)."""
    for issue in issues:
        if verbose or issue.severity is not Severity.INFO:
            print(format_issue(issue), file=stream)


def format_issue(issue: Issue, where: str | None = None) -> str:
    place = where or issue.where
    prefix = f"{place} : " if place else ""
    # the user's text (sheet names, values quoted) never drives the terminal
    return printable(f"{SEVERITY_FR[issue.severity]} [{issue.code}] {prefix}{issue.message}")


def summary_text(result: EngineResult, title: str | None = None,
                 issues: list[Issue] | None = None) -> str:
    """The footprint by poste and nature, indicators, counts and attribution."""
    issues = result.issues if issues is None else issues
    lines: list[str] = []
    if title:
        lines.append(printable(shorten(title, 200)))
    t, u = result.total_kg, result.uncertainty_kg
    lines.append(f"{'Poste':<52}{'prévisionnel':>14}{'définitif':>14}  (tCO2e)")
    for p in POSTES:
        v = result.by_poste[p.id]
        lines.append(f"{p.label_fr:<52}{tonnes(v.forecast):>14}{tonnes(v.final):>14}")
    lines.append(f"{'TOTAL':<52}{tonnes(t.forecast):>14}{tonnes(t.final):>14}")
    lines.append(f"{'incertitude (±)':<52}{tonnes(u.forecast):>14}{tonnes(u.final):>14}")
    natures = [(NATURE_BY_ID[k].label_fr, v) for k, v in result.by_nature.items()
               if v.forecast or v.final]
    if natures:
        lines.append("Par nature :")
        for label, v in natures:
            lines.append(f"  {label:<50}{tonnes(v.forecast):>14}{tonnes(v.final):>14}")
    for key, v in result.indicators.items():
        label = INDICATORS[key][0]
        lines.append(f"{label:<52}{number(v.forecast):>14}{number(v.final):>14}")
    lines.append(f"{len(result.lines)} lignes, {result.excluded_lines} non comptées ; "
                 f"{counts_text(issues)}.")
    lines.append(f"Facteurs : {result.edition.name}")
    lines.extend(f"  {a}" for a in result.edition.attributions())
    return "\n".join(lines)
