"""Write files so that a failure leaves the previous file or the complete new one, never a part.

Every file the product writes (reports, computed workbooks, backups, new workbooks) goes
through :func:`atomic_file`: the bytes go to a temporary file in the destination's folder, are
flushed and fsynced, and only then take the final name (``os.replace``, or ``os.link`` when an
existing file must not be replaced); the folder is fsynced after the rename, so a power loss
keeps one version or the other. A failure (full disk, quota, a file size limit, Ctrl+C) removes
the temporary and leaves nothing under the final name.

Temporaries are named ``.carbonclap-<host>-<pid>-<random>.tmp``: short (a 255-byte file name
stays legal beside them) and recognisable, so that a run killed with SIGKILL or by a power cut
leaves hidden files that the next write into that folder removes (:func:`remove_stale`: only
those of this host whose process is gone).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["NAME_MAX", "TEMP_PREFIX", "atomic_file", "fit_name", "remove_stale",
           "rename_synced", "require_folder", "temp_name", "write_atomic"]

TEMP_PREFIX = ".carbonclap-"
NAME_MAX = 255  # bytes of one file name on Linux, macOS and Windows file systems


def _host_name() -> str:
    """This machine's name (POSIX: ``uname``, which is what ``socket.gethostname`` reads,
    without importing the socket module for it)."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


_HOST = hashlib.sha1(_host_name().encode("utf-8", "replace")).hexdigest()[:6]
_TEMP_RE = re.compile(r"\.carbonclap-([0-9a-f]{6})-([0-9]+)-[0-9a-f]{8}\.tmp")
_POSIX = os.name == "posix"


def require_folder(path: Path | str) -> None:
    """Refuse to write ``path`` into a folder that does not exist (``InputFileError`` naming
    it): an output path with a typo must not create folders silently."""
    from carbonclap_xl.core.errors import InputFileError

    folder = Path(path).parent
    if folder.is_dir():
        return
    if folder.exists():
        raise InputFileError(str(path), f"« {folder} » n'est pas un dossier : choisissez un "
                                        "autre chemin avec -o")
    raise InputFileError(str(path), f"le dossier « {folder} » n'existe pas : créez-le "
                                    f"d'abord (mkdir -p {folder}) ou choisissez un autre "
                                    "chemin avec -o")


def temp_name() -> str:
    """A fresh temporary file name of this process (see the module's docstring)."""
    return f"{TEMP_PREFIX}{_HOST}-{os.getpid()}-{os.urandom(4).hex()}.tmp"


def _pid_alive(pid: int) -> bool:
    if not _POSIX:  # os.kill(pid, 0) would signal the process on Windows: never guess there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, another user's
        return True
    return True


def remove_stale(folder: Path) -> list[Path]:
    """Remove the temporaries an interrupted run of this host left in ``folder`` (their
    process is gone); returns what was removed. Never raises."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_RE.fullmatch(entry.name)
        if match is None or match.group(1) != _HOST or int(match.group(2)) == os.getpid():
            continue
        if _pid_alive(int(match.group(2))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def fit_name(stem: str, tail: str) -> str:
    """``stem + tail``, the stem cut (on a character boundary) so that the name holds in
    NAME_MAX bytes: ``fit_name(245 × "a", ".sauvegarde-….xlsx")``."""
    room = NAME_MAX - len(tail.encode("utf-8"))
    raw = stem.encode("utf-8")
    if len(raw) > room:
        stem = raw[:max(room, 1)].decode("utf-8", "ignore")
    return stem + tail


def rename_synced(tmp: Path | str, path: Path | str) -> None:
    """``os.replace(tmp, path)``, then the folder fsynced: the rename survives a power cut."""
    os.replace(tmp, path)
    _sync_folder(Path(path).parent)


def _sync_folder(folder: Path) -> None:
    if not _POSIX:
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def new_file_mode(folder: Path | str) -> int:
    """The permission bits a file created in ``folder`` gets (0o666 less the umask), read
    without setting the umask: ``os.umask(0)`` and back is process-wide, and a file another
    thread (the service) created in between would be writable by everyone."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    while True:  # no /proc: a new file says it
        probe = Path(folder) / temp_name()
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        try:
            return os.fstat(fd).st_mode & 0o777
        finally:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(probe)


SYNC_AHEAD = 16 * 1024 * 1024  # bytes written between two syncs of a large file


class _SyncAhead(io.BufferedWriter):
    """A buffered file that sends its data to the disk while more is being written: after
    every ``SYNC_AHEAD`` bytes, an fdatasync on a thread of its own (one at a time), so that
    the fsync that ends a large write (a 100 MB JSON) waits for its last part only. A small
    file never starts a thread. An error of such a sync is raised by ``wait`` (the next fsync
    might not report it again)."""

    def __init__(self, raw: io.FileIO) -> None:
        super().__init__(raw)
        self._unsynced = 0
        self._thread: Any = None
        self._error: OSError | None = None

    def write(self, data: Any) -> int:
        written = super().write(data)
        self._unsynced += written
        if self._unsynced >= SYNC_AHEAD and (self._thread is None
                                             or not self._thread.is_alive()):
            import threading

            self.flush()
            self._unsynced = 0
            self._thread = threading.Thread(target=self._sync, args=(self.fileno(),),
                                            name="carbonclap-sync", daemon=True)
            self._thread.start()
        return written

    def _sync(self, fd: int) -> None:
        try:
            getattr(os, "fdatasync", os.fsync)(fd)
        except OSError as exc:
            self._error = exc

    def wait(self) -> None:
        """Wait for the sync under way; raise its error, if any."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        if self._thread is not None:  # never close the descriptor under a running sync
            self._thread.join()
            self._thread = None
        super().close()


@contextmanager
def atomic_file(path: Path | str, *, replace: bool = True,
                mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new content into; it takes the name ``path`` only
    when the ``with`` block ends without an exception.

    ``replace=False``: an existing ``path`` is never replaced (FileExistsError, even when
    another process creates it meanwhile). ``mode``: the permission bits; by default those of
    the file replaced, else what the umask gives a new file.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    remove_stale(folder)
    while True:
        tmp = folder / temp_name()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
                         | getattr(os, "O_BINARY", 0), 0o600)
            break
        except FileExistsError:
            continue
    try:
        with _SyncAhead(io.FileIO(fd, "wb")) as handle:
            yield handle
            handle.flush()
            handle.wait()
            os.fsync(handle.fileno())
        if mode is None:
            try:
                mode = os.stat(path).st_mode & 0o7777
            except OSError:
                mode = new_file_mode(folder)
        os.chmod(tmp, mode)
        if replace:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
        _sync_folder(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _link_new(tmp: Path, path: Path) -> None:
    """Give ``tmp`` the name ``path`` unless ``path`` exists (atomically where the file
    system has hard links), then drop the temporary name."""
    try:
        os.link(tmp, path)
    except OSError as exc:  # no hard links here (some network or FAT file systems)
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV,
                             errno.EMLINK, errno.ENOSYS, errno.EACCES):
            raise
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def write_atomic(path: Path | str, data: bytes, *, replace: bool = True,
                 mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_file`."""
    with atomic_file(path, replace=replace, mode=mode) as handle:
        handle.write(data)

