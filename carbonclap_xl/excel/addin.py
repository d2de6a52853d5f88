"""Build the Carbon'Clap Excel add-in (``CarbonClap.xlam``) on any OS, without Excel.

The add-in starts from ``quickstart_addin_ribbon.xlam`` shipped in the installed (pinned)
xlwings wheel, so its VBA names the same versioned DLL and AppleScript files as the Python
side. The build:

1. edits the VBA with pyOpenVBA (pure Python, MS-OVBA compression, ``dir``/``PROJECT``
   streams): renames the ribbon module and gives it one callback ``OnRibbon`` that hands the
   button id to ``carbonclap_xl.excel.on_ribbon``; patches the ``xlwings`` module so that an
   opened workbook (its ``<name>.conf`` sheet, a ``.conf`` file beside it, ``.py``
   embedded-code sheets, its folder on ``sys.path``) can no longer choose the interpreter or
   the ``PYTHONPATH``; adds the UDF wrappers that xlwings' own ``udfs.generate_vba_wrapper``
   writes for ``carbonclap_xl.excel.udfs``; registers their Function Wizard help in
   ``Workbook_Open``;
2. renames the VBA project (PROJECTNAME in the ``dir`` stream, ``Name=`` in ``PROJECT``);
3. replaces the ribbon part by ``customUI/customUI14.xml`` with icons, dropping the old
   part, its relationship and content types.

Every text patch must match the stock source exactly once: an xlwings upgrade that moves the
code fails the build loudly instead of shipping a half-patched add-in. Two builds give the
same bytes. Needs the ``addin`` extra (pyOpenVBA) and the pinned xlwings (``excel`` extra).
Ported from the prototype in ``addin-proto`` (FINDINGS.md); XML is written with the standard
library (lxml belongs to ``xlsx/``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import os
import re
import shutil
import sys
import tempfile
import time
import types
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from carbonclap_xl.core.atomic import new_file_mode
from carbonclap_xl.core.errors import CarbonClapError
from carbonclap_xl.workbook.layout import COMMANDS

XLWINGS_VERSION = "0.37.8"
STOCK_ADDIN_NAME = "quickstart_addin_ribbon.xlam"
#: The same file in the 0.37.8 wheels for Linux and win_amd64 (checked).
STOCK_ADDIN_SHA256 = "43010e1abd6e7a48b4693367f062196654a21c256683dccbaec810df7a6f4dbb"
STOCK_RIBBON_MODULE = "RibbonMyAddin"
STOCK_CONF_SHEET = "_myaddin.conf"

CUSTOMUI14_NS = "http://schemas.microsoft.com/office/2009/07/customui"
CUSTOMUI14_REL = "http://schemas.microsoft.com/office/2007/relationships/ui/extensibility"
CUSTOMUI12_NS = "http://schemas.microsoft.com/office/2006/01/customui"
CUSTOMUI12_REL = "http://schemas.microsoft.com/office/2006/relationships/ui/extensibility"
CUSTOMUI_PART = "customUI/customUI14.xml"
CUSTOMUI_RELS_PART = "customUI/_rels/customUI14.xml.rels"
IMAGE_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/image"
PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"

#: Every line the build adds to a stock module carries this word (the check verifies it).
MARK = "CarbonClap"
#: Timestamp of the zip entries the build creates, so that two builds give the same bytes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
#: The VBA project and its literals are stored in this code page (the stock project's).
VBA_CODEPAGE = "cp1252"
ICONS_DIR = Path(__file__).with_name("icons")
UDF_MODULE = "carbonclap_xl.excel.udfs"


class AddinBuildError(CarbonClapError, RuntimeError):
    """The add-in cannot be built (missing tool, another xlwings, a patch that missed...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"construction du complément impossible : {self.reason}"


def require_xlwings() -> None:
    """Raise a clear error unless the pinned xlwings is installed."""
    try:
        import xlwings
    except ImportError as exc:
        raise AddinBuildError(f"xlwings n'est pas installé : pip install "
                              f"'carbonclap_xl[excel]' (xlwings=={XLWINGS_VERSION})") from exc
    if xlwings.__version__ != XLWINGS_VERSION:
        raise AddinBuildError(
            f"xlwings {xlwings.__version__} est installé, le complément est construit avec "
            f"xlwings {XLWINGS_VERSION} (son VBA nomme xlwings64-{XLWINGS_VERSION}.dll) : "
            f"pip install xlwings=={XLWINGS_VERSION}")


def require_build_tools() -> None:
    """Raise a clear error unless pyOpenVBA and the pinned xlwings are installed."""
    require_xlwings()
    try:
        import pyopenvba  # noqa: F401
    except ImportError as exc:
        raise AddinBuildError("pyOpenVBA n'est pas installé ; installez les outils de "
                              "construction : pip install 'carbonclap_xl[addin,excel]'") from exc


# --------------------------------------------------------------------------- what goes in


@dataclass(frozen=True)
class RibbonButton:
    id: str
    label: str
    supertip: str = ""

    @property
    def image(self) -> str:
        return self.id


BUTTONS: tuple[RibbonButton, ...] = tuple(
    RibbonButton(c.id, c.label, c.help[0].upper() + c.help[1:]) for c in COMMANDS)


@dataclass(frozen=True)
class AddinSpec:
    """Names baked into the add-in. The defaults are the Carbon'Clap ones."""

    project_name: str = "CarbonClap"
    addin_file_name: str = "CarbonClap.xlam"
    python_package: str = "carbonclap_xl.excel"
    python_entry: str = "on_ribbon"
    udf_module: str = UDF_MODULE
    #: PROJECT_NAME of the xlwings VBA: the user settings file is
    #: %USERPROFILE%\.<config_name>\<config_name>.conf (Windows) or
    #: ~/Library/Containers/com.microsoft.Excel/Data/<config_name>.conf (macOS).
    config_name: str = "carbonclap"
    ribbon_module: str = "CarbonClapRibbon"
    udf_vba_module: str = "CarbonClapUdfs"
    callback: str = "OnRibbon"
    tab_id: str = "cc_tab"
    tab_label: str = "Carbon'Clap"
    group_id: str = "cc_group"
    group_label: str = "Bilan carbone"
    buttons: tuple[RibbonButton, ...] = BUTTONS
    no_workbook_message: str = "Ouvrez d'abord le classeur de la production."
    #: Add Python's -P (3.11+) on Windows so the current folder never lands on sys.path.
    isolate_cwd: bool = True
    #: Register descriptions/argument help (Application.MacroOptions) in Workbook_Open.
    register_udf_help: bool = True


@dataclass
class BuildReport:
    out_path: Path
    seconds: float = 0.0
    modules: list[str] = field(default_factory=list)
    patches: list[str] = field(default_factory=list)
    udfs: list[str] = field(default_factory=list)


def stock_addin_path() -> Path:
    """The ribbon add-in shipped in the installed xlwings wheel; refuses another version."""
    require_xlwings()
    import xlwings

    path = Path(xlwings.__file__).with_name(STOCK_ADDIN_NAME)
    if not path.is_file():
        raise AddinBuildError(f"{path} manque dans le paquet xlwings")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != STOCK_ADDIN_SHA256:
        raise AddinBuildError(f"{path} : sha256 {digest}, pas celui attendu "
                              f"({STOCK_ADDIN_SHA256})")
    return path


# --------------------------------------------------------------------------- VBA text


@dataclass(frozen=True)
class Patch:
    """Replace ``old`` (which must occur exactly once) by ``new``; both use ``\\n``."""

    name: str
    old: str
    new: str


def xlwings_patches(spec: AddinSpec) -> list[Patch]:
    """The edits to the stock ``xlwings`` VBA module, in the order they are applied."""
    patches = [
        Patch(
            "own_settings_file",
            'Public Const PROJECT_NAME As String = "myaddin"\n',
            f'Public Const PROJECT_NAME As String = "{spec.config_name}" '
            f"' {MARK}: settings from this add-in's sheet and the user's "
            f"{spec.config_name}.conf only\n",
        ),
        Patch(
            "runpython_no_embedded_code_no_workbook_dir",
            "    ' Check for embedded Python code\n"
            "    uses_embedded_code = False\n"
            "    For i = 1 To 2\n"
            "        If i = 1 Then\n"
            "            Set wb = ActiveWorkbook\n"
            "        Else\n"
            "            Set wb = ThisWorkbook\n"
            "        End If\n"
            "        For Each sht In wb.Worksheets\n"
            '            If Right$(sht.Name, 3) = ".py" Then\n'
            "                uses_embedded_code = True\n"
            "                Exit For\n"
            "            End If\n"
            "        Next\n"
            "    Next i\n"
            "\n"
            "    If uses_embedded_code = True Then\n"
            '        AddExcelDir = "false"\n'
            "    Else\n"
            '        AddExcelDir = GetConfig("ADD_WORKBOOK_TO_PYTHONPATH", "true")\n'
            "    End If\n",
            f"    uses_embedded_code = False ' {MARK}: never run code embedded in a workbook\n"
            f"    AddExcelDir = \"false\" ' {MARK}: the workbook's folder never goes on sys.path\n",
        ),
        Patch(
            "udf_server_no_workbook_dir",
            "    ' TODO: Doesn't automatically check if code is embedded\n"
            '    AddExcelDir = GetConfig("ADD_WORKBOOK_TO_PYTHONPATH", "true")\n',
            f"    AddExcelDir = \"false\" ' {MARK}: the workbook's folder never goes on sys.path\n",
        ),
        Patch(
            "config_not_from_workbook_sheet",
            "            'Workbook Sheet Config\n"
            '            If SheetExists(ActiveWorkbook, PROJECT_NAME & ".conf") = True Then\n'
            "                If GetConfigFromSheet(ActiveWorkbook).Exists(configKey) = True Then\n"
            "                    GetConfig = GetConfigFromSheet(ActiveWorkbook).Item(configKey)\n"
            "                    GetConfig = ExpandEnvironmentStrings(GetConfig)\n"
            "                    Exit Function\n"
            "                End If\n"
            "            End If\n"
            "    \n",
            f"            ' {MARK}: the opened workbook's .conf sheet is not read\n",
        ),
        Patch(
            "config_not_from_workbook_folder",
            "    ' Directory Config\n"
            '    If source = "" Or source = "directory" Then\n'
            '        #If App = "Microsoft Excel" Then\n'
            '            If GetFullName(ActiveWorkbook) <> "" Then '
            "' Empty if local dir can't be figured out (e.g. SharePoint)\n"
            "        #Else\n"
            '            If InStr(GetDirectoryPath(), "://") = 0 Then '
            "' Other Office apps: skip for synced SharePoint/OneDrive files\n"
            "        #End If\n"
            "            If FileExists(GetDirectoryConfigFilePath()) = True Then\n"
            "                If GetConfigFromFile(GetDirectoryConfigFilePath(), configKey, "
            "configValue) Then\n"
            "                    GetConfig = configValue\n"
            "                    GetConfig = ExpandEnvironmentStrings(GetConfig)\n"
            "                    Exit Function\n"
            "                End If\n"
            "            End If\n"
            "        End If\n"
            "    End If\n",
            f"    ' {MARK}: a .conf file beside the opened workbook is not read\n",
        ),
    ]
    if spec.isolate_cwd:
        run = (
            r'        RunCommand = CondaCmd & PythonInterpreter & " -B -c ""import xlwings.utils;'
            r'xlwings.utils.prepare_sys_path(\""" & PYTHONPATH & "\""); " & PythonCommand & """ "'
        )
        tail = (
            r'        tail = " -B -c ""import sys, os;" & LicenseKeyEnvString & '
            r'"import xlwings.utils;xlwings.utils.prepare_sys_path(\""" & PYTHONPATH & "\"");'
            r"import xlwings; xlwings.serve('$(CLSID)')" + '"""'
        )
        note = f" ' {MARK}: -P keeps the current folder off sys.path\n"
        patches += [
            Patch("runpython_no_cwd_on_sys_path", run + "\n",
                  run.replace(" -B -c ", " -B -P -c ") + note),
            Patch("udf_server_no_cwd_on_sys_path", tail + "\n",
                  tail.replace(" -B -c ", " -B -P -c ") + note),
        ]
    return patches


def apply_patches(source: str, patches: Sequence[Patch]) -> str:
    """Apply ``patches`` to ``source``, keeping its newline convention."""
    newline = "\r\n" if "\r\n" in source else "\n"
    text = source.replace("\r\n", "\n")
    for patch in patches:
        count = text.count(patch.old)
        if count != 1:
            raise AddinBuildError(
                f"le patch VBA de xlwings {patch.name!r} trouve son texte {count} fois (1 "
                f"attendue, xlwings {XLWINGS_VERSION})")
        text = text.replace(patch.old, patch.new)
    return text.replace("\n", newline)


def vba_string(text: str) -> str:
    """A VBA string literal (quotes doubled); refuses what the project's code page cannot
    hold."""
    if "\n" in text or "\r" in text:
        raise AddinBuildError(f"{text[:60]!r} : un texte VBA tient sur une ligne")
    try:
        text.encode(VBA_CODEPAGE)
    except UnicodeEncodeError as exc:
        raise AddinBuildError(f"{text!r} ne tient pas dans un projet VBA {VBA_CODEPAGE}") from exc
    return '"' + text.replace('"', '""') + '"'


def ribbon_module_source(spec: AddinSpec) -> str:
    """The ribbon module: one callback for every button, which hands the id to Python."""
    command = (f"import {spec.python_package}; "
               f"{spec.python_package}.{spec.python_entry}('\" & control.Id & \"')")
    lines = [
        "Option Explicit",
        f"' {MARK}: generated at build time. Every ribbon button has onAction=\"{spec.callback}\";",
        f"' the Python side ({spec.python_package}.{spec.python_entry}) maps the button id "
        "to its handler.",
        "",
        f"Public Sub {spec.callback}(control As IRibbonControl)",
        "    If ActiveWorkbook Is Nothing Then ' RunPython needs a workbook (Book.caller)",
        f"        MsgBox {vba_string(spec.no_workbook_message)}, vbInformation, "
        f"{vba_string(spec.tab_label)}",
        "        Exit Sub",
        "    End If",
        f'    RunPython "{command}"',
        "End Sub",
        "",
    ]
    return "\r\n".join(lines)


# --------------------------------------------------------------------------- UDF wrappers

_PYWIN32_STUBS = ("pythoncom", "pywintypes", "win32com", "win32com.client")


@contextlib.contextmanager
def windows_udf_decorators() -> Iterator[types.ModuleType]:
    """Import ``xlwings.udfs`` on any OS and make ``xw.func``/``xw.arg``/... its real
    decorators. ``xlwings.udfs`` imports three pywin32 modules at import time only; they are
    stubbed in ``sys.modules`` for the duration. On Linux ``xw.func`` is a no-op, so inside
    this block it is pointed at ``udfs.xlfunc`` (what xlwings binds on Windows). Everything is
    restored on exit."""
    import xlwings

    saved_modules = {n: sys.modules.get(n) for n in (*_PYWIN32_STUBS, "xlwings.udfs")}
    decorator_names = ("func", "arg", "ret", "sub", "script")
    saved_attrs = {n: getattr(xlwings, n, None) for n in (*decorator_names, "udfs")}
    try:
        if saved_modules["xlwings.udfs"] is None:
            for name in _PYWIN32_STUBS:
                if sys.modules.get(name) is None:
                    sys.modules[name] = types.ModuleType(name)
            pythoncom = sys.modules["pythoncom"]
            if not hasattr(pythoncom, "CoInitialize"):
                pythoncom.CoInitialize = lambda: None  # type: ignore[attr-defined]
            client = sys.modules["win32com.client"]
            if not hasattr(client, "Dispatch"):
                client.Dispatch = None  # type: ignore[attr-defined]
            sys.modules["win32com"].client = client  # type: ignore[attr-defined]
        udfs = importlib.import_module("xlwings.udfs")
        xlwings.func = udfs.xlfunc
        xlwings.arg = udfs.xlarg
        xlwings.ret = udfs.xlret
        xlwings.sub = udfs.xlsub
        xlwings.script = udfs.xlsub
        yield udfs
    finally:
        for name, attr in saved_attrs.items():
            if attr is None:
                with contextlib.suppress(AttributeError):
                    delattr(xlwings, name)
            else:
                setattr(xlwings, name, attr)
        for name, module in saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def import_udf_module(module_name: str = UDF_MODULE) -> types.ModuleType:
    """Import the UDF module afresh with the real (Windows) decorators; the normal import
    (no-op decorators) is put back afterwards."""
    previous = sys.modules.pop(module_name, None)
    try:
        with windows_udf_decorators():
            return importlib.import_module(module_name)
    finally:
        if previous is not None:
            sys.modules[module_name] = previous
        else:
            sys.modules.pop(module_name, None)


def xlfuncs(module: types.ModuleType) -> list[dict[str, Any]]:
    """The ``__xlfunc__`` records of ``module``, in xlwings' order (``dir()``)."""
    found = [getattr(module, a) for a in dir(module)]
    return [f.__xlfunc__ for f in found if hasattr(f, "__xlfunc__")]


class _AddinWorkbookStandIn:
    """What ``generate_vba_wrapper`` reads of the target workbook: an .xlam name makes the
    wrappers pass ``ActiveWorkbook``."""

    def __init__(self, name: str) -> None:
        self.Name = name


def udf_module_source(module: types.ModuleType, spec: AddinSpec) -> str:
    """The UDF wrapper module, text exactly as xlwings' « Import Python UDFs » writes it."""
    for record in xlfuncs(module):
        for arg in record["args"]:
            if not (arg["name"].isidentifier() and arg["name"].isascii()):
                raise AddinBuildError(f"{arg['name']!r} : les arguments VBA sont en ASCII")
    with windows_udf_decorators() as udfs:
        buffer = io.StringIO()
        udfs.generate_vba_wrapper(spec.udf_module, module, buffer,
                                  _AddinWorkbookStandIn(spec.addin_file_name))
    header = (f"' {MARK}: generated at build time by xlwings {XLWINGS_VERSION} "
              "udfs.generate_vba_wrapper; do not edit.\n"
              "#Const App = \"Microsoft Excel\" 'Adjust when using outside of Excel\n")
    return (header + buffer.getvalue()).replace("\r\n", "\n").replace("\n", "\r\n")


def udf_help_source(module: types.ModuleType) -> str:
    """``Workbook_Open`` code that sets the Function Wizard help, appended to
    ``ThisWorkbook`` (xlwings sets it with ``Application.MacroOptions`` when a user clicks
    Import; an add-in built without Excel sets it each time it loads)."""
    lines = [
        f"' {MARK}: generated at build time. Function Wizard help for the worksheet functions,",
        "' set as xlwings' \"Import Python UDFs\" sets it (Application.MacroOptions).",
        "Private Sub Workbook_Open()",
        "    RegisterWorksheetFunctions",
        "End Sub",
        "",
        "Private Sub RegisterWorksheetFunctions()",
        "    ' worksheet functions are Windows-only",
        "#If Not Mac Then",
        "    On Error Resume Next ' help text must never stop the add-in from loading",
    ]
    for xlfunc in xlfuncs(module):
        if xlfunc["sub"]:
            continue
        argdocs = [vba_string(_one_line(a["doc"])) for a in xlfunc["args"] if not a["vba"]]
        macro = f"\"'\" & ThisWorkbook.Name & \"'!{xlfunc['name']}\""
        lines += [
            f"    Application.MacroOptions Macro:={macro}, _",
            f"        Description:={vba_string(_one_line(xlfunc['ret']['doc']))}, _",
            f"        Category:={vba_string(str(xlfunc['category']))}, _",
            f"        ArgumentDescriptions:=Array({', '.join(argdocs)})",
        ]
    lines += ["    On Error GoTo 0", "#End If", "End Sub", ""]
    too_long = [line for line in lines if len(line) > 1000]
    if too_long:
        raise AddinBuildError(f"ligne VBA de plus de 1000 caractères : {too_long[0][:80]}…")
    return "\r\n".join(lines)


def _one_line(text: str) -> str:
    """A docstring as Excel's help shows it: one line, 255 characters at most."""
    return " ".join(str(text or "").split())[:255]


# --------------------------------------------------------------------------- project name


def set_vba_project_name(vba_bin: bytes, name: str) -> bytes:
    """Rename the VBA project: PROJECTNAME (0x0004) in ``VBA/dir`` and ``Name=`` in
    ``PROJECT`` (pyOpenVBA copies the project information verbatim)."""
    from pyopenvba.cfb import CFB
    from pyopenvba.vba import compress, decompress

    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,127}", name):
        raise AddinBuildError(f"{name!r} n'est pas un nom de projet VBA valide")
    encoded = name.encode(VBA_CODEPAGE)
    cfb = CFB.from_bytes(vba_bin)
    raw = decompress(cfb.get_stream_in_storage("VBA", "dir"), stream_name="dir")
    pos = 0
    while True:  # PROJECTNAME precedes PROJECTVERSION, the only record of another shape
        if pos + 6 > len(raw):
            raise AddinBuildError("pas d'enregistrement PROJECTNAME dans le flux dir")
        rid = int.from_bytes(raw[pos : pos + 2], "little")
        size = int.from_bytes(raw[pos + 2 : pos + 6], "little")
        if rid == 0x0004:
            record = rid.to_bytes(2, "little") + len(encoded).to_bytes(4, "little") + encoded
            raw = raw[:pos] + record + raw[pos + 6 + size :]
            break
        if rid == 0x0009:
            raise AddinBuildError("PROJECTVERSION avant PROJECTNAME dans le flux dir")
        pos += 6 + size
    cfb.write_stream_in_storage("VBA", "dir", compress(raw))
    project = cfb.get_stream("PROJECT").decode(VBA_CODEPAGE)
    project, count = re.subn(r'(?m)^Name="[^"\r\n]*"', f'Name="{name}"', project, count=1)
    if count != 1:
        raise AddinBuildError('pas de ligne Name="..." dans le flux PROJECT')
    cfb.write_stream("PROJECT", project.encode(VBA_CODEPAGE))
    return bytes(cfb.to_bytes())


