"""Real outputs of compute, process and validate against the published result schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from carbonclap_xl.cli import main
from carbonclap_xl.core.result import dumps

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "result-schema.json").read_text(encoding="utf-8"))
EXAMPLES = ROOT / "workbook" / "examples"


def check(doc: object) -> None:
    jsonschema.validate(doc, SCHEMA)


def test_compute_output_matches_the_schema(tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    assert main(["compute", str(EXAMPLES / "telefilm.csv"), "--json", str(out)]) in (0, 1)
    doc = json.loads(out.read_text(encoding="utf-8"))
    check(doc)
    assert doc["lines"] and doc["status"] in ("ok", "errors")


def test_process_output_matches_the_schema(tmp_path: Path) -> None:
    out = tmp_path / "p.json"
    main(["process", str(EXAMPLES / "court-metrage.xlsx"), "-o", str(tmp_path / "o.xlsx"),
          "--json", str(out)])
    doc = json.loads(out.read_text(encoding="utf-8"))
    check(doc)
    assert doc["workbook"]["production"]["title"]


def test_validate_output_matches_the_schema(tmp_path: Path) -> None:
    bad = tmp_path / "pas-un-classeur.xlsx"
    bad.write_text("bonjour", encoding="utf-8")
    out = tmp_path / "v.json"
    main(["validate", str(EXAMPLES / "court-metrage.xlsx"), str(bad), "--json", str(out)])
    doc = json.loads(out.read_text(encoding="utf-8"))
    check(doc)
    assert [f["status"] for f in doc["files"]][1] == "rejected"
    assert doc["summary"]["rejected"] == 1


def test_the_schema_refuses_a_document_that_breaks_it() -> None:
    with pytest.raises(jsonschema.ValidationError):
        check({"schema_version": "1.0", "status": "ok", "counts": {}, "issues": []})


def test_dumps_writes_nan_and_infinity_as_null() -> None:
    assert json.loads(dumps({"a": float("nan"), "b": float("inf"), "c": 1.5})) == \
        {"a": None, "b": None, "c": 1.5}
