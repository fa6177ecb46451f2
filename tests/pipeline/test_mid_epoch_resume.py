"""Mid-epoch checkpoints (issue 20): a run killed inside an epoch resumes from its last mid-epoch state and gives
the same per-step and per-epoch losses as a run that was never killed, with gradient accumulation on; the save
cadence changes no result and no fingerprint."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from records.config_reading import load_config
from records.fingerprints import stage_fingerprints
from tests.conftest import ROOT, cli, sets, tiny_overrides

CONFIG = "configs/tiny-cpu.yaml"
# 2 epochs of 20 steps; micro-batches of 8 rows: each step of 16 rows accumulates two.
SHAPE = ["train.epochs=2", "train.micro_batch_size=8"]


def _run(tmp_path, *extra, env=None):
    ov = tiny_overrides(tmp_path, "mid") + SHAPE + list(extra)
    return cli("run", CONFIG, *sets(ov), "--stages", "data,train", env=env)


def _tables(tmp_path) -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = tmp_path / "results" / "mid"
    timing = ["seconds", "tokens_per_s"]  # wall time: the one thing a kill changes
    return (pd.read_parquet(folder / "steps.parquet"),
            pd.read_parquet(folder / "epochs.parquet").drop(columns=timing))


def test_the_save_cadence_is_no_stage_input():
    base = load_config(ROOT / CONFIG, check_files=False)
    other = load_config(ROOT / CONFIG, ["train.checkpoint_every_steps=3", "train.checkpoint_every_minutes=null"],
                        check_files=False)
    assert stage_fingerprints(base) == stage_fingerprints(other)
    assert stage_fingerprints(base) != stage_fingerprints(
        load_config(ROOT / CONFIG, ["train.micro_batch_size=8"], check_files=False))


@pytest.mark.parametrize("bad, line", [
    ("train.checkpoint_every_steps=0", "error: configs/tiny-cpu.yaml: train.checkpoint_every_steps: must be >= 1, got 0"),
    ("train.checkpoint_every_minutes=0", "error: configs/tiny-cpu.yaml: train.checkpoint_every_minutes: must be > 0.0, got 0.0"),
])
def test_a_bad_cadence_is_one_line(tmp_path, bad, line):
    r = cli("run", CONFIG, *sets(tiny_overrides(tmp_path) + [bad]))
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_killed_mid_epoch_twice_resumes_to_the_same_losses(tmp_path):
    ref = tmp_path / "ref"
    assert _run(ref).returncode == 0  # no step cadence, never killed
    run = tmp_path / "killed"
    # Killed while writing the second state (step 14): the first (step 7) stays, its half-written successor goes.
    r = _run(run, "train.checkpoint_every_steps=7", env={"PIPELINE_KILL_AT": "train:mid_epoch:2"})
    assert r.returncode == -9
    ckpt = run / "checkpoints" / "mid"
    assert json.loads((ckpt / "mid_epoch" / "meta.json").read_text())["step"] == 7
    assert not (ckpt / "epoch_1").exists()
    # Resumed at epoch 1, step 7; killed after global step 30 (epoch 2, step 10): epoch 2's state of step 8 stays.
    r = _run(run, "train.checkpoint_every_steps=7", env={"PIPELINE_KILL_AFTER_STEP": "30"})
    assert r.returncode == -9 and "Resuming from the checkpoint of step 7/20 of epoch 1/2" in r.stdout
    meta = json.loads((ckpt / "mid_epoch" / "meta.json").read_text())
    assert (meta["epoch"], meta["step"]) == (2, 8)
    # Another cadence (a field no fingerprint hashes) still resumes: step 8 of epoch 2.
    r = _run(run, "train.checkpoint_every_steps=5")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Resuming from the checkpoint of step 8/20 of epoch 2/2" in r.stdout
    assert not (ckpt / "mid_epoch").exists()  # stale once its epoch's checkpoint exists
    m = json.loads((run / "results" / "mid" / "manifest.json").read_text())
    assert sorted(m["checkpoints"]) == ["epoch_1", "epoch_2", "final"]
    ref_steps, ref_epochs = _tables(ref)
    steps, epochs = _tables(run)
    assert len(steps) == 40
    pd.testing.assert_frame_equal(ref_steps, steps, check_exact=True)
    pd.testing.assert_frame_equal(ref_epochs, epochs, check_exact=True)


@pytest.mark.slow
def test_a_mid_epoch_state_of_another_config_is_not_resumed(tmp_path):
    r = _run(tmp_path, "train.checkpoint_every_steps=7", env={"PIPELINE_KILL_AFTER_STEP": "10"})
    assert r.returncode == -9
    r = _run(tmp_path, "train.learning_rate=1.0e-3")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Resuming" not in r.stdout
