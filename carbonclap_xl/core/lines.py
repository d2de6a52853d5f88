"""Activity lines as a table of columns: the one in-memory shape every room shares.

A :class:`LineTable` maps column names to numpy arrays of one length: float64 for numbers,
object (str or None) for everything else. It is what the CSV reader and the workbook reader
produce, what the engine takes and returns (input columns + ``engine.RESULT_COLUMNS``), and
what the writer, the rules and the result document read. numpy only: pandas costs 0.4 s to
import and a click in Excel starts a fresh interpreter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np


def _blank_to_none(values: np.ndarray) -> np.ndarray:
    """An object array whose NaN floats (pandas' blanks) are None."""
    out = values.astype(object)
    for i in np.flatnonzero([isinstance(v, float) and math.isnan(v) for v in out]):
        out[i] = None
    return out


def _as_column(values: Any, length: int | None) -> np.ndarray:
    if isinstance(values, np.ndarray):
        array = values
    elif hasattr(values, "to_numpy"):  # a pandas Series
        array = values.to_numpy()
    else:  # any sequence or iterable, each element one value (a tuple too)
        items = values if isinstance(values, list) else list(values)
        array = np.fromiter(items, dtype=object, count=len(items))
    if array.ndim != 1:
        raise ValueError("a line column is one-dimensional")
    if length is not None and len(array) != length:
        raise ValueError(f"column of {len(array)} values in a table of {length} lines")
    if array.dtype.kind in "fiub":
        return array
    return _blank_to_none(array) if array.dtype != object else array


class LineTable:
    """Equal-length named columns (numpy arrays); rows are lines, in input order."""

    __slots__ = ("_coded", "_columns", "_length")

    def __init__(self, columns: Mapping[str, Any] | None = None, length: int | None = None):
        self._columns: dict[str, np.ndarray] = {}
        # columns known as values[codes]: name -> (codes, values); see set_coded
        self._coded: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._length = length
        for name, values in (columns or {}).items():
            self[name] = values
        if self._length is None:
            self._length = 0

    # ------------------------------------------------------------------ building

    @classmethod
    def coerce(cls, lines: Any) -> LineTable:
        """A table from a LineTable, a mapping of columns, records (dicts) or a pandas
        DataFrame (duck-typed: pandas is never imported here)."""
        if isinstance(lines, LineTable):
            return lines
        if hasattr(lines, "columns") and hasattr(lines, "to_numpy") and hasattr(lines, "index"):
            return cls({str(c): lines[c].to_numpy() for c in lines.columns}, len(lines))
        if isinstance(lines, Mapping):
            return cls(lines)
        return cls.from_records(list(lines))

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]],
                     columns: Sequence[str] | None = None) -> LineTable:
        names = list(columns) if columns is not None else list(
            dict.fromkeys(k for r in records for k in r))
        return cls({n: [r.get(n) for r in records] for n in names}, len(records))

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> LineTable:
        """A table from rows of values in ``columns`` order."""
        if not rows:
            return cls({c: [] for c in columns}, 0)
        transposed = list(zip(*rows, strict=True))
        return cls(dict(zip(columns, transposed, strict=True)), len(rows))

    # ------------------------------------------------------------------ access

    def __len__(self) -> int:
        return self._length or 0

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def __getitem__(self, name: str) -> np.ndarray:
        return self._columns[name]

    def __setitem__(self, name: str, values: Any) -> None:
        array = _as_column(values, self._length)
        if self._length is None:
            self._length = len(array)
        self._columns[name] = array
        self._coded.pop(name, None)

    def set_coded(self, name: str, codes: Any, values: Any) -> None:
        """Column ``name`` set to ``values[codes]``, a form the table remembers (``coded``):
        the engine's columns repeat a few hundred activities, factors and sources, and a
        writer encodes each of ``values`` once instead of each line's. Negative codes count
        from the end, as numpy's indexing does."""
        table = _as_column(values, None)
        index = np.asarray(codes, dtype=np.intp)
        if len(table) and len(index) and index.min() < 0:
            index = np.where(index < 0, index + len(table), index)
        self[name] = table[index]
        self._coded[name] = (index, table)

    def coded(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(codes, values) when column ``name`` was set as ``values[codes]`` (``set_coded``)
        and has not been replaced since; else None."""
        return self._coded.get(name)

    def get(self, name: str) -> np.ndarray:
        """The column, or a column of None when the table lacks it."""
        if name in self._columns:
            return self._columns[name]
        return np.full(len(self), None, dtype=object)

    @property
    def names(self) -> list[str]:
        return list(self._columns)

    @property
    def empty(self) -> bool:
        return len(self) == 0

    def select(self, mask: np.ndarray | Sequence[bool]) -> LineTable:
        """The lines where ``mask`` is true, in order."""
        keep = np.asarray(mask, dtype=bool)
        table = LineTable({n: c[keep] for n, c in self._columns.items()}, int(keep.sum()))
        table._coded = {n: (codes[keep], values) for n, (codes, values) in self._coded.items()}
        return table

    def with_columns(self, columns: Mapping[str, Any]) -> LineTable:
        """A new table: these columns added or replaced, the others shared."""
        table = LineTable(self._columns, len(self))
        table._coded = dict(self._coded)
        for name, values in columns.items():
            table[name] = values
        return table

    def value(self, index: int, name: str) -> Any:
        """One cell as a plain Python value (None for blanks and NaN)."""
        v = self._columns[name][index] if name in self._columns else None
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and math.isnan(v):
            return None
        return v

    def records(self, columns: Iterable[str] | None = None,
                nan_as_none: bool = True) -> list[dict[str, Any]]:
        """One dict per line, plain Python values, None for blanks (and for NaN unless
        ``nan_as_none`` is false: the JSON writer turns NaN into null itself)."""
        names = list(columns) if columns is not None else self.names
        lists = []
        for name in names:
            column = self.get(name)
            if column.dtype.kind == "f" and nan_as_none:
                lists.append([None if math.isnan(v) else v for v in column.tolist()])
            else:
                lists.append(column.tolist())
        return [dict(zip(names, values, strict=True)) for values in zip(*lists, strict=True)] \
            if lists else [{} for _ in range(len(self))]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def to_pandas(self) -> Any:
        """A pandas DataFrame (imports pandas: for tests, notebooks and exports)."""
        import pandas as pd

        return pd.DataFrame({n: c for n, c in self._columns.items()})

    def __repr__(self) -> str:
        return f"LineTable({len(self)} lines: {', '.join(self.names)})"


def factorize(values: np.ndarray | Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
    """(codes, uniques): ``uniques[codes[i]] == values[i]``, uniques in order of appearance.

    Blanks (None) are a value like any other; NaN floats count as None. Lines repeat a few
    hundred activities, units and sources, so per-line work becomes a numpy ``take``.
    """
    codes, uniques, _kept = factorize_kept(values)
    return codes, uniques


def factorize_kept(values: np.ndarray | Sequence[Any]) -> tuple[np.ndarray, list[Any], bool]:
    """``factorize``, and whether the uniques are the values themselves: False when an
    unhashable value (a list) made every value its text."""
    kept = True
    array = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if array.dtype.kind == "f":
        items = [None if math.isnan(v) else v for v in array.tolist()]
    else:
        items = array.tolist()
    try:
        index = {v: i for i, v in enumerate(dict.fromkeys(items))}
    except TypeError:  # an unhashable cell value: fall back to its text
        kept = False
        items = [v if v is None else str(v) for v in items]
        index = {v: i for i, v in enumerate(dict.fromkeys(items))}
    codes = np.fromiter(map(index.__getitem__, items), dtype=np.intp, count=len(items))
    table = index
    uniques = list(table)
    if any(issubclass(t, float) for t in set(map(type, uniques))) and any(
            isinstance(u, float) and math.isnan(u) for u in uniques):  # NaN: one blank
        merged = [None if isinstance(u, float) and math.isnan(u) else u for u in uniques]
        first: dict[Any, int] = {}
        remap = np.array([first.setdefault(u, len(first)) for u in merged], dtype=np.intp)
        return remap[codes], list(first), kept
    return codes, uniques, kept


def by_unique(values: np.ndarray | Sequence[Any], fn: Any, dtype: Any = object) -> np.ndarray:
    """``[fn(v) for v in values]``, calling ``fn`` once per distinct value."""
    codes, uniques = factorize(values)
    table = np.empty(len(uniques), dtype=dtype)
    table[:] = [fn(u) for u in uniques]
    return table[codes] if len(codes) else np.empty(0, dtype=dtype)


def is_none(values: np.ndarray) -> np.ndarray:
    """Element-wise ``v is None`` (or NaN) of a column."""
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind in "iub":
        return np.zeros(len(values), dtype=bool)
    out = np.equal(values, None)
    if float in set(map(type, values.tolist())):  # NaN floats in an object column
        out |= np.fromiter((isinstance(v, float) and math.isnan(v) for v in values),
                           dtype=bool, count=len(values))
    return out
