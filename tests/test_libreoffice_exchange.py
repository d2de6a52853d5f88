"""The engine side of the LibreOffice extension, without LibreOffice: requests built from
real workbooks through the port (what the extension sends), answers checked against
``process`` and ``validate``."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from carbonclap_xl.cli import main
from carbonclap_xl.core.errors import ExchangeError
from carbonclap_xl.core.factors import load_edition
from carbonclap_xl.libreoffice.exchange import respond, search_activities
from carbonclap_xl.workbook import layout as L
from carbonclap_xl.workbook.port import plan_to_json, source_to_json
from carbonclap_xl.xlsx.files import FileSource, process_workbook
from tests.wbhelpers import make_workbook


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workbook(tmp_path_factory.mktemp("exchange") / "film.xlsx")


def request(book: Path, command: str, **extra: Any) -> dict[str, Any]:
    """What the extension sends for the open document: JSON, dates as serial numbers."""
    doc = json.loads(json.dumps(source_to_json(FileSource(book))))
    return {**doc, "command": command, "path": str(book), **extra}


def test_recalculer_answers_the_plan_of_process(book: Path) -> None:
    answer = respond(request(book, "Recalculer"))
    expected = json.loads(json.dumps(plan_to_json(process_workbook(book).plan())))
    assert {k: answer.doc[k] for k in ("version", "clear", "cells")} == expected
    assert answer.doc["message"].startswith("Bilan recalculé : ")
    assert answer.doc["level"] in ("info", "warning") and not answer.outputs


def test_verifier_writes_controles_only_with_the_servers_rules(book: Path) -> None:
    req = request(book, "Verifier")
    cell = f"{L.COLUMN_BY_KEY['co2e_forecast_kg'].letter}{L.FIRST_DATA_ROW}"
    req["sheets"]["Lieux"]["values"][L.FIRST_DATA_ROW - 1][
        L.LINE_COLUMNS_LAYOUT.index(L.COLUMN_BY_KEY["co2e_forecast_kg"])] = 999.0
    req["sheets"]["Lieux"]["formulas"]["Q2"] = 'DDE("cmd";"/c calc";"x")'
    answer = respond(req)
    assert set(answer.doc["cells"]) == {L.SHEET_CONTROLES}
    rows = {}
    for r, c, v in answer.doc["cells"][L.SHEET_CONTROLES]:
        rows.setdefault(r, {})[c] = v
    found = {(row.get(2), row.get(3), row.get(4)) for row in rows.values()}
    assert ("COMPUTED_STALE", "Lieux", cell) in found
    assert ("FORMULA_DDE", "Lieux", "Q2") in found
    counts = answer.doc["counts"]
    assert answer.doc["message"].startswith(
        f"Vérification : {counts['errors']} erreur(s), {counts['warnings']} avertissement(s)")


def test_rapport_is_the_pdf_report_and_the_summary_beside_the_document(book: Path) -> None:
    answer = respond(request(book, "Rapport", modified=True))
    target, pdf = book.with_name("film-bilan.json"), book.with_name("film-rapport.pdf")
    assert list(answer.outputs) == [target, pdf]
    assert answer.outputs[pdf].startswith(b"%PDF-")
    report = json.loads(answer.outputs[target])
    total = process_workbook(book).result.total_kg
    assert report["file"] == str(book) and report["lines"]
    assert report["total_kgco2e"]["forecast"] == pytest.approx(total.forecast)
    assert answer.doc["outputs"] == [str(target), str(pdf)] and answer.doc["cells"] == {}
    assert "modifications non enregistrées" in answer.doc["message"]


def test_rapport_of_an_unsaved_document_asks_to_save_it(book: Path) -> None:
    with pytest.raises(ExchangeError, match="Enregistrez d'abord le classeur"):
        respond(request(book, "Rapport", path=None))


def test_facteurs_searches_the_catalogue() -> None:
    edition = load_edition()
    answer = respond({"version": 1, "command": "Facteurs", "query": "TGV",
                      "active": {"sheet": "Transports", "cell": "B5"}})
    first = answer.doc["matches"][0]
    assert first["id"] == "train_tgv" and first["label"] == edition.activities[
        "train_tgv"].label_fr
    assert answer.doc["count"] == len(answer.doc["matches"])
    # the poste of the active sheet first, the whole catalogue for an empty query
    hits = search_activities(edition, "", "regie")
    assert len(hits) == len(edition.activities)
    n_regie = sum("regie" in a.postes for a in hits)
    assert all("regie" in a.postes for a in hits[:n_regie])
    # a typo still finds something; gibberish finds nothing, said in French
    assert search_activities(edition, "gazolle")
    nothing = respond({"version": 1, "command": "Facteurs", "query": "zzzqqq"})
    assert nothing.doc["matches"] == [] and "Aucune activité" in nothing.doc["message"]


@pytest.mark.parametrize(("req", "message"), [
    ([], "n'est pas un objet JSON"),
    ({"version": 9, "command": "Recalculer"}, "Version d'échange 9 inconnue"),
    ({"version": 1, "command": "Effacer"}, "Commande « Effacer » inconnue"),
    ({"version": 1, "command": "Recalculer"}, "n'a aucune feuille"),
    ({"version": 1, "command": "Recalculer", "sheets": {"A": {"values": "x"}}},
     "La feuille « A » envoyée par l'extension est illisible"),
    ({"version": 1, "command": "Recalculer", "sheets": {"Budget": {"values": [["x"]]}}},
     "n'est pas un classeur Carbon'Clap XL"),
])
def test_requests_that_cannot_be_answered(req: Any, message: str) -> None:
    with pytest.raises(ExchangeError, match=message):
        respond(req)


def _exchange(monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes],
              data: bytes) -> tuple[int, dict[str, Any], str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code = main(["libreoffice", "exchange"])
    out, err = capsysbinary.readouterr()
    return code, json.loads(out), err.decode()


def test_cli_exchange_answers_on_stdout(book: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, answer, _ = _exchange(monkeypatch, capsysbinary,
                                json.dumps(request(book, "Rapport")).encode())
    assert code == 0 and Path(answer["outputs"][0]).is_file()


def test_cli_exchange_errors_are_json_for_the_extension(
        monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, answer, err = _exchange(monkeypatch, capsysbinary, b"{pas du json")
    assert code == 2 and answer["version"] == 1
    assert answer["error"].startswith("Requête de l'extension illisible")
    assert err.startswith("erreur : Requête") and "Traceback" not in err


def test_cli_exchange_unwritable_report(tmp_path: Path, book: Path,
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    req = request(book, "Rapport", path=str(tmp_path / "absent" / "film.xlsx"))
    code, answer, _ = _exchange(monkeypatch, capsysbinary, json.dumps(req).encode())
    assert code == 2 and answer["error"].startswith("Écriture impossible")
    assert "le classeur n'a pas été modifié" in answer["error"]
