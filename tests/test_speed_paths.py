"""The fast paths of issue 7 give what the plain paths give, byte for byte: the CSV reader
that joins each row while reading (against ``csv.reader`` row by row), and the formula
templates of the write plan (against one formula built per cell)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from carbonclap_xl.core.lines import LineTable
from carbonclap_xl.intake import csv_lines
from carbonclap_xl.workbook import formulas as F
from carbonclap_xl.workbook.plan import line_columns
from carbonclap_xl.workbook.port import Formula, FormulaColumn

HEADER = "poste,activity,quantity_forecast,quantity_final,unit"


def _slow(text: str, delimiter: str) -> tuple[list[str] | None, list[list[str]], list[int]]:
    rows, starts = csv_lines._csv_rows(text, delimiter)
    return (rows[0] if rows else None), rows[1:], starts


def _as_rows(parsed: tuple) -> tuple[list[str] | None, list[list[str]], list[int]]:
    header, rows, columns, starts = parsed
    if columns is not None:
        rows = [list(r) for r in zip(*columns, strict=True)] if columns and columns[0] else \
            [[] for _ in range(len(starts) - 1)]
    return header, rows, starts


def _same(text: str, delimiter: str = ",") -> None:
    header, rows, starts = _as_rows(csv_lines._parse(text, delimiter))
    slow_header, slow_rows, slow_starts = _slow(text, delimiter)
    assert starts == slow_starts
    # an empty first line is [""] or []: no column either way (see _parse)
    assert header == slow_header or (header == [""] and slow_header == [])
    width = max(len(header or []), 5)
    fit = [r + [""] * (width - len(r)) for r in rows]
    assert fit == [r + [""] * (width - len(r)) for r in slow_rows]


@pytest.mark.parametrize("text", [
    "", "\n", HEADER, HEADER + "\n", HEADER + "\r\nregie,Café,1,2,kg\r\n",
    HEADER + '\nregie,"Déchets, carton",1,2,t\n',  # a quoted comma: the fast path
    HEADER + '\nregie,"a\nb",1,2,kg\nlieux,x,3,4,km\n',  # a field over two lines: the slow
    HEADER + "\nregie,a\x1fb,1,2,kg\n",  # the separator in a field: the slow path
    HEADER + "\n\nregie,a,1,2,kg,extra\nregie,a\n",  # rows of other widths
    HEADER + "\rregie,a,1,2,kg\rlieux,b,,3,km",
])
def test_csv_fast_path_reads_as_csv_reader(text: str) -> None:
    _same(text)


def test_csv_fast_path_random_files() -> None:
    rng = random.Random(7)
    pieces = ["regie", "", " ", "1,5", "2", "a\rb", "x\r\n", "\n", ";", ",", '"q"', '"a,b"',
              '"x\ny"', '""', "\x1f", "é"]
    for _ in range(500):
        header = rng.choice([HEADER, HEADER.replace(",", ";"), HEADER + ",count,comment"])
        text = header + rng.choice(["\n", "\r\n", "\r"]) + "".join(
            rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        _same(text, ";" if ";" in header else ",")


def test_csv_lines_fast_and_slow_give_the_same_table(tmp_path: Path) -> None:
    body = "".join(f'regie,"Repas, jour {i}",{i}.5,,kg,devis,\n' for i in range(50))
    fast = tmp_path / "fast.csv"
    fast.write_text(HEADER + ",data_source,comment\n" + body, encoding="utf-8")
    slow = tmp_path / "slow.csv"  # one field over two lines: row by row
    slow.write_text(HEADER + ",data_source,comment\n" + body + 'regie,x,1,,kg,,"a\nb"\n',
                    encoding="utf-8")
    a, b = csv_lines.read_lines_csv(fast), csv_lines.read_lines_csv(slow)
    assert a.line_numbers == b.line_numbers[:50] == list(range(2, 52))
    for name in a.lines.names:
        assert a.lines[name].tolist() == b.lines[name].tolist()[:50]


def test_status_formulas_tell_equal_values_of_other_types_apart() -> None:
    """Lines share a status template when their inputs are the same, type included: 1, 1.0
    and True compare equal in Python but are different literals in a formula."""
    cells = F.line_cells()
    key = F.status_keys(False, cells)[0]
    values = [1, 1.0, True, "1", None]
    n = len(values)
    lines = LineTable({
        "status": ["error"] * n, "row": [5 + i for i in range(n)],
        "conversion": [np.nan] * n, "factor_value": [np.nan] * n, "nature": [None] * n,
        **{k: [None] * n for k in cells.inputs if k != key}, key: values,
    })
    column = line_columns(lines, live=True, layout=F.L.CURRENT_LAYOUT)["status"]
    assert isinstance(column, FormulaColumn)
    status = [column.value(i, 5 + i) for i in range(n)]
    for i, cell in enumerate(status):
        expected = F.status_formula(5 + i, {key: values[i]}, False, "Erreur", cells)
        assert isinstance(cell, Formula) and cell.text == expected
    assert len({c.text.replace(str(5 + i), "#") for i, c in enumerate(status)}) == 4


def test_dumps_of_many_lines_is_the_plain_orjson_document() -> None:
    """Many lines are serialised apart (``result._lines_fragment``): same bytes as one
    orjson call over the whole document, str keys or not, NaN and numpy values included."""
    import orjson

    from carbonclap_xl.core.result import INDENT_MAX_LINES, dumps

    lines = [{"poste": "régie", "q": float(i) / 3, "nan": float("nan"), "n": np.float64(i),
              "none": None, "i": i} for i in range(INDENT_MAX_LINES + 1)]
    option = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    for table in (lines, [*lines[:-1], {1: "a non-str key", "x": 2.5}]):
        doc = {"schema_version": "1.1", "lines": table, "issues": [], "counts": {"lines": 1}}
        assert dumps(doc) == orjson.dumps(doc, option=option, default=str) + b"\n"
    huge = {"schema_version": "1.1", "lines": [*lines, {"big": 2**70}]}
    assert b'"big": 1180591620717411303424' in dumps(huge)  # the stdlib fallback, as before


def test_csv_quote_free_random_files() -> None:
    """Texts without any quote skip the csv module (``_plain_lines``): same rows."""
    rng = random.Random(11)
    pieces = ["regie", "", " ", "1,5", "2", "a\rb", "x\r\n", "\n", "\r\n", ";", ",", "é",
              "\t", "\\"]
    for _ in range(500):
        header = rng.choice([HEADER, HEADER.replace(",", ";")])
        text = header + rng.choice(["\n", "\r\n"]) + "".join(
            rng.choice(pieces) for _ in range(rng.randint(0, 60)))
        _same(text, ";" if ";" in header else ",")


def _lines_table(n: int) -> LineTable:
    rng = np.random.default_rng(3)
    numbers = rng.uniform(-1e6, 1e6, n)
    numbers[::7] = np.nan
    numbers[::11] = np.inf
    mixed = np.empty(n, dtype=object)
    mixed[:] = [[None, "texte « é »", 1, 2.5, float("nan"), np.float64(3.25), True, "a\"b\\c",
                 "\x00\n", 2**70, [1, 2], {"k": 1}][i % 12] for i in range(n)]
    return LineTable({
        "poste": np.array([["regie", "transports", None][i % 3] for i in range(n)],
                          dtype=object),
        "quantity": numbers, "count": np.arange(n, dtype=np.int64),
        "flag": np.arange(n) % 2 == 0, "small": numbers.astype(np.float32),
        "mixed": mixed, "status": np.array(["ok", None] * (n // 2) + ["ok"] * (n % 2),
                                           dtype=object),
    }, n)


@pytest.mark.parametrize("n", [0, 1, 2, 4095, 4096, 4097, 9000])
def test_lines_json_is_what_orjson_writes_of_the_records(n: int) -> None:
    """``LinesJson`` builds the lines column by column, in chunks: the bytes of one orjson
    (or stdlib, past 64 bits) call over ``records()``, whatever the column types."""
    import io
    import json

    from carbonclap_xl.core.result import LinesJson, _finite, dump, dumps

    table = _lines_table(n)
    built = b"".join(LinesJson(table).chunks())
    plain = json.dumps(_finite(table.records(nan_as_none=False)), ensure_ascii=False,
                       separators=(",", ":"), default=str).encode()
    assert json.loads(built) == json.loads(plain)
    no_big = LineTable({k: table[k] for k in table.names if k != "mixed"}, n)
    import orjson

    assert b"".join(LinesJson(no_big).chunks()) == orjson.dumps(
        no_big.records(nan_as_none=False), option=orjson.OPT_SERIALIZE_NUMPY, default=str)
    doc = {"schema_version": "1.1", "lines": LinesJson(table), "issues": [{"v": "x"}]}
    stream = io.BytesIO()
    dump(doc, stream)
    assert stream.getvalue() == dumps(doc)
    assert json.loads(stream.getvalue())["lines"] == json.loads(plain)


def test_lines_json_keeps_equal_values_of_other_types_apart() -> None:
    """1, 1.0 and True (0, 0.0, -0.0 and False) are one dict key but different JSON; byte
    order and width of numpy columns do not change the numbers written."""
    import orjson

    from carbonclap_xl.core.result import LinesJson

    n = 5000
    mixed = np.empty(n, dtype=object)
    mixed[:] = [[True, 1, 1.0, False, 0, 0.0, -0.0, "1", None][i % 9] for i in range(n)]
    table = LineTable({"comment": mixed, "big_endian": np.arange(n, dtype=">i4"),
                       "wide": np.linspace(0, 1, n, dtype=np.longdouble),
                       "single": np.linspace(0, 1, n, dtype=np.float32),
                       "swapped": np.linspace(0, 1, n).astype(">f8")}, n)
    assert b"".join(LinesJson(table).chunks()) == orjson.dumps(
        table.records(nan_as_none=False), option=orjson.OPT_SERIALIZE_NUMPY, default=str)


def test_report_of_lines_named_otherwise_than_by_text_keeps_valid_json() -> None:
    """A line table with a column named by a number is written through the records path."""
    import json

    from carbonclap_xl.core.engine import compute
    from carbonclap_xl.core.factors import load_edition
    from carbonclap_xl.core.result import dumps

    lines = [{"poste": "regie", "activity": "Repas – standard", "quantity_forecast": 1,
              "unit": "repas", 7: "x"} for _ in range(2001)]
    doc = json.loads(dumps(compute(lines, load_edition()).to_dict(for_json=True)))
    assert doc["lines"][0]["7"] == "x"


def _records_json(table: LineTable) -> bytes:
    import orjson

    return orjson.dumps(table.records(nan_as_none=False), option=orjson.OPT_SERIALIZE_NUMPY,
                        default=str)


def test_coded_columns_are_what_they_say_and_forget_when_replaced() -> None:
    """``set_coded`` sets the column to values[codes] (negative codes from the end); the coding
    follows ``select`` and ``with_columns`` and is dropped when the column is replaced."""
    table = LineTable({"a": ["x", "y", "z"]}, 3)
    table.set_coded("b", [1, -1, 0], np.array(["p", "q", None], dtype=object))
    assert table["b"].tolist() == ["q", None, "p"]
    codes, values = table.coded("b")
    assert codes.tolist() == [1, 2, 0] and values[codes].tolist() == table["b"].tolist()
    kept = table.select([True, False, True])
    assert kept.coded("b")[0].tolist() == [1, 0] and kept["b"].tolist() == ["q", "p"]
    added = table.with_columns({"c": [1.0, 2.0, 3.0]})
    assert added.coded("b") is not None and added.coded("c") is None
    replaced = table.with_columns({"b": ["r", "s", "t"]})
    assert replaced.coded("b") is None and table.coded("b") is not None
    table["b"] = ["u", "v", "w"]
    assert table.coded("b") is None


@pytest.mark.parametrize("n", [1, 3, 500, 4097, 20000])
def test_lines_json_of_coded_and_repeated_columns_is_what_orjson_writes(n: int) -> None:
    """Neighbouring columns of few values are written as one piece, coded columns from their
    codes: the bytes stay orjson's of the records, whatever the mix (a table repeating a
    value, negative codes, numbers by their bits: 0.0 and -0.0, NaN; many distinct values
    among few; columns coded by one key; a coded column of many values)."""
    from carbonclap_xl.core.result import LinesJson

    rng = np.random.default_rng(n)
    key = rng.integers(-1, 6, n)
    table = LineTable({"poste": rng.choice(["regie", "transports", "décors"], n).astype(object),
                       "amount": rng.uniform(-1, 1, n).round(3)}, n)
    table.set_coded("label", key, np.array(["a", "b", "a", None, "é\"", "f", "g"], object))
    table.set_coded("value", key, np.array([1.5, 0.0, -0.0, np.nan, 2.0, 1.5, 3.0]))
    table.set_coded("unit", rng.integers(0, 3, n), np.array(["kg", "km", "kg"], object))
    table["flag"] = rng.integers(0, 2, n).astype(bool)
    table["few"] = rng.choice([0.0, -0.0, np.nan, 1e300], n)
    table["text"] = np.array([f"t{i % 7}" if i % 5 else None for i in range(n)], object)
    table["many"] = np.array([f"line {i}" for i in range(n)], object)
    table.set_coded("quantity", np.arange(n)[::-1], np.array([str(i) for i in range(n)], object))
    table["status"] = np.array(["ok"] * n, object)
    assert b"".join(LinesJson(table).chunks()) == _records_json(table)


def test_engine_codes_give_the_lines_the_plain_columns_give() -> None:
    """The engine keeps its per-activity, unit and input columns coded; each coded column
    holds what the uncoded reading gives: the same JSON, line by line."""
    import json

    from carbonclap_xl.core.engine import compute
    from carbonclap_xl.core.factors import load_edition
    from carbonclap_xl.core.result import dumps

    lines = [{"poste": ["Régie", " regie", "transports", None][i % 4],
              "activity": ["Repas – standard", " Repas – standard ", None, "inconnu",
                           "Train – TGV (passager.km)"][i % 5],
              "quantity_forecast": ["12", "12 km", "", None, "1,5", "abc", True, "1"][i % 8],
              "quantity_final": [float("nan"), "3", 4.0][i % 3],
              "unit": ["repas", None, "km", ""][i % 4],
              "data_source": ["facture", "devis", None][i % 3]} for i in range(400)]
    result = compute(lines, load_edition())
    coded = [name for name in result.lines.names if result.lines.coded(name) is not None]
    assert {"activity_id", "factor_id", "source_id", "unit_used", "status", "poste"} <= set(coded)
    plain = LineTable({name: result.lines[name].copy() for name in result.lines.names},
                      len(result.lines))
    doc = json.loads(dumps(result.to_dict(for_json=True)))
    assert json.dumps(doc["lines"]) == json.dumps(json.loads(_records_json(plain)))
    for name in coded:
        codes, values = result.lines.coded(name)
        assert [repr(v) for v in values[codes].tolist()] == \
            [repr(v) for v in result.lines[name].tolist()]
    # the input columns hold what was typed (a NaN as a blank, either way)
    def cells(values: list) -> list:
        return [(type(v), v) for v in (None if isinstance(v, float) and v != v else v
                                       for v in values)]

    for name in ("activity", "quantity_forecast", "quantity_final", "unit", "data_source"):
        assert cells(result.lines[name].tolist()) == cells([line[name] for line in lines]), \
            name


def test_masked_codes_are_factorize_of_the_masked_values() -> None:
    """The engine's pairs from known codes number them as ``factorize`` does."""
    from carbonclap_xl.core.engine import _masked
    from carbonclap_xl.core.lines import factorize

    rng = np.random.default_rng(5)
    for _ in range(50):
        n = int(rng.integers(1, 300))
        values = rng.choice(["a", "b", "c", "d", "e"], n).astype(object)
        mask = rng.random(n) < 0.6
        codes, uniques = factorize(values)
        table = np.empty(len(uniques), dtype=object)
        table[:] = uniques
        got_codes, got = _masked((codes, table), mask)
        want_codes, want = factorize(values[mask])
        assert got == want and got_codes.tolist() == want_codes.tolist()


