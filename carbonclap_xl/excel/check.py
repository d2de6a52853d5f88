"""Check a built add-in: every ribbon button reaches a VBA callback and a Python handler.

Reads the ``.xlam`` back with oletools (the VBA modules) and the standard library's XML
parser through defusedxml (the ribbon), independently of pyOpenVBA which wrote it, and
reports:

- the ribbon part: its relationship type matches its namespace, content types, images;
- each button: id, label, ``onAction``, the ``Sub <name>(control As IRibbonControl)`` it
  names, the Python command that Sub runs and the handler that command reaches;
- every Python handler has a button;
- the UDF wrappers and the Python module they call;
- the VBA project name;
- the edits to the stock xlwings VBA (given the stock add-in): every added line carries the
  CarbonClap marker, the settings an opened workbook could choose are gone, every other stock
  module is unchanged.

``carbonclap-xl addin check FILE`` prints the report and exits non-zero on any failure.
Needs oletools (``addin`` extra); the comparison with the stock add-in needs the pinned
xlwings.
"""

from __future__ import annotations

import difflib
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree.ElementTree import Element

from carbonclap_xl.excel.addin import (
    CUSTOMUI12_NS,
    CUSTOMUI12_REL,
    CUSTOMUI14_NS,
    CUSTOMUI14_REL,
    IMAGE_REL,
    MARK,
    PKG_REL_NS,
    STOCK_RIBBON_MODULE,
    UDF_MODULE,
    AddinBuildError,
)

CUSTOMUI_KINDS = {  # relationship type -> (namespace it requires, what it is)
    CUSTOMUI14_REL: (CUSTOMUI14_NS, "customUI14 (Office 2010+)"),
    CUSTOMUI12_REL: (CUSTOMUI12_NS, "customUI (Office 2007)"),
}
CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
UDF_NAMES = ("CC_FACTEUR", "CC_EMISSIONS", "CC_INCERTITUDE", "CC_RECHERCHE")
MAX_PART_BYTES = 20 * 1024 * 1024


@dataclass
class Report:
    failures: int = 0
    warnings: int = 0
    lines: list[str] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.lines.append(f"  ok    {text}")

    def fail(self, text: str) -> None:
        self.failures += 1
        self.lines.append(f"  ÉCHEC {text}")

    def warn(self, text: str) -> None:
        self.warnings += 1
        self.lines.append(f"  note  {text}")

    def info(self, text: str) -> None:
        self.lines.append(f"        {text}")

    def section(self, title: str) -> None:
        self.lines.append(f"\n{title}")

    def check(self, condition: bool, text: str) -> bool:
        (self.ok if condition else self.fail)(text)
        return condition


# --------------------------------------------------------------------------- the package


def _read(z: zipfile.ZipFile, name: str) -> bytes:
    if z.getinfo(name).file_size > MAX_PART_BYTES:
        raise AddinBuildError(f"{name} : partie trop grande")
    return z.read(name)