# --------------------------------------------------------------------------- package parts

_XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def custom_ui_xml(spec: AddinSpec, image_rel_ids: Mapping[str, str]) -> bytes:
    """``customUI/customUI14.xml``: one tab, one group, one large button per entry."""
    buttons = []
    for b in spec.buttons:
        attrs = [f"id={quoteattr(b.id)}", f"label={quoteattr(b.label)}", 'size="large"',
                 f"image={quoteattr(image_rel_ids[b.image])}",
                 f"onAction={quoteattr(spec.callback)}"]
        if b.supertip:
            attrs += [f"screentip={quoteattr(b.label)}", f"supertip={quoteattr(b.supertip)}"]
        buttons.append(f"<button {' '.join(attrs)}/>")
    xml = (f'{_XML_HEAD}<customUI xmlns="{CUSTOMUI14_NS}"><ribbon><tabs>'
           f"<tab id={quoteattr(spec.tab_id)} label={quoteattr(spec.tab_label)}>"
           f"<group id={quoteattr(spec.group_id)} label={quoteattr(spec.group_label)}>"
           f"{''.join(buttons)}</group></tab></tabs></ribbon></customUI>")
    return xml.encode("utf-8")


def relationships_xml(rels: Sequence[tuple[str, str, str]]) -> bytes:
    items = "".join(f"<Relationship Id={quoteattr(i)} Type={quoteattr(t)} "
                    f"Target={quoteattr(target)}/>" for i, t, target in rels)
    return f'{_XML_HEAD}<Relationships xmlns="{PKG_REL_NS}">{items}</Relationships>'.encode()


