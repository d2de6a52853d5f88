"""Worksheet functions for Excel on Windows (xlwings UDFs): ``CC_FACTEUR``, ``CC_EMISSIONS``,
``CC_INCERTITUDE``, ``CC_RECHERCHE``.

Three-line wrappers over ``core.worksheet``, with the Function Wizard's help in the
``@xw.arg`` docs and the docstrings (the add-in registers them when it loads). On Linux and
macOS ``@xw.func`` returns the function unchanged, so each is a plain Python function the
tests call. An error never reaches a cell as a traceback (xlwings' VBA wrapper would show
it): errors of this product become short French texts, anything else « Erreur interne ».
Argument names are ASCII: they become VBA parameter names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import xlwings as xw

from carbonclap_xl.core import worksheet
from carbonclap_xl.core.errors import CarbonClapError
from carbonclap_xl.core.factors import FactorEdition, load_edition

CATEGORY = "Carbon'Clap"
log = logging.getLogger(__name__)


def _edition() -> FactorEdition:
    return load_edition()  # cached once per process: the warm server keeps it


def _safe(compute: Callable[[], Any]) -> Any:
    """The value of ``compute()``, or a short French text instead of any error."""
    try:
        return compute()
    except (CarbonClapError, ValueError) as exc:
        return worksheet.short_error(exc)
    except Exception:  # the edge: a cell must never show a traceback
        log.exception("CC function failed")
        return "Erreur interne"


def _text(value: Any) -> str:
    return "" if value is None else str(value)


@xw.func(category=CATEGORY)
@xw.arg("activite", doc="Activité du catalogue (libellé de la liste) ou facteur BE:<id>")
def CC_FACTEUR(activite: Any) -> Any:
    """Facteur d'émission de l'activité, en kgCO2e par unité du facteur."""
    if not activite:
        return worksheet.BLANK
    return _safe(lambda: worksheet.factor_of(_edition(), _text(activite)).value)


@xw.func(category=CATEGORY)
@xw.arg("activite", ndim=2, doc="Activité du catalogue, ou une colonne d'activités")
@xw.arg("quantite", ndim=2, doc="Quantité, ou une colonne de quantités")
@xw.arg("unite", ndim=2, doc="Unité de la quantité (km, kWh, nuit, repas...) ; vide = "
        "unité de l'activité")
def CC_EMISSIONS(activite: Any, quantite: Any, unite: Any) -> Any:
    """Émissions en kgCO2e, calculées comme une ligne du classeur (une colonne en entrée)."""
    values = _safe(lambda: worksheet.emissions_kg(_edition(), activite, quantite, unite))
    return values if isinstance(values, str) else _shape(values)


@xw.func(category=CATEGORY)
@xw.arg("activite", doc="Activité du catalogue (libellé de la liste) ou facteur BE:<id>")
def CC_INCERTITUDE(activite: Any) -> Any:
    """Incertitude du facteur d'émission de l'activité, en %."""
    if not activite:
        return worksheet.BLANK
    return _safe(lambda: worksheet.factor_uncertainty_pct(_edition(), _text(activite)))


@xw.func(category=CATEGORY)
@xw.arg("texte", doc="Mots à chercher dans le catalogue des activités")
def CC_RECHERCHE(texte: Any) -> Any:
    """Activités du catalogue qui correspondent au texte, en colonne (tableau dynamique)."""
    labels = _safe(lambda: worksheet.search_labels(_edition(), _text(texte)))
    return labels if isinstance(labels, str) else (_shape(labels) or "Aucune activité")


def _shape(values: list[Any]) -> Any:
    """One value as itself, several as a column."""
    if len(values) == 1:
        return values[0]
    return [[v] for v in values]


__all__ = ["CC_EMISSIONS", "CC_FACTEUR", "CC_INCERTITUDE", "CC_RECHERCHE"]
