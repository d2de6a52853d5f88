"""What ``import-devis`` decided, in French: the summary it prints and the CSV report of every
budget row (``--report``)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from carbonclap_xl.core.csvout import DEFAULT_CSV_FORMAT, CsvFormat, CsvWriter
from carbonclap_xl.core.model import POSTE_IDS
from carbonclap_xl.intake.devis import (
    ALREADY,
    DUPLICATE,
    EXCLUDED,
    FINAL,
    FORECAST,
    IMPORTED,
    LAYOUT_FR,
    NOT_PLACED,
    PHASE_ABBR,
    PHASE_FR,
    SUBTOTAL,
    TITLE,
    ZERO,
    BudgetAnalysis,
    BudgetRow,
    euros,
    poste_label,
)

MAX_LISTED = 12


def _label(row: BudgetRow) -> str:
    return row.shown


def _amounts(row: BudgetRow) -> str:
    return row.amount_text() or "sans montant"


def _listed(lines: list[str], verbose: bool) -> list[str]:
    shown = lines if verbose else lines[:MAX_LISTED]
    if len(lines) > len(shown):
        shown = [*shown, f"  … et {len(lines) - len(shown)} autre(s) (-v, ou --report "
                         "FICHIER.csv pour toutes les lignes)"]
    return shown


def summary(analysis: BudgetAnalysis, verbose: bool = False) -> list[str]:
    """The decisions, in the order a line producer checks them."""
    a = analysis
    out = [f"Devis lu : {a.path.name}, feuille « {a.sheet} »"]
    if a.sheets_skipped:
        out.append("  autres feuilles non lues : " + " ; ".join(a.sheets_skipped))
    how = "imposée par --layout" if a.layout_forced else "détectée"
    out.append(f"Mise en page ({how}) : {LAYOUT_FR[a.layout]}")
    above = f" (au-dessus : titre, lignes 1 à {a.header_row - 1})" if a.header_row > 1 else ""
    out.append(f"Ligne d'en-tête : {a.header_row}{above}")
    cols = a.columns
    parts = []
    if cols.get("code"):
        parts.append(f"code {cols['code']}")
    elif any(r.code for r in a.rows):
        parts.append("codes lus en tête des libellés")
    parts.append(f"libellé {cols['label']}")
    for phase in (FORECAST, FINAL):
        column = cols.get(phase)
        parts.append(f"{PHASE_FR[phase]} {column}" if column else f"{PHASE_FR[phase]} : aucune "
                     "colonne")
    out.append("Colonnes : " + " ; ".join(parts))
    if a.notes_columns:
        out.append("  notes reprises en commentaire : "
                   + ", ".join(str(c) for c in a.notes_columns))
    if a.hidden_columns:
        out.append("  colonnes masquées, jamais prises comme montants (--forecast-column ou "
                   "--final-column pour en choisir une) : "
                   + ", ".join(str(c) for c in a.hidden_columns))
    if a.ignored_columns:
        out.append("  autres colonnes non utilisées : "
                   + ", ".join(str(c) for c in a.ignored_columns))
    scale = [f"{PHASE_FR[p]} en k€ (× 1 000)" for p, s in a.scale.items() if s == 1e3]
    if scale:
        out.append("  montants convertis en € : " + ", ".join(scale))
    vat = (f"montants TTC ramenés en HT (÷ {1 + a.ttc_rate / 100:.3f})".replace(".", ",")
           if a.ttc_rate is not None else "montants lus comme € HT")
    out.append(f"Unité : {vat}, de l'année du devis, sans déflation (ratios ADEME en kgCO2e par "
               "k€ 2023 HT).")
    hidden_rows = [r for r in a.rows if r.hidden and r.decision == IMPORTED]
    counts = defaultdict(int)
    for r in a.rows:
        counts[r.decision] += 1
    arithmetic = [r for r in a.rows if r.by_arithmetic]
    out.append(
        f"Lignes : {len(a.rows)} sous l'en-tête — {counts[IMPORTED]} importée(s), "
        f"{counts[EXCLUDED]} exclue(s), {counts[NOT_PLACED]} non placée(s), "
        f"{counts[ZERO]} sans montant, {counts[DUPLICATE]} doublon(s) probable(s), "
        f"{counts[ALREADY]} déjà importée(s) ; {counts[SUBTOTAL]} sous-total(aux) et totaux "
        f"écartés (dont {len(arithmetic)} reconnu(s) par le calcul), "
        f"{counts['en-tête'] + counts[TITLE]} titre(s) de chapitre.")
    if hidden_rows:
        out.append(f"  dont {len(hidden_rows)} ligne(s) masquée(s) importée(s) (groupes "
                   "repliés) : " + ", ".join(str(r.row) for r in hidden_rows[:10]))
    out += _by_poste(a)
    excluded = a.of(EXCLUDED)
    if excluded:
        out.append("Exclu (aucune émission propre) :")
        groups: dict[str, list[BudgetRow]] = defaultdict(list)
        for r in excluded:
            groups[r.why].append(r)
        for why, rows in groups.items():
            total = {p: sum(r.amounts.get(p) or 0 for r in rows) for p in a.phases}
            money = " ; ".join(f"{PHASE_ABBR[p]} {euros(v)}" for p, v in total.items())
            out.append(f"  {len(rows)} ligne(s), {money} — {why}")
    not_placed = a.of(NOT_PLACED)
    if not_placed:
        out.append("Non placé (à saisir en données physiques, ou à classer) :")
        out += _listed([f"  {_label(r)} — {_amounts(r)} : {r.why}" for r in not_placed],
                       verbose)
    duplicates = a.of(DUPLICATE)
    if duplicates:
        out.append("Doublons probables (écrits sans quantité, donc non comptés ; montants en "
                   "commentaire) :")
        out += [f"  {_label(r)} — {_amounts(r)} : {r.why}" for r in duplicates]
    already = a.of(ALREADY)
    if already:
        out.append(f"Déjà importé dans ce classeur (non réécrit) : {len(already)} ligne(s)")
        out += _listed([f"  {_label(r)} : {r.why}" for r in already if "changés" in r.why],
                       verbose)
    if arithmetic:
        out.append("Sous-totaux reconnus par le calcul seul (vérifiez) :")
        out += _listed([f"  {_label(r)} : {r.why}" for r in arithmetic], verbose)
    defaults = [r for r in a.of(IMPORTED) if r.rule.endswith("(défaut)")]
    if defaults:
        out.append(f"Placé par le défaut du chapitre, faute de sous-chapitre ou de libellé "
                   f"connu (vérifiez) : {len(defaults)} ligne(s)")
        out += _listed([f"  {_label(r)} → {poste_label(r.poste)}" for r in defaults],
                       verbose)
    if verbose:
        out.append("Lignes importées :")
        out += [f"  {_label(r)} — {_amounts(r)} → {poste_label(r.poste)}, {r.activity} "
                f"({r.rule})" for r in a.of(IMPORTED)]
    for message in a.messages:
        out.append(f"Remarque : {message}")
    if a.grand_total:
        shown = " ; ".join(f"{PHASE_ABBR[p]} {euros(v)}" for p, v in a.grand_total.items()
                           if v is not None)
        out.append(f"Total du devis lu : {shown}")
    if len(a.mapping_sources) > 1:
        out.append("Table de correspondance : " + " + ".join(a.mapping_sources))
    return out


def _by_poste(a: BudgetAnalysis) -> list[str]:
    rows = a.of(IMPORTED, DUPLICATE)
    if not rows:
        return ["Importé : aucune ligne."]
    out = [f"{'Importé par poste':<52}{'lignes':>7}" + "".join(
        f"{PHASE_FR[p]:>17}" for p in a.phases)]
    totals = {p: 0.0 for p in a.phases}
    count = 0
    for poste in POSTE_IDS:
        mine = [r for r in rows if r.poste == poste and r.decision == IMPORTED]
        if not mine:
            continue
        count += len(mine)
        sums = {p: sum(r.amounts.get(p) or 0 for r in mine) for p in a.phases}
        for p in a.phases:
            totals[p] += sums[p]
        out.append(f"  {poste_label(poste):<50}{len(mine):>7}"
                   + "".join(f"{euros(sums[p]):>17}" for p in a.phases))
    out.append(f"  {'Total compté':<50}{count:>7}"
               + "".join(f"{euros(totals[p]):>17}" for p in a.phases))
    return out


REPORT_COLUMNS = ("ligne", "code", "libellé", "chapitre", "sous-chapitre", "prévisionnel (€)",
                  "définitif (€)", "décision", "poste", "activité", "règle", "motif", "note")


def write_report(analysis: BudgetAnalysis, path: Path,
                 fmt: CsvFormat = DEFAULT_CSV_FORMAT) -> None:
    """Every row under the header with its decision, as a CSV in ``fmt`` (``excel-fr`` by
    default: ``;``, decimal commas, UTF-8 with BOM, amounts to the cent; every text cell
    safe from formula injection: a budget label such as ``-Régie`` stays text)."""
    with open(path, "w", encoding=fmt.encoding, newline="") as f:
        writer = CsvWriter(f, REPORT_COLUMNS, fmt,
                           decimals={"prévisionnel (€)": 2, "définitif (€)": 2})
        for r in analysis.rows:
            writer.row([
                r.row, r.code_text, r.label, r.chapter.label if r.chapter else "", r.sub or "",
                r.amounts.get(FORECAST), r.amounts.get(FINAL), r.decision,
                r.poste or "", r.activity or "", r.rule, r.why, r.note])
