"""Install the extension into a LibreOffice user profile and record which ``carbonclap-xl``
it must call (``carbonclap-xl libreoffice install``).

Two routes, both tried on LibreOffice 7.4 (``docs/libreoffice.md``):

* a normal user: ``unopkg add -s -f CarbonClap.oxt`` (``-s`` accepts the absent licence,
  ``-f`` replaces an installed copy of the same or a newer version);
* root (CI, containers): ``unopkg`` refuses user installs as root, so a Python that has
  ``uno`` runs ``office/add_extension.py``, which starts a headless soffice on the profile
  and calls the ExtensionManager's ``addExtension(…, "user", …)``.

Either way LibreOffice must be closed (a running soffice on the same profile takes the
request over), and its processes start with every virtual environment removed from their
environment: a venv's ``bin`` first on PATH makes LibreOffice's embedded Python adopt that
venv and fail.

The configuration file (``config_path``) is JSON shared with the extension:
``{"command": [...], "timeout": s, "dialogs": "auto|always|never", "block_writes":
"safe|always|cells", "max_cells": n}``; installing sets ``command`` and keeps the rest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from carbonclap_xl.core.errors import LibreOfficeError

CONFIG_ENV = "CARBONCLAP_XL_CONFIG"
UNO_PYTHON_ENV = "CARBONCLAP_XL_UNO_PYTHON"
CONFIG_NAME = "libreoffice.json"
_VENV_VARIABLES = ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP",
                   "PYTHONEXECUTABLE", "__PYVENV_LAUNCHER__", "PYTHONUSERBASE", "CONDA_PREFIX",
                   "CONDA_DEFAULT_ENV", "PYENV_VERSION")
_LO_PROGRAM_DIRS = ("/usr/lib/libreoffice/program", "/opt/libreoffice/program",
                    "/Applications/LibreOffice.app/Contents/MacOS",
                    r"C:\Program Files\LibreOffice\program",
                    r"C:\Program Files (x86)\LibreOffice\program")


# --------------------------------------------------------------------------- locations


def config_path(env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """Where the extension reads its configuration; the same rules as ``config_path`` in
    ``extension/carbonclap_handler.py`` (a test keeps them equal)."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    home = env.get("HOME") or env.get("USERPROFILE") or os.path.expanduser("~")
    if platform == "win32":
        base = env.get("APPDATA") or home
    elif platform == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    else:
        base = env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    return Path(base) / "carbonclap-xl" / CONFIG_NAME


