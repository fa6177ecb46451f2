"""Helpers of the reliability suite (test_outputs, test_kills, test_lock, test_bad_input, test_disk,
test_unsafe_loading): a small tiny-config run made in this process, snapshots of a folder tree to prove
that nothing changed, and a kill simulated at a chosen write.

The small run is the tiny CPU config cut down (2 epochs of one step, 16 + 4 + 4 rows): about 2 s per whole run once the
process is warm, so a test can afford many.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

import pandas as pd

from records import faults
from tests.conftest import ROOT

CONFIG = str(ROOT / "configs/tiny-cpu.yaml")
SMALL = ["train.epochs=2", "data.train.limit=16", "data.validation.limit=4", "data.test.limit=4"]
RUN = "small"


def overrides(root: Path, *extra: str) -> list[str]:
    return [f"run={RUN}", f"output.results_dir={root / 'results'}", f"output.checkpoint_dir={root / 'checkpoints'}",
            *SMALL, *extra]


def folder(root: Path) -> Path:
    return root / "results" / RUN


def config(root: Path, *extra: str):
    from records.config_reading import load_config
    return load_config(CONFIG, overrides(root, *extra))


def run(root: Path, stages=None, *extra: str, restart: bool = False) -> dict:
    """One `pipeline run` in this process (the Runner, as the CLI calls it)."""
    from pipeline.run import Runner
    return Runner(config(root, *extra), CONFIG, tuple(overrides(root, *extra))).run(stages, restart=restart)


def copy_run(src: Path, dst: Path) -> Path:
    for part in ("results", "checkpoints"):
        if (src / part).exists():
            shutil.copytree(src / part, dst / part, symlinks=True)
    return dst


def tree_state(root: Path) -> dict[str, tuple]:
    """Every file and folder under `root`: files by content, size and mtime (a rewrite with the same bytes
    still shows), folders by name. Two equal states: nothing was written, created or removed."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            state[os.path.relpath(os.path.join(dirpath, d), root) + "/"] = ()
        for f in filenames:
            p = os.path.join(dirpath, f)
            st = os.lstat(p)
            state[os.path.relpath(p, root)] = (hashlib.sha256(Path(p).read_bytes()).hexdigest(), st.st_size,
                                               st.st_mtime_ns, st.st_mode)
    return state


# Columns that measure time or memory: they differ between two runs of the same work.
TIMING = {"epochs": ["seconds", "tokens_per_s", "peak_allocated_bytes"]}
KEYS = {"samples": ["split", "idx"], "predictions": ["model", "split", "idx"], "epochs": ["epoch"],
        "steps": ["step"], "params": ["component", "dtype"]}


def results_of(root: Path) -> dict[str, pd.DataFrame]:
    """The tables that must come out the same from the same work, sorted, timing columns dropped."""
    out = {}
    for name, key in KEYS.items():
        path = folder(root) / f"{name}.parquet"
        if path.exists():
            df = pd.read_parquet(path).drop(columns=TIMING.get(name, []))
            out[name] = df.sort_values(key, ignore_index=True)
    return out


def assert_same_results(ref: Path, got: Path) -> None:
    a, b = results_of(ref), results_of(got)
    assert set(a) == set(b), (set(a), set(b))
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)


class SimulatedKill(BaseException):
    """What the in-process tests raise where SIGKILL would strike (BaseException: no `except Exception` in
    the pipeline catches it, as nothing catches a real kill)."""


@contextlib.contextmanager
def killed_at(point: str):
    """Inside: the first write named `point` (records.faults) and every later write die before they become
    visible, and SimulatedKill unwinds the run, so the disk is left as a SIGKILL there would leave it
    (the exception handlers that run on the way out can no longer write anything)."""
    def die():
        faults._dead = True
        raise SimulatedKill(point)

    real = faults.die
    faults.die = die
    os.environ[faults.KILL_AT] = point
    try:
        yield
    finally:
        faults.die = real
        os.environ.pop(faults.KILL_AT, None)
        faults.reset()


@contextlib.contextmanager
def this_process_gone(monkeypatch):
    """Within: this process counts as gone for the liveness rule, as the killed process would be."""
    import records.lock
    import records.manifest
    real = records.manifest.process_state

    def state(pid, host, start=None):
        return "gone" if str(pid) == str(os.getpid()) else real(pid, host, start)

    with monkeypatch.context() as m:
        m.setattr(records.manifest, "process_state", state)
        m.setattr(records.lock, "process_state", state)
        yield


def assert_intact(results) -> None:
    """Every table and the manifest parse, no temporary file is left: nothing half-written."""
    from records.integrity import parse
    from records.schema import TABLES
    from records.store import RunStore, stray_files
    assert not stray_files(results), stray_files(results)
    store = RunStore(results)
    store.manifest()
    for name in TABLES:
        if store.has(name):
            assert parse(name, store.table_path(name).read_bytes())[1] is None, name


def stage_lines(status_text: str) -> dict[str, str]:
    """`pipeline status` output -> stage name -> what it says about that stage."""
    from records.graph import NAMES
    return dict(line.split(None, 1) for line in status_text.splitlines()[1:] if line.split()[0] in NAMES)
