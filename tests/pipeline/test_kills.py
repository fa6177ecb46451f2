"""A kill at the wrong moment loses nothing for good.

Every write of every stage (tables, manifest, checkpoint folders, resource rows, and the lock's removal) is a
named kill point (records/faults.py). For each stage, and each of its points: start from the state just before
the stage, kill there, check that `status` tells the truth (the stage is not done, nothing before it is
damaged), run again, and check that the stage ends as an uninterrupted run of it does: the same tables, its
manifest facts all there, no temporary file, no lock left. The sweep simulates the kill in this process (the
write and every later one die before becoming visible, as under SIGKILL); two tests kill a real process.
"""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from pipeline.status import status
from records import faults
from records.graph import NAMES
from records.integrity import check, stray_dirs
from records.store import RunStore, stray_files
from tests.conftest import cli, sets
from tests.pipeline.reliability import (
    CONFIG,
    SimulatedKill,
    assert_same_results,
    config,
    copy_run,
    folder,
    killed_at,
    overrides,
    run,
    stage_lines,
    this_process_gone,
)


@pytest.fixture
def reference(small_reference):
    return small_reference.before, small_reference.after, small_reference.points


def test_every_write_of_every_stage_is_a_named_point(reference):
    _, _, points = reference
    for s in NAMES:
        assert points[s][0] == f"{s}:manifest.json:1", points[s]  # the running record (with the header) first
        done_mark = f"{s}:manifest.json:{sum(p.startswith(f'{s}:manifest.json:') for p in points[s])}"
        assert points[s][-2:] == [done_mark, "-:.lock:1"], points[s]  # the done mark is the stage's last write
        assert f"{s}:resources.parquet:1" in points[s]
    train = set(points["train"])
    assert {"train:epoch_1:1", "train:epoch_2:1", "train:final:1", "train:epochs.parquet:2",
            "train:steps.parquet:2"} <= train
    assert "data:samples.parquet:1" in points["data"] and "params:params.parquet:1" in points["params"]
    assert "baseline:predictions.parquet:1" in points["baseline"]
    assert "evaluate:predictions.parquet:1" in points["evaluate"]
    print({s: len(p) for s, p in points.items()})


@pytest.mark.parametrize("stage", NAMES)
def test_a_kill_at_any_write_of_the_stage_loses_nothing(reference, stage, tmp_path, monkeypatch, capsys):
    before, after, points = reference
    upstream = NAMES[:NAMES.index(stage)]
    reference_record = RunStore(folder(after[stage])).stage(stage)
    for k, point in enumerate(points[stage]):
        work = copy_run(before[stage], tmp_path / f"point{k}")
        with killed_at(point), pytest.raises(SimulatedKill):
            run(work, [stage])

        # status tells the truth: nothing upstream lost, the stage not done unless its done mark was written
        with this_process_gone(monkeypatch):
            lines = stage_lines(status(config(work)))
        for up in upstream:
            assert lines[up].startswith("up to date"), (point, lines)
        if point == points[stage][0]:  # its first write never happened: as it was
            assert lines[stage] == stage_lines(status(config(before[stage])))[stage], (point, lines)
        elif point == "-:.lock:1":
            assert lines[stage].startswith("up to date"), (point, lines)  # all written; only the lock is left
        else:
            assert lines[stage].startswith("interrupted (run again to resume)"), (point, lines)
        found = check(folder(work), RunStore(folder(work)).manifest())
        assert set(found.stages) <= {stage} and not found.other, (point, found)

        capsys.readouterr()
        run(work, [stage])
        said = capsys.readouterr().out
        if point == "-:.lock:1":
            assert "note: took over the stale lock" in said and "up to date" in said, said

        # ... and the run ends as an uninterrupted one
        assert_same_results(after[stage], work)
        store = RunStore(folder(work))
        record = store.stage(stage)
        assert record.status == "done" and record.fingerprint == reference_record.fingerprint, point
        assert set(record.info) == set(reference_record.info), (point, set(record.info) ^ set(reference_record.info))
        assert stage in set(store.read("resources")["stage"]), point
        assert not check(folder(work), store.manifest()), point
        assert not stray_files(folder(work)) and not stray_dirs(work / "checkpoints" / "small"), point
        assert not (folder(work) / ".lock").exists(), point


def test_train_facts_are_written_with_its_done_mark(reference):
    """The issue's case: killed right after train was marked done, the manifest lacked before_training,
    measured_params, data_order and the peaks. They are part of the done mark's own write now."""
    _, after, _ = reference
    record = RunStore(folder(after["train"])).stage("train")
    for fact in ("before_training", "measured_params", "data_order", "peaks", "epochs_done", "finetune_seconds"):
        assert record.get(fact) is not None, fact


def _sigkilled(work, point: str):
    r = cli("run", CONFIG, *sets(overrides(work)), "--stages", "train", env={faults.KILL_AT: point})
    assert r.returncode == -9, r.stderr[-2000:]  # SIGKILL: no handler ran
    return r


def test_sigkill_at_the_train_done_mark_then_status_and_resume(reference, tmp_path):
    """A real process killed at its last write: the manifest keeps the running record, a temporary file and the
    dead process's lock are left; status says so; the next run takes the lock over, cleans up, resumes."""
    before, after, points = reference
    work = copy_run(before["train"], tmp_path)
    done_mark = points["train"][-2]
    _sigkilled(work, done_mark)
    lock = json.loads((folder(work) / ".lock").read_text())
    assert stray_files(folder(work))
    st = cli("status", CONFIG, *sets(overrides(work)))
    lines = stage_lines(st.stdout)
    assert lines["train"].startswith("interrupted (run again to resume)") and "2/2 epochs" in lines["train"], st.stdout
    assert "temporary file(s) left by an interrupted write" in st.stdout and "in use by" not in st.stdout
    r = cli("run", CONFIG, *sets(overrides(work)), "--stages", "train")
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"note: took over the stale lock of pid {lock['pid']}" in r.stdout
    assert "Resuming from the checkpoint of epoch 2/2" in r.stdout
    assert_same_results(after["train"], work)
    record = RunStore(folder(work)).stage("train")
    assert record.status == "done" and record.get("before_training") and record.get("data_order")
    assert not stray_files(folder(work)) and not (folder(work) / ".lock").exists()


def test_sigkill_while_the_resource_rows_are_written(reference, tmp_path):
    """Killed while the train stage's resource rows were written: the stage is not done (its rows are not in
    the report's table of a done stage), and the re-run writes them."""
    before, after, _ = reference
    work = copy_run(before["train"], tmp_path)
    _sigkilled(work, "train:resources.parquet:1")
    assert "train" not in set(pd.read_parquet(folder(work) / "resources.parquet")["stage"])
    st = cli("status", CONFIG, *sets(overrides(work)))
    assert stage_lines(st.stdout)["train"].startswith("interrupted"), st.stdout
    r = cli("run", CONFIG, *sets(overrides(work)), "--stages", "train")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "train" in set(pd.read_parquet(folder(work) / "resources.parquet")["stage"])
    assert_same_results(after["train"], work)
    assert set(os.listdir(folder(work))) == set(os.listdir(folder(after["train"])))  # no stray, no lock
