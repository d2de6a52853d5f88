"""A headless soffice on a private profile, driven over a UNO pipe, with hygiene.

Runs under a Python that has `uno` (Debian: /usr/bin/python3 with python3-uno; elsewhere
LibreOffice's own program/python), never inside carbonclap_xl's own interpreter: the root
install (`add_extension.py`) and the end-to-end tests use it. POSIX only (process groups).

Hygiene: stdin=DEVNULL, its own process group (killpg if terminate() hangs), venv folders
and Python variables removed from its environment, and every UNO call that can block under
`guard()`: a watchdog kills soffice's whole process group when the deadline passes, which
turns a hang into a DisposedException in the caller instead of a stuck run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import uno
from com.sun.star.beans import PropertyValue
from com.sun.star.connection import NoConnectException


def find_soffice() -> str | None:
    if os.environ.get("CARBONCLAP_XL_SOFFICE"):
        return os.environ["CARBONCLAP_XL_SOFFICE"]
    for name in ("soffice", "libreoffice"):
        found = shutil.which(name, path=clean_path())
        if found:
            return found
    for cand in ("/usr/lib/libreoffice/program/soffice",
                 "/Applications/LibreOffice.app/Contents/MacOS/soffice",
                 r"C:\Program Files\LibreOffice\program\soffice.exe"):
        if os.path.exists(cand):
            return cand
    return None


def _is_venv_bin(d: str) -> bool:
    return (Path(d).parent / "pyvenv.cfg").exists()


def clean_path(extra_first: list[str] | None = None) -> str:
    """PATH without any venv / pyenv bin dir (LibreOffice's Python would adopt its pyvenv.cfg)."""
    parts = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not _is_venv_bin(d)]
    return os.pathsep.join((extra_first or []) + parts)


def soffice_env(extra_path: list[str] | None = None, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP",
                        "__PYVENV_LAUNCHER__", "PYENV_VERSION", "CONDA_PREFIX")}
    env["PATH"] = clean_path(extra_path)
    env.update(overrides)
    return env


def pv(name: str, value) -> PropertyValue:
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p


class Office:
    """soffice --headless on `profile`, its own process group, stdin=DEVNULL, killpg on stop."""

    def __init__(self, profile: Path, env: dict[str, str] | None = None, log: Path | None = None):
        self.profile = Path(profile)
        self.env = env or soffice_env()
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.ctx = None
        self.smgr = None
        self.desktop = None
        self.pipe = "cc_" + uuid.uuid4().hex[:12]
        self.timed_out: list[str] = []

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, connect_timeout: float = 60.0) -> float:
        """Start soffice and connect; returns the seconds until the UNO bridge answered."""
        try:
            return self._start(connect_timeout)
        except BaseException:
            self.stop(grace=2)
            raise

    def _start(self, connect_timeout: float) -> float:
        soffice = find_soffice()
        if soffice is None:
            raise RuntimeError("soffice not found")
        self.profile.mkdir(parents=True, exist_ok=True)
        args = [soffice, "--headless", "--norestore", "--nologo", "--nodefault",
                "--nolockcheck", "--invisible",
                "-env:UserInstallation=" + self.profile.resolve().as_uri(),
                f"--accept=pipe,name={self.pipe};urp;StarOffice.ComponentContext"]
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        t0 = time.perf_counter()
        try:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)  # own process group
        finally:
            if out is not subprocess.DEVNULL:
                out.close()  # the child has its own copy
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext(
            "com.sun.star.bridge.UnoUrlResolver", local)
        url = f"uno:pipe,name={self.pipe};urp;StarOffice.ComponentContext"
        deadline = time.monotonic() + connect_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"soffice exited early with {self.proc.returncode}")
            try:
                with self.guard(10, "resolve"):
                    self.ctx = resolver.resolve(url)
                break
            except NoConnectException:
                if time.monotonic() > deadline:
                    raise RuntimeError("soffice did not accept the UNO connection in time"
                                       ) from None
                time.sleep(0.1)
        self.smgr = self.ctx.ServiceManager
        with self.guard(30, "desktop"):
            self.desktop = self.smgr.createInstanceWithContext("com.sun.star.frame.Desktop",
                                                                self.ctx)
        return time.perf_counter() - t0

    def stop(self, grace: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None and self.desktop is not None:
            with contextlib.suppress(Exception), self.guard(grace, "terminate"):
                self.desktop.terminate()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self._killpg()
            self.proc.wait(timeout=10)
        self._killpg()  # children (e.g. oosplash leftovers) of the group, if any
        self.proc = None
        self.ctx = self.smgr = self.desktop = None

    def _killpg(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def guard(self, seconds: float, what: str) -> _Watchdog:
        """Watchdog: if the block takes longer than `seconds`, kill soffice's process group.

        A class, not @contextlib.contextmanager: pyuno exceptions do not survive the
        generator protocol (contextlib sets exc.__traceback__, which pyuno tries to convert
        to a UNO type and fails with a RuntimeException that hides the real error).
        """
        return _Watchdog(self, seconds, what)

    # -- helpers ---------------------------------------------------------------------------
    def create(self, name: str):
        with self.guard(30, f"create {name}"):
            return self.smgr.createInstanceWithContext(name, self.ctx)

    def load(self, path: Path, timeout: float = 60.0):
        url = Path(path).resolve().as_uri()
        with self.guard(timeout, f"load {path}"):
            doc = self.desktop.loadComponentFromURL(url, "_blank", 0,
                                                    (pv("Hidden", True),))
        if doc is None:
            raise RuntimeError(f"loadComponentFromURL returned None for {path} "
                               "(stale .~lock file? broken file?)")
        return doc


class _Watchdog:
    def __init__(self, office: Office, seconds: float, what: str):
        self.office, self.seconds, self.what = office, seconds, what
        self.fired = threading.Event()
        self.timer: threading.Timer | None = None

    def _fire(self) -> None:
        self.fired.set()
        self.office.timed_out.append(self.what)
        print(f"WATCHDOG: '{self.what}' exceeded {self.seconds}s, killing soffice",
              file=sys.stderr)
        self.office._killpg()

    def __enter__(self) -> _Watchdog:
        self.timer = threading.Timer(self.seconds, self._fire)
        self.timer.daemon = True
        self.timer.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.timer.cancel()
        if self.fired.is_set() and exc_type is None:
            raise TimeoutError(f"UNO call '{self.what}' timed out after {self.seconds}s")
        return False
