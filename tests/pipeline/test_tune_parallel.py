"""`pipeline tune --jobs N` runs trials concurrently, each as its own `pipeline run` process; the table is the
same as one trial at a time, and a tune killed mid-way, run again, resumes the unfinished trials."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

CONFIG = "configs/tiny-cpu.yaml"
GRID = "epochs: 2\ntrials:\n  - {train.learning_rate: 1.0e-3}\n  - {train.learning_rate: 3.0e-3, lora.r: 4}\n"


def _tune(folder, *extra, env=None):
    (folder / "grid.yaml").write_text(GRID)
    sets = [f"output.results_dir={folder}/results", f"output.checkpoint_dir={folder}/ckpt", "run=tune-test",
            "runtime.threads=1"]
    cmd = [sys.executable, "-m", "pipeline", "tune", CONFIG, str(folder / "grid.yaml"),
           *[a for s in sets for a in ("--set", s)], *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": "", **(env or {})})


def _table(folder) -> pd.DataFrame:
    return pd.read_parquet(folder / "results/tune-test/tuning.parquet").sort_values("trial").reset_index(drop=True)


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sequential")
    r = _tune(folder, "--jobs", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    return _table(folder)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert a["trial"].tolist() == b["trial"].tolist() and a["chosen"].tolist() == b["chosen"].tolist()
    assert np.allclose(a["val_accuracy"], b["val_accuracy"]) and np.allclose(a["val_loss"], b["val_loss"], rtol=1e-6)


@pytest.mark.slow
def test_trials_run_concurrently_and_give_the_same_table(sequential, tmp_path):
    r = _tune(tmp_path, "--jobs", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 trials, 2 at a time" in r.stdout
    assert "trial 1 started on process slot" in r.stdout and "trial 2 started on process slot" in r.stdout
    assert (tmp_path / "ckpt/tune-test/tuning/logs/trial2.log").is_file()
    _same(sequential, _table(tmp_path))


@pytest.mark.slow
def test_a_killed_tune_resumes_the_unfinished_trials(sequential, tmp_path):
    killed = _tune(tmp_path, "--jobs", "2", env={"PIPELINE_KILL_AFTER_EPOCH": "1"})
    assert killed.returncode == 1
    assert "trial 1 failed" in killed.stderr and "trial2.log" in killed.stderr
    assert "run the same tune again" in killed.stderr
    assert not (tmp_path / "results/tune-test/tuning.parquet").exists()  # nothing recorded from half a tune
    again = _tune(tmp_path, "--jobs", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    for k in (1, 2):
        assert "Resuming from the checkpoint of epoch 1/2" in (tmp_path / f"ckpt/tune-test/tuning/logs/trial{k}.log").read_text()
    _same(sequential, _table(tmp_path))


def test_jobs_must_be_positive(tmp_path):
    r = _tune(tmp_path, "--jobs", "0")
    assert r.returncode == 2 and r.stderr.strip() == "error: --jobs: must be 1 or more, got 0"
