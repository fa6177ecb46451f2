"""One run per results folder: a second `run` or `tune` refuses with one line naming the holder (or waits with
--wait), a stale lock from a dead process is taken over with a note, and only rank 0 of a multi-process run
takes the lock."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.cli import main
from records.lock import LockHeld, RunLock, held
from tests.conftest import ROOT, sets
from tests.pipeline.reliability import (
    CONFIG,
    assert_same_results,
    config,
    copy_run,
    folder,
    overrides,
    run,
    tree_state,
)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_second_run_or_tune_refuses_naming_the_holder(small_reference, tmp_path, capsys):
    work = copy_run(small_reference.complete, tmp_path)
    grid = tmp_path / "grid.yaml"
    grid.write_text("epochs: 1\ntrials:\n  - {train.learning_rate: 1.0e-3}\n")
    with held(folder(work), "python -m pipeline run elsewhere.yaml") as lock:
        holder = json.loads(lock.path.read_text())
        assert (holder["pid"], holder["host"]) == (os.getpid(), socket.gethostname())
        before = tree_state(work)
        for argv in (["run", CONFIG], ["tune", CONFIG, str(grid)], ["run", CONFIG, "--stages", "data"]):
            capsys.readouterr()
            assert main([*argv, *sets(overrides(work))]) == 2
            assert capsys.readouterr().err.splitlines() == [
                f"error: {folder(work)} is in use by pid {os.getpid()} on {socket.gethostname()} since "
                f"{holder['start']} (python -m pipeline run elsewhere.yaml) (fix: wait for it to finish, or pass --wait)"]
            assert tree_state(work) == before
        assert main(["status", CONFIG, *sets(overrides(work))]) == 0
        assert f"  in use by pid {os.getpid()} on {socket.gethostname()}" in capsys.readouterr().out
    assert not (folder(work) / ".lock").exists()


def test_two_runs_at_once_one_refuses_and_the_other_finishes(small_reference, tmp_path):
    """Two real processes on one fresh folder: the second, started while the first holds the lock, refuses;
    the first ends with the results a run alone gives."""
    cmd = [sys.executable, "-m", "pipeline", "run", CONFIG, *sets(overrides(tmp_path))]
    release = tmp_path / "release"  # the first run waits at its first table write until this file exists
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PIPELINE_HOLD_AT": "data:samples.parquet:1",
                                  "PIPELINE_HOLD_FILE": str(release)})
    deadline = time.time() + 300
    while not Path(f"{release}.held").exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert Path(f"{release}.held").exists(), "the first run never reached its hold point"
    second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    release.touch()
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-2000:]
    assert second.returncode == 2, second.stderr[-2000:]
    # the command as recorded: the config path relative to the repository root (records.config.project_path)
    command = "python -m pipeline run configs/tiny-cpu.yaml" + "".join(f" --set {o}" for o in overrides(tmp_path))
    [line] = second.stderr.splitlines()
    assert re.fullmatch(rf"error: {re.escape(str(folder(tmp_path)))} is in use by pid {first.pid} on "
                        rf"{re.escape(socket.gethostname())} since \S+ \({re.escape(command)}\) \(fix: wait for it to "
                        rf"finish, or pass --wait\)", line), line
    assert_same_results(small_reference.complete, tmp_path)
    assert not (folder(tmp_path) / ".lock").exists()


def test_wait_waits_for_the_holder(small_reference, tmp_path):
    work = copy_run(small_reference.complete, tmp_path)
    lock = RunLock(folder(work), "python -m pipeline run other.yaml")
    lock.acquire()
    try:
        waiting = subprocess.Popen([sys.executable, "-m", "pipeline", "run", CONFIG, *sets(overrides(work)), "--wait"],
                                   cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        said = ""
        while not said.startswith("waiting: ") and waiting.poll() is None:
            said = waiting.stderr.readline()
        assert said.startswith(f"waiting: {folder(work)} is in use by pid {os.getpid()}"), said
        time.sleep(2)
        assert waiting.poll() is None  # still waiting
    finally:
        lock.release()
    out, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err
    assert "all 5 stages up to date" in out


def test_a_stale_lock_is_taken_over_with_a_note(small_reference, tmp_path, capsys):
    work = copy_run(small_reference.complete, tmp_path)
    pid = _dead_pid()
    (folder(work) / ".lock").write_text(json.dumps({"pid": pid, "host": socket.gethostname(),
                                                    "start": "2026-01-01T00:00:00+00:00", "command": "x"}))
    assert run(work) == {"ran": []}
    assert (f"note: took over the stale lock of pid {pid} on {socket.gethostname()} since 2026-01-01T00:00:00+00:00 "
            f"(x): that process is gone") in capsys.readouterr().out
    assert not (folder(work) / ".lock").exists()


def test_a_lock_held_on_another_host_is_refused_even_with_wait(small_reference, tmp_path):
    work = copy_run(small_reference.complete, tmp_path)
    path = folder(work) / ".lock"
    path.write_text(json.dumps({"pid": 1, "host": "another-machine", "start": "2026-01-01T00:00:00+00:00"}))
    with pytest.raises(LockHeld, match=r"is locked by pid 1 on another-machine .*another host, which cannot be checked "
                                       rf"from here \(fix: if that process has ended, delete {path}\)$"):
        RunLock(folder(work)).acquire(wait=True)
    assert path.exists()


def test_only_rank_zero_takes_the_lock(small_reference, tmp_path, monkeypatch):
    """A rank > 0 of a multi-process run never touches the lock (rank 0 holds it for all)."""
    from pipeline.engine import distributed
    from pipeline.run import Runner
    work = copy_run(small_reference.complete, tmp_path)
    monkeypatch.setattr(distributed, "current", lambda: distributed.Dist(rank=1, world=2, local_rank=1))
    monkeypatch.setattr(distributed, "broadcast_object", lambda obj: obj)
    with held(folder(work), "rank 0"):
        runner = Runner(config(work), CONFIG)
        assert not runner.store.writer
        assert runner.run() == {"ran": []}  # planned as rank 0 would; no refusal, no write


def test_a_lock_on_a_fresh_folder_leaves_nothing_behind(tmp_path):
    """Taking and releasing the lock of a folder that did not exist removes the folders it made."""
    with held(tmp_path / "results" / "new", "x"):
        assert (tmp_path / "results" / "new" / ".lock").exists()
    assert list(tmp_path.iterdir()) == []
