"""Install the add-in for the current user (Windows and macOS): what ``carbonclap-xl addin
install`` does.

1. Copy ``CarbonClap.xlam`` into Excel's start-up folder (XLSTART: a trusted location, and
   a local copy carries no Mark-of-the-Web);
2. write the interpreter into the add-in's own settings file, the only one it reads
   (``%USERPROFILE%\\.carbonclap\\carbonclap.conf`` on Windows,
   ``~/Library/Containers/com.microsoft.Excel/Data/carbonclap.conf`` on macOS), keeping the
   user's other settings (``"USE UDF SERVER","True"`` for the warm server, say);
3. on macOS, copy xlwings' AppleScript where Excel's sandbox lets it run scripts (what
   ``xlwings runpython install`` does).

Everything takes its folders as arguments, so the tests run it on Linux in a temporary home.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from carbonclap_xl.core.errors import CarbonClapError
from carbonclap_xl.excel.addin import XLWINGS_VERSION, AddinSpec

ADDIN_NAME = "CarbonClap.xlam"
MAC_SANDBOX = Path("Library/Containers/com.microsoft.Excel/Data")
MAC_STARTUP = Path("Library/Group Containers/UBF8T346G9.Office/User Content/Startup/Excel")
MAC_SCRIPTS = Path("Library/Application Scripts/com.microsoft.Excel")


class InstallError(CarbonClapError, OSError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def shipped_addin() -> Path:
    """The add-in built with this version: in the installed package, else the source
    tree's ``workbook/CarbonClap.xlam``."""
    packaged = resources.files("carbonclap_xl") / "_data" / ADDIN_NAME
    if packaged.is_file():
        return Path(str(packaged))
    tree = Path(__file__).resolve().parents[2] / "workbook" / ADDIN_NAME
    if tree.is_file():
        return tree
    raise InstallError(f"{ADDIN_NAME} introuvable (installation incomplète) : construisez-le "
                       "avec « carbonclap-xl addin build -o CarbonClap.xlam »")


def settings_file(platform: str, home: Path, spec: AddinSpec | None = None) -> Path:
    name = (spec or AddinSpec()).config_name
    if platform == "darwin":
        return home / MAC_SANDBOX / f"{name}.conf"
    return home / f".{name}" / f"{name}.conf"


def write_settings(path: Path, values: dict[str, str]) -> None:
    """Set ``values`` in an xlwings settings file (one ``"KEY","VALUE"`` line each), keeping
    its other lines."""
    kept: list[str] = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            key = line.split(",", 1)[0].strip().strip('"')
            if key and key not in values:
                kept.append(line)
    lines = [*kept, *(f'"{k}","{v}"' for k, v in values.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def default_startup_folder(platform: str, home: Path) -> Path:
    """Excel's per-user start-up folder, without starting Excel."""
    if platform == "darwin":
        return home / MAC_STARTUP
    appdata = os.environ.get("APPDATA")
    base = Path(appdata) if appdata else home / "AppData" / "Roaming"
    return base / "Microsoft" / "Excel" / "XLSTART"


@dataclass
class Installed:
    addin: Path
    settings: Path
    script: Path | None = None

    def lines(self) -> list[str]:
        out = [f"Complément copié : {self.addin}",
               f"Interpréteur Python enregistré dans : {self.settings}"]
        if self.script:
            out.append(f"Script xlwings pour Excel (macOS) : {self.script}")
        out.append("Redémarrez Excel : l'onglet « Carbon'Clap » apparaît dans le ruban.")
        return out


def install(*, platform: str = sys.platform, home: Path | None = None,
            addin: Path | None = None, startup_folder: Path | None = None,
            interpreter: str = sys.executable) -> Installed:
    """Install the add-in for the current user; refuses where Excel does not run."""
    if platform.startswith("linux") or platform not in ("win32", "darwin"):
        raise InstallError("Excel n'est pas disponible sur ce système (Windows ou macOS "
                           "seulement) : ici, traitez les classeurs avec « carbonclap-xl "
                           "process », ou ouvrez-les dans LibreOffice (formules vivantes).")
    home = home or Path.home()
    source = addin or shipped_addin()
    folder = startup_folder or default_startup_folder(platform, home)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / ADDIN_NAME
    shutil.copyfile(source, target)
    key = "INTERPRETER_MAC" if platform == "darwin" else "INTERPRETER_WIN"
    settings = settings_file(platform, home)
    write_settings(settings, {key: interpreter})
    script = None
    if platform == "darwin":
        script = install_mac_script(home)
    return Installed(target, settings, script)


def install_mac_script(home: Path) -> Path:
    """Copy ``xlwings-<version>.applescript`` into Excel's scripts folder (macOS)."""
    import xlwings

    source = Path(xlwings.__file__).with_name(f"xlwings-{XLWINGS_VERSION}.applescript")
    if not source.is_file():
        raise InstallError(f"{source.name} manque dans xlwings : pip install "
                           f"xlwings=={XLWINGS_VERSION}")
    folder = home / MAC_SCRIPTS
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / source.name
    shutil.copyfile(source, target)
    return target


__all__ = ["ADDIN_NAME", "InstallError", "Installed", "install", "settings_file",
           "shipped_addin", "write_settings"]