_RELATIONSHIP = re.compile(rb"<Relationship\b[^>]*>")
_OVERRIDE_CUSTOMUI = re.compile(rb'<Override\b[^>]*PartName="/customUI/[^"]*"[^>]*/>')


def edit_root_rels(data: bytes) -> bytes:
    """``_rels/.rels`` without any ribbon relationship, plus one to customUI14.xml (a
    byte-level edit: the other relationships keep their bytes)."""
    def ribbon(tag: bytes) -> bool:
        return b"/ui/extensibility" in tag or b'Target="customUI/' in tag \
            or b'Target="/customUI/' in tag

    kept = _RELATIONSHIP.sub(lambda m: b"" if ribbon(m.group()) else m.group(), data)
    used = set(re.findall(rb'\bId="([^"]*)"', kept))
    number = 1
    while f"rId{number}".encode() in used:
        number += 1
    new = (f'<Relationship Id="rId{number}" Type="{CUSTOMUI14_REL}" '
           f'Target="{CUSTOMUI_PART}"/>').encode()
    if kept.count(b"</Relationships>") != 1:
        raise AddinBuildError("_rels/.rels inattendu")
    return kept.replace(b"</Relationships>", new + b"</Relationships>")


def edit_content_types(data: bytes) -> bytes:
    """Drop overrides of the removed ribbon parts; declare PNG."""
    data = _OVERRIDE_CUSTOMUI.sub(b"", data)
    if not re.search(rb'<Default\b[^>]*Extension="png"', data, re.IGNORECASE):
        at = data.find(b"<Override")
        if at < 0:
            at = data.rfind(b"</Types>")
        data = data[:at] + b'<Default Extension="png" ContentType="image/png" />' + data[at:]
    return data