def test_large_atomic_write_syncs_ahead_and_reports_a_failed_sync(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    """A file larger than SYNC_AHEAD is synced while written (on a thread, one at a time)
    and ends whole; an error of such a sync fails the write and leaves nothing."""
    import os

    from carbonclap_xl.core import atomic

    monkeypatch.setattr(atomic, "SYNC_AHEAD", 1000)
    synced: list[int] = []
    real = getattr(os, "fdatasync", os.fsync)
    monkeypatch.setattr(os, "fdatasync", lambda fd: (synced.append(fd), real(fd))[1],
                        raising=False)
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    target = tmp_path / "big.json"
    data = [bytes([65 + i % 26]) * 700 for i in range(40)]
    with atomic.atomic_file(target) as handle:
        for piece in data:
            handle.write(piece)
    assert target.read_bytes() == b"".join(data) and len(synced) > 2

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing, raising=False)
    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OSError), atomic.atomic_file(tmp_path / "lost.json") as handle:
        for piece in data:
            handle.write(piece)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.json"]


def test_engine_codes_keep_what_was_typed_in_odd_columns() -> None:
    """Review findings: without a poste column the result's poste is "" (not null); a column
    holding an unhashable value keeps its cells as they are (factorize writes them as text),
    and a TRUE among them is still told apart (« VRAI/FAUX »)."""
    from carbonclap_xl.core.engine import compute
    from carbonclap_xl.core.factors import load_edition

    edition = load_edition()
    no_poste = compute({"activity": ["elec_fr"], "quantity_forecast": [1.0], "unit": ["kWh"]},
                       edition)
    assert no_poste.lines["poste"].tolist() == [""]
    odd = compute({"poste": ["regie"] * 3, "activity": ["elec_fr", ["x"], "elec_fr"],
                   "quantity_forecast": [True, {"a": 1}, -5], "unit": ["kWh"] * 3}, edition)
    assert [(type(v), v) for v in odd.lines["activity"].tolist()] == \
        [(str, "elec_fr"), (list, ["x"]), (str, "elec_fr")]
    assert [type(v) for v in odd.lines["quantity_forecast"].tolist()] == [bool, dict, int]
    assert any("VRAI/FAUX" in i.message for i in odd.issues)
    assert not any("« True" in i.message for i in odd.issues)


def test_factorize_takes_numpy_nan_for_a_blank() -> None:
    from carbonclap_xl.core.lines import factorize

    for blanks in ([np.float64("nan"), None], [np.float64("nan"), None, float("nan")]):
        codes, uniques = factorize(np.array(["a", *blanks], dtype=object))
        assert uniques == ["a", None] and codes.tolist() == [0] + [1] * len(blanks)
