"""Every file the commands write is complete or absent: a full disk (RLIMIT_FSIZE, a real
write failure), a kill -9, two runs at once, a symbolic link, a 245-character name."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from carbonclap_xl.cli import main
from carbonclap_xl.core.atomic import atomic_file, fit_name, remove_stale, write_atomic
from carbonclap_xl.workbook import layout as L
from tests.clihelpers import run_cli, start_cli, temporaries
from tests.wbhelpers import LINES, make_workbook, sheet_values, value_at

CSV_LINES = ("poste,activity,quantity_forecast,quantity_final,unit,data_source,comment\n"
             "lieux,elec_fr,1000,1200,kWh,facture,plateau\n")


def _listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def _assert_clean_failure(run: object, folder: Path, before: set[str]) -> None:
    text = run.text  # type: ignore[attr-defined]
    assert run.code == 2, text  # type: ignore[attr-defined]
    assert "Traceback" not in text and "Exception ignored" not in text, text
    last = run.err.strip().splitlines()[-1]  # type: ignore[attr-defined]
    assert last.startswith("erreur : ") and "limite de taille" in last, text
    assert _listing(folder) == before, _listing(folder) ^ before


# --- full disk ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workbook(tmp_path_factory.mktemp("wb") / "film.xlsx")


@pytest.mark.parametrize("command", ["compute", "validate-json", "validate-csv", "new",
                                     "process", "in-place"])
def test_full_disk_leaves_nothing_under_the_final_name(tmp_path: Path, workbook: Path,
                                                       command: str) -> None:
    src = tmp_path / "film.xlsx"
    shutil.copy(workbook, src)
    (tmp_path / "lignes.csv").write_text(CSV_LINES, encoding="utf-8")
    args, limit = {
        "compute": (["compute", "lignes.csv", "--json", "r.json"], 500),
        "validate-json": (["validate", "film.xlsx", "--json", "r.json"], 500),
        "validate-csv": (["validate", "film.xlsx", "--csv", "r.csv"], 100),
        "new": (["new", "-o", "neuf.xlsx"], 4096),
        "process": (["process", "film.xlsx", "-o", "sortie.xlsx"], 4096),
        "in-place": (["process", "film.xlsx", "--in-place"], 4096),
    }[command]
    original = src.read_bytes()
    before = _listing(tmp_path)
    run = run_cli(args, cwd=tmp_path, fsize=limit)
    _assert_clean_failure(run, tmp_path, before)
    assert src.read_bytes() == original


def test_atomic_file_removes_its_temporary_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    with pytest.raises(OSError), atomic_file(target) as handle:
        handle.write(b"{")
        raise OSError(28, "No space left on device")
    assert not target.exists() and not temporaries(tmp_path)
    write_atomic(target, b"{}")
    with pytest.raises(FileExistsError):
        write_atomic(target, b"[]", replace=False)
    assert target.read_bytes() == b"{}" and not temporaries(tmp_path)


# --- interruptions ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_workbook(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A 4,000-line workbook (writing it takes a while) and its processed bytes."""
    root = tmp_path_factory.mktemp("big")
    lines = pd.concat([LINES] * 1000, ignore_index=True)
    path = make_workbook(root / "gros.xlsx", lines=lines)
    assert main(["process", str(path), "-o", str(root / "ref.xlsx")]) in (0, 1)
    return path, (root / "ref.xlsx").read_bytes()


def _complete(path: Path) -> bool:
    with zipfile.ZipFile(path) as zf:
        return zf.testzip() is None


