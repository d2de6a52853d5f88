"""The report as one self-contained HTML file: styles inline, charts as ``data:`` URIs.

It opens offline in any browser and prints on A4. Every text that comes from the workbook
(titles, comments, activity labels, messages, paths) is escaped with ``html.escape``.
"""

from __future__ import annotations

import base64
from html import escape

from carbonclap_xl.report.content import (
    Block,
    Heading,
    Image,
    KeyFigures,
    Para,
    Table,
    blocks,
    subtitle,
)
from carbonclap_xl.report.document import ReportModel

CSS = """
@page { size: A4; margin: 16mm 15mm; }
:root { --ink: #1d2a33; --muted: #5b6770; --rule: #c9d2d8; --band: #f1f5f8; --accent: #1f4e79; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Segoe UI", Arial, sans-serif; color: var(--ink);
       max-width: 190mm; margin: 0 auto; padding: 12px 16px 40px; font-size: 10.5pt;
       line-height: 1.45; }
h1 { font-size: 20pt; margin: 0.4em 0 0.1em; color: var(--accent); }
.subtitle { color: var(--muted); margin: 0 0 1.2em; }
h2 { font-size: 13pt; margin: 1.6em 0 0.5em; padding-bottom: 2px;
     border-bottom: 2px solid var(--accent); break-after: avoid; }
p { margin: 0.4em 0; }
p.note { color: var(--muted); font-size: 9pt; }
p.alert { border-left: 4px solid #8c3b0c; padding: 4px 10px; background: #fbeee4; }
.figures { display: flex; gap: 10px; flex-wrap: wrap; margin: 0.6em 0; }
.figure { flex: 1 1 150px; border: 1px solid var(--rule); border-radius: 4px;
          padding: 8px 12px; background: var(--band); }
.figure .label { font-size: 9pt; color: var(--muted); }
.figure .value { font-size: 17pt; font-weight: bold; white-space: nowrap; }
.figure .detail { font-size: 9pt; }
table { border-collapse: collapse; width: 100%; margin: 0.5em 0; font-size: 9pt;
        break-inside: auto; }
th, td { padding: 3px 6px; border-bottom: 1px solid var(--rule); vertical-align: top;
         text-align: left; }
th { background: #e3e9ee; font-weight: bold; }
tbody tr:nth-child(even) td { background: var(--band); }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.bold td { font-weight: bold; }
caption { caption-side: bottom; text-align: left; color: var(--muted); font-size: 8.5pt;
          padding-top: 2px; }
img.chart { display: block; width: 100%; max-width: 170mm; height: auto; margin: 0.6em 0;
            break-inside: avoid; }
footer { margin-top: 2em; color: var(--muted); font-size: 8.5pt; border-top: 1px solid var(--rule);
         padding-top: 4px; }
@media print { body { padding: 0; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
"""


def _e(text: str) -> str:
    return escape(text, quote=True)


def _table(t: Table) -> str:
    total = sum(t.widths) or 1.0
    cols = "".join(f'<col style="width:{100 * w / total:.1f}%">' for w in t.widths)
    head = ""
    if any(t.headers):
        head = "<thead><tr>" + "".join(
            f'<th class="{"num" if a == "R" else "txt"}">{_e(h)}</th>'
            for h, a in zip(t.headers, t.align, strict=True)) + "</tr></thead>"
    body = []
    for k, row in enumerate(t.rows):
        cls = ' class="bold"' if k in t.bold_rows else ""
        cells = "".join(f'<td class="{"num" if a == "R" else "txt"}">{_e(c)}</td>'
                        for c, a in zip(row, t.align, strict=True))
        body.append(f"<tr{cls}>{cells}</tr>")
    caption = f"<caption>{_e(t.caption)}</caption>" if t.caption else ""
    return (f"<table>{caption}<colgroup>{cols}</colgroup>{head}<tbody>"
            + "".join(body) + "</tbody></table>")


def _block(b: Block, charts: dict[str, bytes]) -> str:
    if isinstance(b, Heading):
        return f"<h{b.level}>{_e(b.text)}</h{b.level}>"
    if isinstance(b, Para):
        cls = f' class="{b.style}"' if b.style != "normal" else ""
        return f"<p{cls}>{_e(b.text)}</p>"
    if isinstance(b, KeyFigures):
        return '<div class="figures">' + "".join(
            f'<div class="figure"><div class="label">{_e(f.label)}</div>'
            f'<div class="value">{_e(f.value)}</div><div class="detail">{_e(f.detail)}</div>'
            "</div>" for f in b.items) + "</div>"
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Image):
        png = charts.get(b.name)
        if png is None:
            return ""
        data = base64.b64encode(png).decode("ascii")
        return f'<img class="chart" alt="{_e(b.alt)}" src="data:image/png;base64,{data}">'
    raise TypeError(f"unknown block {b!r}")  # pragma: no cover - a programming error


def render_html(model: ReportModel, charts: dict[str, bytes]) -> str:
    body = "\n".join(_block(b, charts) for b in blocks(model))
    title = f"Bilan carbone — {model.title}"
    return f"""<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{_e(model.product)}">
<title>{_e(title)}</title>
<style>{CSS}</style>
</head>
<body>
<h1>{_e(title)}</h1>
<p class="subtitle">{_e(subtitle(model))}</p>
{body}
<footer>{_e(title)} · {_e(model.product)} · facteurs {_e(model.edition)}</footer>
</body>
</html>
"""
