"""A pool of reused worker processes that run untrusted-input parsing under limits.

Each worker is a long-lived process started with the ``spawn`` method: a fresh interpreter, so
nothing is forked from a parent that may hold threads (pandas/OpenBLAS, a web server), and the
workers are direct children that ``close()`` reaps. A worker runs the optional ``initializer``
(import pandas, openpyxl, python_calamine and the module of ``fn`` there), reads its own
address space, then caps it with ``RLIMIT_AS`` (soft and hard) at **that baseline +
memory_mb**: ``memory_mb`` is what one task may add to a warm worker. Measured baseline: about
83 MiB bare, about 271 MiB with pandas + openpyxl + python_calamine imported. A worker also
sets ``RLIMIT_CORE`` to 0, ignores SIGINT (the parent handles Ctrl+C), and exits within a
second if its parent dies.

:meth:`WorkerPool.map` yields one :class:`Outcome` per item, **in input order**
(``error_code`` / ``error``):

- ``None`` / ``None``: ``fn(item)`` returned, ``value`` holds the result;
- ``TIMEOUT``: the item ran longer than ``timeout_s`` (counted from dispatch): the worker is
  killed with SIGKILL and replaced;
- ``MEMORY``: ``fn`` raised ``MemoryError`` (the address-space cap): the worker is recycled;
- ``REPORT_TOO_LARGE``: ``fn`` returned a result whose pickle exceeds ``max_reply_bytes``
  (the parent never receives more than that from a worker: its memory stays bounded);
- ``WORKER_CRASHED``: the worker died (python-calamine's Rust allocation abort is SIGABRT,
  exit 134; ``os._exit``; SIGKILL): it is replaced and the batch goes on;
- the ``code`` of a :class:`HostileFile` raised by ``fn``, with ``str(exc)``;
- for another :class:`CarbonClapError`: its ``code`` attribute if it has one, else its class
  name in upper snake case (``InputFileError`` -> ``INPUT_FILE_ERROR``), with ``str(exc)``;
- ``INTERNAL_ERROR`` for any other exception (a bug), with ``"TypeName: message"``.

``fn`` must be a module-level function (pickled by reference); items and results must be
picklable. Any exception in the consumer, or leaving the loop early, kills the workers still
busy with abandoned items; ``close()`` (or the ``with`` block) stops and reaps every worker.

Limits of the isolation: this bounds time, memory and crashes, it is not a security sandbox
(no seccomp, same user, results come back as pickles); processes that ``fn`` starts (e.g.
LibreOffice) inherit the address-space cap.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import resource
import signal
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from carbonclap_xl.core.errors import CarbonClapError, HostileFile
from carbonclap_xl.core.rejections import RejectionCode, rejection_code
from carbonclap_xl.validation import MAX_MEMORY_MB, MAX_TIMEOUT_S

__all__ = [
    "INTERNAL_ERROR",
    "MAX_MEMORY_MB",
    "MAX_REPLY_BYTES",
    "MAX_TIMEOUT_S",
    "MEMORY",
    "REPORT_TOO_LARGE",
    "TIMEOUT",
    "WORKER_CRASHED",
    "Outcome",
    "SandboxError",
    "WorkerPool",
]

T = TypeVar("T")

TIMEOUT = RejectionCode.TIMEOUT
MEMORY = RejectionCode.MEMORY
REPORT_TOO_LARGE = RejectionCode.REPORT_TOO_LARGE
WORKER_CRASHED = RejectionCode.WORKER_CRASHED
INTERNAL_ERROR = RejectionCode.INTERNAL_ERROR

_STARTUP_TIMEOUT_S = 120.0  # a worker that is not ready by then (initializer hung) is an error
_STOP_GRACE_S = 2.0  # close(): time given to idle workers to exit before SIGKILL
_PARENT_POLL_S = 1.0  # how often a worker checks that its parent is alive
_WINDOW_PER_JOB = 8  # items in flight or waiting to be yielded, per worker
MAX_REPLY_BYTES = 16 * 2**20  # one result, pickled: a grouped report is a few hundred KB
_REPLY_MARGIN = 64 * 1024  # the envelope around a reply


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What happened to one item."""

    item: Any
    value: T | None
    error: str | None  # None when ok; else a short French reason
    error_code: str | None  # None when ok; TIMEOUT, MEMORY, WORKER_CRASHED, a HostileFile code...

    @property
    def ok(self) -> bool:
        return self.error_code is None


