"""The LibreOffice extension without LibreOffice: the built archive and its check, the
install helpers, and the UNO component's plain-Python parts (loaded with stand-ins for
``uno``, which only LibreOffice's Python has)."""

from __future__ import annotations

import ast
import importlib.util
import io
import json
import re
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

import pytest

from carbonclap_xl import __version__
from carbonclap_xl.cli import main
from carbonclap_xl.libreoffice import install
from carbonclap_xl.libreoffice.build import COMMANDS, oxt_bytes, oxt_files
from carbonclap_xl.libreoffice.check import check_oxt

EXTENSION = Path(install.__file__).parent / "extension" / "carbonclap_handler.py"
STDLIB_OK = {"contextlib", "json", "os", "re", "shutil", "subprocess", "sys", "threading", "time",
             "traceback", "signal", "ctypes", "uno", "unohelper", "com"}


def test_the_archive_is_complete_and_reproducible(tmp_path: Path) -> None:
    files = oxt_files()
    assert b'<version value="%s"/>' % __version__.encode() in files["description.xml"]
    assert files["carbonclap_handler.py"] == EXTENSION.read_bytes()
    for _, _, icon in COMMANDS:
        for size in (16, 26):
            assert files[f"icons/{icon}_{size}.png"].startswith(b"\x89PNG")
    assert oxt_bytes() == oxt_bytes()
    oxt = tmp_path / "CarbonClap.oxt"
    oxt.write_bytes(oxt_bytes())
    result = check_oxt(oxt)
    assert result.problems == [] and all(c.complete for c in result.commands)
    assert [c.title for c in result.commands] == ["Recalculer", "Vérifier", "Rapport",
                                                  "Facteurs"]


def _rebuilt(tmp_path: Path, change: Any) -> Path:
    files = oxt_files()
    change(files)
    out = tmp_path / "broken.oxt"
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out


