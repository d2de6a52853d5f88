"""Check a built extension: every command reaches its handler (``libreoffice check``).

For each command of ``build.COMMANDS``: its URL is in the Carbon'Clap menu and toolbar with
its French title, both icons are in the archive, a protocol handler registered in
``ProtocolHandler.xcu`` matches the URL, a Python component declared in the manifest
implements that handler, and the component's ``COMMANDS`` dispatches the URL's path (read
from its source, never imported: it needs ``uno``).
"""

from __future__ import annotations

import ast
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

from carbonclap_xl.core.errors import InputFileError
from carbonclap_xl.libreoffice.build import COMMANDS, IDENTIFIER, PROTOCOL

NS = {"manifest": "http://openoffice.org/2001/manifest",
      "d": "http://openoffice.org/extensions/description/2006"}
OORN = "{http://openoffice.org/2001/registry}name"
PYTHON_COMPONENT = "application/vnd.sun.star.uno-component;type=Python"
CONFIGURATION = "application/vnd.sun.star.configuration-data"


@dataclass
class CommandLink:
    """One command as the archive wires it."""

    title: str
    url: str
    in_menu: bool = False
    in_toolbar: bool = False
    icons: bool = False
    handler: str | None = None  # the implementation name the protocol reaches
    component: str | None = None  # the Python file implementing it
    dispatched: bool = False  # the component's COMMANDS holds the URL's path

    @property
    def complete(self) -> bool:
        return (self.in_menu and self.in_toolbar and self.icons and self.handler is not None
                and self.component is not None and self.dispatched)


@dataclass
class CheckResult:
    commands: list[CommandLink] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def table(self) -> str:
        rows = [f"{'commande':<11} {'URL':<30} {'menu':<5} {'barre':<5} {'icônes':<6} "
                "gestionnaire"]
        yes = {True: "oui", False: "NON"}
        for c in self.commands:
            reach = (f"{c.handler} -> {c.component or 'AUCUN COMPOSANT'}"
                     + ("" if c.dispatched else " (commande non traitée)")
                     if c.handler else "AUCUN")
            rows.append(f"{c.title:<11} {c.url:<30} {yes[c.in_menu]:<5} "
                        f"{yes[c.in_toolbar]:<5} {yes[c.icons]:<6} {reach}")
        return "\n".join(rows)


def _props(node: ET.Element) -> dict[str, list[str]]:
    return {p.get(OORN, ""): [v.text or "" for v in p.findall("value")]
            for p in node.findall("prop")}


def _component_info(source: str) -> tuple[str | None, set[str]]:
    """The implementation name a component registers and the command paths it dispatches."""
    tree = ast.parse(source)
    consts: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                consts[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    registers = "g_ImplementationHelper.addImplementation" in source
    name = consts.get("IMPLEMENTATION_NAME")
    commands = consts.get("COMMANDS")
    return (name if registers and isinstance(name, str) else None,
            set(commands) if isinstance(commands, dict | list | tuple | set) else set())


def check_oxt(path: Path) -> CheckResult:
    result = CheckResult()
    problems = result.problems
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputFileError(str(path), f"extension illisible ({exc})") from None
    with zf:
        names = set(zf.namelist())
        missing = [n for n in ("META-INF/manifest.xml", "description.xml", "Addons.xcu",
                               "ProtocolHandler.xcu") if n not in names]
        if missing:
            problems.extend(f"{n} absent de l'archive" for n in missing)
            return result
        manifest = ET.fromstring(zf.read("META-INF/manifest.xml"))
        components: dict[str, tuple[str | None, set[str]]] = {}
        xcus = []
        for e in manifest.findall("manifest:file-entry", NS):
            media = e.get(f"{{{NS['manifest']}}}media-type") or ""
            member = e.get(f"{{{NS['manifest']}}}full-path") or ""
            if member not in names:
                problems.append(f"le manifeste déclare {member}, absent de l'archive")
            elif media.startswith(PYTHON_COMPONENT):
                components[member] = _component_info(zf.read(member).decode("utf-8"))
            elif media == CONFIGURATION:
                xcus.append(member)
        for x in ("Addons.xcu", "ProtocolHandler.xcu"):
            if x not in xcus:
                problems.append(f"{x} n'est pas déclaré dans le manifeste")
        implementations = {impl: (member, paths) for member, (impl, paths)
                           in components.items() if impl}
        ident = ET.fromstring(zf.read("description.xml")).find("d:identifier", NS)
        if ident is None or ident.get("value") != IDENTIFIER:
            problems.append(f"l'identifiant de description.xml n'est pas {IDENTIFIER}")
        handlers: list[tuple[str, str]] = []
        for node in ET.fromstring(zf.read("ProtocolHandler.xcu")).iter("node"):
            if node.get(OORN) == "HandlerSet":
                for h in node.findall("node"):
                    handlers += [(proto, h.get(OORN, "")) for proto in
                                 _props(h).get("Protocols", [])]
        addons = ET.fromstring(zf.read("Addons.xcu"))
        ui_root = addons.find("node")
        ui = {n.get(OORN): n for n in (ui_root if ui_root is not None else [])}
        menu, toolbar, titles, images = set(), set(), {}, {}
        for item in ui.get("OfficeMenuBar", ET.Element("x")).iter("node"):
            p = _props(item)
            if "URL" in p:
                menu.add(p["URL"][0])
                titles[p["URL"][0]] = p.get("Title", [""])[0]
        for item in ui.get("OfficeToolBar", ET.Element("x")).iter("node"):
            p = _props(item)
            if "URL" in p:
                toolbar.add(p["URL"][0])
        for img in ui.get("Images", ET.Element("x")).findall("node"):
            url = _props(img).get("URL", [""])[0]
            inner = img.find("node")
            images[url] = _props(inner) if inner is not None else {}
    for path_part, title, _icon in COMMANDS:
        url = PROTOCOL + path_part
        link = CommandLink(titles.get(url, title), url, url in menu, url in toolbar)
        urls = [v[0] for k, v in images.get(url, {}).items() if k.endswith("URL") and v]
        link.icons = len(urls) >= 2 and all(u.replace("%origin%/", "") in names for u in urls)
        link.handler = next((impl for proto, impl in handlers if proto == url or (
            proto.endswith("*") and url.startswith(proto[:-1]))), None)
        if link.handler in implementations:
            link.component, paths = implementations[link.handler]
            link.dispatched = path_part in paths
        result.commands.append(link)
        if not link.in_menu:
            problems.append(f"{url} n'est pas dans le menu")
        elif titles.get(url) != title:
            problems.append(f"{url} est intitulé {titles.get(url)!r} au lieu de {title!r}")
        if not link.in_toolbar:
            problems.append(f"{url} n'est pas dans la barre d'outils")
        if not link.icons:
            problems.append(f"{url} n'a pas ses deux icônes dans l'archive")
        if link.handler is None:
            problems.append(f"{url} n'atteint aucun gestionnaire de protocole")
        elif link.component is None:
            problems.append(f"le gestionnaire {link.handler} n'est implémenté par aucun "
                            "composant Python déclaré")
        elif not link.dispatched:
            problems.append(f"{link.component} ne traite pas la commande {path_part}")
    return result