def default_profile(env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """LibreOffice's own user profile (what ``unopkg`` uses when not told otherwise)."""
    env = os.environ if env is None else env
    platform = platform or sys.platform
    home = env.get("HOME") or env.get("USERPROFILE") or os.path.expanduser("~")
    if platform == "win32":
        return Path(env.get("APPDATA") or home) / "LibreOffice" / "4"
    if platform == "darwin":
        return Path(home) / "Library" / "Application Support" / "LibreOffice" / "4"
    return Path(env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")) / "libreoffice" / "4"


def engine_command() -> list[str]:
    """How the extension must call this very installation: the absolute path of this
    environment's ``carbonclap-xl`` script, else this interpreter with ``-m``."""
    script = "carbonclap-xl.exe" if sys.platform == "win32" else "carbonclap-xl"
    candidates = [Path(sys.executable).parent / script]
    if Path(sys.argv[0]).name in (script, "carbonclap-xl"):
        candidates.insert(0, Path(sys.argv[0]))
    for candidate in candidates:
        if candidate.is_file():
            return [str(candidate.absolute()), "libreoffice", "exchange"]
    return [str(Path(sys.executable).absolute()), "-m", "carbonclap_xl", "libreoffice",
            "exchange"]


def config_document(existing: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The configuration after an install: ``existing`` settings kept, ``command`` set."""
    doc = dict(existing or {})
    doc["command"] = engine_command()
    return doc


def read_config(path: Path) -> dict[str, Any]:
    """The configuration file's settings ({} when there is none)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise LibreOfficeError(f"le fichier de configuration {path} est illisible ({exc}) : "
                               "corrigez-le ou supprimez-le, puis recommencez") from None
    if not isinstance(doc, dict):
        raise LibreOfficeError(f"le fichier de configuration {path} n'est pas un objet JSON")
    return doc


# --------------------------------------------------------------------------- LibreOffice


def _is_venv_bin(folder: str) -> bool:
    return (Path(folder).parent / "pyvenv.cfg").exists()


def clean_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment for LibreOffice's processes: no venv, no Python settings."""
    env = dict(os.environ if env is None else env)
    for key in _VENV_VARIABLES:
        env.pop(key, None)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if p and not _is_venv_bin(p))
    return env


def find_program(names: tuple[str, ...]) -> str | None:
    """A LibreOffice program on the clean PATH or in the usual install folders."""
    path = clean_env()["PATH"]
    for name in names:
        found = shutil.which(name, path=path)
        if found:
            return found
    for folder in _LO_PROGRAM_DIRS:
        for name in names:
            candidate = Path(folder) / name
            if candidate.is_file():
                return str(candidate)
    return None


def find_unopkg() -> str | None:
    return find_program(("unopkg.com", "unopkg") if sys.platform == "win32" else ("unopkg",))


def find_soffice() -> str | None:
    return find_program(("soffice.exe", "soffice") if sys.platform == "win32"
                        else ("soffice", "libreoffice"))


def _has_uno(python: str) -> bool:
    try:
        done = subprocess.run([python, "-c", "import uno"], env=clean_env(),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def find_uno_python() -> str | None:
    """A Python that imports ``uno``: the one named by CARBONCLAP_XL_UNO_PYTHON, the one
    LibreOffice bundles (Windows, macOS), or the system's (Debian: python3-uno)."""
    candidates = [os.environ.get(UNO_PYTHON_ENV, "")]
    soffice = find_soffice()
    if soffice:
        program = Path(soffice).resolve().parent
        candidates += [str(program / "python.exe"), str(program / "python"),
                       str(program.parent / "Resources" / "python")]
    candidates += ["/usr/bin/python3", shutil.which("python3", path=clean_env()["PATH"]) or ""]
    for candidate in dict.fromkeys(c for c in candidates if c):
        if Path(candidate).is_file() and _has_uno(candidate):
            return candidate
    return None


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "aucun détail"


@dataclass
class Installed:
    route: str  # "unopkg" or "ExtensionManager"
    profile: Path | None  # None: LibreOffice's default profile of this user
    seconds: float


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def unopkg_command(unopkg: str, oxt: Path, profile: Path | None = None) -> list[str]:
    """``unopkg add -s -f`` (no licence to accept; replace an installed copy) for a user."""
    argv = [unopkg, "add", "-s", "-f", str(oxt.absolute())]
    if profile is not None:
        argv.append("-env:UserInstallation=" + profile.absolute().as_uri())
    return argv


def install_extension(oxt: Path, profile: Path | None = None, timeout: float = 300.0
                      ) -> Installed:
    """Add ``oxt`` to the user profile (``profile``, or LibreOffice's default one)."""
    if is_root():
        return _install_as_root(oxt, profile or default_profile(), timeout)
    unopkg = find_unopkg()
    if unopkg is None:
        raise LibreOfficeError("LibreOffice introuvable (pas de programme « unopkg ») : "
                               "installez LibreOffice, ou ajoutez son dossier « program » au "
                               "PATH, puis recommencez")
    argv = unopkg_command(unopkg, oxt, profile)
    start = time.perf_counter()
    try:
        done = subprocess.run(argv, env=clean_env(), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise LibreOfficeError(f"unopkg n'a pas terminé en {timeout:.0f} s : fermez "
                               "LibreOffice puis recommencez") from None
    if done.returncode != 0:
        raise LibreOfficeError("unopkg a refusé l'extension (LibreOffice est-il ouvert ? "
                               f"fermez-le puis recommencez) : "
                               f"{_last_line(done.stderr + done.stdout)}")
    return Installed("unopkg", profile, time.perf_counter() - start)


def _install_as_root(oxt: Path, profile: Path, timeout: float) -> Installed:
    python = find_uno_python()
    if python is None:
        raise LibreOfficeError(
            "installation en tant que root : unopkg refuse d'installer pour l'utilisateur "
            "root, et aucun Python avec le module « uno » n'a été trouvé pour passer par "
            "LibreOffice lui-même (Debian : apt-get install python3-uno ; ou indiquez-le "
            f"avec {UNO_PYTHON_ENV})")
    script = resources.files("carbonclap_xl.libreoffice") / "office" / "add_extension.py"
    argv = [python, str(script), "--oxt", str(oxt.absolute()), "--profile",
            str(profile.absolute()), "--timeout", str(timeout)]
    soffice = find_soffice()
    if soffice:
        argv += ["--soffice", soffice]
    start = time.perf_counter()
    try:
        done = subprocess.run(argv, env=clean_env(), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout + 60,
                              check=False)
    except subprocess.TimeoutExpired:
        raise LibreOfficeError(f"l'installation n'a pas terminé en {timeout:.0f} s") from None
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        answer = {"error": _last_line(done.stderr)}
    if done.returncode != 0 or not answer.get("ok"):
        raise LibreOfficeError("LibreOffice a refusé l'extension : "
                               f"{answer.get('error') or _last_line(done.stderr)}")
    return Installed("ExtensionManager", profile, time.perf_counter() - start)
