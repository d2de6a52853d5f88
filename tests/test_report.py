"""The footprint report (HTML/PDF) and the comparison of two workbooks.

Workbooks are built here with hand-checkable lines; factor values are the shipped ones:
French grid electricity 0.0519 kgCO2e/kWh (BE:43642), non-road diesel 3.16 kgCO2e/L
(BE:14015), hotel night in France 6.93 kgCO2e (NGC).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from wbhelpers import LINES, PRODUCTION, make_workbook

from carbonclap_xl.cli import main
from carbonclap_xl.report.document import (
    REFERENCES,
    build_model,
    fr_number,
    fr_percent,
    fr_tonnes,
    is_monetary,
    load_result,
    scope_of,
)

pytest.importorskip("matplotlib")
pytest.importorskip("fpdf")

ELEC, GNR, HOTEL = 0.0519, 3.16, 6.93
PDFTOPPM, PDFTOTEXT = shutil.which("pdftoppm"), shutil.which("pdftotext")
needs_poppler = pytest.mark.skipif(not (PDFTOPPM and PDFTOTEXT),
                                   reason="poppler-utils (pdftoppm, pdftotext) not installed")


def lines(*rows: tuple[Any, ...]) -> pd.DataFrame:
    cols = ["poste", "activity", "quantity_forecast", "quantity_final", "unit", "data_source",
            "comment"]
    return pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows])


# A: 1000 kWh on set, 100 L of generator diesel, 50 L in a truck, 10 hotel nights
LINES_A = lines(
    ("lieux", "elec_fr", 1000, 1000, "kWh", "facture", "plateau"),
    ("lieux", "BE:14015", 100, 100, "L", "devis", "groupe"),
    ("transport", "BE:14015", 50, 50, "L", "facture", "camion"),
    ("regie", "hotel_fr", 10, 10, "nuit", "facture", "équipe"),
)
# B: the set doubles its final electricity, the generator comment is retyped (same line),
# the truck disappears, new dressing rooms appear, the hotel comment is edited (+2 nights)
LINES_B = lines(
    ("lieux", "elec_fr", 1000, 2000, "kWh", "facture", "plateau"),
    ("lieux", "BE:14015", 100, 100, "L", "devis", "  Groupe "),
    ("lieux", "elec_fr", 500, 500, "kWh", "facture", "loges"),
    ("regie", "hotel_fr", 10, 12, "nuit", "facture", "équipe technique"),
)


@pytest.fixture(scope="module")
def telefilm_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workbook(tmp_path_factory.mktemp("wb") / "film.xlsx", LINES,
                         {**PRODUCTION, "title": "Le <Film> & « cie »", "episodes": 1})


@pytest.fixture(scope="module")
def doc(telefilm_like: Path) -> dict[str, Any]:
    return load_result(telefilm_like)


# --------------------------------------------------------------------------- formats, model


def test_french_number_formats() -> None:
    assert fr_number(1234567.891) == "1\u202f234\u202f567,89"
    assert fr_number(-0.5, 1) == "\u22120,5"
    assert fr_number(3, 2, signed=True) == "+3,00"
    assert fr_number(-0.001, 2, signed=True) == "0,00"  # no sign on a rounded zero
    assert fr_number(float("nan")) == fr_number(None) == "—"
    assert fr_tonnes(93527.8, 1) == "93,5"
    assert fr_percent(0.1234) == "12,3\u202f%"


def test_scopes_and_monetary_ratios_follow_the_documented_rules() -> None:
    elec = {"nature": "energie", "activity_id": "elec_fr", "factor_unit": "kWh"}
    heat = {"nature": "energie", "activity_id": "district_heat_paris", "factor_unit": "kWh"}
    gnr = {"nature": "energie", "activity_id": None, "factor_label": "Gazole non routier",
           "factor_unit": "litre"}
    gas = {"nature": "energie", "activity_id": "gas_fr_kwh_pcs", "factor_unit": "kWh PCS"}
    car_l = {"nature": "transport_personnes", "factor_unit": "litre"}
    car_km = {"nature": "transport_personnes", "factor_unit": "km"}
    hotel = {"nature": "hebergement", "factor_unit": "night"}
    assert [scope_of(x) for x in (elec, heat, gnr, gas, car_l, car_km, hotel)] == \
        [2, 2, 1, 1, 1, 3, 3]
    assert is_monetary({"factor_unit": "keuro (2023) HT"})
    assert is_monetary({"factor_unit": "USD"})
    assert not is_monetary({"factor_unit": "kWh"})


def test_model_numbers_by_hand(doc: dict[str, Any]) -> None:
    m = build_model(doc)
    # LINES: 1000/1200 kWh (invoice), 300/— L of GNR (quote), 40/44 hotel nights, TGV km
    elec_f, elec_F = 1000 * ELEC, 1200 * ELEC
    gnr_f = 300 * GNR
    assert m.total.forecast == pytest.approx(doc["total_kgco2e"]["forecast"])
    scopes = {r.key: r for r in m.scopes}
    assert scopes["1"].forecast == pytest.approx(gnr_f) and scopes["1"].final == 0
    assert scopes["2"].forecast == pytest.approx(elec_f)
    assert scopes["2"].final == pytest.approx(elec_F)
    assert sum(r.forecast for r in m.scopes) == pytest.approx(m.total.forecast)
    quality = {r.key: r for r in m.quality}
    assert quality["devis"].forecast == pytest.approx(gnr_f)
    assert quality["devis"].final == 0
    assert sum(r.final for r in m.quality) == pytest.approx(m.total.final)
    assert m.monetary.forecast == 0 and m.monetary_lines == 0
    assert m.main_phase == "forecast"  # the Production sheet declares the forecast
    assert m.heaviest[0].forecast == pytest.approx(gnr_f)
    assert m.changes[0].delta == pytest.approx(-gnr_f)  # the generator leaves the final
    per_episode = next(i for i in m.indicators if i.key == "tco2e_per_episode")
    assert per_episode.forecast == pytest.approx(m.total.forecast / 1000)
    assert [r.value_t for r in REFERENCES if r.indicator == "tco2e_per_hour"] == [16.0, 10.0,
                                                                                   9.2]


def test_model_tolerates_new_columns_and_uses_the_final_data_source(
        doc: dict[str, Any]) -> None:
    doc = json.loads(json.dumps(doc))
    for line in doc["lines"]:
        line["count"] = 2  # columns the result schema may gain: ignored or used
        line["data_source_final"] = "facture"
    doc["something_new"] = {"x": 1}
    m = build_model(doc)
    quality = {r.key: r for r in m.quality}
    assert quality["facture"].final == pytest.approx(m.total.final)
    assert quality["devis"].forecast == pytest.approx(300 * GNR)


# --------------------------------------------------------------------------- HTML


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_html_is_self_contained_escaped_and_carries_totals(doc: dict[str, Any]) -> None:
    from carbonclap_xl.report.writer import render

    text = render(doc, "html").decode("utf-8")
    parser = _Collect()
    parser.feed(text)
    tags = [t for t, _ in parser.tags]
    assert "script" not in tags and "link" not in tags
    images = [a for t, a in parser.tags if t == "img"]
    assert len(images) == 4  # postes, natures, changes, data quality
    for attrs in images:
        src = attrs["src"] or ""
        assert src.startswith("data:image/png;base64,") and attrs["alt"]
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", text)  # nothing fetched
    assert "Le &lt;Film&gt; &amp; « cie »" in text and "<Film>" not in text
    total_f = fr_tonnes(doc["total_kgco2e"]["forecast"], 1)
    total_F = fr_tonnes(doc["total_kgco2e"]["final"], 1)
    assert f"{total_f}\u202ftCO2e" in text and f"{total_F}\u202ftCO2e" in text
    for heading in ("Émissions par poste", "Émissions par nature", "Qualité des données",
                    "Scopes 1, 2 et 3", "Points de contrôle restants", "Base Empreinte"):
        assert heading in text


def test_html_escapes_every_workbook_text(tmp_path: Path) -> None:
    evil = "<img src=x onerror=alert(1)>"
    wb = make_workbook(tmp_path / "evil.xlsx", lines(
        ("lieux", "elec_fr", 1000, 1000, "kWh", "facture", evil)),
        {**PRODUCTION, "title": evil, "producer": "</style><script>x()</script>"})
    from carbonclap_xl.report.writer import render

    text = render(load_result(wb), "html").decode("utf-8")
    assert evil not in text and "<script" not in text and "</style><" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text


# --------------------------------------------------------------------------- PDF


@needs_poppler
def test_pdf_pages_render_and_carry_the_totals(telefilm_like: Path, tmp_path: Path,
                                               doc: dict[str, Any]) -> None:
    out = tmp_path / "rapport.pdf"
    assert main(["report", str(telefilm_like), "-o", str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    subprocess.run([PDFTOPPM, "-r", "40", "-png", str(out), str(tmp_path / "page")],
                   check=True, timeout=60)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 3
    from PIL import Image

    for page in pages:
        with Image.open(page) as img:
            assert img.size[1] > img.size[0]  # A4 portrait
            lo, hi = img.convert("L").getextrema()
            assert lo < 100 and hi == 255  # something printed on a white page
    text = subprocess.run([PDFTOTEXT, "-layout", str(out), "-"], capture_output=True,
                          text=True, check=True, timeout=60).stdout
    text = text.replace("\u200b", "").replace("\u202f", " ")  # poppler prints a space
    for phase in ("forecast", "final"):
        assert fr_tonnes(doc["total_kgco2e"][phase], 1) + " tCO2e" in text
    assert "Le <Film> & « cie »" in text
    assert "Émissions par poste" in text and "Base Empreinte" in text
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True,
                           timeout=60).stdout if shutil.which("pdffonts") else ""
    if fonts:
        rows = [r for r in fonts.splitlines()[2:] if r.strip()]
        assert rows and all(" yes yes " in r for r in rows)  # embedded, subset
    images = subprocess.run(["pdfimages", "-list", str(out)], capture_output=True, text=True,
                            timeout=60).stdout if shutil.which("pdfimages") else ""
    if images:
        assert len(images.splitlines()) - 2 == 4


def test_pdf_embeds_dejavu_from_matplotlib() -> None:
    import matplotlib

    from carbonclap_xl.report.pdf import font_files

    for path in font_files().values():
        assert path.is_file()
        assert Path(matplotlib.get_data_path()) in path.parents


# --------------------------------------------------------------------------- CLI contract


def test_report_refuses_to_overwrite_and_writes_atomically(telefilm_like: Path,
                                                           tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    out = tmp_path / "r.html"
    out.write_text("ancien", encoding="utf-8")
    assert main(["report", str(telefilm_like), "-o", str(out)]) == 2
    assert "existe déjà" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "ancien"

    import carbonclap_xl.report.writer as writer

    def broken(doc: dict[str, Any], fmt: str) -> bytes:
        raise RuntimeError("rendering failed")

    monkeypatch.setattr(writer, "render", broken)
    with pytest.raises(RuntimeError):
        main(["report", str(telefilm_like), "-o", str(out), "--force"])
    assert out.read_text(encoding="utf-8") == "ancien"  # untouched on failure
    monkeypatch.undo()
    assert main(["report", str(telefilm_like), "-o", str(out), "--force"]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temporary left


def test_report_unreadable_inputs_exit_2(tmp_path: Path, telefilm_like: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "absent.xlsx"), "-o", str(tmp_path / "r.pdf")]) == 2
    assert "introuvable" in capsys.readouterr().err
    assert main(["report", str(telefilm_like), "-o", str(tmp_path / "r.docx")]) == 2
    assert "pdf ou .html" in capsys.readouterr().err
    from openpyxl import Workbook

    other = tmp_path / "autre.xlsx"
    Workbook().save(other)
    assert main(["report", str(other), "-o", str(tmp_path / "r.html")]) == 2
    assert "pas un classeur Carbon'Clap" in capsys.readouterr().err
    fake = tmp_path / "faux.xlsx"
    fake.write_text("poste,activity\n", encoding="utf-8")
    assert main(["report", str(fake), "-o", str(tmp_path / "r.html")]) == 2
    assert not (tmp_path / "r.html").exists()


def test_report_default_output_beside_the_workbook_and_exit_1_on_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wb = make_workbook(tmp_path / "MonFilm.xlsx", lines(
        ("lieux", "elec_fr", 1000, 1000, "kWh", "facture", None),
        ("lieux", "elec_fr", 10, 10, "litres", "facture", "unité impossible")))
    from carbonclap_xl.report.writer import default_output

    assert default_output(wb) == tmp_path / "MonFilm-rapport.pdf"
    assert main(["report", str(wb), "-o", str(tmp_path / "x.html")]) == 1
    err = capsys.readouterr().err
    assert "erreur(s) dans le classeur" in err
    text = (tmp_path / "x.html").read_text(encoding="utf-8")
    assert "UNIT_MISMATCH" in text and "Attention" in text


def test_cli_import_stays_light() -> None:
    code = ("import sys, carbonclap_xl.cli as c; c.build_parser(); "
            "heavy = [m for m in ('matplotlib', 'fpdf', 'PIL') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# --------------------------------------------------------------------------- compare


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("cmp")
    return make_workbook(d / "a.xlsx", LINES_A), make_workbook(d / "b.xlsx", LINES_B)


def test_compare_by_hand(pair: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = pair
    assert main(["compare", str(a), str(b), "--json", "-"]) == 0
    out = capsys.readouterr()
    cmp = json.loads(out.out)
    assert cmp["same_production"] is True and cmp["line_key"] == ["poste", "activity",
                                                                   "comment"]
    lieux_a = 1000 * ELEC + 100 * GNR
    lieux = cmp["by_poste"]["lieux"]
    assert lieux["forecast"]["a"] == pytest.approx(lieux_a)
    assert lieux["forecast"]["b"] == pytest.approx(lieux_a + 500 * ELEC)
    assert lieux["final"]["delta"] == pytest.approx(1000 * ELEC + 500 * ELEC)
    transport = cmp["by_poste"]["transport"]["final"]
    assert transport["a"] == pytest.approx(50 * GNR) and transport["b"] == 0
    assert transport["delta_pct"] == pytest.approx(-100)
    assert cmp["by_poste"]["decors"]["final"]["delta_pct"] is None  # 0 → 0: no percentage
    energy = cmp["by_nature"]["energie"]["forecast"]
    assert energy["delta"] == pytest.approx(500 * ELEC - 50 * GNR)
    total = cmp["total"]["final"]
    assert total["delta"] == pytest.approx(1500 * ELEC - 50 * GNR + 2 * HOTEL, rel=1e-3)

    lines_ = cmp["lines"]
    assert [x["comment"] for x in lines_["appeared"]] == ["loges"]
    assert lines_["appeared"][0]["final_kg"] == pytest.approx(500 * ELEC)
    assert [x["comment"] for x in lines_["disappeared"]] == ["camion"]
    assert lines_["matched"] == 3 and lines_["comment_edited"] == 1
    changed = {c["comment"]: c for c in lines_["changed"]}
    assert set(changed) == {"plateau", "équipe technique"}  # the retyped « Groupe » is equal
    assert lines_["changed"][0]["comment"] == "plateau"  # largest change first
    assert changed["plateau"]["final"]["delta"] == pytest.approx(1000 * ELEC)
    assert changed["équipe technique"]["comment_edited"] is True
    assert changed["équipe technique"]["comment_a"] == "équipe"
    assert changed["équipe technique"]["final"]["delta"] == pytest.approx(2 * HOTEL, rel=1e-3)
    assert "Apparues dans B" in out.err and "loges" in out.err  # text beside JSON on stdout


def test_compare_two_productions_skips_lines_unless_asked(
        pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, _ = pair
    other = make_workbook(tmp_path / "autre.xlsx", LINES_B, {**PRODUCTION, "title": "Autre"})
    assert main(["compare", str(a), str(other), "--json", str(tmp_path / "c.json")]) == 0
    assert "lignes non comparées" in capsys.readouterr().out
    cmp = json.loads((tmp_path / "c.json").read_text(encoding="utf-8"))
    assert cmp["same_production"] is False and cmp["lines"] is None
    assert main(["compare", str(a), str(other), "--same-production", "--json", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["lines"]["matched"] == 3
    assert main(["compare", str(a), str(tmp_path / "absent.xlsx")]) == 2


def test_reference_figures_are_documented_with_their_sources() -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "report.md").read_text(
        encoding="utf-8")
    for ref in REFERENCES:
        assert ref.source in page, ref
        value = f"{ref.value_t:,.2f}".rstrip("0").rstrip(".")
        assert f"| {value} " in page or f"| {value[:4]} " in page, ref
