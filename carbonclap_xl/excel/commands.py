"""The ribbon's commands: Recalculer, Vérifier, Rapport, Facteurs.

Each one wraps the open book (``xw.Book.caller()``) in the workbook port and calls the same
pipeline as ``carbonclap-xl process`` (``workbook.pipeline.run``, ``Processed.plan()``), so a
click writes the cells ``process`` writes. Imports stay inside the functions: a click starts
a fresh Python (unless the warm server runs), and this module is imported by it first.

Every command takes the book and the ``Ui`` as optional arguments: the add-in calls them
without (the caller's book, Excel's dialogs), the tests hand in stand-ins. An error of this
product becomes a French message box; a bug keeps its traceback (xlwings shows it), so that
it gets reported.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

NOT_CARBONCLAP = ("Ce classeur n'est pas un classeur Carbon'Clap : créez-le avec "
                  "« carbonclap-xl new » ou partez du modèle CarbonClap.xlsx.")


def _context(book: Any, ui: Any) -> tuple[Any, Any]:
    if book is None:
        import xlwings as xw

        book = xw.Book.caller()
    if ui is None:
        from carbonclap_xl.excel.ui import XlwingsUi

        ui = XlwingsUi(book)
    return book, ui


def _run(book: Any, ui: Any) -> Any:
    """The pipeline on the open book; None (after saying why) when it is not ours."""
    from carbonclap_xl.excel.book import XlwingsSource
    from carbonclap_xl.workbook.pipeline import run

    ui.status("Carbon'Clap : lecture du classeur…")
    processed = run(XlwingsSource(book))
    if not processed.data.is_carbonclap:
        ui.status(None)
        ui.alert(NOT_CARBONCLAP)
        return None
    return processed


def _guarded(command: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    """The command with its book and ui resolved, this product's errors as a message box."""
    def run(book: Any = None, ui: Any = None) -> Any:
        from carbonclap_xl.core.errors import CarbonClapError

        book, ui = _context(book, ui)
        try:
            return command(book, ui)
        except CarbonClapError as exc:
            ui.status(None)
            ui.alert(f"Carbon'Clap : {exc}")
            return None

    run.__name__ = command.__name__
    run.__qualname__ = command.__qualname__
    run.__doc__ = command.__doc__
    return run


@_guarded
def recalculer(book: Any, ui: Any) -> Any:
    """Compute the open workbook and write the computed columns, Synthèse and Contrôles:
    the cells ``carbonclap-xl process`` writes, as live formulas."""
    from carbonclap_xl.core.issues import counts_text
    from carbonclap_xl.core.numbers import fr_number
    from carbonclap_xl.excel.book import XlwingsSink

    processed = _run(book, ui)
    if processed is None:
        return None
    ui.status("Carbon'Clap : écriture des résultats…")
    XlwingsSink(book).apply(processed.plan())
    total = processed.result.total_kg
    ui.status(f"Carbon'Clap : prévisionnel {fr_number(total.forecast / 1000)} t, définitif "
              f"{fr_number(total.final / 1000)} t ; {counts_text(processed.issues)}")
    errors = sum(1 for i in processed.issues if str(i.severity) == "error")
    if errors:
        ui.alert(f"{errors} erreur(s) : les lignes concernées ne sont pas comptées. Le détail "
                 "est dans l'onglet Contrôles (feuille, cellule, correction).")
    return processed


def check_issues(processed: Any, formulas: dict[str, dict[str, str]]) -> list[Any]:
    """What the funder's validation reports about the open workbook: the issues of
    ``process``, stale and foreign computed cells, and DDE or external-link formulas."""
    from carbonclap_xl.core.issues import group_issues
    from carbonclap_xl.workbook.rules import computed_cell_issues, dangerous_formula_issues

    return group_issues([*processed.issues, *computed_cell_issues(processed),
                         *dangerous_formula_issues(formulas)])


