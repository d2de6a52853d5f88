"""The Excel add-in on Linux: built from xlwings' own ribbon add-in, read back with oletools
and the standard XML parser, every link checked; the committed CarbonClap.xlam is current;
``addin install`` writes what Excel needs, in a temporary home."""

from __future__ import annotations

import re
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from carbonclap_xl.cli import main
from carbonclap_xl.excel import HANDLERS
from carbonclap_xl.excel import addin as A
from carbonclap_xl.excel.check import Report, check_addin, vba_modules, vba_project_names
from carbonclap_xl.excel.install import install, settings_file, write_settings

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "workbook" / "CarbonClap.xlam"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build") / "CarbonClap.xlam"
    A.build_addin(out)
    return out


def failures(report: Report) -> list[str]:
    return [line.strip() for line in report.lines if line.strip().startswith("ÉCHEC")]


def rewrite_part(src: Path, dst: Path, part: str, edit: Callable[[bytes], bytes | None]) -> Path:
    """Copy a package with one part edited (``None`` drops it)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data: bytes | None = zin.read(info.filename)
            if info.filename == part:
                data = edit(data)
            if data is not None:
                zout.writestr(info.filename, data)
    return dst


# --------------------------------------------------------------------------- the good path


def test_built_addin_passes_every_check(built: Path) -> None:
    report = check_addin(built, handlers=HANDLERS)
    assert report.failures == 0, "\n".join(report.lines)
    text = "\n".join(report.lines)
    for button in A.BUTTONS:
        assert f"carbonclap_xl.excel.on_ribbon('{button.id}')" in text
        assert f"{button.id} -> gestionnaire Python carbonclap_xl.excel.commands." in text


def test_vba_read_back_is_the_dispatcher_the_wrappers_and_the_edited_xlwings(built: Path) -> None:
    spec = A.AddinSpec()
    stock = vba_modules(A.stock_addin_path())
    modules = vba_modules(built)
    assert set(modules) == {"ThisWorkbook", "Dictionary", "Sheet2", "xlwings",
                            spec.ribbon_module, spec.udf_vba_module}
    assert modules["xlwings"] == A.apply_patches(stock["xlwings"], A.xlwings_patches(spec))
    assert len(modules["xlwings"]) > 40_000  # a 43 KB module survives the compression
    assert modules["Dictionary"] == stock["Dictionary"] and modules["Sheet2"] == stock["Sheet2"]
    assert modules["ThisWorkbook"].startswith(stock["ThisWorkbook"])
    ribbon = modules[spec.ribbon_module]
    assert "Public Sub OnRibbon(control As IRibbonControl)" in ribbon
    assert ("RunPython \"import carbonclap_xl.excel; "
            "carbonclap_xl.excel.on_ribbon('\" & control.Id & \"')\"") in ribbon
    udfs = modules[spec.udf_vba_module]
    assert ("CC_EMISSIONS = XLPy.CallUDF(\"carbonclap_xl.excel.udfs\", \"CC_EMISSIONS\", "
            "Array(activite, quantite, unite), ActiveWorkbook, Application.Caller)") in udfs
    assert len(re.findall(r"(?m)^Function CC_\w+\(", udfs)) == 4
    help_text = modules["ThisWorkbook"]
    assert 'ArgumentDescriptions:=Array("Mots à chercher dans le catalogue des activités")' \
        in help_text
    assert all("\n" not in m for m in re.findall(r'Description:="([^"]*)"', help_text))


def test_ribbon_xml_links(built: Path) -> None:
    from defusedxml.ElementTree import fromstring

    with zipfile.ZipFile(built) as z:
        names = z.namelist()
        root = fromstring(z.read(A.CUSTOMUI_PART))
        rels = z.read("_rels/.rels").decode()
    assert root.tag == f"{{{A.CUSTOMUI14_NS}}}customUI"
    assert f'Type="{A.CUSTOMUI14_REL}" Target="{A.CUSTOMUI_PART}"' in rels
    assert "customUI/customUI.xml" not in names and "customUI.xml" not in rels
    buttons = [n for n in root.iter() if n.tag.endswith("button")]
    assert [b.get("id") for b in buttons] == list(HANDLERS)
    assert {b.get("onAction") for b in buttons} == {"OnRibbon"}
    assert [b.get("label") for b in buttons] == ["Recalculer", "Vérifier", "Rapport", "Facteurs"]


def test_project_name_and_settings_sheet(built: Path) -> None:
    assert vba_project_names(built) == ("CarbonClap", "CarbonClap")
    with zipfile.ZipFile(built) as z:
        assert b'name="_carbonclap.conf"' in z.read("xl/workbook.xml")


def test_build_is_reproducible(built: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.xlam"
    A.build_addin(again)
    assert again.read_bytes() == built.read_bytes()


def test_committed_addin_is_current(built: Path) -> None:
    """workbook/CarbonClap.xlam is what the build gives today (part by part): run
    ``make addin`` after changing the UDFs, the ribbon or the build."""
    with zipfile.ZipFile(COMMITTED) as ours, zipfile.ZipFile(built) as fresh:
        assert ours.namelist() == fresh.namelist()
        for name in ours.namelist():
            assert ours.read(name) == fresh.read(name), f"{name}: run `make addin`"


# --------------------------------------------------------------------------- loud failures


def test_a_patch_that_no_longer_matches_fails_the_build() -> None:
    with pytest.raises(A.AddinBuildError, match="own_settings_file"):
        A.apply_patches('Public Const PROJECT_NAME As String = "other"\n',
                        A.xlwings_patches(A.AddinSpec())[:1])


def test_text_vba_cannot_hold_is_refused() -> None:
    with pytest.raises(A.AddinBuildError):
        A.vba_string("CO₂")
    with pytest.raises(A.AddinBuildError, match="une ligne"):
        A.vba_string("deux\nlignes")


def test_build_tools_missing_is_one_french_line(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pyopenvba", None)
    assert main(["addin", "build", "-o", str(tmp_path / "x.xlam")]) == 2
    err = capsys.readouterr().err
    assert "pyOpenVBA n'est pas installé" in err and "Traceback" not in err


# --------------------------------------------------------------------------- the check bites


def test_stock_xlwings_addin_fails_the_check() -> None:
    report = check_addin(A.stock_addin_path(), syntax=False)
    text = "\n".join(failures(report))
    assert "http://schemas.microsoft.com/office/2006/01/customui" in text
    assert "CC_FACTEUR : 0 Function VBA" in text and "nom du projet" in text


def test_onaction_without_callback_fails(built: Path, tmp_path: Path) -> None:
    bad = rewrite_part(built, tmp_path / "bad.xlam", A.CUSTOMUI_PART,
                       lambda d: d.replace(b'onAction="OnRibbon"', b'onAction="OnClick"', 1))
    assert any("onAction=OnClick -> aucune Sub" in f
               for f in failures(check_addin(bad, syntax=False)))


def test_relationship_type_must_match_the_namespace(built: Path, tmp_path: Path) -> None:
    bad = rewrite_part(built, tmp_path / "bad.xlam", "_rels/.rels",
                       lambda d: d.replace(b"2007/relationships/ui", b"2006/relationships/ui"))
    assert any("conforme au type de relation" in f
               for f in failures(check_addin(bad, syntax=False)))


def test_missing_icon_fails(built: Path, tmp_path: Path) -> None:
    bad = rewrite_part(built, tmp_path / "bad.xlam", "customUI/images/cc_rapport.png",
                       lambda d: None)
    assert any("cc_rapport : image" in f for f in failures(check_addin(bad, syntax=False)))


def test_handlers_and_buttons_match_both_ways(built: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    missing = {k: v for k, v in HANDLERS.items() if k != "cc_facteurs"}
    assert any("cc_facteurs -> gestionnaire Python ABSENT" in f
               for f in failures(check_addin(built, handlers=missing, syntax=False)))
    extra = {**HANDLERS, "cc_orphelin": HANDLERS["cc_rapport"]}
    assert any("chaque gestionnaire Python a son bouton" in f
               for f in failures(check_addin(built, handlers=extra, syntax=False)))
    # the command line: exit 1 when a link is missing, 0 when every link holds
    bad = rewrite_part(built, tmp_path / "bad.xlam", A.CUSTOMUI_PART,
                       lambda d: d.replace(b'id="cc_rapport"', b'id="cc_autre"'))
    assert main(["addin", "check", str(bad)]) == 1
    assert "cc_autre -> gestionnaire Python ABSENT" in capsys.readouterr().out
    assert main(["addin", "check", str(built)]) == 0
    out = capsys.readouterr().out
    assert "cc_recalculer « Recalculer » onAction=OnRibbon -> CarbonClapRibbon" in out


def test_unmarked_change_to_xlwings_fails(built: Path, tmp_path: Path) -> None:
    from pyopenvba import ExcelFile

    bad = tmp_path / "bad.xlam"
    bad.write_bytes(built.read_bytes())
    with ExcelFile(bad) as book:
        source = book.get_module("xlwings")
        book.set_module("xlwings", source.replace(
            'PYTHON_WIN = GetConfig("INTERPRETER_WIN", "")',
            'PYTHON_WIN = GetConfigFromSheet(ActiveWorkbook).Item("INTERPRETER_WIN")', 1))
        book.save()
    found = failures(check_addin(bad, syntax=False))
    assert any(re.search(r"NON MARQUÉES : .*GetConfigFromSheet\(ActiveWorkbook\)", f)
               for f in found)


# --------------------------------------------------------------------------- install


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_install_copies_the_addin_and_records_the_interpreter(tmp_path: Path,
                                                              platform: str) -> None:
    home = tmp_path / "home"
    settings = settings_file(platform, home)
    settings.parent.mkdir(parents=True)
    settings.write_text('"USE UDF SERVER","True"\n"INTERPRETER_WIN","ancien"\n')
    done = install(platform=platform, home=home, addin=COMMITTED,
                   startup_folder=tmp_path / "XLSTART", interpreter="/venv/python")
    assert done.addin.read_bytes() == COMMITTED.read_bytes()
    text = done.settings.read_text()
    key = "INTERPRETER_MAC" if platform == "darwin" else "INTERPRETER_WIN"
    assert f'"{key}","/venv/python"' in text and '"USE UDF SERVER","True"' in text
    assert text.count("INTERPRETER_WIN") == 1
    if platform == "darwin":
        assert done.settings.parts[-4:-1] == ("Containers", "com.microsoft.Excel", "Data")
        assert done.script is not None and done.script.name == "xlwings-0.37.8.applescript"
    else:
        assert done.settings == home / ".carbonclap" / "carbonclap.conf"


def test_install_on_linux_says_excel_is_not_here(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["addin", "install"]) == 2
    err = capsys.readouterr().err
    assert "Excel n'est pas disponible" in err and "Traceback" not in err


def test_write_settings_keeps_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "a" / "x.conf"
    write_settings(path, {"INTERPRETER_WIN": "C:\\py\\python.exe"})
    write_settings(path, {"USE UDF SERVER": "True"})
    assert path.read_text().splitlines() == ['"INTERPRETER_WIN","C:\\py\\python.exe"',
                                             '"USE UDF SERVER","True"']
