"""What every command shares: exit codes, JSON output, human output, atomic file writes."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_ISSUES, EXIT_UNREADABLE = 0, 1, 2


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, flushed and
    renamed: a failure (full disk, kill) leaves no file under the final name."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".",
                                prefix=".cc-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(name, 0o666 & ~umask)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


def emit_json(doc: Any, target: str) -> None:
    """``doc`` as JSON on stdout (``-``) or in a file (written atomically)."""
    from carbonclap_xl.core.result import dumps

    data = dumps(doc)
    if target == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        write_atomic(Path(target), data)


def say(text: str, json_target: str | None) -> None:
    """Human output goes to stdout, or stderr when stdout carries the JSON."""
    print(text, file=sys.stderr if json_target == "-" else sys.stdout)