def edit_workbook(data: bytes, spec: AddinSpec) -> bytes:
    """Rename the add-in's (inactive, underscore-prefixed) settings sheet after
    ``config_name``, byte for byte."""
    old = f' name="{STOCK_CONF_SHEET}" '.encode()
    if data.count(old) != 1:
        raise AddinBuildError(f"feuille {STOCK_CONF_SHEET!r} absente de xl/workbook.xml")
    return data.replace(old, f' name="_{spec.config_name}.conf" '.encode())


def read_icons(spec: AddinSpec, icons_dir: Path = ICONS_DIR) -> dict[str, bytes]:
    icons = {}
    for button in spec.buttons:
        path = icons_dir / f"{button.image}.png"
        data = path.read_bytes()
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            raise AddinBuildError(f"{path} n'est pas une image PNG")
        icons[button.image] = data
    return icons


def write_package(source: Path, out_path: Path, vba_bin: bytes, spec: AddinSpec,
                  icons: Mapping[str, bytes]) -> None:
    """Copy ``source`` to ``out_path`` with the new VBA project, ribbon parts and edits."""
    image_rel_ids = {name: f"img_{name}" for name in icons}
    new_parts: dict[str, bytes] = {
        CUSTOMUI_PART: custom_ui_xml(spec, image_rel_ids),
        CUSTOMUI_RELS_PART: relationships_xml(
            [(image_rel_ids[n], IMAGE_REL, f"images/{n}.png") for n in icons]),
        **{f"customUI/images/{n}.png": data for n, data in icons.items()},
    }
    editors = {"_rels/.rels": edit_root_rels, "[Content_Types].xml": edit_content_types,
               "xl/workbook.xml": lambda data: edit_workbook(data, spec)}
    fd, tmp_name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.",
                                    suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(source) as zin, zipfile.ZipFile(tmp, "w") as zout:
            for info in zin.infolist():
                name = info.filename
                if name.startswith("customUI/"):
                    continue  # the old ribbon part and anything beside it
                data = zin.read(name)
                if name == "xl/vbaProject.bin":
                    data = vba_bin
                elif name in editors:
                    data = editors[name](data)
                out = zipfile.ZipInfo(name, date_time=info.date_time)
                out.compress_type = zipfile.ZIP_DEFLATED
                out.external_attr = info.external_attr
                zout.writestr(out, data)
            for name, data in new_parts.items():
                out = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
                out.compress_type = zipfile.ZIP_DEFLATED
                out.external_attr = 0o644 << 16
                zout.writestr(out, data)
        os.chmod(tmp, new_file_mode(tmp.parent))
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the build


