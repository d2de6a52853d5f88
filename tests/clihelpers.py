"""Run the command line in a child process and measure it: exit code, output, wall time, peak
memory (RSS of that process), optionally under a file-size limit that stands for a full disk."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The child prints its own peak RSS on stderr's last line, after the command's output.
# (VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec from the parent.)
_CHILD = """
import sys
from carbonclap_xl.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
peak = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")][0].split()[1]
print("\\nmaxrss_kb=" + peak, file=sys.stderr)
raise SystemExit(code)
"""


@dataclass
class Run:
    code: int
    out: str
    err: str  # without the measurement line
    seconds: float
    maxrss_mb: float

    @property
    def text(self) -> str:
        return self.out + self.err


def _limit_file_size(limit: int) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG: a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def run_cli(args: list[str], cwd: Path | None = None, fsize: int | None = None,
            timeout: float = 300) -> Run:
    """``carbonclap-xl ARGS`` in a fresh interpreter; ``fsize`` caps the size of any file it
    writes (RLIMIT_FSIZE, SIGXFSZ ignored): the disk is full after that many bytes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", _CHILD, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout,
                          preexec_fn=None if fsize is None else (lambda: _limit_file_size(fsize)))
    seconds = time.monotonic() - started
    err, _, measure = proc.stderr.rpartition("\nmaxrss_kb=")
    maxrss = int(measure.strip()) / 1024 if measure.strip().isdigit() else float("nan")
    return Run(proc.returncode, proc.stdout, err if measure else proc.stderr, seconds, maxrss)


# A disk that takes a while to sync: a kill then lands while the output is being written.
_SLOW_SYNC = """
import os, sys, time
real = os.fsync
os.fsync = lambda fd: (time.sleep(float(os.environ["SLOW_FSYNC_S"])), real(fd))[1]
from carbonclap_xl.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def start_cli(args: list[str], cwd: Path | None = None,
              slow_fsync_s: float = 0.0) -> subprocess.Popen[bytes]:
    """``carbonclap-xl ARGS`` started in the background (for kill -9 tests); every fsync
    first sleeps ``slow_fsync_s`` seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1",
           "SLOW_FSYNC_S": str(slow_fsync_s)}
    return subprocess.Popen([sys.executable, "-c", _SLOW_SYNC, *args], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def temporaries(folder: Path) -> list[str]:
    """What our atomic writes may leave behind (hidden .carbonclap-*.tmp files)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".carbonclap-"))
