"""What the worksheet functions and the catalogue search compute, pure and testable.

The Excel functions (``excel/udfs.py``: ``CC_FACTEUR``, ``CC_EMISSIONS``, ``CC_INCERTITUDE``,
``CC_RECHERCHE``) and the ribbon's « Facteurs » button are thin wrappers over these. Emissions
go through the engine itself (``engine.compute``), so a cell computed by ``CC_EMISSIONS``
and a line computed by Recalculer agree to the last bit.
"""

from __future__ import annotations

import math
from typing import Any

from carbonclap_xl.core.engine import compute
from carbonclap_xl.core.errors import FactorNotFound
from carbonclap_xl.core.factors import Activity, Factor, FactorEdition, parse_reference
from carbonclap_xl.core.issues import CODES, Severity
from carbonclap_xl.core.model import DEFAULT_FACTOR_UNCERTAINTY_PCT, POSTE_IDS

BLANK = ""  # what a function returns for a blank input: an empty-looking cell


def factor_of(edition: FactorEdition, text: str) -> Factor:
    """The factor of a catalogue activity (label or id) or of a reference ``BE:<id>``."""
    text = str(text or "").strip()
    activity = edition.activity(text)
    if activity is not None:
        return activity.factor
    if parse_reference(text) is not None:
        return edition.factor(text)
    raise FactorNotFound(text, edition.suggest(text))


def factor_uncertainty_pct(edition: FactorEdition, text: str) -> float:
    """The factor's relative uncertainty (%), the convention's default when unpublished."""
    value = factor_of(edition, text).uncertainty_pct
    return DEFAULT_FACTOR_UNCERTAINTY_PCT if value is None else value


def _column(values: Any, n: int) -> list[Any]:
    """``values`` as ``n`` items: a scalar repeated, a sequence (or a one-column table)
    flattened."""
    if isinstance(values, list | tuple):
        flat = [v[0] if isinstance(v, list | tuple) and len(v) == 1 else v for v in values]
        if len(flat) == 1:
            return flat * n
        if len(flat) != n:
            raise ValueError(f"{len(flat)} valeurs pour {n} lignes")
        return flat
    return [values] * n


def _length(values: Any) -> int:
    return len(values) if isinstance(values, list | tuple) else 1


def emissions_kg(edition: FactorEdition, activities: Any, quantities: Any,
                 units: Any) -> list[float | str]:
    """Emissions (kgCO2e) of each (activity, quantity, unit), as the engine computes a line;
    a scalar argument applies to every line. A line the engine refuses gives the short title
    of its first error (« Unité incompatible »…), a blank quantity gives ``BLANK``."""
    n = max(_length(activities), _length(quantities), _length(units))
    acts, qty, unit = _column(activities, n), _column(quantities, n), _column(units, n)
    postes = []
    for a in acts:  # the activity's own poste: a function has no sheet to take it from
        known = edition.activity(str(a or "").strip())
        postes.append(known.postes[0] if known else POSTE_IDS[0])
    result = compute({"poste": postes, "activity": acts, "quantity_forecast": qty,
                      "quantity_final": [None] * n, "unit": unit,
                      "data_source": [None] * n, "comment": [None] * n}, edition)
    errors: dict[int, str] = {}
    for issue in result.issues:
        if issue.line is not None and issue.severity is Severity.ERROR:
            errors.setdefault(issue.line, CODES[issue.code].title)
    out: list[float | str] = []
    for i, value in enumerate(result.lines["co2e_forecast_kg"].tolist()):
        if i in errors:
            out.append(errors[i])
        elif value is None or math.isnan(value):
            out.append(BLANK)
        else:
            out.append(float(value))
    return out


def search_activities(edition: FactorEdition, text: str, poste: str | None = None,
                      limit: int = 30) -> list[Activity]:
    """Catalogue activities for ``text``, best first, those of ``poste`` (the sheet the user
    is on) before the others (``catalogue.rank_activities``, the one search)."""
    from carbonclap_xl.core.catalogue import rank_activities

    if not text.strip():
        return []
    ranked = rank_activities(edition.activities.values(), text, prefer=poste)
    return [m.activity for m in ranked[:limit]]


def search_labels(edition: FactorEdition, text: str, poste: str | None = None,
                  limit: int = 30) -> list[str]:
    return [a.label_fr for a in search_activities(edition, text, poste, limit)]


def short_error(exc: BaseException) -> str:
    """A French text short enough for a cell, for an error of this product."""
    if isinstance(exc, FactorNotFound):
        return "Activité inconnue"
    return "Erreur : " + str(exc)[:80]


__all__ = ["BLANK", "emissions_kg", "factor_of", "factor_uncertainty_pct", "search_activities",
           "search_labels", "short_error"]
