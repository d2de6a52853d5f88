"""The result schema: one typed structure for ``compute``, ``process``, ``validate`` and the
service, serialised in one place.

``Report`` gathers what any front door says about one input: the engine's result (totals,
breakdowns, uncertainty, indicators, provenance, lines), every issue, the workbook and its
production data, and for a submission its verdict. ``Report.to_dict()`` is the published
document (``docs/result-schema.json``, checked by the tests against real outputs);
``dumps`` writes it as JSON, fast (orjson) and strict (no NaN, no infinity: they become
null). ``batch_document`` wraps the reports of a batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from carbonclap_xl.core.issues import Issue, severity_counts

if TYPE_CHECKING:
    from carbonclap_xl.core.engine import EngineResult
    from carbonclap_xl.core.model import ProductionInfo

# 1.1: lines carry every input column (``count``, ``data_source_final`` included) and
# ``count_used``, ``count_unit``, ``factor_uncertainty_pct``, ``uncertainty_group``,
# ``uncertainty_forecast_pct``, ``uncertainty_final_pct``; uncertainties of totals share the
# factor errors (docs/methodology.md §3). Additive: a 1.0 reader still finds its fields.
SCHEMA_VERSION = "1.1"
STATUSES = ("ok", "errors", "rejected")


@dataclass(frozen=True)
class WorkbookInfo:
    path: str
    template_version: str | None
    production: ProductionInfo


@dataclass(frozen=True)
class Rejection:
    code: str
    reason: str


@dataclass
class Report:
    """What one front door says about one input (a CSV, a workbook, a submission)."""

    result: EngineResult | None  # None when the file was rejected before computing
    issues: list[Issue] = field(default_factory=list)
    workbook: WorkbookInfo | None = None
    file: str | None = None
    phase: str | None = None
    rejection: Rejection | None = None
    include_lines: bool = True

    @property
    def status(self) -> str:
        if self.rejection is not None:
            return "rejected"
        return "errors" if severity_counts(self.issues)["errors"] else "ok"

    def to_dict(self, for_json: bool = False) -> dict[str, Any]:
        """The document, plain Python values (blanks None); with ``for_json`` line values
        keep their NaN, which ``dumps`` writes as null (faster for 100,000 lines)."""
        doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "status": self.status}
        if self.file is not None:
            doc["file"] = self.file
        if self.rejection is not None:
            doc["rejection"] = {"code": str(self.rejection.code),
                                "reason": self.rejection.reason}
        if self.phase is not None:
            doc["phase"] = self.phase
        if self.result is not None:
            doc.update(_result_part(self.result, self.include_lines, for_json))
        doc["counts"] = {**doc.get("counts", {}), **severity_counts(self.issues)}
        doc["issues"] = [i.to_dict() for i in self.issues]
        if self.workbook is not None:
            doc["workbook"] = {"path": self.workbook.path,
                               "template_version": self.workbook.template_version,
                               "production": _production(self.workbook.production)}
        return doc


def _production(info: ProductionInfo) -> dict[str, Any]:
    doc = dict(vars(info))
    if doc.get("phase") is not None:
        doc["phase"] = str(doc["phase"])
    return doc


def _phase(v: Any) -> dict[str, float]:
    return {"forecast": v.forecast, "final": v.final}


def _result_part(result: EngineResult, include_lines: bool, for_json: bool) -> dict[str, Any]:
    edition = result.edition
    doc: dict[str, Any] = {
        "product": {"name": "carbonclap_xl", "version": result.product_version},
        "factor_edition": {
            "edition": edition.edition,
            "name": edition.name,
            "sources": [{"key": s.key, "dataset": s.dataset, "edition": s.edition,
                         "licence": s.licence, "attribution": s.attribution}
                        for s in edition.sources.values()],
        },
        "attribution": edition.attributions(),
        "total_kgco2e": _phase(result.total_kg),
        "uncertainty_kgco2e": _phase(result.uncertainty_kg),
        "by_poste": {k: {**_phase(v), "uncertainty": _phase(result.uncertainty_by_poste[k])}
                     for k, v in result.by_poste.items()},
        "by_nature": {k: {**_phase(v), "uncertainty": _phase(result.uncertainty_by_nature[k])}
                      for k, v in result.by_nature.items()},
        "indicators": {k: _phase(v) for k, v in result.indicators.items()},
        "counts": {"lines": len(result.lines), "excluded_lines": result.excluded_lines},
    }
    if include_lines:
        doc["lines"] = result.lines.records(nan_as_none=not for_json)
    return doc


def batch_document(reports: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The document of a batch: every file's report and the count of each status."""
    files = list(reports)
    return {"schema_version": SCHEMA_VERSION, "files": files,
            "summary": {s: sum(d.get("status") == s for d in files) for s in STATUSES}}


def _finite(doc: Any) -> Any:
    """``doc`` with NaN and infinities as None (the slow path, for the stdlib encoder)."""
    if isinstance(doc, float):
        return doc if math.isfinite(doc) else None
    if isinstance(doc, dict):
        return {k: _finite(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [_finite(v) for v in doc]
    return doc


INDENT_MAX_LINES = 2_000  # above this, compact JSON: a third of the size, written faster


def dumps(doc: Any, indent: bool | None = None) -> bytes:
    """``doc`` as UTF-8 JSON: NaN and infinities become null, numpy scalars numbers,
    anything else unknown its text. Indented for people unless it holds many lines
    (``indent=None`` decides by size)."""
    import orjson

    table = doc.get("lines") if isinstance(doc, dict) else None
    if indent is None:
        indent = not (isinstance(table, list) and len(table) > INDENT_MAX_LINES)
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    if indent:
        option |= orjson.OPT_INDENT_2
    try:
        body = doc
        if not indent and isinstance(table, list) and len(table) > INDENT_MAX_LINES:
            body = {**doc, "lines": _lines_fragment(table)}
        return orjson.dumps(body, option=option, default=str) + b"\n"
    except TypeError:  # an integer beyond 64 bits, say: the stdlib encoder copes
        import json

        text = json.dumps(_finite(doc), ensure_ascii=False, indent=1 if indent else None,
                          allow_nan=False, default=str)
        return text.encode("utf-8") + b"\n"


def _lines_fragment(table: list[Any]) -> Any:
    """The compact JSON of many lines, as an ``orjson.Fragment`` for ``dumps`` to embed:
    serialised without ``OPT_NON_STR_KEYS`` (a sixth faster over 100,000 lines) unless a
    key is not a ``str``. The same bytes either way."""
    import orjson

    try:
        data = orjson.dumps(table, option=orjson.OPT_SERIALIZE_NUMPY, default=str)
    except TypeError:  # a key that is not a str (or a number beyond 64 bits: dumps copes)
        data = orjson.dumps(table, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
                            default=str)
    return orjson.Fragment(data)