class SandboxError(CarbonClapError, RuntimeError):
    """The pool itself cannot work (its initializer fails, a worker never starts)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"Bac à sable d'analyse indisponible : {self.reason}"


# --- worker side --------------------------------------------------------------------------------


def _vm_size_bytes() -> int:
    """This process's virtual address space (what RLIMIT_AS counts)."""
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmSize:"):
                return int(line.split()[1]) * 1024
    raise OSError("VmSize absent de /proc/self/status")


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(_PARENT_POLL_S)
        if os.getppid() != parent:
            os._exit(0)


def _error_code(exc: CarbonClapError) -> str:
    if isinstance(exc, SandboxError):
        return str(INTERNAL_ERROR)
    return str(rejection_code(exc))


def _run_one(fn: Callable[[Any], Any], item: Any, max_reply: int = MAX_REPLY_BYTES
             ) -> tuple[bytes, bool]:
    """Run ``fn(item)``; the pickled reply and whether this worker must now exit."""
    try:
        value = fn(item)
        reply = pickle.dumps((None, value, None), pickle.HIGHEST_PROTOCOL)
        if len(reply) > max_reply:
            text = (f"le rapport d'analyse ferait {len(reply) / 2**20:.0f} Mo, au-delà de "
                    f"{max_reply / 2**20:.0f} Mo")
            return pickle.dumps((REPORT_TOO_LARGE, None, text)), False
        return reply, False
    except MemoryError:
        return pickle.dumps((MEMORY, None, None)), True
    except HostileFile as exc:
        return pickle.dumps((exc.code, None, str(exc))), False
    except CarbonClapError as exc:
        return pickle.dumps((_error_code(exc), None, str(exc))), False
    except Exception as exc:  # the pool's job: report any failure of fn as an outcome
        text = f"{type(exc).__name__}: {exc}"
        return pickle.dumps((INTERNAL_ERROR, None, text[:2000])), False
    except BaseException as exc:  # SystemExit, KeyboardInterrupt raised by fn: recycle
        text = f"{type(exc).__name__}: {exc}"
        return pickle.dumps((INTERNAL_ERROR, None, text[:2000])), True


def _worker_main(
    conn: Connection, parent: int, memory_mb: int, initializer: Callable[[], None] | None,
    max_reply: int = MAX_REPLY_BYTES,
) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous = threading.stack_size(256 * 1024)  # the watchdog needs little address space
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    threading.stack_size(previous)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort leaves no core file
    try:
        if initializer is not None:
            initializer()
        baseline = _vm_size_bytes()
        limit = baseline + memory_mb * 2**20
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # hard too: fn cannot undo it
    except BaseException as exc:
        conn.send_bytes(pickle.dumps(("failed", f"{type(exc).__name__}: {exc}")))
        return
    conn.send_bytes(pickle.dumps(("ready", baseline, limit)))
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the parent went away
        task_id, payload = pickle.loads(message)
        if task_id is None:
            return  # asked to stop
        try:
            fn, item = pickle.loads(payload)
        except Exception as exc:  # an item the worker cannot rebuild
            reply = pickle.dumps((INTERNAL_ERROR, None, f"{type(exc).__name__}: {exc}"))
            leave = False
        else:
            reply, leave = _run_one(fn, item, max_reply)
            del fn, item
        try:
            conn.send_bytes(pickle.dumps((task_id, reply, leave), pickle.HIGHEST_PROTOCOL))
        except MemoryError:
            conn.send_bytes(pickle.dumps((task_id, pickle.dumps((MEMORY, None, None)), True)))
            leave = True
        except (EOFError, OSError):
            return
        if leave:
            return


# --- parent side --------------------------------------------------------------------------------


class _Worker:
    __slots__ = ("conn", "deadline", "exitcode", "index", "item", "process", "ready", "task_id")

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.exitcode: int | None = None  # set by kill(), from the reaped process
        self.ready = False
        self.deadline = time.monotonic() + _STARTUP_TIMEOUT_S
        self.task_id: int | None = None
        self.index = -1
        self.item: Any = None

    @property
    def busy(self) -> bool:
        return self.task_id is not None

    def kill(self) -> None:
        """SIGKILL unless already dead, reap, close the pipe; keeps the exit code."""
        if self.process.exitcode is None:
            with contextlib.suppress(OSError):
                self.process.kill()
        self.process.join()
        self.exitcode = self.process.exitcode
        self.conn.close()
        self.process.close()