def edit_vba(source: Path, dest: Path, udf_module: types.ModuleType,
             spec: AddinSpec) -> list[str]:
    """pyOpenVBA pass: module edits. Returns the names of the patches applied."""
    from pyopenvba import ExcelFile

    patches = xlwings_patches(spec)
    with ExcelFile(source) as book:
        project = book.vba_project()
        names = project.module_names()
        for expected in ("ThisWorkbook", STOCK_RIBBON_MODULE, "xlwings"):
            if expected not in names:
                raise AddinBuildError(f"le complément xlwings n'a pas de module {expected!r}")
        project.rename_module(STOCK_RIBBON_MODULE, spec.ribbon_module)
        book.set_module(spec.ribbon_module, ribbon_module_source(spec))
        book.set_module("xlwings", apply_patches(book.get_module("xlwings"), patches))
        project.add_module(spec.udf_vba_module, udf_module_source(udf_module, spec))
        if spec.register_udf_help:
            this_workbook = book.get_module("ThisWorkbook")
            if "Workbook_Open" in this_workbook:
                raise AddinBuildError("ThisWorkbook a déjà un Workbook_Open")
            book.set_module("ThisWorkbook", this_workbook + udf_help_source(udf_module))
        book.save(dest)
    with ExcelFile(dest) as book:  # validating before the save reports pending adds
        problems = book.validate()
    if problems:
        raise AddinBuildError(f"validation pyOpenVBA du projet modifié : {problems}")
    return [p.name for p in patches]


