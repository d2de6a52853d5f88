"""Helpers for the service tests: start the real server on a loopback port, build inputs."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
from wbhelpers import LINES, make_workbook

ROOT = Path(__file__).resolve().parents[1]
TELEFILM = ROOT / "workbook" / "examples" / "telefilm.xlsx"
START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_server(tmp: Path, *args: str, env: dict[str, str] | None = None
                   ) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    """``carbonclap-xl serve`` in a subprocess on a free loopback port, its temporary files
    under ``tmp/tmp`` (TMPDIR); yields (base URL, that folder, the process)."""
    tmpdir = tmp / "tmp"
    tmpdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed below
    environment = {k: v for k, v in os.environ.items() if k != "CARBONCLAP_XL_TOKEN"}
    environment.update({"TMPDIR": str(tmpdir), **(env or {})})
    proc = subprocess.Popen(
        [sys.executable, "-m", "carbonclap_xl", "serve", "--host", "127.0.0.1", "--port",
         str(port), "--log-level", "warning", *args],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=environment,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError("server exited: " + (tmp / "server.log").read_text())
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start: " + (tmp / "server.log").read_text())
            time.sleep(0.2)
        yield base, tmpdir, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        log.close()


def faulty_workbook(directory: Path, title: str = "<b>Film</b> & \"test\"") -> Path:
    """A Carbon'Clap XL workbook with one unknown activity (an error with sheet and cell) and
    a title full of HTML metacharacters."""
    lines = pd.concat([LINES, pd.DataFrame([{
        "poste": "regie", "activity": "hotell fr", "quantity_forecast": 5, "quantity_final": 5,
        "unit": "nuit", "data_source": "facture", "comment": "<img src=x onerror=alert(1)>"}])],
        ignore_index=True)
    production = {"title": title, "work_type": "Court métrage", "phase": "forecast",
                  "budget_keur": 150, "shooting_days": 5, "duration_min": 18,
                  "start_date": "2026-04-06", "end_date": "2026-04-10"}
    return make_workbook(directory / "faulty.xlsx", lines, production)
