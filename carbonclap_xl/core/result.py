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
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

from carbonclap_xl.core.issues import Issue, severity_counts

if TYPE_CHECKING:
    import numpy as np

    from carbonclap_xl.core.engine import EngineResult
    from carbonclap_xl.core.lines import LineTable
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
        """The document, plain Python values (blanks None). With ``for_json`` it is for
        ``dumps`` or ``dump`` only: line values keep their NaN, which they write as null, and
        over ``INDENT_MAX_LINES`` lines the lines are a ``LinesJson`` they encode column by
        column (faster for 100,000 lines)."""
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
        if (for_json and len(result.lines) > INDENT_MAX_LINES  # compact JSON, by column
                and all(isinstance(name, str) for name in result.lines.names)):
            doc["lines"] = LinesJson(result.lines)
        else:
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
    lazy = table if isinstance(table, LinesJson) else None
    if indent is None:
        indent = not (lazy or (isinstance(table, list) and len(table) > INDENT_MAX_LINES))
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    if indent:
        option |= orjson.OPT_INDENT_2
    try:
        body = doc
        if lazy is not None:
            body = {**doc, "lines": orjson.Fragment(b"".join(lazy.chunks()))}
        elif not indent and isinstance(table, list) and len(table) > INDENT_MAX_LINES:
            body = {**doc, "lines": _lines_fragment(table)}
        return orjson.dumps(body, option=option, default=str) + b"\n"
    except TypeError:  # an integer beyond 64 bits, say: the stdlib encoder copes
        import json

        mark = _mark()
        body = {**doc, "lines": mark} if lazy is not None else doc
        text = json.dumps(_finite(body), ensure_ascii=False, indent=1 if indent else None,
                          allow_nan=False, default=str).encode("utf-8")
        if lazy is not None:
            text = text.replace(json.dumps(mark).encode(), b"".join(lazy.chunks()), 1)
        return text + b"\n"


def dump(doc: Any, stream: BinaryIO) -> None:
    """``dumps(doc)`` written to a binary stream; lines left to encode (``LinesJson``) are
    encoded and written a few thousand at a time, never held whole in memory."""
    table = doc.get("lines") if isinstance(doc, dict) else None
    if not isinstance(table, LinesJson):
        stream.write(dumps(doc))
        return
    mark = _mark()
    head, found, tail = dumps({**doc, "lines": mark}, indent=False).partition(
        f'"{mark}"'.encode())
    if not found:  # cannot happen: the mark is plain ASCII, written as is
        raise AssertionError("lines mark not found")
    stream.write(head)
    for chunk in table.chunks():
        stream.write(chunk)
    stream.write(tail)


def _mark() -> str:
    """A text no document holds, standing for its lines while the rest is encoded."""
    return f"carbonclap-xl-lines-{os.urandom(16).hex()}"


LINES_PER_CHUNK = 4096
# columns orjson writes from numpy as it writes tolist()'s values (native byte order only)
_NUMBERS = frozenset({"float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                      "uint64", "bool"})
_FLOATS = frozenset({"float16", "float32", "float64"})  # as native float64, as tolist() gives


@dataclass(frozen=True)
class LinesJson:
    """A document's lines, to be written as compact JSON by ``dumps`` or ``dump``: the bytes
    ``orjson.dumps(table.records())`` writes (NaN as null), built column by column. 100,000
    lines of 30 fields are 3 million values: a dict per line costs more than encoding each
    column once (numbers by numpy, text once per distinct value) and joining each line's
    fields, and the whole text (100 MB) need not be held at once."""

    table: LineTable

    def chunks(self) -> Iterator[bytes]:
        import orjson

        n, names = len(self.table), self.table.names
        yield b"["
        if not n or not names:
            yield b",".join([b"{}"] * n) + b"]"
            return
        last = len(names) - 1
        columns = [_ColumnJson(self.table.get(name),
                               (b"{" if i == 0 else b",") + orjson.dumps(name) + b":",
                               b"}" if i == last else b"")
                   for i, name in enumerate(names)]
        for start in range(0, n, LINES_PER_CHUNK):
            stop = min(start + LINES_PER_CHUNK, n)
            lines = map(b"".join, zip(*(c.encode(start, stop) for c in columns), strict=True))
            yield (b"," if start else b"") + b",".join(lines)
        yield b"]"


class _ColumnJson:
    """One column's fields of a record, ``key`` + its value's JSON (as ``orjson.dumps``
    writes it) + ``end``, for any range of lines."""

    def __init__(self, column: np.ndarray, key: bytes, end: bytes) -> None:
        import numpy as np
        import orjson

        if column.dtype.name in _FLOATS:
            column = column.astype(np.float64)  # the Python floats tolist() would give
        elif column.dtype.name in _NUMBERS and not column.dtype.isnative:
            column = column.astype(column.dtype.newbyteorder("="))
        self.column, self.key, self.end = np.ascontiguousarray(column), key, end
        self.items: list[Any] | None = None
        self.encoded: dict[Any, bytes] | None = None
        if column.dtype.name not in _NUMBERS:
            self.items = column.tolist()
            # lines repeat a few hundred activities, units and sources: each text encoded
            # once. Text only: 1, 1.0 and True (or 0.0 and -0.0) are one dict key, and are
            # written apart; no value but a text equals a text, and None only None, so the
            # distinct values' types tell.
            try:
                distinct = dict.fromkeys(self.items)
            except TypeError:  # an unhashable value
                distinct = {}
            if distinct and all(type(v) is str or v is None for v in distinct):
                option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
                self.encoded = {v: key + orjson.dumps(v, option=option) + end
                                for v in distinct}

    def encode(self, start: int, stop: int) -> list[bytes]:
        import orjson

        if self.items is None:  # numbers: orjson writes numpy's (NaN as null) as Python's
            text = orjson.dumps(self.column[start:stop], option=orjson.OPT_SERIALIZE_NUMPY)
            return (self.key + text[1:-1].replace(b",", self.end + b"\n" + self.key)
                    + self.end).split(b"\n")
        if self.encoded is None:
            return [self.key + _dumps_value(v) + self.end for v in self.items[start:stop]]
        return list(map(self.encoded.__getitem__, self.items[start:stop]))


def _dumps_value(value: Any) -> bytes:
    import orjson

    try:
        return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
                            default=str)
    except TypeError:  # an integer beyond 64 bits: the stdlib encoder copes
        import json

        return json.dumps(_finite(value), ensure_ascii=False, allow_nan=False,
                          default=str).encode("utf-8")


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