def _kill_all(workers: list[_Worker | None]) -> None:
    for i, worker in enumerate(workers):
        if worker is not None:
            worker.kill()
            workers[i] = None


class WorkerPool:
    """Long-lived worker processes with a per-item timeout and an address-space cap.

    >>> with WorkerPool(jobs=2, memory_mb=1024, timeout_s=30) as pool:  # doctest: +SKIP
    ...     for outcome in pool.map(check_workbook, paths):
    ...         print(outcome.item, outcome.error_code or "ok")
    """

    def __init__(
        self,
        jobs: int = 2,
        memory_mb: int = 1024,
        timeout_s: float = 30.0,
        initializer: Callable[[], None] | None = None,
        max_reply_bytes: int = MAX_REPLY_BYTES,
    ) -> None:
        if (jobs < 1 or not 1 <= memory_mb <= MAX_MEMORY_MB or max_reply_bytes < 1
                or not 0 < timeout_s <= MAX_TIMEOUT_S):
            raise ValueError(f"jobs et max_reply_bytes doivent être >= 1, memory_mb entre 1 et "
                             f"{MAX_MEMORY_MB}, timeout_s entre 0 (exclu) et {MAX_TIMEOUT_S:g}")
        self.max_reply_bytes = max_reply_bytes
        self.jobs = jobs
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self._initializer = initializer
        self._context = get_context("spawn")
        self._workers: list[_Worker | None] = [None] * jobs
        self._next_task = 0
        self._mapping = False
        self._closed = False
        self._finalizer = weakref.finalize(self, _kill_all, self._workers)
        try:
            for slot in range(jobs):
                self._workers[slot] = self._start_worker()
        except BaseException:
            self.close()
            raise

    # -- public API -------------------------------------------------------------------------

    def map(self, fn: Callable[[Any], T], items: Iterable[Any]) -> Iterator[Outcome[T]]:
        """Run ``fn`` on each item in the workers; yield one Outcome per item, in input order."""
        if self._closed:
            raise ValueError("WorkerPool fermé")
        if self._mapping:
            raise RuntimeError("un seul map() à la fois par WorkerPool")
        pickle.dumps(fn)  # a lambda or a local function fails here, in the caller
        return self._map(fn, iter(items))

    def close(self) -> None:
        """Stop every worker and reap it; idempotent."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + _STOP_GRACE_S
        for worker in self._workers:
            if worker is not None and worker.ready and not worker.busy:
                with contextlib.suppress(OSError, ValueError):
                    worker.conn.send_bytes(pickle.dumps((None, b"")))
        for worker in self._workers:
            if worker is not None and worker.ready and not worker.busy:
                worker.process.join(max(0.0, deadline - time.monotonic()))
        _kill_all(self._workers)
        self._finalizer.detach()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------

    def _start_worker(self) -> _Worker:
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker_main,
            args=(child_end, os.getpid(), self.memory_mb, self._initializer,
                  self.max_reply_bytes),
            name="carbonclap-sandbox",
            daemon=True,
        )
        try:
            process.start()
        finally:
            child_end.close()
        return _Worker(process, parent_end)

    def _map(self, fn: Callable[[Any], T], items: Iterator[Any]) -> Iterator[Outcome[T]]:
        self._mapping = True
        backlog: deque[tuple[int, Any]] = deque()  # taken from items, not yet dispatched
        results: dict[int, Outcome[T]] = {}
        taken = 0  # items taken from the iterator
        yielded = 0
        exhausted = False
        window = self.jobs * _WINDOW_PER_JOB
        try:
            while True:
                while yielded in results:
                    yield results.pop(yielded)
                    yielded += 1
                if self._closed:
                    raise ValueError("WorkerPool fermé pendant map()")
                # Dispatch to idle workers, starting replacements only while work remains.
                for slot, worker in enumerate(self._workers):
                    if not backlog and not exhausted and taken - yielded < window:
                        try:
                            backlog.append((taken, next(items)))
                            taken += 1
                        except StopIteration:
                            exhausted = True
                    if not backlog:
                        break
                    if worker is None:
                        self._workers[slot] = self._start_worker()
                    elif worker.ready and not worker.busy:
                        index, item = backlog.popleft()
                        outcome = self._dispatch(worker, fn, index, item)
                        if outcome is not None:
                            results[index] = outcome
                busy = [w for w in self._workers if w is not None and (w.busy or not w.ready)]
                if exhausted and not backlog and not any(w.busy for w in busy):
                    if yielded == taken:
                        return
                    continue
                if not busy:
                    continue
                self._wait(busy, results)
        finally:
            self._mapping = False
            for slot, worker in enumerate(self._workers):
                if worker is not None and worker.busy:  # abandoned by the consumer
                    worker.kill()
                    self._workers[slot] = None

    def _dispatch(
        self, worker: _Worker, fn: Callable[[Any], T], index: int, item: Any
    ) -> Outcome[T] | None:
        try:
            payload = pickle.dumps((fn, item), pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # an unpicklable item: its own outcome, the batch goes on
            return Outcome(item, None, f"{type(exc).__name__}: {exc}", INTERNAL_ERROR)
        self._next_task += 1
        worker.task_id, worker.index, worker.item = self._next_task, index, item
        worker.deadline = time.monotonic() + self.timeout_s
        # If the worker died, its sentinel fires next and the item is reported as a crash.
        with contextlib.suppress(OSError):
            worker.conn.send_bytes(pickle.dumps((worker.task_id, payload)))
        return None

    def _wait(self, busy: list[_Worker], results: dict[int, Outcome[T]]) -> None:
        """Block until a busy or starting worker replies, dies, or reaches its deadline."""
        now = time.monotonic()
        timeout = max(0.0, min(w.deadline for w in busy) - now)
        handles: list[Any] = [w.conn for w in busy] + [w.process.sentinel for w in busy]
        ready = set(wait(handles, timeout))
        now = time.monotonic()
        for worker in busy:
            slot = self._workers.index(worker)
            if worker.conn in ready:
                self._receive(slot, worker, results)
            elif worker.process.sentinel in ready:
                self._crashed(slot, worker, results)
            elif now >= worker.deadline:
                self._timed_out(slot, worker, results)

    def _receive(self, slot: int, worker: _Worker, results: dict[int, Outcome[T]]) -> None:
        try:  # never more than a reply's cap in this process's memory
            message = pickle.loads(worker.conn.recv_bytes(self.max_reply_bytes + _REPLY_MARGIN))
        except Exception:  # EOF mid-message, garbage, too long: the worker is unusable
            self._crashed(slot, worker, results)
            return
        if not worker.ready:
            if message[0] != "ready":
                worker.kill()
                self._workers[slot] = None
                raise SandboxError(f"l'initialisation d'un processus a échoué ({message[1]})")
            worker.ready = True
            return
        task_id, reply, leave = message
        if task_id != worker.task_id:  # cannot happen: a desynchronised worker is discarded
            self._crashed(slot, worker, results)
            return
        try:
            code, value, error = pickle.loads(reply)
        except Exception as exc:  # e.g. a result whose class the parent cannot import
            code, value, error = INTERNAL_ERROR, None, f"{type(exc).__name__}: {exc}"
        if code == MEMORY:
            error = f"le traitement a dépassé la mémoire autorisée ({self.memory_mb} Mo)"
        results[worker.index] = Outcome(worker.item, value, error, code)
        worker.task_id, worker.item = None, None
        if leave:
            worker.kill()
            self._workers[slot] = None

    def _crashed(self, slot: int, worker: _Worker, results: dict[int, Outcome[T]]) -> None:
        # A worker that died on its own is reaped as it is; one still alive (a desynchronised
        # pipe) is killed. Either way the exit code says how it ended.
        worker.kill()
        self._workers[slot] = None
        exitcode = worker.exitcode
        if not worker.busy:
            raise SandboxError(
                f"un processus d'analyse s'est arrêté au démarrage ({_how(exitcode)})"
            )
        reason = f"le processus d'analyse s'est arrêté brutalement ({_how(exitcode)})"
        results[worker.index] = Outcome(worker.item, None, reason, WORKER_CRASHED)

    def _timed_out(self, slot: int, worker: _Worker, results: dict[int, Outcome[T]]) -> None:
        worker.kill()
        self._workers[slot] = None
        if not worker.busy:
            raise SandboxError(
                f"un processus d'analyse n'a pas démarré en {_STARTUP_TIMEOUT_S:g} s"
            )
        seconds = f"{self.timeout_s:g}".replace(".", ",")
        results[worker.index] = Outcome(
            worker.item, None, f"le traitement a dépassé {seconds} s", TIMEOUT
        )


def _how(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"signal {-exitcode}"
    return f"code de sortie {exitcode}"