@pytest.mark.parametrize("mode", ["output", "in-place"])
def test_kill_9_leaves_the_original_or_a_complete_result(
        tmp_path: Path, big_workbook: tuple[Path, bytes], mode: str) -> None:
    """Killed while reading, and killed while its output is being written (a slow disk, the
    kill sent as soon as its temporary appears): never a partial file under the final name,
    and the next run removes the temporaries the killed one left."""
    source, reference = big_workbook
    original = source.read_bytes()
    for when in ("reading", "writing"):
        folder = tmp_path / when
        folder.mkdir()
        src = folder / "gros.xlsx"
        src.write_bytes(original)
        out = src if mode == "in-place" else folder / "sortie.xlsx"
        args = ["process", str(src), "--in-place"] if mode == "in-place" else \
            ["process", str(src), "-o", str(out)]
        proc = start_cli(args, slow_fsync_s=2.0)
        if when == "reading":
            time.sleep(0.3)
        else:
            deadline = time.monotonic() + 60
            while not temporaries(folder) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert temporaries(folder), "the write never started"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if mode == "in-place":
            assert src.read_bytes() == original
            assert all(b.read_bytes() == original for b in folder.glob("gros.sauvegarde-*"))
        else:
            assert not out.exists()
        assert bool(temporaries(folder)) == (when == "writing")
        rerun = args if mode == "in-place" else [*args, "--force"]
        assert main(rerun) in (0, 1)  # removes the dead run's temporaries, writes it all
        assert not temporaries(folder) and _complete(out)
        if mode == "output":
            assert out.read_bytes() == reference


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    from carbonclap_xl.core import atomic

    mine = tmp_path / atomic.temp_name()
    stale = tmp_path / mine.name.replace(f"-{os.getpid()}-", f"-{dead}-")
    other_host = tmp_path / f".carbonclap-zzzzzz-{dead}-0123abcd.tmp"
    for p in (mine, stale, other_host):
        p.write_bytes(b"partiel")
    assert remove_stale(tmp_path) == [stale]
    assert mine.exists() and other_host.exists()


# --- two updates at once, symbolic links, long names -------------------------------------------


def test_second_in_place_update_is_refused_in_french(tmp_path: Path, workbook: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "film.xlsx"
    shutil.copy(workbook, src)
    original = src.read_bytes()
    fd = os.open(src, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another update holds the file
        assert main(["process", str(src), "--in-place"]) == 2
    finally:
        os.close(fd)
    err = capsys.readouterr().err
    assert "déjà en cours de traitement" in err and "File exists" not in err
    assert src.read_bytes() == original and not list(tmp_path.glob("*sauvegarde*"))


def test_two_in_place_runs_at_once(tmp_path: Path, workbook: Path) -> None:
    src = tmp_path / "film.xlsx"
    shutil.copy(workbook, src)
    procs = [start_cli(["process", str(src), "--in-place"]) for _ in range(2)]
    codes = [p.wait(timeout=120) for p in procs]
    assert set(codes) <= {0, 2} and 0 in codes
    assert _complete(src) and not temporaries(tmp_path)
    rows = sheet_values(src, L.SHEET_CONTROLES)
    assert "erreur(s)" in str(value_at(rows, L.CTRL_SUMMARY_CELL))


def test_in_place_through_a_symlink_keeps_the_link(tmp_path: Path, workbook: Path) -> None:
    real = tmp_path / "vrai" / "film.xlsx"
    real.parent.mkdir()
    shutil.copy(workbook, real)
    original = real.read_bytes()
    link = tmp_path / "lien.xlsx"
    link.symlink_to(real)
    assert main(["process", str(link), "--in-place"]) in (0, 1)
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert real.read_bytes() != original and _complete(real)
    (backup,) = real.parent.glob("film.sauvegarde-*.xlsx")
    assert backup.read_bytes() == original


def test_a_245_character_name_works(tmp_path: Path, workbook: Path) -> None:
    stem = "Bilan carbone " + "é" * 5 + "x" * (245 - 14 - 5 - 5)  # 245 characters, 250 bytes
    src = tmp_path / f"{stem}.xlsx"
    assert len(src.name) == 245
    shutil.copy(workbook, src)
    assert main(["process", str(src)]) in (0, 1)
    outputs = [p for p in tmp_path.iterdir() if p != src]
    assert len(outputs) == 1 and len(outputs[0].name.encode()) <= 255
    assert main(["process", str(src), "--in-place"]) in (0, 1)
    backups = list(tmp_path.glob("*sauvegarde*"))
    assert len(backups) == 1 and len(backups[0].name.encode()) <= 255
    assert main(["new", "-o", str(tmp_path / ("n" * 250 + ".xlsx"))]) == 0
    assert not temporaries(tmp_path)


def test_fit_name_cuts_on_a_character() -> None:
    name = fit_name("é" * 200, ".sauvegarde-20260101-120000.xlsx")
    assert len(name.encode()) <= 255 and name.endswith(".xlsx") and "\ufffd" not in name


# --- arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize("option", [["--timeout", "0"], ["--timeout", "-1"],
                                    ["--timeout", "nan"], ["--timeout", "inf"],
                                    ["--timeout", "1e308"], ["--memory-mb", "0"],
                                    ["--memory-mb", "-5"], ["--jobs", "0"],
                                    ["--timeout", "abc"]])