@pytest.mark.parametrize(("change", "problem"), [
    (lambda f: f.pop("icons/rapport_26.png"), "org.carbonclap.xl:Rapport n'a pas ses deux"),
    (lambda f: f.update({"carbonclap_handler.py": f["carbonclap_handler.py"].replace(
        b'    "Facteurs": "Facteurs",\n', b"")}),
     "carbonclap_handler.py ne traite pas la commande Facteurs"),
    (lambda f: f.update({"ProtocolHandler.xcu": f["ProtocolHandler.xcu"].replace(
        b"org.carbonclap.xl:*", b"org.autre:*")}), "n'atteint aucun gestionnaire"),
    (lambda f: f.update({"Addons.xcu": re.sub(rb'<node oor:name="t02" .*?</node>', b"",
                                              f["Addons.xcu"])}),
     "org.carbonclap.xl:Verifier n'est pas dans la barre d'outils"),
    (lambda f: f.update({"carbonclap_handler.py": f["carbonclap_handler.py"].replace(
        b"g_ImplementationHelper.addImplementation", b"pass  #")}),
     "n'est implémenté par aucun composant Python"),
])
def test_check_names_every_missing_link(tmp_path: Path, change: Any, problem: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    oxt = _rebuilt(tmp_path, change)
    problems = check_oxt(oxt).problems
    assert any(problem in p for p in problems), problems
    assert main(["libreoffice", "check", str(oxt)]) == 1
    out = capsys.readouterr()
    assert "lien(s) manquant(s)" in out.out and problem in out.err


def test_cli_build_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    oxt = tmp_path / "CarbonClap.oxt"
    assert main(["libreoffice", "build", "-o", str(oxt)]) == 0
    assert main(["libreoffice", "check", str(oxt)]) == 0
    out = capsys.readouterr().out
    for url in ("org.carbonclap.xl:Recalculer", "org.carbonclap.xl:Verifier",
                "org.carbonclap.xl:Rapport", "org.carbonclap.xl:Facteurs"):
        assert f"{url}" in out and "org.carbonclap.xl.ProtocolHandler -> " \
                                  "carbonclap_handler.py" in out
    assert main(["libreoffice", "build", "-o", str(tmp_path / "x.zip")]) == 2
    assert main(["libreoffice", "check", str(tmp_path / "absent.oxt")]) == 2
    assert "une extension LibreOffice s'enregistre en .oxt" in capsys.readouterr().err


def test_the_component_stays_python_38_and_standard_library() -> None:
    tree = ast.parse(EXTENSION.read_text(encoding="utf-8"), feature_version=(3, 8))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= STDLIB_OK, imported - STDLIB_OK


# ------------------------------------------------------------------------------ the component


def _stub(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


class _Base:
    pass


class _Helper:
    def addImplementation(self, *args: Any) -> None:
        pass


@pytest.fixture
def handler(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The component's module, with stand-ins for the UNO modules it imports."""
    interfaces = {"XActionListener": type("XActionListener", (), {}),
                  "XDispatchProvider": type("XDispatchProvider", (), {}),
                  "XNotifyingDispatch": type("XNotifyingDispatch", (), {}),
                  "XInitialization": type("XInitialization", (), {}),
                  "XServiceInfo": type("XServiceInfo", (), {})}
    for name, module in {
        "uno": _stub("uno"),
        "unohelper": _stub("unohelper", Base=_Base, ImplementationHelper=_Helper),
        "com": _stub("com"), "com.sun": _stub("com.sun"), "com.sun.star": _stub("com.sun.star"),
        "com.sun.star.awt": _stub("com.sun.star.awt", **interfaces),
        "com.sun.star.frame": _stub("com.sun.star.frame", **interfaces),
        "com.sun.star.lang": _stub("com.sun.star.lang", **interfaces),
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("carbonclap_handler_under_test", EXTENSION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("env", [
    {"HOME": "/home/u"},
    {"HOME": "/home/u", "XDG_CONFIG_HOME": "/xdg"},
    {"HOME": "/home/u", "CARBONCLAP_XL_CONFIG": "/etc/cc.json"},
])
def test_install_writes_the_config_where_the_extension_reads_it(
        handler: types.ModuleType, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key in ("XDG_CONFIG_HOME", "CARBONCLAP_XL_CONFIG"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert Path(handler.config_path()) == install.config_path()


def test_install_records_this_environment(tmp_path: Path) -> None:
    command = install.engine_command()
    assert Path(command[0]).is_absolute() and command[-2:] == ["libreoffice", "exchange"]
    assert Path(command[0]).parent == Path(sys.executable).parent  # this venv, not PATH's
    kept = install.config_document({"timeout": 60, "command": ["old"]})
    assert kept == {"timeout": 60, "command": command}
    bad = tmp_path / "cfg.json"
    bad.write_text("{pas du json")
    with pytest.raises(install.LibreOfficeError, match="illisible"):
        install.read_config(bad)
    assert install.read_config(tmp_path / "absent.json") == {}


def test_libreoffice_processes_start_without_the_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    env = install.clean_env({"PATH": f"{venv / 'bin'}:/usr/bin", "VIRTUAL_ENV": str(venv),
                             "PYTHONPATH": "/x", "LANG": "fr_FR.UTF-8"})
    assert env == {"PATH": "/usr/bin", "LANG": "fr_FR.UTF-8"}


def test_the_component_finds_its_engine_and_says_so_in_french(
        handler: types.ModuleType, tmp_path: Path) -> None:
    env = {"PATH": str(tmp_path)}
    with pytest.raises(handler.UserError, match="la commande configurée n'existe pas"):
        handler.resolve_command({"command": ["/nonexistent/carbonclap-xl"]}, env)
    with pytest.raises(handler.UserError, match="n'est pas installée ou pas dans le PATH"):
        handler.resolve_command({}, {"PATH": str(tmp_path / "empty")})
    assert handler.resolve_command({"command": [sys.executable, "-m", "x"]}, env) == [
        sys.executable, "-m", "x"]
    clean = handler.child_env()
    assert "VIRTUAL_ENV" not in clean and clean["PYTHONUTF8"] == "1"


@pytest.mark.parametrize(("script", "message"), [
    ("import sys, json; print(json.dumps({'version': 1, 'error': 'Classeur non reconnu.'}));"
     " sys.exit(2)", "Classeur non reconnu."),
    ("import sys; sys.stderr.write('Traceback (most recent call last):\\n  File \"x\"\\n"
     "ValueError: boom\\n'); sys.exit(1)", "a échoué (code 1)"),
    ("print('{pas du json')", "illisible (JSON invalide)"),
])
def test_engine_failures_become_one_french_message(handler: types.ModuleType, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   script: str, message: str) -> None:
    monkeypatch.setenv("CARBONCLAP_XL_LOG", str(tmp_path / "cc.log"))
    with pytest.raises(handler.UserError) as caught:
        handler.run_engine([sys.executable, "-c", script], b"{}", handler.child_env(), 30,
                           None)
    text = str(caught.value)
    assert message in text and "Traceback" not in text and 'File "' not in text


class _Sheets:
    def __init__(self, names: list[str]) -> None:
        self.names = names

    def hasByName(self, name: str) -> bool:
        return name in self.names


class _Doc:
    def getSheets(self) -> _Sheets:
        return _Sheets(["Lieux", "Contrôles"])


@pytest.mark.parametrize(("plan", "message"), [
    ({"version": 2}, "version 2, attendue 1"),
    ({"version": 1, "cells": {"Absente": []}}, "La feuille « Absente » est introuvable"),
    ({"version": 1, "cells": {"Lieux": [[0, 1, "x"]]}}, "cellule [0, 1, 'x']"),
    ({"version": 1, "cells": {"Lieux": [[1, 1, {"formula": "SUM(A1)"}]]}}, "formule"),
    ({"version": 1, "cells": {"Lieux": [[1, 1, float("inf")]]}}, "nombre non fini en A1"),
    ({"version": 1, "cells": {"Lieux": [[1, 1, [1]]]}}, "valeur [1]"),
])
def test_a_plan_is_checked_whole_before_any_write(handler: types.ModuleType,
                                                  plan: dict[str, Any], message: str) -> None:
    with pytest.raises(handler.UserError) as caught:
        handler.validate_plan(plan, _Doc())
    assert message in str(caught.value) and "le classeur n'a pas été modifié" in str(
        caught.value)


def test_a_valid_plan_becomes_typed_items(handler: types.ModuleType) -> None:
    cells, clears = handler.validate_plan({"version": 1, "cells": {"Lieux": [
        [2, 3, 1.5], [2, 4, "=texte"], [3, 3, None], [4, 3, True],
        [5, 3, {"formula": "=SUM(C2:C4)", "value": 2.5}]]}}, _Doc())
    assert cells["Lieux"] == {(1, 2): ("v", 1.5), (1, 3): ("v", "=texte"), (2, 2): ("x", None),
                              (3, 2): ("v", 1.0), (4, 2): ("f", "SUM(C2:C4)")}
    assert clears == {}
    assert sorted(handler._rectangles({(0, 0), (0, 1), (1, 0), (1, 1), (3, 5)})) == [
        (0, 0, 1, 1), (3, 5, 3, 5)]


def test_config_file_errors_are_french(handler: types.ModuleType, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "cfg.json"
    monkeypatch.setenv("CARBONCLAP_XL_CONFIG", str(cfg))
    assert handler.load_config() == {}
    cfg.write_text(json.dumps(["x"]))
    with pytest.raises(handler.UserError, match="est invalide"):
        handler.load_config()
    cfg.write_bytes(io.BytesIO(b"{x").read())
    with pytest.raises(handler.UserError, match="est illisible"):
        handler.load_config()


def test_install_config_only_keeps_the_other_settings(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "cfg" / "libreoffice.json"
    cfg.parent.mkdir()
    cfg.write_text(json.dumps({"timeout": 60, "dialogs": "never"}))
    assert main(["libreoffice", "install", "--config-only", "--config", str(cfg)]) == 0
    doc = json.loads(cfg.read_text())
    assert doc == {"timeout": 60, "dialogs": "never", "command": install.engine_command()}
    assert "Configuration : " in capsys.readouterr().out


# (getFormula's Calc API text, LibreOffice's OOXML printer) captured from LibreOffice 7.4;
# None where calc_to_excel must leave the formula to LibreOffice's printer
CALC_FORMULAS = [
    ("=2*(400+100)", "2*(400+100)"),
    ('=IF(A5<>"";1;0)', 'IF(A5<>"",1,0)'),
    ('=SUMIFS($Régie.I5:I20;$Régie.B5:B20;">0")', 'SUMIFS(Régie!I5:I20,Régie!B5:B20,">0")'),
    ("=$'Lisez-moi'.A1+$'Mon onglet'.$B$2", "'Lisez-moi'!A1+'Mon onglet'!$B$2"),
    ("=SUM(A:A)+SUM(2:2)+$S1.A1+$'2019'.A1", "SUM(A:A)+SUM(2:2)+S1!A1+'2019'!A1"),
    ("=$Sheet1.$A$1:$B$3", "Sheet1!$A$1:$B$3"),
    ("=A1:B2 B1:C3", "A1:B2 B1:C3"),
    ("=SUM((A1~B2))", "SUM((A1~B2))"),
    ('=IFERROR(1/0;"x;y")&"a""b"', 'IFERROR(1/0,"x;y")&"a""b"'),
    ("=ROUND(2.5;0)%-A1^2+1E+020*0.5", "ROUND(2.5,0)%-A1^2+1E+020*0.5"),
    ('=INDEX($Transports.D5:D20;MATCH("km";$Transports.D5:D20;0))',
     'INDEX(Transports!D5:D20,MATCH("km",Transports!D5:D20,0))'),
    ('=DDE("soffice";"c:\\x.ods";"a1")', 'DDE("soffice","c:\\x.ods","a1")'),
    ("=SUM( A1 ; B2 )+ma_plage*2+LOG10(100)+ATAN2(1;1)+TODAY()",
     "SUM( A1 , B2 )+ma_plage*2+LOG10(100)+ATAN2(1,1)+TODAY()"),
    ("=SUM($Sheet1.A1:$Sheet2.A1)", None),  # 3D
    ("={1;2|3;4}", None),
    ("=#n/a", None),
    ("=CEILING.XCL(A1;2)", None),
    ("=norm.dist(1;0;1;1)", None),
    ("='file:///tmp/x.ods'#$Feuille1.A1", None),
    ('="non fermé', None),
]


@pytest.mark.parametrize(("calc", "excel"), CALC_FORMULAS)
def test_formulas_read_in_bulk_become_excel_syntax(handler: types.ModuleType, calc: str,
                                                   excel: str | None) -> None:
    assert handler.calc_to_excel(calc) == excel