@_guarded
def verifier(book: Any, ui: Any) -> Any:
    """The funder's validation of the open workbook: every issue in Contrôles (nothing else
    is written), and the counts in a message box."""
    from carbonclap_xl.core.issues import severity_counts
    from carbonclap_xl.excel.book import XlwingsSink, XlwingsSource
    from carbonclap_xl.workbook.pipeline import compute_workbook
    from carbonclap_xl.workbook.plan import controles_plan
    from carbonclap_xl.workbook.read import read_workbook

    ui.status("Carbon'Clap : vérification…")
    source = XlwingsSource(book, every_formula=True)
    processed = compute_workbook(read_workbook(source))
    if not processed.data.is_carbonclap:
        ui.status(None)
        ui.alert(NOT_CARBONCLAP)
        return None
    formulas = {s: source.structure(s).formulas for s in source.sheet_names()}
    issues = check_issues(processed, formulas)
    XlwingsSink(book).apply(controles_plan(processed.data, issues, processed.result))
    counts = severity_counts(issues)
    ui.status(None)
    verdict = ("Le classeur peut être déposé." if counts["errors"] == 0 else
               "À corriger avant dépôt : voir l'onglet Contrôles.")
    ui.alert(f"{counts['errors']} erreur(s), {counts['warnings']} avertissement(s), "
             f"{counts['infos']} info(s). {verdict}")
    return issues


@_guarded
def rapport(book: Any, ui: Any) -> Any:
    """The footprint report and its summary (``<nom>-rapport.pdf``, ``<nom>-bilan.json``),
    written next to the workbook from the open book's content (``report.files``)."""
    from carbonclap_xl.report.files import write_report, written_text

    folder = Path(str(book.fullname)).parent
    if not str(book.fullname) or not folder.is_absolute() or not folder.is_dir():
        ui.alert("Enregistrez d'abord le classeur : le rapport s'écrit à côté de lui.")
        return None
    processed = _run(book, ui)
    if processed is None:
        return None
    made = write_report(book.fullname, processed)
    ui.status(None)
    ui.alert(written_text(made))
    return made.paths[-1]


@_guarded
def facteurs(book: Any, ui: Any) -> Any:
    """Search the catalogue and put the chosen activity's label in the active cell."""
    from carbonclap_xl.core.factors import load_edition
    from carbonclap_xl.core.worksheet import search_labels
    from carbonclap_xl.workbook import layout as L

    cell = book.selection
    sheet = cell.sheet
    poste = next((p for p, s in L.POSTE_SHEETS.items() if s == sheet.name), None)
    current = cell.value
    default = current if isinstance(current, str) else ""
    query = ui.ask("Mots à chercher dans le catalogue (ex. « train », « groupe "
                   "électrogène ») :", "Facteurs", default)
    if not query:
        return None
    labels = search_labels(load_edition(), query, poste)
    if not labels:
        ui.alert(f"Aucune activité ne correspond à « {query} ». Essayez un autre mot, ou citez "
                 "un facteur Base Empreinte « BE:<identifiant> ».")
        return None
    choice = labels[0] if len(labels) == 1 else ui.choose(
        f"{len(labels)} activité(s) pour « {query} » : tapez le numéro.", labels, "Facteurs")
    if choice is None:
        return None
    first = cell[0]
    if _locked(first):
        ui.alert("La cellule active est protégée : sélectionnez une cellule de la colonne "
                 "« Activité », puis recommencez.")
        return None
    first.value = "'" + choice  # text, never parsed as a formula or a number
    return choice


def _locked(cell: Any) -> bool:
    """True when Excel would refuse to write in ``cell`` (Windows tells; macOS: False)."""
    from carbonclap_xl.excel.book import SheetProtection

    locked = getattr(cell.api, "Locked", False)
    return bool(locked) and SheetProtection.is_protected(cell.sheet)


HANDLERS: dict[str, Callable[..., Any]] = {
    "cc_recalculer": recalculer,
    "cc_verifier": verifier,
    "cc_rapport": rapport,
    "cc_facteurs": facteurs,
}


def on_ribbon(control_id: str) -> Any:
    """What every ribbon button runs (the add-in's ``OnRibbon`` passes its id)."""
    return HANDLERS[control_id]()


__all__ = ["HANDLERS", "facteurs", "on_ribbon", "rapport", "recalculer", "verifier"]