def test_bad_limits_are_one_french_line(option: list[str], workbook: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["validate", str(workbook), *option])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("carbonclap-xl validate : erreur : argument ") and "donnez" in last


def test_json_report_is_complete(tmp_path: Path, workbook: Path) -> None:
    report = tmp_path / "r.json"
    assert main(["validate", str(workbook), str(workbook), "--json", str(report)]) == 0
    doc = json.loads(report.read_text())
    assert doc["summary"] == {"ok": 2, "errors": 0, "rejected": 0} and len(doc["files"]) == 2


def test_new_file_mode_reads_the_umask_without_setting_it(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A new output's permissions come from the umask, read without ``os.umask`` (process-wide:
    a file another thread of the service created meanwhile would be world-writable), from
    /proc or, without it, from a probe file that does not stay."""
    import builtins
    import os

    from carbonclap_xl.core import atomic

    old = os.umask(0o027)
    try:
        calls: list[int] = []
        monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or 0)
        assert atomic.new_file_mode(tmp_path) == 0o640
        real_open = builtins.open

        def no_proc(file: object, *args: object, **kwargs: object) -> object:
            if str(file).startswith("/proc"):
                raise FileNotFoundError(file)
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", no_proc)
        assert atomic.new_file_mode(tmp_path) == 0o640
        assert calls == [] and list(tmp_path.iterdir()) == []
    finally:
        monkeypatch.undo()
        os.umask(old)


def test_json_to_a_reader_that_stops_early_keeps_the_exit_code(tmp_path: Path) -> None:
    """`compute … --json - | head`: the summary still reaches stderr and the exit code still
    says the file has errors (the JSON is streamed, so the pipe breaks mid-document)."""
    import subprocess
    import sys

    lines = tmp_path / "bad.csv"
    lines.write_text("poste,activity,quantity_forecast,quantity_final,unit\n"
                     + "regie,Activité inconnue,1,,kg\n" * 3000, encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "carbonclap_xl", "compute", str(lines),
                             "--json", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(100).startswith(b"{")
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "3\u202f000 erreur(s)" in err and "Traceback" not in err


def test_the_console_script_runs_exit_handlers_then_ends_at_once(tmp_path: Path) -> None:
    """``cli.run`` skips the interpreter's teardown but not the exit handlers: a library's
    clean-up (openpyxl's temporary files) still happens."""
    import subprocess
    import sys

    mark = tmp_path / "handler-ran"
    code = ("import atexit, pathlib, sys; from carbonclap_xl.cli import run; "
            f"atexit.register(pathlib.Path({str(mark)!r}).write_text, 'oui'); "
            "run(['new', '-o', sys.argv[1]])")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "new.xlsx")],
                          capture_output=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert mark.read_text() == "oui" and (tmp_path / "new.xlsx").is_file()


def test_the_console_script_flushes_before_it_ends(tmp_path: Path, workbook: Path) -> None:
    """What ``python -m carbonclap_xl`` prints reaches the reader whole, the output file is
    complete, and the exit code is main's."""
    import subprocess
    import sys

    out = tmp_path / "out.xlsx"
    proc = subprocess.run([sys.executable, "-m", "carbonclap_xl", "process", str(workbook),
                           "-o", str(out), "--json", "-"], capture_output=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["lines"] and "Résultats écrits dans" in proc.stderr.decode()
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
    bad = subprocess.run([sys.executable, "-m", "carbonclap_xl", "process",
                          str(tmp_path / "absent.xlsx")], capture_output=True, timeout=120,
                         check=False)
    assert bad.returncode != 0 and "introuvable" in bad.stderr.decode()
