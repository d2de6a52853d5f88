"""The rules of a submission beyond the engine's line rules: production data the CNC
requires, phases, materiality, plausibility and stale computed cells.

Pure functions over a ``pipeline.Processed``; ``process`` (the producer's side) and
``validate`` (the funder's side) apply the same ones, so both say the same things about the
same file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from carbonclap_xl.core.issues import Code, Issue, make_issue
from carbonclap_xl.core.lines import is_none
from carbonclap_xl.core.model import NATURES, PHASE_LABEL_FR, PHASE_QUANTITY_FR, Phase
from carbonclap_xl.core.numbers import fr_general, fr_number
from carbonclap_xl.workbook import layout as L

# Plausibility ranges of intensity indicators (PRODUCT.md §6): far outside them, a unit or a
# zero is probably wrong. Wide on purpose: they flag typos, not low-carbon productions.
PLAUSIBLE: dict[str, tuple[float, float, str]] = {
    "tco2e_per_shooting_day": (0.05, 60.0, "0,05 à 60 tCO2e par jour de tournage"),
    "tco2e_per_hour": (0.5, 1500.0, "0,5 à 1 500 tCO2e par heure de programme"),
    "kgco2e_per_keur": (2.0, 1500.0, "2 à 1 500 kgCO2e par k€ de budget"),
}
INDICATOR_FIELD = {"tco2e_per_shooting_day": "shooting_days", "tco2e_per_hour": "duration_min",
                   "kgco2e_per_keur": "budget_keur", "tco2e_per_episode": "episodes"}
REQUIRED_FIELDS = tuple(f for f in L.PRODUCTION_FIELDS if f.required)
STALE_TOLERANCE = 1e-6


fmt = fr_number


# --------------------------------------------------------------------------- rules


def production_issues(processed: Any, phase: Phase | None) -> list[Issue]:
    """Required production data for the phase submitted, and its consistency."""
    data = processed.data
    raw, info = data.production_raw, data.production
    issues: list[Issue] = []
    effective = phase or info.phase
    phase_label = PHASE_LABEL_FR[effective] if effective else "soumis"
    for field in REQUIRED_FIELDS:
        value = raw.get(field.key)
        if value is None or (isinstance(value, str) and not value.strip()):
            # the value found (blanks only, or nothing) goes to Contrôles' Valeur column; the
            # phase is part of the message, never a value
            issues.append(make_issue(Code.PRODUCTION_FIELD_MISSING, value=value or None,
                                     expected=field.label, phase=phase_label,
                                     sheet=L.SHEET_PRODUCTION, cell=field.cell))

    def invalid(key: str, hint: str) -> None:
        field = L.FIELD_BY_KEY[key]
        issues.append(make_issue(Code.PRODUCTION_FIELD_INVALID, value=raw.get(key),
                                 expected=field.label, hint=hint, sheet=L.SHEET_PRODUCTION,
                                 cell=field.cell))

    if raw.get("phase") is not None and info.phase is None:
        invalid("phase", "choisissez « Prévisionnel » ou « Définitif ».")
    elif phase and info.phase and info.phase is not phase:
        invalid("phase", f"le dépôt attendu est le bilan {PHASE_LABEL_FR[phase]} : corrigez la "
                         "phase ou déposez l'autre bilan.")
    if raw.get("work_type") is not None and str(raw["work_type"]).strip() not in L.WORK_TYPES:
        invalid("work_type", "choisissez dans la liste (" + ", ".join(L.WORK_TYPES) + ").")
    for key in ("budget_keur", "shooting_days", "episodes", "duration_min"):
        value, parsed = raw.get(key), getattr(info, key)
        if value is not None and value != "" and (parsed is None or parsed <= 0):
            invalid(key, "saisissez un nombre positif, sans unité (le budget en k€ HT, la "
                         "durée en minutes).")
    for key in ("start_date", "end_date"):
        value = raw.get(key)
        if value is not None and value != "" and getattr(info, key) is None:
            invalid(key, "saisissez une date (jj/mm/aaaa).")
    if info.start_date and info.end_date and info.end_date < info.start_date:
        invalid("end_date", "la fin du tournage précède son début.")
    return issues


def phase_issues(processed: Any, phase: Phase) -> list[Issue]:
    """The phase submitted left empty where the other phase has data."""
    lines = processed.data.lines
    if lines.empty:
        return []
    mine = "quantity_forecast" if phase is Phase.FORECAST else "quantity_final"
    other = "quantity_final" if phase is Phase.FORECAST else "quantity_forecast"
    filled = ~is_none(lines[mine])
    other_filled = ~is_none(lines[other])
    label = PHASE_QUANTITY_FR[phase]
    other_label = PHASE_QUANTITY_FR[Phase.FINAL if phase is Phase.FORECAST else Phase.FORECAST]
    data = processed.data
    if data.sheets_not_counted:  # their lines are already reported, once for the sheet
        counted = ~np.isin(lines["sheet"], list(data.sheets_not_counted))
        filled, other_filled = filled & counted, other_filled & counted
    # the value found is the empty cell: the phase goes into the message only
    if not filled.any() and other_filled.any():
        first = int(np.flatnonzero(other_filled)[0])
        sheet = lines["sheet"][first]
        return [make_issue(Code.PHASE_EMPTY, phase=label, sheet=sheet,
                           cell=f"{data.letter(sheet, mine)}{L.HEADER_ROW}")]
    issues = []
    for i in np.flatnonzero(other_filled & ~filled & ~is_none(lines["activity"])):
        sheet = lines["sheet"][i]
        issues.append(make_issue(Code.PHASE_LINE_EMPTY, phase=label, expected=other_label,
                                 sheet=sheet,
                                 cell=f"{data.letter(sheet, mine)}{int(lines['row'][i])}"))
    return issues


def materiality_issues(processed: Any, phase: Phase) -> list[Issue]:
    result = processed.result
    if result.total_kg.get(phase) <= 0:
        return []
    examples = {"energie": "électricité, groupes électrogènes", "transport_personnes":
                "trains, avions, voitures de l'équipe", "repas": "repas de la cantine",
                "achats": "achats de décors, costumes, fournitures",
                "amortissement": "location de matériel technique"}
    issues = []
    for nature in NATURES:
        if nature.materiality and result.by_nature[nature.id].get(phase) <= 0:
            issues.append(make_issue(Code.MATERIALITY_EMPTY, value=nature.label_fr,
                                     expected=examples.get(nature.id, "")))
    return issues


def plausibility_issues(processed: Any, phase: Phase) -> list[Issue]:
    from carbonclap_xl.core.engine import INDICATORS

    issues = []
    production = processed.data.production
    for key, (label, attr) in INDICATORS.items():
        denominator = getattr(production, attr)
        if denominator and denominator > 0 and key not in processed.result.indicators:
            # so small (1e-320 k€) that the indicator is infinite: the engine drops it, say so
            field = L.FIELD_BY_KEY[INDICATOR_FIELD[key]]
            issues.append(make_issue(
                Code.INTENSITY_IMPLAUSIBLE, value=f"{label} non calculable ({field.label} : "
                f"{fr_general(denominator)})",
                expected=PLAUSIBLE.get(key, ("", "", "valeur démesurée"))[2],
                sheet=L.SHEET_PRODUCTION, cell=field.cell))
    for key, (low, high, text) in PLAUSIBLE.items():
        value = processed.result.indicators.get(key)
        if value is None:
            continue
        v = value.get(phase)
        if v and not (low <= v <= high):
            field = L.FIELD_BY_KEY[INDICATOR_FIELD[key]]
            issues.append(make_issue(Code.INTENSITY_IMPLAUSIBLE,
                                     value=f"{fmt(v)} {INDICATORS[key][0]}", expected=text,
                                     sheet=L.SHEET_PRODUCTION, cell=field.cell))
    return issues


def _shown(fresh: float) -> str:
    """A recomputed value in a message: 6 significant digits, French (« 1287,83 »)."""
    return fr_general(float(f"{fresh:.6g}"))


def _differs(found: Any, fresh: float) -> bool:
    try:
        found_f = float(found)
    except (TypeError, ValueError):
        return True
    if math.isnan(fresh) or math.isnan(found_f):
        return True
    return abs(found_f - fresh) > STALE_TOLERANCE * max(1.0, abs(fresh))


def stale_issues(processed: Any) -> list[Issue]:
    """Computed cells whose value differs from a fresh computation (edited or stale)."""
    lines = processed.result.lines
    issues: list[Issue] = []
    total = processed.result.total_kg
    for ref, fresh in ((f"B{L.SYN_POSTE_TOTAL_ROW}", total.forecast / 1000),
                       (f"C{L.SYN_POSTE_TOTAL_ROW}", total.final / 1000)):
        found = processed.data.synthese_read.get(ref)
        if found is not None and _differs(found, fresh):
            issues.append(make_issue(Code.COMPUTED_STALE, value=found, expected=_shown(fresh),
                                     sheet=L.SHEET_SYNTHESE, cell=ref))
    for key in ("factor_value", "co2e_forecast_kg", "co2e_final_kg"):
        read_key = f"read_{key}"
        if read_key not in lines:
            continue
        letter = processed.data.layout.letter(key)
        for i in np.flatnonzero(~is_none(lines[read_key])):
            row = {"sheet": lines["sheet"][i], "row": lines["row"][i]}
            found, fresh = lines[read_key][i], float(lines[key][i])
            if _differs(found, fresh):
                shown = "vide" if math.isnan(fresh) else _shown(fresh)
                issues.append(make_issue(Code.COMPUTED_STALE, value=found, expected=shown,
                                         sheet=row["sheet"], cell=f"{letter}{int(row['row'])}"))
    return issues


# A formula that launches a program (DDE) or calls code: never evaluated, always reported.
_DDE_CALLS = ("DDE", "CALL", "REGISTER", "EXEC", "WEBSERVICE", "FILTERXML", "RTD")
_FOLDS_TO_ASCII = "\u0130\u0131\u017f\u212a"  # İ ı ſ K: what re.IGNORECASE matches to i, s, k
_DDE = re.compile(r"(^|[^A-Za-z0-9_.])[A-Za-z0-9_.]+\s*\|\s*'|\b(DDE|DDEAUTO|CALL|REGISTER|"
                  r"REGISTER\.ID|EXEC|WEBSERVICE|FILTERXML|RTD)\s*\(", re.IGNORECASE)
_EXTERNAL = re.compile(r"\[[^\]]+\][^!]*!|'[^']*\[[^\]]+\][^']*'!")


def _may_be_dde(formula: str) -> bool:
    """False when ``_DDE`` cannot match: no pipe and none of its function names (a
    processed sheet holds 15,000 long formulas, and the regular expression tries every
    position of each)."""
    if "|" in formula:
        return True
    if not formula.isascii() and any(c in formula for c in _FOLDS_TO_ASCII):
        return True
    upper = formula.upper()
    return any(name in upper for name in _DDE_CALLS)


def dangerous_formula_issues(formulas: Mapping[str, Mapping[str, str]]) -> list[Issue]:
    """DDE-like and external-reference formulas (``{sheet: {cell: text}}``, Excel syntax),
    wherever they are: the server reports them from the file's XML, the LibreOffice
    extension from the open document."""
    issues: list[Issue] = []
    for sheet, cells in formulas.items():
        for ref, formula in cells.items():
            if _may_be_dde(formula) and _DDE.search(formula):
                issues.append(make_issue(Code.FORMULA_DDE, value=f"={formula}"[:200],
                                         sheet=sheet, cell=ref))
            elif "[" in formula and _EXTERNAL.search(formula):
                issues.append(make_issue(Code.EXTERNAL_LINK, value=f"={formula}"[:200],
                                         sheet=sheet, cell=ref))
    return issues


def foreign_formula_issues(processed: Any) -> list[Issue]:
    """Formulas in computed cells that are not the ones the computation writes there
    (``formulas.is_ours``): a hand-made formula, a pasted one, or one from another tool."""
    from carbonclap_xl.workbook.formulas import is_ours

    issues = []
    layout = processed.data.layout
    for (sheet, ref), text in sorted(processed.data.computed_formulas.items()):
        if not is_ours(sheet, ref, text, layout):
            issues.append(make_issue(Code.FORMULA_FOREIGN, value=f"={text}"[:200], sheet=sheet,
                                     cell=ref))
    return issues


def computed_cell_issues(processed: Any) -> list[Issue]:
    """What the funder's validation checks of the cells the computation owns: stale values
    and foreign formulas (the footprint itself is recomputed from the inputs)."""
    return stale_issues(processed) + foreign_formula_issues(processed)


def submission_issues(processed: Any, phase: Phase | None) -> list[Issue]:
    """Production data, phases, materiality and plausibility (not stale cells: ``process``
    rewrites them, ``validate`` checks them with ``stale_issues``)."""
    if not processed.data.is_carbonclap:
        return []
    issues = production_issues(processed, phase)
    effective = phase or processed.data.production.phase
    if effective is not None:
        issues += phase_issues(processed, effective)
        issues += materiality_issues(processed, effective)
        issues += plausibility_issues(processed, effective)
    return issues
