"""The engine side of the LibreOffice extension: ``carbonclap-xl libreoffice exchange``.

The extension (``extension/carbonclap_handler.py``, standard library + uno, inside
LibreOffice) sends one request on stdin and applies the answer it reads on stdout. Both are
the workbook port's JSON exchange (``workbook.port``, ``docs/architecture.md``), version
``EXCHANGE_VERSION``:

* the request is a source document (``"sheets"``: the open document's values, formulas in
  Excel syntax, date cells, hidden rows, merged areas) plus ``"command"`` and, as needed,
  ``"path"`` (the document's file), ``"active"`` (``{"sheet", "cell"}``) and ``"query"``;
* the answer is a plan document (``"clear"``, ``"cells"``) plus ``"message"`` and
  ``"level"`` for the message box, ``"counts"``, and per command ``"outputs"`` (files
  written) or ``"matches"`` (Facteurs); or ``{"version", "error"}``, shown as is.

``respond`` is pure (a request in, an ``Answer`` out); the files an answer names (Rapport)
are written by the CLI, atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from carbonclap_xl.core.errors import ExchangeError
from carbonclap_xl.core.factors import Activity, FactorEdition, load_edition
from carbonclap_xl.core.issues import Issue, counts_text, group_issues, severity_counts
from carbonclap_xl.core.numbers import fr_number
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.workbook.pipeline import Processed, run
from carbonclap_xl.workbook.plan import controles_writes
from carbonclap_xl.workbook.port import (
    EXCHANGE_VERSION,
    MemorySource,
    WritePlan,
    plan_to_json,
    source_from_json,
)
from carbonclap_xl.workbook.rules import computed_cell_issues, dangerous_formula_issues

COMMANDS = ("Recalculer", "Verifier", "Rapport", "Facteurs")
MAX_MATCHES = 1_000  # above the catalogue (254): an empty query lists it all


@dataclass
class Answer:
    """The JSON answer, and the files it announces (written by the caller)."""

    doc: dict[str, Any]
    outputs: dict[Path, bytes] = field(default_factory=dict)


def respond(request: Any, edition: FactorEdition | None = None) -> Answer:
    """The answer to one request of the extension; ExchangeError for a request that cannot
    be answered (its message is for the user)."""
    if not isinstance(request, Mapping):
        raise ExchangeError("La requête de l'extension n'est pas un objet JSON.")
    if request.get("version") != EXCHANGE_VERSION:
        raise ExchangeError(f"Version d'échange {request.get('version')!r} inconnue (attendue : "
                            f"{EXCHANGE_VERSION}) : installez l'extension livrée avec ce "
                            "carbonclap-xl (« carbonclap-xl libreoffice install »).")
    command = request.get("command")
    handler = _HANDLERS.get(command) if isinstance(command, str) else None
    if handler is None:
        raise ExchangeError(f"Commande « {command} » inconnue (commandes : "
                            f"{', '.join(COMMANDS)}).")
    return handler(request, edition)


# --------------------------------------------------------------------------- the workbook


def _source(request: Mapping[str, Any]) -> MemorySource:
    sheets = request.get("sheets")
    if not isinstance(sheets, Mapping) or not sheets:
        raise ExchangeError("Le document envoyé par l'extension n'a aucune feuille.")
    for name, sheet in sheets.items():
        values = sheet.get("values") if isinstance(sheet, Mapping) else None
        if not isinstance(values, list) or not all(isinstance(r, list) for r in values):
            raise ExchangeError(f"La feuille « {name} » envoyée par l'extension est illisible "
                                "(« values » doit être une liste de lignes).")
    try:
        return source_from_json(request)
    except (TypeError, ValueError, AttributeError) as exc:
        raise ExchangeError(f"Le document envoyé par l'extension est illisible ({exc}).") from None


def _processed(request: Mapping[str, Any], edition: FactorEdition | None
               ) -> tuple[MemorySource, Processed]:
    source = _source(request)
    processed = run(source, edition)
    if not processed.data.is_carbonclap:  # the reader's one issue says why, in French
        raise ExchangeError(processed.issues[0].message)
    return source, processed


def _totals(processed: Processed) -> str:
    t = processed.result.total_kg
    return (f"{fr_number(t.forecast / 1000)} tCO2e en prévisionnel, "
            f"{fr_number(t.final / 1000)} tCO2e en définitif")


def _level(issues: list[Issue]) -> str:
    counts = severity_counts(issues)
    return "warning" if counts["errors"] or counts["warnings"] else "info"


def recalculer(request: Mapping[str, Any], edition: FactorEdition | None = None) -> Answer:
    """The cells ``process`` writes (computed columns, Synthèse, Contrôles), as a plan."""
    _, processed = _processed(request, edition)
    issues = processed.issues
    message = (f"Bilan recalculé : {_totals(processed)}.\n{counts_text(issues)}"
               + (" : voir la feuille Contrôles." if _level(issues) != "info" else "."))
    return Answer(plan_to_json(processed.plan(), message=message,
                               extra={"level": _level(issues),
                                      "counts": severity_counts(issues)}))


def verification_issues(source: MemorySource, processed: Processed) -> list[Issue]:
    """What the server's validation reports for this content (``validation.batch``): the
    pipeline's issues, dangerous formulas, stale and foreign computed cells. Macros and
    external link parts belong to files, not to an open document."""
    formulas = {name: source.structure(name).formulas for name in source.sheet_names()}
    return group_issues([*processed.issues, *dangerous_formula_issues(formulas),
                         *computed_cell_issues(processed)])


def verifier(request: Mapping[str, Any], edition: FactorEdition | None = None) -> Answer:
    """The server's validation, written to Contrôles only, with the counts."""
    source, processed = _processed(request, edition)
    issues = verification_issues(source, processed)
    plan = WritePlan()
    if L.SHEET_CONTROLES in processed.data.sheet_names:
        cells, clear = controles_writes(issues, processed.data.control_rows,
                                        processed.result)
        plan.update(L.SHEET_CONTROLES, cells)
        if clear:
            plan.clear[L.SHEET_CONTROLES] = clear
    counts = severity_counts(issues)
    verdict = ("Le bilan ne peut pas être déposé en l'état : corrigez les erreurs listées "
               "dans la feuille Contrôles." if counts["errors"] else
               "Aucune erreur : le bilan peut être déposé" + (
                   " (voir les avertissements dans Contrôles)." if counts["warnings"] else "."))
    message = f"Vérification : {counts_text(issues)}.\n{verdict}"
    return Answer(plan_to_json(plan, message=message,
                               extra={"level": _level(issues), "counts": counts}))


