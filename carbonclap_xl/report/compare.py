"""Two result documents side by side: an earlier and a later submission of one production,
or two productions.

Totals, postes and natures are compared for each phase. When both documents come from the
same production (same title, or ``same_production=True``), their lines are matched too:

1. by **poste + activity + comment** (the activity id, or the typed reference such as
   ``BE:14015`` when the line cites a factor directly; comment and activity compared without
   case, accents kept, spaces collapsed); lines sharing one key are added together;
2. lines left over that are alone with their poste + activity on each side are then paired
   (the comment was edited), and flagged as such.

What remains is "appeared" (only in B) or "disappeared" (only in A). The poste is the sheet
the line sits on, so this is the sheet + activity + comment rule under a name that survives
a renamed sheet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from carbonclap_xl.core.model import NATURES, POSTE_BY_ID, POSTES
from carbonclap_xl.core.numbers import fr_mass
from carbonclap_xl.report.document import (
    NNBSP,
    PHASE_TITLE_FR,
    PHASES,
    clean_text,
    fr_percent,
    num,
)

TOP_CHANGES = 10


def _fold(text: Any) -> str:
    return re.sub(r"\s+", " ", clean_text(text, None)).strip().casefold()


def _delta(a: float, b: float) -> dict[str, float | None]:
    return {"a": a, "b": b, "delta": b - a, "delta_pct": (100.0 * (b - a) / a) if a else None}


def _phase_pair(doc: Mapping[str, Any] | None) -> tuple[float, float]:
    doc = doc if isinstance(doc, Mapping) else {}
    return num(doc.get("forecast")) or 0.0, num(doc.get("final")) or 0.0


def _breakdown(a: Mapping[str, Any], b: Mapping[str, Any],
               order: list[str]) -> dict[str, dict[str, dict[str, float | None]]]:
    keys = order + sorted(k for k in {*a, *b} if k not in order)
    out = {}
    for key in keys:
        fa, Fa = _phase_pair(a.get(key))
        fb, Fb = _phase_pair(b.get(key))
        out[key] = {"forecast": _delta(fa, fb), "final": _delta(Fa, Fb)}
    return out


def production_title(doc: Mapping[str, Any]) -> str:
    return clean_text(((doc.get("workbook") or {}).get("production") or {}).get("title"))


def _side(doc: Mapping[str, Any], path: str | Path | None) -> dict[str, Any]:
    workbook = doc.get("workbook") or {}
    counts = doc.get("counts") or {}
    return {
        "path": str(path if path is not None else workbook.get("path") or ""),
        "title": production_title(doc) or None,
        "phase": (workbook.get("production") or {}).get("phase"),
        "product_version": (doc.get("product") or {}).get("version"),
        "factor_edition": (doc.get("factor_edition") or {}).get("edition"),
        "lines": counts.get("lines"),
        "errors": counts.get("errors"),
    }


def _line_key(line: Mapping[str, Any]) -> tuple[str, str, str]:
    activity = line.get("activity_id") or line.get("activity")
    return (str(line.get("poste") or ""), _fold(activity), _fold(line.get("comment")))


def _group(doc: Mapping[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for line in doc.get("lines") or []:
        if not isinstance(line, Mapping) or str(line.get("status") or "") == "error":
            continue
        key = _line_key(line)
        g = groups.setdefault(key, {
            "poste": key[0], "sheet": clean_text(line.get("sheet")),
            "activity": clean_text(line.get("activity_label") or line.get("activity")),
            "comment": clean_text(line.get("comment")), "rows": [], "count": 0,
            "forecast": 0.0, "final": 0.0})
        g["count"] += 1
        row = num(line.get("row"))
        if row is not None:
            g["rows"].append(int(row))
        g["forecast"] += num(line.get("co2e_forecast_kg")) or 0.0
        g["final"] += num(line.get("co2e_final_kg")) or 0.0
    return groups


def _line_out(g: Mapping[str, Any]) -> dict[str, Any]:
    return {"poste": g["poste"], "sheet": g["sheet"], "rows": g["rows"],
            "activity": g["activity"], "comment": g["comment"],
            "forecast_kg": g["forecast"], "final_kg": g["final"]}


def match_lines(doc_a: Mapping[str, Any], doc_b: Mapping[str, Any],
                top: int = TOP_CHANGES) -> dict[str, Any]:
    """Lines appeared, disappeared and changed most between two documents of one
    production (see the module docstring for the matching rule)."""
    a, b = _group(doc_a), _group(doc_b)
    pairs = [(a[k], b[k], False) for k in a if k in b]
    only_a = {k: g for k, g in a.items() if k not in b}
    only_b = {k: g for k, g in b.items() if k not in a}
    # second pass: poste + activity alone on each side → the comment was edited
    by_act_a: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    by_act_b: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for k in only_a:
        by_act_a.setdefault(k[:2], []).append(k)
    for k in only_b:
        by_act_b.setdefault(k[:2], []).append(k)
    for act, keys_a in by_act_a.items():
        keys_b = by_act_b.get(act, [])
        if len(keys_a) == 1 and len(keys_b) == 1:
            pairs.append((only_a.pop(keys_a[0]), only_b.pop(keys_b[0]), True))

    def size(g: Mapping[str, Any]) -> float:
        return max(abs(g["forecast_kg"]), abs(g["final_kg"]))

    changed = []
    for ga, gb, edited in pairs:
        delta = {p: _delta(ga[p], gb[p]) for p in PHASES}
        if max(abs(d["delta"]) for d in delta.values()) > 1e-9:
            changed.append({**_line_out(gb), "rows_a": ga["rows"], "comment_a": ga["comment"],
                            "comment_edited": edited, **delta})
    changed.sort(key=lambda c: -max(abs(c["forecast"]["delta"]), abs(c["final"]["delta"])))
    for c in changed:
        del c["forecast_kg"], c["final_kg"]
    return {
        "matched": len(pairs),
        "comment_edited": sum(1 for *_pair, edited in pairs if edited),
        "changed_total": len(changed),
        "changed": changed[:top],
        "appeared": sorted((_line_out(g) for g in only_b.values()), key=lambda g: -size(g)),
        "disappeared": sorted((_line_out(g) for g in only_a.values()), key=lambda g: -size(g)),
    }


def compare(doc_a: Mapping[str, Any], doc_b: Mapping[str, Any], *,
            path_a: str | Path | None = None, path_b: str | Path | None = None,
            same_production: bool | None = None, top: int = TOP_CHANGES) -> dict[str, Any]:
    """The comparison document (the JSON of ``compare --json``); all values in kgCO2e."""
    title_a, title_b = production_title(doc_a), production_title(doc_b)
    auto_same = bool(title_a) and _fold(title_a) == _fold(title_b)
    same = auto_same if same_production is None else same_production
    fa, Fa = _phase_pair(doc_a.get("total_kgco2e"))
    fb, Fb = _phase_pair(doc_b.get("total_kgco2e"))
    return {
        "a": _side(doc_a, path_a),
        "b": _side(doc_b, path_b),
        "same_production": same,
        "same_production_reason": ("forced" if same_production is not None
                                   else "same title" if auto_same else "different titles"),
        "line_key": ["poste", "activity", "comment"],
        "unit": "kgCO2e",
        "total": {"forecast": _delta(fa, fb), "final": _delta(Fa, Fb)},
        "by_poste": _breakdown(doc_a.get("by_poste") or {}, doc_b.get("by_poste") or {},
                               [p.id for p in POSTES]),
        "by_nature": _breakdown(doc_a.get("by_nature") or {}, doc_b.get("by_nature") or {},
                                [n.id for n in NATURES]),
        "lines": match_lines(doc_a, doc_b, top) if same else None,
    }


# --------------------------------------------------------------------------- text


def _label(kind: str, key: str) -> str:
    if kind == "poste":
        return POSTE_BY_ID[key].label_fr.split(" (")[0] if key in POSTE_BY_ID else key
    from carbonclap_xl.report.document import nature_label

    return nature_label(key)


def _cells(d: Mapping[str, Any]) -> str:
    share = None if d["delta_pct"] is None else d["delta_pct"] / 100
    return (f"{_mass(d['a']):>12}{_mass(d['b']):>12}"
            f"{_mass(d['delta'], signed=True):>12}{fr_percent(share, signed=True):>12}")


def _mass(kg: float | None, signed: bool = False) -> str:
    """kg under a tonne, tonnes above (``core.numbers.fr_mass``): a small line reads
    « 12 kg », not « 0,01 »."""
    x = num(kg)
    return "—" if x is None else fr_mass(x, signed=signed)


def _line_name(line: Mapping[str, Any]) -> str:
    rows = line.get("rows") or []
    where = f"{line['sheet']} l.{NNBSP}{rows[0]}" if rows else line["sheet"]
    comment = f" — {line['comment']}" if line.get("comment") else ""
    return clean_text(f"{where} · {line['activity']}{comment}", 90)


def compare_text(cmp: Mapping[str, Any]) -> str:
    """The comparison for a terminal, in French (kg under a tonne, tonnes above)."""
    a, b = cmp["a"], cmp["b"]
    out = [f"A : {a['title'] or '(sans titre)'} — {a['path']}",
           f"B : {b['title'] or '(sans titre)'} — {b['path']}"]
    for phase in PHASES:
        out.append("")
        out.append(f"{PHASE_TITLE_FR[phase] + ' (CO2e)':<36}{'A':>12}{'B':>12}{'écart':>12}"
                   f"{'écart %':>12}")
        for kind, key in (("poste", "by_poste"), ("nature", "by_nature")):
            for k, v in cmp[key].items():
                d = v[phase]
                if d["a"] or d["b"]:
                    out.append(f"  {_label(kind, k)[:33]:<34}{_cells(d)}")
            if kind == "poste":
                out.append(f"{'TOTAL':<36}{_cells(cmp['total'][phase])}")
                out.append("  par nature :")
    lines = cmp.get("lines")
    out.append("")
    if lines is None:
        out.append("Productions différentes (titres différents) : lignes non comparées ; "
                   "--same-production pour les comparer quand même.")
        return "\n".join(out)
    out.append(f"Lignes (appariées par poste + activité + commentaire) : {lines['matched']} "
               f"appariée(s) dont {lines['changed_total']} modifiée(s) et "
               f"{lines['comment_edited']} au commentaire modifié, "
               f"{len(lines['appeared'])} apparue(s), {len(lines['disappeared'])} disparue(s).")
    for title, items in (("Apparues dans B", lines["appeared"]),
                         ("Disparues de A", lines["disappeared"])):
        if items:
            out.append(f"{title} (prév. / déf., CO2e) :")
            for line in items:
                out.append(f"  {_line_name(line):<70}{_mass(line['forecast_kg']):>11}"
                           f"{_mass(line['final_kg']):>11}")
    if lines["changed"]:
        out.append("Lignes qui changent le plus (écart prév. / écart déf., CO2e) :")
        for c in lines["changed"]:
            out.append(f"  {_line_name(c):<70}"
                       f"{_mass(c['forecast']['delta'], signed=True):>11}"
                       f"{_mass(c['final']['delta'], signed=True):>11}")
    return "\n".join(out)