def build_addin(out_path: str | Path, *, spec: AddinSpec | None = None,
                udf_module: types.ModuleType | None = None,
                stock_addin: str | Path | None = None,
                icons_dir: str | Path | None = None) -> BuildReport:
    """Build the add-in at ``out_path`` (``.xlam``); the UDFs are
    ``carbonclap_xl.excel.udfs`` unless ``udf_module`` is given (already decorated with
    the real xlwings decorators, see :func:`import_udf_module`)."""
    started = time.perf_counter()
    spec = spec or AddinSpec()
    out = Path(out_path)
    if out.suffix.lower() != ".xlam":
        raise AddinBuildError(f"{out} : un complément Excel se termine par .xlam")
    if out.is_dir():
        raise AddinBuildError(f"{out} est un dossier")
    stock = Path(stock_addin) if stock_addin else stock_addin_path()
    require_build_tools()
    icons = read_icons(spec, Path(icons_dir) if icons_dir else ICONS_DIR)
    module = udf_module or import_udf_module(spec.udf_module)
    if not xlfuncs(module):
        raise AddinBuildError(f"{module.__name__} ne déclare aucune fonction @xw.func")
    from carbonclap_xl.core.atomic import require_folder

    require_folder(out)  # a missing folder is refused, never created
    report = BuildReport(out)
    with tempfile.TemporaryDirectory(prefix="cc-addin-") as tmp:
        work, edited = Path(tmp) / "stock.xlam", Path(tmp) / "edited.xlam"
        shutil.copyfile(stock, work)
        report.patches = edit_vba(work, edited, module, spec)
        with zipfile.ZipFile(edited) as z:
            vba_bin = z.read("xl/vbaProject.bin")
        write_package(edited, out, set_vba_project_name(vba_bin, spec.project_name), spec,
                      icons)
    from pyopenvba import ExcelFile

    with ExcelFile(out) as book:
        report.modules = book.module_names()
    report.udfs = [f["name"] for f in xlfuncs(module)]
    report.seconds = time.perf_counter() - started
    return report


__all__ = ["BUTTONS", "XLWINGS_VERSION", "AddinBuildError", "AddinSpec", "BuildReport",
           "RibbonButton", "build_addin", "import_udf_module", "require_build_tools",
           "stock_addin_path", "xlwings_patches"]