def rapport(request: Mapping[str, Any], edition: FactorEdition | None = None) -> Answer:
    """The footprint report of the open document and its summary, saved beside its file as
    ``<nom>-rapport.pdf`` and ``<nom>-bilan.json`` (``report.files``, the Excel ribbon's
    files too), replacing the previous ones."""
    from carbonclap_xl.report.files import report_files, written_text

    path = request.get("path")
    if not isinstance(path, str) or not path:
        raise ExchangeError("Enregistrez d'abord le classeur (Fichier > Enregistrer) : le "
                            "rapport est enregistré à côté de lui.")
    if Path(path).is_dir():
        raise ExchangeError(f"« {path} » n'est pas le fichier d'un classeur enregistré : "
                            "enregistrez le classeur, puis relancez Rapport.")
    _, processed = _processed(request, edition)
    made = report_files(Path(path), processed)
    issues = processed.issues
    message = (f"{written_text(made)}\n{_totals(processed)} ; {counts_text(issues)}."
               + ("\nLe rapport décrit le contenu ouvert, y compris les modifications non "
                  "enregistrées." if request.get("modified") else ""))
    doc = plan_to_json(WritePlan(), message=message,
                       extra={"level": "warning" if made.missing_pdf else "info",
                              "counts": severity_counts(issues),
                              "outputs": [str(p) for p in made.paths]})
    return Answer(doc, made.files)


# --------------------------------------------------------------------------- Facteurs


def search_activities(edition: FactorEdition, query: str, poste: str | None = None
                      ) -> list[Activity]:
    """Catalogue activities for ``query``, best first, those of ``poste`` first
    (``catalogue.rank_activities``, the search of every front door); an empty query gives
    the whole catalogue."""
    from carbonclap_xl.core.catalogue import rank_activities

    ranked = rank_activities(edition.activities.values(), query, prefer=poste)
    return [m.activity for m in ranked[:MAX_MATCHES]]


def facteurs(request: Mapping[str, Any], edition: FactorEdition | None = None) -> Answer:
    """Matches for the extension's search dialog (nothing is written here: the extension
    inserts the chosen label in the current cell)."""
    edition = edition or load_edition()
    query = str(request.get("query") or "").strip()
    active = request.get("active")
    sheet = active.get("sheet") if isinstance(active, Mapping) else None
    poste = next((p for p, s in L.POSTE_SHEETS.items() if s == sheet), None)
    found = search_activities(edition, query, poste)
    matches = [{"id": a.id, "label": a.label_fr, "unit": a.unit, "postes": list(a.postes),
                "factor_id": a.factor.id, "factor_value": a.factor.value,
                "factor_unit": a.factor.unit,
                "display": f"{a.label_fr} ({a.unit}) — {fr_number(a.factor.value, 4)} "
                           f"kgCO2e/{a.factor.unit}"} for a in found]
    if matches:
        message = f"{len(matches)} activité(s) ; choisissez-en une puis « Insérer »."
    else:
        message = f"Aucune activité ne correspond à « {query} » : essayez un autre mot."
    return Answer({"version": EXCHANGE_VERSION, "matches": matches, "count": len(matches),
                   "message": message})


_HANDLERS: dict[str, Callable[[Mapping[str, Any], FactorEdition | None], Answer]] = {
    "Recalculer": recalculer, "Verifier": verifier, "Rapport": rapport, "Facteurs": facteurs}
