"""Plain-text summaries of a result, for the terminal (French first)."""

from __future__ import annotations

from typing import TextIO

from carbonclap_xl.core.engine import INDICATORS, EngineResult
from carbonclap_xl.core.issues import SEVERITY_FR, Issue, Severity, counts_text
from carbonclap_xl.core.model import NATURE_BY_ID, POSTES
from carbonclap_xl.core.numbers import fr_integer, fr_mass, fr_significant
from carbonclap_xl.core.text import printable, shorten


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
    """The footprint by poste and nature, indicators, counts and the sources' credit."""
    issues = result.issues if issues is None else issues
    lines: list[str] = []
    if title:
        lines.append(printable(shorten(title, 200)))
    t, u = result.total_kg, result.uncertainty_kg
    # kg under a tonne, tonnes above: a small poste reads « 850 kg », not « 0,00 t »
    lines.append(f"{'Poste':<52}{'prévisionnel':>14}{'définitif':>14}  (CO2e)")
    for p in POSTES:
        v = result.by_poste[p.id]
        lines.append(f"{p.label_fr:<52}{fr_mass(v.forecast):>14}{fr_mass(v.final):>14}")
    lines.append(f"{'TOTAL':<52}{fr_mass(t.forecast):>14}{fr_mass(t.final):>14}")
    lines.append(f"{'incertitude (±)':<52}{fr_mass(u.forecast):>14}{fr_mass(u.final):>14}")
    natures = [(NATURE_BY_ID[k].label_fr, v) for k, v in result.by_nature.items()
               if v.forecast or v.final]
    if natures:
        lines.append("Par nature :")
        for label, v in natures:
            lines.append(f"  {label:<50}{fr_mass(v.forecast):>14}{fr_mass(v.final):>14}")
    for key, v in result.indicators.items():
        label = INDICATORS[key][0]
        lines.append(f"{label:<52}{fr_significant(v.forecast):>14}"
                     f"{fr_significant(v.final):>14}")
    lines.append(f"{fr_integer(len(result.lines))} lignes, "
                 f"{fr_integer(result.excluded_lines)} non comptées ; "
                 f"{counts_text(issues)}.")
    # one line: the full attribution texts are in the JSON, the workbook and the reports
    lines.append(result.edition.credit())
    return "\n".join(lines)
