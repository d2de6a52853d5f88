"""What the report says, in reading order, as plain blocks that both renderers draw.

``blocks(model)`` is the one place where the report's French text, tables and chart slots
are decided; ``html.py`` and ``pdf.py`` only lay them out, so the two documents always carry
the same content. Every string here is plain text (the renderers escape it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from carbonclap_xl.core.model import DATA_SOURCES, PHASE_LABEL_FR, PHASE_QUANTITY_FR, Phase
from carbonclap_xl.report.document import (
    NNBSP,
    PHASES,
    SEVERITY_TITLE_FR,
    IssueRow,
    LineRow,
    ReportModel,
    Row,
    fr_number,
    fr_percent,
    fr_tonnes,
    quality_sentence,
)


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Para:
    text: str
    style: str = "normal"  # normal, note, alert


@dataclass
class KeyFigure:
    label: str
    value: str
    detail: str


@dataclass
class KeyFigures:
    items: list[KeyFigure]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    align: str  # one letter per column: L (text) or R (numbers)
    widths: list[float]  # relative column widths
    bold_rows: set[int] = field(default_factory=set)
    caption: str = ""


@dataclass
class Image:
    name: str  # a key of charts.report_charts()
    alt: str


Block = Heading | Para | KeyFigures | Table | Image


def _t(kg: float | None, decimals: int = 2, signed: bool = False) -> str:
    return fr_tonnes(kg, decimals, signed)


def _total_figure(model: ReportModel, phase: str) -> KeyFigure:
    label = f"Bilan {PHASE_LABEL_FR[Phase(phase)]}"
    if not model.filled[phase]:
        return KeyFigure(label, "non renseigné", "aucune quantité saisie pour cette phase")
    kg, u = model.total.get(phase), model.total.u(phase)
    rel = f" (±{NNBSP}{fr_percent(u / kg)})" if u is not None and kg else ""
    return KeyFigure(label, f"{_t(kg, 1)}{NNBSP}tCO2e",
                     f"incertitude ±{NNBSP}{_t(u, 1)}{NNBSP}t{rel}" if u is not None else "")


def _pt(model: ReportModel, phase: str, kg: float | None) -> str:
    """Tonnes for a phase, or « — » when no line carries that phase."""
    return _t(kg) if model.filled[phase] else "—"


def _ps(model: ReportModel, phase: str, kg: float) -> str:
    """Share of the phase total, or « — » when no line carries that phase."""
    return fr_percent(model.share(kg, phase)) if model.filled[phase] else "—"


def _breakdown_table(rows: list[Row], model: ReportModel, first: str) -> Table:
    main = model.main_phase
    both = model.filled["forecast"] and model.filled["final"]
    body = []
    for r in [*rows, model.total]:
        body.append([r.label, _pt(model, "forecast", r.forecast),
                     _pt(model, "forecast", r.u_forecast), _pt(model, "final", r.final),
                     _pt(model, "final", r.u_final),
                     _t(r.delta, signed=True) if both else "—",
                     fr_percent(r.delta_share, signed=True) if both else "—",
                     _ps(model, main, r.get(main))])
    return Table([first, "Prév.", "±", "Déf.", "±", "Écart", "Écart %",
                  f"Part ({'déf.' if main == 'final' else 'prév.'})"],
                 body, "LRRRRRRR", [34, 10, 8, 10, 8, 10, 10, 10], bold_rows={len(body) - 1},
                 caption="tCO2e ; ± : incertitude absolue de chaque phase.")


def _line_label(r: LineRow) -> str:
    return r.activity + (f" — {r.comment}" if r.comment else "")


def _qty(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    decimals = 0 if float(value).is_integer() else 2
    return f"{fr_number(value, decimals)}{NNBSP}{unit}".strip()


def _issue_rows(model: ReportModel) -> list[list[str]]:
    """Errors and warnings one by one; infos grouped by code (they repeat, one per factor)."""
    rows: list[list[str]] = []
    infos: dict[str, list[IssueRow]] = {}
    for i in model.issues:
        if i.severity == "info":
            infos.setdefault(i.code, []).append(i)
        else:
            rows.append([SEVERITY_TITLE_FR.get(i.severity, i.severity), i.code,
                         i.where or "—", i.message])
    for code, group in infos.items():
        places = [i.where for i in group if i.where]
        where = ", ".join(places[:6]) + (f" … (+{len(places) - 6})" if len(places) > 6 else "")
        message = group[0].message + (f" (et {len(group) - 1} autre(s) du même type)"
                                      if len(group) > 1 else "")
        rows.append([SEVERITY_TITLE_FR["info"] + (f" ×{len(group)}" if len(group) > 1 else ""),
                     code, where or "—", message])
    return rows


def blocks(model: ReportModel) -> list[Block]:
    out: list[Block] = []
    main = model.main_phase
    main_fr = PHASE_LABEL_FR[Phase(main)]
    counts = model.counts

    # --- the essentials
    out.append(Heading("L'essentiel"))
    delta = model.total.delta
    share = model.total.delta_share
    figures = [_total_figure(model, "forecast"), _total_figure(model, "final")]
    if model.filled["forecast"] and model.filled["final"]:
        figures.append(KeyFigure("Écart définitif − prévisionnel",
                                 f"{_t(delta, 1, signed=True)}{NNBSP}tCO2e",
                                 f"{fr_percent(share, signed=True)} par rapport au prévisionnel"
                                 if share is not None else ""))
    out.append(KeyFigures(figures))
    errors, warnings = counts.get("errors", 0), counts.get("warnings", 0)
    lines_text = (f"{counts.get('lines', 0)} ligne(s) d'activité lue(s), "
                  f"{counts.get('excluded_lines', 0)} non comptée(s) ; "
                  f"{errors} erreur(s), {warnings} avertissement(s), "
                  f"{counts.get('infos', 0)} info(s) (détail en fin de rapport).")
    out.append(Para(lines_text))
    if errors:
        out.append(Para(f"Attention : {errors} erreur(s) restent dans le classeur ; les lignes "
                        "concernées ne sont pas comptées. Corrigez-les avant de déposer le "
                        "bilan.", "alert"))
    for phase in PHASES:
        if not model.filled[phase]:
            out.append(Para(f"Aucune quantité {PHASE_QUANTITY_FR[Phase(phase)]} n'est "
                            f"saisie : le bilan {PHASE_LABEL_FR[Phase(phase)]} reste à "
                            "établir.", "note"))
    out.append(Para(quality_sentence(model)))
    out.append(Para("L'incertitude combine celle du facteur d'émission et celle de la donnée "
                    "(facture ou relevé 5 %, devis 10 %, estimation 30 %, hypothèse 50 %). "
                    "L'erreur d'un facteur est la même pour toutes les lignes qui l'utilisent "
                    "(et les ratios monétaires de l'ADEME partagent une erreur de méthode) : "
                    "elle s'additionne sur ces lignes ; les erreurs sur les quantités, propres "
                    "à chaque ligne, se compensent en partie.", "note"))

    # --- production
    out.append(Heading("La production"))
    pairs = list(model.production)
    half = (len(pairs) + 1) // 2
    left, right = pairs[:half], pairs[half:] + [("", "")] * (2 * half - len(pairs))
    out.append(Table(["", "", "", ""], [[a, b, c, d] for (a, b), (c, d) in zip(
        left, right, strict=True)], "LLLL", [19, 31, 19, 31]))

    # --- postes and natures
    out.append(Heading("Émissions par poste"))
    out.append(Image("postes", "Émissions par poste, prévisionnel et définitif, en tCO2e"))
    out.append(_breakdown_table(model.postes, model, "Poste"))
    out.append(Heading("Émissions par nature"))
    out.append(Image("natures", "Émissions par nature, prévisionnel et définitif, en tCO2e"))
    out.append(_breakdown_table(model.natures, model, "Nature"))

    # --- changes
    out.append(Heading("Du prévisionnel au définitif"))
    if model.filled["forecast"] and model.filled["final"]:
        out.append(Image("ecarts", "Écart entre définitif et prévisionnel par poste, en tCO2e"))
        if model.changes:
            out.append(Para(f"Les {len(model.changes)} lignes dont les émissions changent le "
                            "plus entre les deux phases (en valeur absolue) :"))
            out.append(Table(
                ["Ligne", "Activité — commentaire", "Prév.", "Déf.", "Écart", "Écart %"],
                [[r.where, _line_label(r), _t(r.forecast), _t(r.final),
                  _t(r.delta, signed=True),
                  fr_percent(r.delta / r.forecast if r.forecast else None, signed=True)]
                 for r in model.changes],
                "LLRRRR", [14, 50, 9, 9, 9, 9], caption="tCO2e ; « — » : la ligne ne compte "
                "pas dans cette phase."))
        else:
            out.append(Para("Aucune ligne ne change entre les deux phases."))
    else:
        out.append(Para("Une seule phase est renseignée : pas d'écart à montrer.", "note"))

    # --- heaviest lines
    out.append(Heading(f"Les {len(model.heaviest)} lignes les plus lourdes (bilan {main_fr})"
                       if model.heaviest else "Les lignes les plus lourdes"))
    if model.heaviest:
        qty_key = "quantity_final" if main == "final" else "quantity_forecast"
        rows = []
        for k, r in enumerate(model.heaviest, 1):
            kg = r.final if main == "final" else r.forecast
            rows.append([str(k), r.where, _line_label(r), _qty(getattr(r, qty_key), r.unit),
                         r.data_source or "—", _t(kg),
                         fr_percent((r.uncertainty_pct or 0) / 100, 0)
                         if r.uncertainty_pct is not None else "—",
                         fr_percent(model.share(kg or 0.0, main))])
        out.append(Table(["", "Ligne", "Activité — commentaire", "Quantité", "Source",
                          "tCO2e", "±", "Part"], rows, "RLLRLRRR",
                         [4, 16, 38, 13, 9, 9, 6, 8]))
    else:
        out.append(Para("Aucune ligne comptée.", "note"))

    # --- indicators
    out.append(Heading("Indicateurs d'intensité et repères"))
    rows = []
    for ind in model.indicators:
        first = True
        values = [fr_number(v, ind.decimals) if model.filled[p] else "—"
                  for p, v in (("forecast", ind.forecast), ("final", ind.final))]
        if ind.forecast is None and ind.final is None:
            values = ["non calculé", ""]
        refs = ind.references or [None]
        for ref in refs:
            if ref is None:
                ref_cells = ["pas de repère publié", "", ""]
            else:
                ref_cells = [ref.what, fr_number(ref.value_t, 1 if ref.value_t < 100 else 0),
                             ref.source]
            rows.append(([f"{ind.label} ({ind.unit})", *values] if first else ["", "", ""])
                        + ref_cells)
            first = False
    out.append(Table(["Indicateur", "Prév.", "Déf.", "Repère", "Valeur", "Source du repère"],
                     rows, "LRRLRL", [21, 8, 8, 30, 8, 25]))
    out.append(Para("Les repères situent un ordre de grandeur (plausibilité), ce ne sont pas "
                    "des objectifs : ils portent sur d'autres œuvres, d'autres pays et d'autres "
                    "méthodes. Un indicateur « non calculé » attend sa donnée sur la feuille "
                    "Production (durée, budget, jours de tournage, épisodes).", "note"))

    # --- data quality
    out.append(Heading("Qualité des données"))
    out.append(Image("qualite", "Part des émissions selon la source des données, par phase"))
    rows = [[r.label if r is not model.monetary
             else f"dont ratios monétaires ({model.monetary_lines} ligne(s))",
             _pt(model, "forecast", r.forecast), _ps(model, "forecast", r.forecast),
             _pt(model, "final", r.final), _ps(model, "final", r.final)]
            for r in [*model.quality, model.monetary]]
    out.append(Table(["Source de la donnée", "Prév.", "Part", "Déf.", "Part"], rows, "LRRRR",
                     [48, 13, 13, 13, 13], bold_rows={len(rows) - 1}, caption="tCO2e."))
    out.append(Para("Un ratio monétaire (kgCO2e par k€ dépensé, ADEME) estime une dépense sans "
                    "savoir ce qui a été acheté : c'est la donnée la moins précise. Remplacer "
                    "les plus gros montants par des quantités physiques (kg de matériaux, jours "
                    "de matériel, kWh, km) améliore le bilan. Sources reconnues : "
                    + ", ".join(d.label_fr.lower() for d in DATA_SOURCES) + ".", "note"))

    # --- scopes
    out.append(Heading("Scopes 1, 2 et 3 (approximation)"))
    rows = [[*r.label.split(" — ", 1), _pt(model, "forecast", r.forecast),
             _ps(model, "forecast", r.forecast), _pt(model, "final", r.final),
             _ps(model, "final", r.final)] for r in model.scopes]
    out.append(Table(["Scope", "Périmètre retenu", "Prév.", "Part", "Déf.", "Part"], rows,
                     "LLRRRR", [10, 50, 10, 10, 10, 10], caption="tCO2e."))
    out.append(Para("Répartition approchée, déduite de la nature de chaque ligne et de son "
                    "facteur : les facteurs ADEME incluent l'amont des combustibles et de "
                    "l'électricité (qui relève en toute rigueur du scope 3), et les véhicules "
                    "comptés en kilomètres sont placés en scope 3 même s'ils sont loués par la "
                    "production. Elle ne remplace pas un bilan réglementaire (BEGES).", "note"))

    # --- issues
    out.append(Heading("Points de contrôle restants"))
    if model.issues:
        out.append(Para(f"{errors} erreur(s), {warnings} avertissement(s), "
                        f"{counts.get('infos', 0)} info(s), tels qu'ils figurent sur la "
                        "feuille Contrôles du classeur calculé."))
        out.append(Table(["Gravité", "Code", "Où", "Message"], _issue_rows(model), "LLLL",
                         [11, 26, 15, 48],
                         caption="Les infos d'un même code sont regroupées sur une ligne."
                         if any(i.severity == "info" for i in model.issues) else ""))
    else:
        out.append(Para("Aucun point de contrôle : le classeur ne signale ni erreur, ni "
                        "avertissement, ni information."))

    # --- method and sources
    out.append(Heading("Méthode, facteurs et sources"))
    out.append(Para(f"Calcul : {model.product}, émissions = quantité × facteur d'émission, "
                    "chaque quantité convertie dans l'unité de son facteur ; facteurs "
                    "« combustion ou fonctionnement + amont ». Classeur : "
                    f"{model.workbook_name or '—'} (modèle {model.template_version})."))
    out.append(Para(f"Édition des facteurs : {model.edition}."))
    if model.sources:
        out.append(Table(["Source", "Jeu de données", "Édition", "Licence"],
                         [[s["key"], s["dataset"], s["edition"], s["licence"]]
                          for s in model.sources], "LLLL", [12, 50, 10, 28]))
    for text in model.attribution:
        out.append(Para(text, "note"))
    return out


def subtitle(model: ReportModel) -> str:
    phases = " et ".join(PHASE_LABEL_FR[Phase(p)] for p in PHASES if model.filled[p])
    return (f"Bilan carbone {phases or '(aucune phase renseignée)'} · rapport établi le "
            f"{model.generated.strftime('%d/%m/%Y à %H:%M')} avec {model.product}")