def _xml(data: bytes) -> Element:
    from defusedxml.ElementTree import fromstring

    return fromstring(data)  # no DTD, no entities, no network


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _namespace(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


def rels_part_for(part: str) -> str:
    p = PurePosixPath(part)
    return str(p.parent / "_rels" / f"{p.name}.rels")


def resolve_target(source_part: str, target: str) -> str:
    if target.startswith("/"):
        return target.lstrip("/")
    parts: list[str] = []
    for piece in (PurePosixPath(source_part).parent / target).parts:
        if piece == "..":
            if parts:
                parts.pop()
        elif piece not in (".", ""):
            parts.append(piece)
    return "/".join(parts)


def relationships(z: zipfile.ZipFile, rels_name: str) -> list[tuple[str, str, str]]:
    if rels_name not in z.namelist():
        return []
    root = _xml(_read(z, rels_name))
    return [(r.get("Id", ""), r.get("Type", ""), r.get("Target", ""))
            for r in root.iter(f"{{{PKG_REL_NS}}}Relationship")]


def content_type_of(z: zipfile.ZipFile, part: str) -> str | None:
    root = _xml(_read(z, "[Content_Types].xml"))
    for node in root.iter(f"{{{CT_NS}}}Override"):
        if node.get("PartName", "").lstrip("/") == part:
            return node.get("ContentType")
    ext = PurePosixPath(part).suffix.lstrip(".").lower()
    for node in root.iter(f"{{{CT_NS}}}Default"):
        if node.get("Extension", "").lower() == ext:
            return node.get("ContentType")
    return None


# --------------------------------------------------------------------------- the VBA


def vba_modules(path: Path) -> dict[str, str]:
    """Module name -> source (Attribute lines included, newlines as ``\\n``), read by
    oletools."""
    try:
        from oletools.olevba import VBA_Parser
    except ImportError as exc:
        raise AddinBuildError("oletools n'est pas installé : pip install "
                              "'carbonclap_xl[addin]'") from exc
    parser = VBA_Parser(str(path))
    try:
        modules: dict[str, str] = {}
        for _sub, _stream, filename, code in parser.extract_all_macros():
            if not filename:
                continue
            if isinstance(code, bytes):
                code = code.decode("cp1252", errors="replace")
            match = re.search(r'Attribute VB_Name = "([^"]+)"', code)
            modules[match.group(1) if match else Path(filename).stem] = code.replace("\r\n",
                                                                                    "\n")
        return modules
    finally:
        parser.close()


def vba_project_names(xlam: Path) -> tuple[str | None, str | None]:
    """PROJECTNAME from the ``dir`` stream and ``Name=`` from the ``PROJECT`` stream."""
    import olefile
    from oletools.olevba import decompress_stream

    with zipfile.ZipFile(xlam) as z:
        data = _read(z, "xl/vbaProject.bin")
    ole = olefile.OleFileIO(data)
    try:
        raw = decompress_stream(bytearray(ole.openstream("VBA/dir").read()))
        project = ole.openstream("PROJECT").read().decode("cp1252", errors="replace")
    finally:
        ole.close()
    dir_name = None
    pos = 0
    while pos + 6 <= len(raw):
        rid = int.from_bytes(raw[pos : pos + 2], "little")
        size = int.from_bytes(raw[pos + 2 : pos + 6], "little")
        if rid == 0x0004:
            dir_name = bytes(raw[pos + 6 : pos + 6 + size]).decode("cp1252", errors="replace")
            break
        if rid == 0x0009:  # PROJECTVERSION: past the name
            break
        pos += 6 + size
    match = re.search(r'(?m)^Name="([^"\r\n]*)"', project)
    return dir_name, (match.group(1) if match else None)


def find_ribbon_callback(modules: Mapping[str, str], on_action: str) -> tuple[str, str] | None:
    """(module, signature) of ``Sub <name>(x As IRibbonControl)`` in a standard module."""
    module_name, _, sub_name = on_action.rpartition(".")
    pattern = re.compile(
        rf"(?im)^[ \t]*(?:Public[ \t]+)?Sub[ \t]+{re.escape(sub_name)}[ \t]*\("
        r"[ \t]*(?:ByRef[ \t]+|ByVal[ \t]+)?\w+[ \t]+As[ \t]+(?:Office\.)?IRibbonControl[ \t]*\)")
    for name, code in modules.items():
        if module_name and name.lower() != module_name.lower():
            continue
        if 'Attribute VB_Base = "' in code:
            continue  # document and class modules cannot hold ribbon callbacks
        match = pattern.search(code)
        if match:
            return name, match.group(0).strip()
    return None


def vba_concat(expression: str, values: Mapping[str, str]) -> str:
    """Evaluate a VBA ``"literal" & name & ...`` expression; unknown names show as {name}."""
    out = []
    for literal, name in re.findall(r'"((?:[^"]|"")*)"|([A-Za-z_][\w.]*)', expression):
        out.append(values.get(name.lower(), "{" + name + "}") if name
                   else literal.replace('""', '"'))
    return "".join(out)


def sub_body(code: str, sub_name: str) -> str:
    match = re.search(rf"(?ims)^[ \t]*(?:Public[ \t]+)?Sub[ \t]+{re.escape(sub_name)}\b.*?"
                      r"^[ \t]*End Sub", code)
    return match.group(0) if match else ""


def python_target(command: str) -> str | None:
    """``pkg.entry('id')`` in a RunPython command -> ``pkg.entry``."""
    match = re.search(r"([A-Za-z_][\w.]*)\('[^']*'\)\s*$", command)
    return match.group(1) if match else None


# --------------------------------------------------------------------------- checks


def check_ribbon(z: zipfile.ZipFile, report: Report) -> Element | None:
    report.section("Ruban")
    all_rels = relationships(z, "_rels/.rels")
    for rel in all_rels:
        if "ui/extensibility" in rel[1] and rel[1] not in CUSTOMUI_KINDS:
            report.fail(f"type de relation de ruban inconnu {rel[1]}")
    ribbon_rels = [r for r in all_rels if r[1] in CUSTOMUI_KINDS]
    if not report.check(len(ribbon_rels) == 1,
                        f"{len(ribbon_rels)} relation(s) de ruban dans _rels/.rels (1 attendue)"):
        return None
    _rid, rel_type, target = ribbon_rels[0]
    part = resolve_target("", target)
    expected_ns, kind = CUSTOMUI_KINDS[rel_type]
    report.info(f"{part} : relation {rel_type} ({kind})")
    if not report.check(part in z.namelist(), f"{part} existe"):
        return None
    root = _xml(_read(z, part))
    namespace = _namespace(root.tag)
    report.check(namespace == expected_ns and _local(root.tag) == "customUI",
                 f"espace de noms de <customUI> {namespace} conforme au type de relation")
    report.check(content_type_of(z, part) is not None, f"{part} a un type de contenu")
    orphans = [n for n in z.namelist() if n.startswith("customUI/") and n != part
               and not n.startswith(("customUI/_rels/", "customUI/images/"))]
    report.check(not orphans, f"aucune autre partie de ruban {orphans or ''}".rstrip())
    images = {rid: (rtype, resolve_target(part, tgt))
              for rid, rtype, tgt in relationships(z, rels_part_for(part))}
    for node in root.iter():
        image = node.get("image")
        if image is None:
            continue
        if image not in images:
            report.fail(f"{node.get('id')} : l'image {image!r} n'a pas de relation")
            continue
        rtype, img_part = images[image]
        good = (rtype == IMAGE_REL and img_part in z.namelist()
                and _read(z, img_part).startswith(b"\x89PNG")
                and content_type_of(z, img_part) == "image/png")
        report.check(good, f"{node.get('id')} : image {image} -> {img_part} (PNG, image/png)")
    return root


def _qualname(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def check_buttons(root: Element, modules: Mapping[str, str],
                  handlers: Mapping[str, Callable[..., Any]] | None,
                  entry: str | None, report: Report) -> None:
    report.section("Boutons -> rappel VBA -> Python")
    controls = [n for n in root.iter() if n.get("onAction")]
    report.check(bool(controls), f"{len(controls)} contrôle(s) avec onAction")
    seen: set[str] = set()
    for node in controls:
        control_id, on_action = node.get("id", ""), node.get("onAction", "")
        seen.add(control_id)
        found = find_ribbon_callback(modules, on_action)
        where = f"{found[0]}: {found[1]}" if found else "aucune Sub avec la signature du ruban"
        report.check(found is not None, f"{control_id} « {node.get('label', '')} » "
                     f"onAction={on_action} -> {where}")
        if found is None:
            continue
        body = sub_body(modules[found[0]], on_action.rpartition(".")[2])
        command = re.search(r"(?m)^[ \t]*RunPython[ \t]+(.+)$", body)
        if command is None:
            report.fail(f"{control_id} : le rappel ne lance aucune commande RunPython")
            continue
        text = vba_concat(command.group(1), {"control.id": control_id})
        report.info(f"python : {text}")
        if "control.Id" not in body:
            report.warn(f"{control_id} : le rappel ne transmet pas control.Id à Python")
        if entry is not None:
            report.check(python_target(text) == entry,
                         f"{control_id} : la commande appelle {python_target(text)} "
                         f"(attendu {entry})")
        if handlers is not None:
            handler = handlers.get(control_id)
            report.check(handler is not None, f"{control_id} -> gestionnaire Python "
                         f"{_qualname(handler) if handler else 'ABSENT'}")
    if handlers is not None:
        extra = sorted(set(handlers) - seen)
        report.check(not extra, f"chaque gestionnaire Python a son bouton {extra or ''}".rstrip())


def check_udfs(modules: Mapping[str, str], names: Iterable[str], python_module: str,
               report: Report) -> None:
    report.section("Fonctions de feuille de calcul (enveloppes des UDF)")
    for name in names:
        hits = [(m, c) for m, c in modules.items()
                if re.search(rf"(?im)^[ \t]*(?:Public[ \t]+)?Function[ \t]+{name}[ \t]*\(", c)]
        if not report.check(len(hits) == 1, f"{name} : {len(hits)} Function VBA (1 attendue)"):
            continue
        module, code = hits[0]
        signature = re.search(
            rf"(?im)^[ \t]*(?:Public[ \t]+)?Function[ \t]+{name}[ \t]*\(([^)]*)\)", code)
        call = re.search(rf'XLPy\.CallUDF\("([^"]+)", "{name}"', code)
        target = call.group(1) if call else None
        report.check(target == python_module,
                     f"{name}({signature.group(1) if signature else '?'}) dans {module} "
                     f"-> XLPy.CallUDF({target!r})")


def _diff(old: str, new: str, name: str) -> list[str]:
    return list(difflib.unified_diff(old.splitlines(), new.splitlines(),
                                     f"stock/{name}", f"built/{name}", n=1, lineterm=""))


def check_vba_edits(built: Mapping[str, str], stock: Mapping[str, str], show_diff: bool,
                    report: Report) -> None:
    report.section("Modules VBA comparés au complément de xlwings")
    added = sorted(set(built) - set(stock))
    removed = sorted(set(stock) - set(built))
    report.info(f"xlwings : {', '.join(stock)}")
    report.info(f"construit : {', '.join(built)}")
    report.check(removed == [STOCK_RIBBON_MODULE],
                 f"seul le module de ruban d'origine a disparu (renommé) : {removed}")
    for name in added:
        report.check(MARK in built[name], f"{name} : écrit par la construction ({MARK})")
    for name in sorted(set(stock) & set(built)):
        old, new = stock[name], built[name]
        if name == "xlwings":
            continue
        if old == new:
            report.ok(f"{name} : inchangé")
        elif name == "ThisWorkbook" and new.startswith(old) and \
                new[len(old):].lstrip().startswith(f"' {MARK}:"):
            subs = re.findall(r"(?im)^[ \t]*(?:Private[ \t]+|Public[ \t]+)?Sub[ \t]+(\w+)",
                              new[len(old):])
            report.ok(f"ThisWorkbook : code d'origine gardé, code ajouté ({', '.join(subs)})")
        else:
            report.fail(f"{name} : modifié")
            report.lines += [f"        {line}" for line in _diff(old, new, name)]
    if "xlwings" not in built or "xlwings" not in stock:
        report.fail("pas de module xlwings à comparer")
        return
    old, new = stock["xlwings"], built["xlwings"]
    diff = _diff(old, new, "xlwings")
    plus = [ln[1:] for ln in diff if ln.startswith("+") and not ln.startswith("+++")]
    minus = [ln[1:] for ln in diff if ln.startswith("-") and not ln.startswith("---")]
    unmarked = [ln for ln in plus if MARK not in ln]
    report.check(bool(diff) and not unmarked,
                 f"xlwings : {len(minus)} ligne(s) retirée(s), {len(plus)} ajoutée(s), toutes "
                 f"marquées {MARK}" + (f" ; NON MARQUÉES : {unmarked}" if unmarked else ""))
    getconfig = re.search(r"(?ims)^Function GetConfig\(.*?^End Function", new)
    body = getconfig.group(0) if getconfig else ""
    runpython_match = re.search(r"(?ims)^Public Function RunPython\(.*?^End Function", new)
    runpython = runpython_match.group(0) if runpython_match else ""
    version = re.search(r'XLWINGS_VERSION As String = "([^"]+)"', new)
    stock_version = re.search(r'XLWINGS_VERSION As String = "([^"]+)"', old)
    for condition, text in (
        (bool(body) and bool(runpython), "GetConfig et RunPython présents"),
        ("ActiveWorkbook" not in body, "GetConfig ne lit aucune feuille du classeur ouvert"),
        ("GetDirectoryConfigFilePath" not in body,
         "GetConfig ne lit aucun fichier .conf à côté du classeur ouvert"),
        ("SheetExists(ThisWorkbook" in body and "GetConfigFilePath()" in body,
         "GetConfig lit encore la feuille du complément et le fichier de l'utilisateur"),
        ("ADD_WORKBOOK_TO_PYTHONPATH" not in new, "ADD_WORKBOOK_TO_PYTHONPATH n'est plus lu"),
        (len(re.findall(r'(?m)^\s*AddExcelDir = "false"', new)) == 2,
         'AddExcelDir = "false" dans RunPython et dans la commande du serveur'),
        (not re.search(r"(?m)^\s*uses_embedded_code = True\s*$", new)
         and '".py"' not in runpython, "RunPython ne cherche aucun code intégré au classeur"),
        (version is not None and stock_version is not None
         and version.group(1) == stock_version.group(1),
         f"XLWINGS_VERSION inchangée ({version.group(1) if version else '?'})"),
    ):
        report.check(condition, f"xlwings : {text}")
    if show_diff:
        report.lines += [f"        {line}" for line in diff]


def check_syntax(xlam: Path, report: Report) -> None:
    """Parse every module with pyOpenVBA's VBA parser, on the Windows and the Mac branches
    of ``#If`` (when pyOpenVBA is installed)."""
    from importlib.util import find_spec

    if find_spec("pyopenvba") is None:
        report.warn("syntaxe VBA non vérifiée (pyOpenVBA absent)")
        return
    from pyopenvba.interpreter._parse import parse_module
    from pyopenvba.interpreter._preprocess import strip_directives

    report.section("Syntaxe VBA (analyseur de pyOpenVBA, branches Windows et Mac)")
    for name, code in vba_modules(xlam).items():
        # pyOpenVBA's preprocessor rejects a comment after a directive; VBA accepts it
        code = re.sub(r"(?m)^([ \t]*#.*?)[ \t]+'[^\"\n]*$", r"\1", code)
        errors = []
        for mac in (False, True):
            constants: dict[str, object] = {"Mac": mac, "VBA7": True, "Win64": not mac,
                                            "MAC_OFFICE_VERSION": 16 if mac else 0}
            try:
                parse_module(strip_directives(code, module=name, constants=constants), name=name)
            except Exception as exc:  # the parser's own error types, none exported
                errors.append(f"{'Mac' if mac else 'Windows'}: {exc}")
        report.check(not errors, f"{name} s'analyse" + (f" : {errors}" if errors else ""))


def check_addin(xlam: Path, *, handlers: Mapping[str, Callable[..., Any]] | None = None,
                entry: str | None = "carbonclap_xl.excel.on_ribbon",
                udfs: Iterable[str] = UDF_NAMES, udf_module: str = UDF_MODULE,
                project_name: str = "CarbonClap", stock: Path | None = None,
                show_diff: bool = False, syntax: bool = True) -> Report:
    """Read ``xlam`` back and check every link; ``stock``: the add-in it was built from
    (default: the pinned xlwings wheel's, when installed)."""
    report = Report()
    report.lines.append(f"Complément {xlam}")
    try:
        with zipfile.ZipFile(xlam) as z:
            report.check(z.testzip() is None, "membres du zip relus, CRC valides")
            root = check_ribbon(z, report)
    except zipfile.BadZipFile:
        report.fail("ce n'est pas un classeur .xlam (zip illisible)")
        return report
    modules = vba_modules(xlam)
    if root is not None:
        check_buttons(root, modules, handlers, entry, report)
    check_udfs(modules, udfs, udf_module, report)
    report.section("Projet VBA")
    dir_name, stream_name = vba_project_names(xlam)
    report.check(dir_name == project_name == stream_name,
                 f"nom du projet : flux dir {dir_name!r}, flux PROJECT {stream_name!r}")
    if stock is None:
        try:
            from carbonclap_xl.excel.addin import stock_addin_path

            stock = stock_addin_path()
        except AddinBuildError as exc:
            report.warn(f"modifications du VBA de xlwings non vérifiées ({exc})")
    if stock is not None:
        check_vba_edits(modules, vba_modules(stock), show_diff, report)
    if syntax:
        check_syntax(xlam, report)
    verdict = "ÉCHEC" if report.failures else "conforme"
    report.lines.append(f"\n{verdict} : {report.failures} échec(s), {report.warnings} note(s)")
    return report


__all__ = ["Report", "check_addin", "vba_modules", "vba_project_names"]
