"""``GET /docs``: the OpenAPI description as a plain page, served locally (no CDN, no
script): each route with its parameters, request body and answers. The machine-readable
schema is ``/openapi.json``."""

from __future__ import annotations

import html
from typing import Any

_METHODS = ("get", "post", "put", "patch", "delete")


def render_docs(schema: dict[str, Any]) -> str:
    e = html.escape
    info = schema.get("info", {})
    parts = [
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        f"<title>{e(info.get('title', 'API'))} — API</title>",
        "<link rel=\"stylesheet\" href=\"/static/app.css\"></head><body class=\"docs\">",
        f"<header class=\"bar\"><h1>{e(info.get('title', 'API'))}</h1>",
        f"<p>Version {e(str(info.get('version', '')))} · schéma OpenAPI : "
        "<a href=\"/openapi.json\">/openapi.json</a> · <a href=\"/\">page de dépôt</a></p>"
        "</header><main>",
        f"<p>{e(info.get('description', ''))}</p>",
    ]
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            parts.append(f"<section class=\"op\"><h2><span class=\"method\">{method.upper()}"
                         f"</span> <code>{e(path)}</code> — {e(op.get('summary', ''))}</h2>")
            if op.get("description"):
                parts.append(f"<p>{e(op['description'])}</p>")
            params = op.get("parameters", [])
            if params:
                parts.append("<table><thead><tr><th>paramètre</th><th>où</th><th>type</th>"
                             "<th>description</th></tr></thead><tbody>")
                for p in params:
                    kind = _type(p.get("schema", {}), schema.get("components", {}))
                    parts.append(f"<tr><td><code>{e(p['name'])}</code></td>"
                                 f"<td>{e(p.get('in', ''))}</td><td>{e(kind)}</td>"
                                 f"<td>{e(p.get('description', ''))}</td></tr>")
                parts.append("</tbody></table>")
            body = op.get("requestBody", {}).get("content", {})
            for media in body:
                parts.append(f"<p>Corps : <code>{e(media)}</code>, champ <code>file</code> "
                             "(le classeur).</p>")
            answers = op.get("responses", {})
            if answers:
                parts.append("<ul class=\"answers\">")
                for status, answer in answers.items():
                    parts.append(f"<li><code>{e(str(status))}</code> "
                                 f"{e(answer.get('description', ''))}</li>")
                parts.append("</ul>")
            parts.append("</section>")
    parts.append("</main></body></html>")
    return "".join(parts)


def _type(schema: dict[str, Any], components: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _type(components.get("schemas", {}).get(name, {"type": name}), components)
    if "enum" in schema:
        return " | ".join(str(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " | ".join(_type(s, components) for s in schema["anyOf"]
                          if s.get("type") != "null")
    return str(schema.get("type", ""))
