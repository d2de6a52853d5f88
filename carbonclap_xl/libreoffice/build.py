"""Build the Carbon'Clap LibreOffice extension, ``CarbonClap.oxt``, from package data.

Standard library only: the UNO component is ``extension/carbonclap_handler.py`` (package
data, copied as is); the XML files are written here, the PNG icons drawn here. Members:

    META-INF/manifest.xml        declares the Python UNO component and the .xcu files
    description.xml              identifier org.carbonclap.xl, version, names (fr, en)
    description/desc_{fr,en}.txt
    carbonclap_handler.py        the ProtocolHandler (org.carbonclap.xl:*)
    ProtocolHandler.xcu          binds org.carbonclap.xl:* to the handler's implementation
    Addons.xcu                   "Carbon'Clap" menu + toolbar (4 commands) + Images
    CalcWindowState.xcu          toolbar title and visibility in Calc
    icons/*.png                  16 px and 26 px command icons, 42 px extension icon

Every menu and toolbar item is limited to Calc documents (``Context``). A protocol handler,
not Python macros: macros need a script provider that Debian's Calc package lacks, and their
URLs embed the ``.oxt`` file name (``docs/libreoffice.md``).
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from importlib import resources
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from carbonclap_xl import __version__

HANDLER = "carbonclap_handler.py"
IDENTIFIER = "org.carbonclap.xl"
IMPLEMENTATION = "org.carbonclap.xl.ProtocolHandler"
PROTOCOL = "org.carbonclap.xl:"
DISPLAY_NAME = "Carbon'Clap"
TOOLBAR_NODE = "org.carbonclap.xl.toolbar"
MENU_NODE = "org.carbonclap.xl.menubar"
CALC = "com.sun.star.sheet.SpreadsheetDocument"
# (URL path after PROTOCOL, menu and toolbar title, icon name); the handler's COMMANDS must
# dispatch every path (``check`` verifies it in the built archive)
COMMANDS = [
    ("Recalculer", "Recalculer", "recalculer"),
    ("Verifier", "Vérifier", "verifier"),
    ("Rapport", "Rapport", "rapport"),
    ("Facteurs", "Facteurs", "facteurs"),
]
DESCRIPTION = {
    "fr": "Bilan carbone des productions audiovisuelles (méthode Carbon'Clap, Base Empreinte "
          "ADEME) calculé dans le classeur de la production : Recalculer, Vérifier, Rapport, "
          "Facteurs. Nécessite carbonclap-xl installé sur l'ordinateur.",
    "en": "Carbon footprint of film and TV productions (Carbon'Clap method, ADEME Base "
          "Empreinte) computed in the production's workbook: Recalculer (recompute), Vérifier "
          "(check), Rapport (report), Facteurs (emission factors). Requires carbonclap-xl.",
}

# --------------------------------------------------------------------------------------------
# icons
# --------------------------------------------------------------------------------------------

def png_bytes(width: int, height: int, rgba: list[tuple[int, int, int, int]]) -> bytes:
    raw = b"".join(b"\x00" + b"".join(struct.pack("4B", *rgba[y * width + x])
                                      for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _hex(c: str) -> tuple[int, int, int]:
    return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)


def _seg_dist(px, py, ax, ay, bx, by):
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy or 1)))
    return math.hypot(px - ax - t * dx, py - ay - t * dy)


def _in_triangle(px, py, a, b, c):
    def s(p1, p2, p3):
        return (p1[0] - p3[0]) * (p2[1] - p3[1]) - (p2[0] - p3[0]) * (p1[1] - p3[1])
    d1, d2, d3 = s((px, py), a, b), s((px, py), b, c), s((px, py), c, a)
    return not ((d1 < 0 or d2 < 0 or d3 < 0) and (d1 > 0 or d2 > 0 or d3 > 0))


def _glyph(name: str):
    """Return f(x, y) -> True where the white glyph is, in unit coordinates (0..1)."""
    if name == "recalculer":  # circular arrow
        def f(x, y):
            r = math.hypot(x - 0.5, y - 0.5)
            ang = math.degrees(math.atan2(y - 0.5, x - 0.5)) % 360
            ring = 0.2 <= r <= 0.31 and not (300 <= ang <= 360)
            head = _in_triangle(x, y, (0.60, 0.22), (0.90, 0.30), (0.72, 0.52))
            return ring or head
    elif name == "verifier":  # check mark
        def f(x, y):
            return min(_seg_dist(x, y, 0.22, 0.52, 0.42, 0.72),
                       _seg_dist(x, y, 0.42, 0.72, 0.80, 0.28)) <= 0.075
    elif name == "rapport":  # page with lines
        def f(x, y):
            page = 0.26 <= x <= 0.74 and 0.16 <= y <= 0.84
            inner = 0.32 <= x <= 0.68 and 0.22 <= y <= 0.78
            line = 0.34 <= x <= 0.66 and any(abs(y - ly) <= 0.03 for ly in (0.36, 0.50, 0.64))
            return (page and not inner) or line
    elif name == "facteurs":  # magnifying glass
        def f(x, y):
            r = math.hypot(x - 0.43, y - 0.43)
            return (0.15 <= r <= 0.24) or _seg_dist(x, y, 0.60, 0.60, 0.80, 0.80) <= 0.07
    elif name == "carbonclap":  # clapperboard
        def f(x, y):
            board = 0.18 <= x <= 0.82 and 0.42 <= y <= 0.80
            top = 0.18 <= x <= 0.82 and 0.24 <= y <= 0.36 and int((x + y) * 10) % 2 == 0
            return board or top
    else:
        raise ValueError(name)
    return f


ICON_COLORS = {"recalculer": "#2E7D32", "verifier": "#1565C0", "rapport": "#EF6C00",
               "facteurs": "#6A1B9A", "carbonclap": "#1B5E20"}


def draw_icon(name: str, size: int, ss: int = 4) -> bytes:
    glyph, bg = _glyph(name), _hex(ICON_COLORS[name])
    radius = 0.18
    pixels = []
    for py in range(size):
        for px in range(size):
            acc = [0.0, 0.0, 0.0, 0.0]
            for sy in range(ss):
                for sx in range(ss):
                    x = (px + (sx + 0.5) / ss) / size
                    y = (py + (sy + 0.5) / ss) / size
                    # rounded square background
                    cx, cy = min(max(x, radius), 1 - radius), min(max(y, radius), 1 - radius)
                    if math.hypot(x - cx, y - cy) > radius:
                        continue
                    col = (255, 255, 255) if glyph(x, y) else bg
                    acc[0] += col[0]
                    acc[1] += col[1]
                    acc[2] += col[2]
                    acc[3] += 1
            n = ss * ss
            if acc[3]:
                pixels.append((round(acc[0] / acc[3]), round(acc[1] / acc[3]),
                               round(acc[2] / acc[3]), round(255 * acc[3] / n)))
            else:
                pixels.append((0, 0, 0, 0))
    return png_bytes(size, size, pixels)


# --------------------------------------------------------------------------------------------
# XML files
# --------------------------------------------------------------------------------------------

OOR = ('xmlns:oor="http://openoffice.org/2001/registry" '
       'xmlns:xs="http://www.w3.org/2001/XMLSchema" '
       'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"')


def _prop(name: str, value: str, localized: dict[str, str] | None = None,
          typ: str = "xs:string") -> str:
    if localized:
        vals = "".join(f'<value xml:lang="{lang}">{escape(v)}</value>'
                       for lang, v in localized.items())
        return f'<prop oor:name="{name}" oor:type="{typ}">{vals}</prop>'
    return f'<prop oor:name="{name}" oor:type="{typ}"><value>{escape(value)}</value></prop>'


def _both(text: str) -> dict[str, str]:
    return {"en-US": text, "fr": text}


def manifest_xml() -> str:
    entries = [
        ("application/vnd.sun.star.uno-component;type=Python", HANDLER),
        ("application/vnd.sun.star.configuration-data", "ProtocolHandler.xcu"),
        ("application/vnd.sun.star.configuration-data", "Addons.xcu"),
        ("application/vnd.sun.star.configuration-data", "CalcWindowState.xcu"),
    ]
    body = "\n".join(f' <manifest:file-entry manifest:media-type="{t}" '
                     f'manifest:full-path="{p}"/>' for t, p in entries)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<manifest:manifest xmlns:manifest="http://openoffice.org/2001/manifest">\n'
            f"{body}\n</manifest:manifest>\n")


def description_xml(version: str) -> str:
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<description xmlns="http://openoffice.org/extensions/description/2006"
             xmlns:d="http://openoffice.org/extensions/description/2006"
             xmlns:lo="http://libreoffice.org/extensions/description/2011"
             xmlns:xlink="http://www.w3.org/1999/xlink">
  <identifier value="{IDENTIFIER}"/>
  <version value="{escape(version)}"/>
  <platform value="all"/>
  <dependencies>
    <lo:LibreOffice-minimal-version value="7.0" d:name="LibreOffice 7.0"/>
  </dependencies>
  <display-name>
    <name lang="fr">{escape(DISPLAY_NAME)}</name>
    <name lang="en">{escape(DISPLAY_NAME)}</name>
  </display-name>
  <extension-description>
    <src xlink:href="description/desc_fr.txt" lang="fr"/>
    <src xlink:href="description/desc_en.txt" lang="en"/>
  </extension-description>
  <icon>
    <default xlink:href="icons/carbonclap_42.png"/>
  </icon>
</description>
'''


def protocol_handler_xcu() -> str:
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<oor:component-data {OOR} oor:name="ProtocolHandler" oor:package="org.openoffice.Office">
  <node oor:name="HandlerSet">
    <node oor:name="{IMPLEMENTATION}" oor:op="replace">
      <prop oor:name="Protocols" oor:type="oor:string-list">
        <value>{PROTOCOL}*</value>
      </prop>
    </node>
  </node>
</oor:component-data>
'''


def addons_xcu() -> str:
    menu_items, tb_items, images = [], [], []
    for i, (path, title, icon) in enumerate(COMMANDS, 1):
        url = PROTOCOL + path
        common = (_prop("URL", url) + _prop("Title", "", _both(title))
                  + _prop("Target", "_self") + _prop("Context", CALC))
        menu_items.append(f'<node oor:name="m{i:02d}" oor:op="replace">{common}</node>')
        tb_items.append(f'<node oor:name="t{i:02d}" oor:op="replace">{common}</node>')
        images.append(
            f'<node oor:name="{IDENTIFIER}.image.{path}" oor:op="replace">'
            + _prop("URL", url)
            + '<node oor:name="UserDefinedImages">'
            + _prop("ImageSmallURL", f"%origin%/icons/{icon}_16.png")
            + _prop("ImageBigURL", f"%origin%/icons/{icon}_26.png")
            + "</node></node>")
    nl = "\n        "
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<oor:component-data {OOR} oor:name="Addons" oor:package="org.openoffice.Office">
  <node oor:name="AddonUI">
    <node oor:name="OfficeMenuBar">
      <node oor:name="{MENU_NODE}" oor:op="replace">
        {_prop("Title", "", {"en-US": "~Carbon'Clap", "fr": "~Carbon'Clap"})}
        {_prop("Context", CALC)}
        <node oor:name="Submenu">
        {nl.join(menu_items)}
        </node>
      </node>
    </node>
    <node oor:name="OfficeToolBar">
      <node oor:name="{TOOLBAR_NODE}" oor:op="replace">
        {nl.join(tb_items)}
      </node>
    </node>
    <node oor:name="Images">
        {nl.join(images)}
    </node>
  </node>
</oor:component-data>
'''


def calc_window_state_xcu() -> str:
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<oor:component-data {OOR} oor:name="CalcWindowState" oor:package="org.openoffice.Office.UI">
  <node oor:name="UIElements">
    <node oor:name="States">
      <node oor:name="private:resource/toolbar/addon_{TOOLBAR_NODE}" oor:op="replace">
        {_prop("UIName", "", _both(DISPLAY_NAME))}
        {_prop("Visible", "true", typ="xs:boolean")}
        {_prop("Docked", "true", typ="xs:boolean")}
      </node>
    </node>
  </node>
</oor:component-data>
'''


# --------------------------------------------------------------------------------------------
# the archive
# --------------------------------------------------------------------------------------------

def handler_source() -> str:
    """The UNO component's source, from the package data."""
    return (resources.files("carbonclap_xl.libreoffice") / "extension" / HANDLER
            ).read_text(encoding="utf-8")


