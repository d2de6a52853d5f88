"""Service throughput: 200 uploads of a typical workbook (workbook/examples/telefilm.xlsx)
from 8 concurrent clients to `carbonclap-xl serve` on loopback, next to `validate` of the
same 200 files in one process with as many workers, as a ratio. A hostile file (a zip bomb
from tests/hostile_corpus.py) is sent in the middle of the load: it must get its rejection
and every other request must succeed.

    python bench/service.py [--uploads N] [--clients N] [--workers N]

The service is measured warm (a server lives long: its workers are started and have each
analysed one file before the clock starts); `validate` includes its pool start, as in
bench/validate.py, and is also shown without it (minus a one-file run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from hostile_corpus import build_zip_bomb  # noqa: E402

from carbonclap_xl.validation.batch import BatchOptions, validate_paths  # noqa: E402

WORKBOOK = ROOT / "workbook" / "examples" / "telefilm.xlsx"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(workers: int, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "CARBONCLAP_XL_TOKEN"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "carbonclap_xl", "serve", "--port", str(port), "--workers",
         str(workers), "--log-level", "warning"],
        stdout=open(tmp / "server.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
        stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("server exited:\n" + (tmp / "server.log").read_text())
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        data = WORKBOOK.read_bytes()
        bomb = build_zip_bomb(tmp).read_bytes()
        hostile_at = args.uploads // 2
        jobs = [("telefilm.xlsx", data)] * args.uploads
        jobs.insert(hostile_at, ("zip_bomb.xlsx", bomb))

        proc, base = start_server(args.workers, tmp)
        try:
            # warm: every worker has analysed one file before the clock starts
            with httpx.Client(timeout=120) as client:
                for _ in range(args.workers):
                    client.post(f"{base}/api/validate", files={"file": ("w.xlsx", data)})
            latencies: list[float] = [0.0] * len(jobs)
            outcomes: list[tuple[int, str]] = [(0, "")] * len(jobs)
            lock = threading.Lock()
            next_job = iter(range(len(jobs)))

            def client_loop() -> None:
                with httpx.Client(timeout=120) as client:
                    while True:
                        with lock:
                            index = next(next_job, None)
                        if index is None:
                            return
                        name, body = jobs[index]
                        t = time.perf_counter()
                        response = client.post(f"{base}/api/validate",
                                               files={"file": (name, body)})
                        latencies[index] = time.perf_counter() - t
                        doc = response.json()
                        outcomes[index] = (response.status_code,
                                           (doc.get("rejection") or {}).get("code")
                                           or doc.get("status", ""))

            threads = [threading.Thread(target=client_loop) for _ in range(args.clients)]
            t0 = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - t0
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

        hostile = outcomes.pop(hostile_at)
        hostile_latency = latencies.pop(hostile_at)
        failures = [o for o in outcomes if o != (200, "ok")]

        copies = []
        for i in range(args.uploads):
            target = tmp / f"depot-{i:03d}.xlsx"
            shutil.copyfile(WORKBOOK, target)
            copies.append(str(target))
        t = time.perf_counter()
        reports = list(validate_paths(copies, BatchOptions(jobs=args.workers)))
        cli = time.perf_counter() - t
        t = time.perf_counter()
        list(validate_paths(copies[:1], BatchOptions(jobs=1)))
        start_cost = time.perf_counter() - t
        cli_ok = sum(r["status"] == "ok" for r in reports)

        n = args.uploads
        print(f"{n} uploads of {WORKBOOK.name} ({len(data) / 1000:.0f} kB), {args.clients} "
              f"clients, {args.workers} sandbox workers, zip bomb at #{hostile_at}")
        print(f"service  {wall:6.2f} s  {n / wall:6.1f} files/s  p50 "
              f"{1000 * statistics.median(latencies):5.0f} ms  p95 "
              f"{1000 * percentile(latencies, 0.95):5.0f} ms  "
              f"({n - len(failures)}/{n} ok)")
        print(f"zip bomb: HTTP {hostile[0]} {hostile[1]} in {1000 * hostile_latency:.0f} ms")
        print(f"validate {cli:6.2f} s  {n / cli:6.1f} files/s  (one process, --jobs "
              f"{args.workers}, pool start included; {cli_ok}/{n} ok)")
        print(f"ratio service/validate: {wall / cli:.2f}  (validate without its pool start, "
              f"~{start_cost:.1f} s: {wall / max(cli - start_cost, 1e-9):.2f})")
        if failures or hostile != (422, "ZIP_BOMB"):
            raise SystemExit(f"FAILED: {len(failures)} failed request(s), hostile {hostile}")


if __name__ == "__main__":
    main()
