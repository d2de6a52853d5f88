"""The worker pool: crashes, timeouts and memory blow-ups stay inside one item's Outcome."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile_corpus import build_far_cell, build_normal_workbook

from carbonclap_xl.core.errors import HostileFile, InputFileError
from carbonclap_xl.validation.sandbox import (
    INTERNAL_ERROR,
    MEMORY,
    TIMEOUT,
    WORKER_CRASHED,
    Outcome,
    SandboxError,
    WorkerPool,
)

MEMORY_MB = 256


# --- functions run inside the workers (module level: pickled by reference) ----------------------


def task(item: tuple[str, Any]) -> Any:
    kind, arg = item
    if kind == "ok":
        return arg * 2
    if kind == "sleep":
        time.sleep(arg)
        return "réveillé"
    if kind == "pid":
        return os.getpid()
    if kind == "abort":
        os.abort()
    if kind == "exit":
        os._exit(arg)
    if kind == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "allocate":
        return len(bytearray(arg))
    if kind == "hostile":
        raise HostileFile(arg, "ZIP_BOMB", "Le classeur se décompresse en un volume anormal.")
    if kind == "input":
        raise InputFileError(arg, "colonnes manquantes")
    if kind == "bug":
        raise ValueError(arg)
    if kind == "calamine":
        import python_calamine

        book = python_calamine.CalamineWorkbook.from_path(arg)
        return len(book.get_sheet_by_index(0).to_python())
    raise AssertionError(kind)


def noop(item: Any) -> Any:
    return item


def failing_initializer() -> None:
    raise RuntimeError("pas de pandas")


# --- helpers ------------------------------------------------------------------------------------


def _children() -> set[int]:
    """Pids whose parent is this process, zombies included, read from /proc."""
    me, found = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == me:
            found.add(int(entry))
    return found


def _active() -> set[int]:
    return {p.pid for p in multiprocessing.active_children() if p.pid is not None}


def _codes(outcomes: list[Outcome[Any]]) -> list[str | None]:
    return [o.error_code for o in outcomes]


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    with WorkerPool(jobs=2, memory_mb=MEMORY_MB, timeout_s=3.0) as shared:
        yield shared


# --- normal work --------------------------------------------------------------------------------


def test_results_come_in_input_order(pool: WorkerPool) -> None:
    items = [("sleep", 0.3), ("ok", 1), ("sleep", 0.1), ("ok", 2), ("ok", 3), ("sleep", 0.2)]
    outcomes = list(pool.map(task, items))
    assert [o.item for o in outcomes] == items
    assert [o.value for o in outcomes] == ["réveillé", 2, "réveillé", 4, 6, "réveillé"]
    assert all(o.ok and o.error is None for o in outcomes)


def test_workers_are_reused(pool: WorkerPool) -> None:
    pids = {o.value for o in pool.map(task, [("pid", None)] * 20)}
    assert 1 <= len(pids) <= 2


def test_many_small_tasks_in_order(pool: WorkerPool) -> None:
    outcomes = list(pool.map(noop, range(200)))
    assert [o.value for o in outcomes] == list(range(200))


def test_lazy_input_is_consumed_as_needed(pool: WorkerPool) -> None:
    taken: list[int] = []

    def items() -> Iterator[int]:
        for i in range(1_000):
            taken.append(i)
            yield i

    outcomes = pool.map(noop, items())
    first = [next(outcomes).value for _ in range(3)]
    assert first == [0, 1, 2]
    assert len(taken) < 100  # a bounded window, not the whole input
    outcomes.close()


# --- failures stay inside their item ------------------------------------------------------------


def test_abort_crashes_only_its_item(pool: WorkerPool) -> None:
    outcomes = list(pool.map(task, [("ok", 1), ("abort", None), ("ok", 2), ("ok", 3)]))
    assert _codes(outcomes) == [None, WORKER_CRASHED, None, None]
    assert outcomes[1].error == "le processus d'analyse s'est arrêté brutalement (signal 6)"
    assert [o.value for o in outcomes] == [2, None, 4, 6]


def test_exit_and_sigkill_are_crashes(pool: WorkerPool) -> None:
    outcomes = list(pool.map(task, [("exit", 3), ("sigkill", None), ("ok", 5)]))
    assert _codes(outcomes) == [WORKER_CRASHED, WORKER_CRASHED, None]
    assert outcomes[0].error == "le processus d'analyse s'est arrêté brutalement (code de sortie 3)"
    assert outcomes[1].error == "le processus d'analyse s'est arrêté brutalement (signal 9)"


def test_slow_item_times_out(pool: WorkerPool) -> None:
    start = time.perf_counter()
    outcomes = list(pool.map(task, [("sleep", 60), ("ok", 1)]))
    assert time.perf_counter() - start < 10
    assert _codes(outcomes) == [TIMEOUT, None]
    assert outcomes[0].error == "le traitement a dépassé 3 s"


def test_memory_blow_up_is_reported(pool: WorkerPool) -> None:
    outcomes = list(pool.map(task, [("allocate", 3 * 2**30), ("allocate", 2**20)]))
    assert _codes(outcomes) == [MEMORY, None]
    assert outcomes[0].error == f"le traitement a dépassé la mémoire autorisée ({MEMORY_MB} Mo)"
    assert outcomes[1].value == 2**20


def test_domain_errors_keep_their_code(pool: WorkerPool) -> None:
    items = [("hostile", "a.xlsx"), ("input", "b.xlsx"), ("bug", "oups")]
    outcomes = list(pool.map(task, items))
    assert _codes(outcomes) == ["ZIP_BOMB", "INPUT_FILE_ERROR", INTERNAL_ERROR]
    assert outcomes[0].error == (
        "a.xlsx : Le classeur se décompresse en un volume anormal. [ZIP_BOMB]"
    )
    assert outcomes[1].error == "b.xlsx : colonnes manquantes"
    assert outcomes[2].error == "ValueError: oups"


def test_calamine_far_cell_is_contained(pool: WorkerPool, tmp_path: Path) -> None:
    """The real case: python-calamine aborts the process on cells A1 and XFD1048576."""
    far, normal = build_far_cell(tmp_path), build_normal_workbook(tmp_path, rows=20)
    outcomes = list(pool.map(task, [("calamine", str(far)), ("calamine", str(normal))]))
    assert outcomes[0].error_code in {WORKER_CRASHED, MEMORY}
    assert outcomes[1].ok and outcomes[1].value == 21


# --- API misuse ---------------------------------------------------------------------------------


def test_fn_must_be_picklable(pool: WorkerPool) -> None:
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pool.map(lambda x: x, [1])


def test_unpicklable_item_is_its_own_outcome(pool: WorkerPool) -> None:
    outcomes = list(pool.map(noop, [1, lambda: 2, 3]))
    assert _codes(outcomes) == [None, INTERNAL_ERROR, None]
    assert [outcomes[0].value, outcomes[2].value] == [1, 3]


def test_failing_initializer_raises() -> None:
    before = _children()
    with (
        pytest.raises(SandboxError, match="RuntimeError: pas de pandas"),
        WorkerPool(jobs=1, initializer=failing_initializer) as broken,
    ):
        list(broken.map(noop, [1]))
    assert _children() - before == set()


def test_closed_pool_refuses_work() -> None:
    pool = WorkerPool(jobs=1)
    pool.close()
    pool.close()  # idempotent
    with pytest.raises(ValueError, match="fermé"):
        pool.map(noop, [1])


# --- no process left behind ---------------------------------------------------------------------


def test_close_leaves_no_child_process() -> None:
    before_children, before_active = _children(), _active()
    with WorkerPool(jobs=2, timeout_s=1.0) as fresh:
        items = [("pid", None), ("abort", None), ("sleep", 30), ("pid", None)]
        outcomes = list(fresh.map(task, items))
        assert _codes(outcomes) == [None, WORKER_CRASHED, TIMEOUT, None]
        assert _children() - before_children  # the workers are our children
    assert _children() - before_children == set()
    assert _active() - before_active == set()
    assert {outcomes[0].value, outcomes[3].value} & _children() == set()


def test_consumer_exception_leaves_no_child_process() -> None:
    before = _children()
    start = time.perf_counter()
    with pytest.raises(RuntimeError, match="consommateur"), WorkerPool(jobs=2, timeout_s=60) as p:
        for _outcome in p.map(task, [("ok", 1), ("sleep", 60), ("sleep", 60)]):
            raise RuntimeError("le consommateur échoue")
    assert time.perf_counter() - start < 10  # the sleeping workers were killed, not awaited
    assert _children() - before == set()


def test_abandoned_map_frees_the_pool() -> None:
    before = _children()
    with WorkerPool(jobs=2, timeout_s=60) as p:
        outcomes = p.map(task, [("ok", 1), ("sleep", 60), ("sleep", 60)])
        assert next(outcomes).value == 2
        outcomes.close()  # leaving the loop early kills the busy workers
        start = time.perf_counter()
        assert [o.value for o in p.map(task, [("ok", 2)])] == [4]
        assert time.perf_counter() - start < 10
    assert _children() - before == set()