def oxt_files(version: str | None = None) -> dict[str, bytes]:
    """Every member of the extension archive, by name."""
    version = version or __version__
    handler = handler_source()
    compile(handler, HANDLER, "exec")  # a syntax error fails the build, not LibreOffice
    files: dict[str, bytes] = {
        "META-INF/manifest.xml": manifest_xml().encode(),
        "description.xml": description_xml(version).encode(),
        "description/desc_fr.txt": DESCRIPTION["fr"].encode(),
        "description/desc_en.txt": DESCRIPTION["en"].encode(),
        HANDLER: handler.encode(),
        "ProtocolHandler.xcu": protocol_handler_xcu().encode(),
        "Addons.xcu": addons_xcu().encode(),
        "CalcWindowState.xcu": calc_window_state_xcu().encode(),
        "icons/carbonclap_42.png": draw_icon("carbonclap", 42),
    }
    for _, _, icon in COMMANDS:
        for size in (16, 26):
            files[f"icons/{icon}_{size}.png"] = draw_icon(icon, size)
    for name, data in files.items():
        if name.endswith((".xml", ".xcu")):
            ET.fromstring(data)  # well-formed
    return files


def oxt_bytes(version: str | None = None) -> bytes:
    """The extension archive (reproducible: fixed dates, fixed order)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in oxt_files(version).items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return buffer.getvalue()
