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
    distinct value once (numbers by numpy) and joining each line from a few pieces, and the
    whole text (100 MB) need not be held at once.

    A piece is a column of many distinct values (amounts, quantities), or neighbouring columns
    of few (an activity's factor, unit and source fields: a few hundred combinations), each
    combination of theirs encoded once. The table's coded columns (``LineTable.set_coded``)
    give their codes for free; other columns of few values are coded here."""

    table: LineTable

    def chunks(self) -> Iterator[bytes]:
        import orjson

        n, names = len(self.table), self.table.names
        yield b"["
        if not n or not names:
            yield b",".join([b"{}"] * n) + b"]"
            return
        last = len(names) - 1
        # each line starts with ",{": the first line's comma is dropped below
        columns = [_ColumnJson(self.table.get(name),
                               (b",{" if i == 0 else b",") + orjson.dumps(name) + b":",
                               b"}" if i == last else b"", self.table.coded(name))
                   for i, name in enumerate(names)]
        pieces = _pieces(columns)
        width = len(pieces)
        for start in range(0, n, LINES_PER_CHUNK):
            stop = min(start + LINES_PER_CHUNK, n)
            fields: list[bytes] = [b""] * (width * (stop - start))
            for i, piece in enumerate(pieces):  # line after line, piece after piece
                fields[i::width] = piece.encode(start, stop)
            text = b"".join(fields)
            yield text[1:] if start == 0 else text
        yield b"]"


def _pieces(columns: list[_ColumnJson]) -> list[_ColumnJson | _RunJson]:
    """The columns in order, each run of neighbours with few distinct values as one piece
    (a coded column of many stands alone: its combinations with others would be as many as
    the lines)."""
    pieces: list[_ColumnJson | _RunJson] = []
    run: list[tuple[np.ndarray, list[bytes]]] = []
    for column in columns:
        coded = column.codes()
        if coded is not None and len(coded[1]) <= column.few:
            run.append(coded)
            continue
        if run:
            pieces.append(_RunJson(run))
            run = []
        pieces.append(column if coded is None else _RunJson([coded]))
    if run:
        pieces.append(_RunJson(run))
    return pieces


# a column of at most this many distinct values, or one in 32 lines, is coded
_FEW_MIN, _FEW_SHARE = 16, 32


class _ColumnJson:
    """One column's fields of a record, ``key`` + its value's JSON (as ``orjson.dumps``
    writes it) + ``end``, for any range of lines."""

    def __init__(self, column: np.ndarray, key: bytes, end: bytes,
                 coded: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        import orjson

        self.column, self.key, self.end = _native(column), key, end
        self.coded = coded
        self.few = max(_FEW_MIN, len(column) // _FEW_SHARE)  # distinct values: "few"
        self.items: list[Any] | None = None
        self.encoded: dict[Any, bytes] | None = None
        if self.column.dtype.name not in _NUMBERS and coded is None:
            self.items = self.column.tolist()
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

    def codes(self) -> tuple[np.ndarray, list[bytes]] | None:
        """(each line's code, each code's field) for a coded column or one of few distinct
        values; None for the others."""
        import numpy as np

        few = self.few
        if self.coded is not None:
            codes, values = self.coded
            return codes, self._fields(_native(values))
        if self.items is None:
            # numbers, by their bits (0.0 and -0.0 are written apart); a sample first, so
            # that a column of amounts is not sorted for nothing
            bits = self.column.view(f"u{self.column.dtype.itemsize}")
            if len(np.unique(bits[:4 * few])) > few:
                return None
            distinct, first, inverse = np.unique(bits, return_index=True, return_inverse=True)
            if len(distinct) > few:
                return None
            return inverse.reshape(-1), self._fields(self.column[first])
        if self.encoded is None or len(self.encoded) > few:
            return None
        index = {v: i for i, v in enumerate(self.encoded)}
        return (np.fromiter(map(index.__getitem__, self.items), dtype=np.intp,
                            count=len(self.items)), list(self.encoded.values()))

    def _fields(self, values: np.ndarray) -> list[bytes]:
        """The field of each of ``values`` (a column's dtype rules apply)."""
        import orjson

        if values.dtype.name in _NUMBERS:
            text = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)
            return [self.key + t + self.end for t in text[1:-1].split(b",")] if len(values) \
                else []
        items = values.tolist()
        if all(type(v) is str or v is None for v in items):  # as _dumps_value writes them
            return [self.key + text + self.end for text in map(orjson.dumps, items)]
        return [self.key + _dumps_value(v) + self.end for v in items]

    def encode(self, start: int, stop: int) -> list[bytes]:
        import orjson

        if self.items is None:  # numbers: orjson writes numpy's (NaN as null) as Python's
            text = orjson.dumps(self.column[start:stop], option=orjson.OPT_SERIALIZE_NUMPY)
            return (self.key + text[1:-1].replace(b",", self.end + b"\n" + self.key)
                    + self.end).split(b"\n")
        if self.encoded is None:
            return [self.key + _dumps_value(v) + self.end for v in self.items[start:stop]]
        return list(map(self.encoded.__getitem__, self.items[start:stop]))


class _RunJson:
    """Neighbouring coded columns as one piece: each combination of their values that occurs
    is encoded once."""

    def __init__(self, columns: list[tuple[np.ndarray, list[bytes]]]) -> None:
        import numpy as np

        # the engine codes many columns by one key: a column coded as another is not a digit
        digits = list({id(codes): (codes, len(fields)) for codes, fields in columns}.values())
        if len(digits) == 1:
            inverse, first = digits[0][0], None
        else:
            combined, size = digits[0][0].astype(np.int64), digits[0][1]
            for codes, base in digits[1:]:  # mixed radix: one integer per combination
                if size * base >= 2**62:  # renumber the combinations seen so far
                    distinct, combined = np.unique(combined, return_inverse=True)
                    combined, size = combined.reshape(-1), len(distinct)
                combined = combined * base + codes
                size *= base
            _distinct, first, inverse = np.unique(combined, return_index=True,
                                                  return_inverse=True)
        if first is None:  # one key: its codes are the combinations
            rows = None
            count = min(len(fields) for _codes, fields in columns)
        else:
            rows = first.tolist()
            count = len(rows)
        encoded = np.empty(count, dtype=object)
        if len(columns) == 1:
            encoded[:] = columns[0][1][:count]
        elif rows is None:
            encoded[:] = [b"".join([fields[k] for _codes, fields in columns])
                          for k in range(count)]
        else:
            encoded[:] = [b"".join([fields[codes[row]] for codes, fields in columns])
                          for row in rows]
        self.encoded, self.inverse = encoded, inverse.reshape(-1)

    def encode(self, start: int, stop: int) -> list[bytes]:
        return self.encoded[self.inverse[start:stop]].tolist()


def _native(column: np.ndarray) -> np.ndarray:
    """A column as orjson writes it from numpy as ``tolist()``'s values: floats as native
    float64, other numbers in native byte order, contiguous."""
    import numpy as np

    if column.dtype.name in _FLOATS:
        column = column.astype(np.float64)
    elif column.dtype.name in _NUMBERS and not column.dtype.isnative:
        column = column.astype(column.dtype.newbyteorder("="))
    return np.ascontiguousarray(column)


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
