"""No double counting between monetary lines and the physical lines of the same spending.

A budget line "Hôtels 12 000 €" and workbook lines "Hôtel – nuitée en France: 80 nuits"
count the same stays twice. The reviewed mapping (``devis_mapping.yaml``, section
``double_counting``) lists, for each monetary activity, the physical activities that record the
same spending (nights, meals, km, litres). :func:`double_counting` is a pure function over
plain line dicts (``model.LINE_COLUMNS``, optionally with ``sheet`` and ``row``): it returns the
monetary lines to leave out of the total, with the reason.

Two ways to use it:

- **today, within the current workbook** (``import-devis``): a monetary line found to be a
  probable duplicate is written with both quantities blank and its amounts kept in its comment
  (:func:`mark_duplicate`): the engine does not count it, Contrôles lists it (« Activité sans
  quantité »), and the comment says why and how to count it after all;
- **in the engine** (for the integrator): call :func:`double_counting` on every line read from
  the workbook at each ``process``, exclude the indices returned from the totals in both phases
  and report each one in Contrôles with its reason; the producer keeps a monetary line counted by
  writing :data:`KEEP_MARK` in its comment.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from carbonclap_xl.core.factors import FactorEdition, load_edition
from carbonclap_xl.core.units import factor_unit, find
from carbonclap_xl.intake.devis_mapping import DevisMapping, Family, load_mapping

DUPLICATE_MARK = "[doublon probable"
KEEP_MARK = "[pas un doublon]"
QUANTITY_KEYS = ("quantity_forecast", "quantity_final")


def _filled(value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return str(value).strip() != ""


def _is_money(unit_text: str) -> bool:
    unit = find(unit_text) if unit_text else None
    return unit is not None and unit.dimension.startswith("money")


def _where(line: Mapping[str, Any], index: int) -> str:
    sheet, row = line.get("sheet"), line.get("row")
    if sheet and row:
        return f"{sheet} l. {row}"
    return f"ligne {index + 1}"


def double_counting(lines: Sequence[Mapping[str, Any]],
                    edition: FactorEdition | None = None,
                    mapping: DevisMapping | None = None,
                    candidates: Iterable[int] | None = None) -> list[tuple[int, str]]:
    """``[(index, reason)]``: the monetary lines (among ``candidates``, default all) whose
    spending other lines already record as physical data.

    A line may carry ``same_spending`` (a :class:`Family`, as the import sets from its
    mapping rule) to narrow its family: train tickets are duplicated by train km, not by car
    km, although both use the land-transport ratio.

    A line is monetary when its unit (typed, else the activity's) is a currency; physical when
    it has a quantity in either phase and its catalogue activity is one of the ``physical``
    patterns of the monetary activity's family. Lines whose comment holds :data:`KEEP_MARK`
    (and no :data:`DUPLICATE_MARK` note) are never returned, nor lines without a quantity.
    Activities cited by ``BE:`` reference belong to no family.
    """
    edition = edition or load_edition()
    mapping = mapping or load_mapping(edition=edition)
    resolved: list[tuple[str | None, bool]] = []  # (catalogue activity id, monetary)
    for line in lines:
        act = edition.activity(str(line.get("activity") or "")) if line.get("activity") else None
        unit = str(line.get("unit") or "").strip()
        money = _is_money(unit) if unit else (
            act is not None and factor_unit(act.factor.unit).dimension.startswith("money"))
        resolved.append((act.id if act is not None else None, money))
    families = list(mapping.families)
    own: dict[int, int] = {}  # line index -> index in families of its own narrower family
    wanted = list(range(len(lines)) if candidates is None else candidates)
    for i in wanted:
        narrower = lines[i].get("same_spending")
        if isinstance(narrower, Family):
            own[i] = len(families)
            families.append(narrower)
    physical: dict[int, list[int]] = {}  # family index -> physical line indices
    for i, (line, (act_id, money)) in enumerate(zip(lines, resolved, strict=True)):
        if act_id is None or money or not any(_filled(line.get(k)) for k in QUANTITY_KEYS):
            continue
        for f, family in enumerate(families):
            if family.is_physical(act_id):
                physical.setdefault(f, []).append(i)
    found: list[tuple[int, str]] = []
    for i in wanted:
        act_id, money = resolved[i]
        if act_id is None or not money or not any(_filled(lines[i].get(k))
                                                  for k in QUANTITY_KEYS):
            continue
        comment = str(lines[i].get("comment") or "")
        if KEEP_MARK in comment and DUPLICATE_MARK not in comment:
            continue
        if i in own:
            chosen = own[i]
        else:
            chosen = next((f for f, family in enumerate(mapping.families)
                           if act_id in family.monetary), None)
        if chosen is None:
            continue
        others = [j for j in physical.get(chosen, []) if j != i]
        if others:
            found.append((i, _reason(families[chosen], [_where(lines[j], j) for j in others])))
    return found


def _reason(family: Family, places: list[str]) -> str:
    shown = ", ".join(places[:4]) + (f" et {len(places) - 4} autre(s)" if len(places) > 4
                                     else "")
    return f"{family.what} déjà dans le classeur ({shown})"


def _amount(value: Any) -> str:
    number = float(value)
    text = f"{number:,.2f}".replace(",", "\u202f").replace(".", ",")
    return text[:-3] if text.endswith(",00") else text


def mark_duplicate(line: Mapping[str, Any], reason: str) -> dict[str, Any]:
    """The line as written today when it is a probable duplicate: quantities blank (not
    counted), amounts and reason in front of its comment."""
    out = dict(line)
    unit = str(line.get("unit") or "€")
    amounts = [f"{label} {_amount(line[k])} {unit}"
               for k, label in (("quantity_forecast", "prév."), ("quantity_final", "déf."))
               if _filled(line.get(k))]
    for k in QUANTITY_KEYS:
        out[k] = None
    note = (f"{DUPLICATE_MARK} : {reason} ; non comptée : {' ; '.join(amounts)}] Pour la "
            f"compter, remettez ces montants dans les quantités et remplacez le crochet "
            f"précédent par {KEEP_MARK}.")
    comment = str(line.get("comment") or "")
    out["comment"] = f"{note} {comment}".strip()
    return out
