"""One run over two processes (`accelerate launch`, gloo on the CPU) against the same run in one process.

With the same effective batch and data order, two processes compute the same updates (gradients summed
over ranks, each micro-batch weighted by its share of the step's rows), so the predictions agree to float
noise; rank 0 alone writes results/, every rank's resource samples are in resources.parquet, and a run
killed after an epoch resumes under two processes to the same predictions.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pipeline.engine import distributed
from records.config import ConfigError
from records.schema import PROB_COLUMNS

CONFIG = "configs/tiny-cpu.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sets(folder) -> list[str]:
    out = []
    for s in (f"output.results_dir={folder}/r", f"output.checkpoint_dir={folder}/c", "run=dist", "train.epochs=2"):
        out += ["--set", s]
    return out


def _run(folder, processes: int, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", **(env or {})}
    if processes == 1:
        cmd = [sys.executable, "-m", "pipeline", "run", CONFIG, *_sets(folder)]
    else:  # the documented launch (accelerate hands --multi_gpu to torchrun; without a GPU the ranks use gloo)
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(_free_port()), "-m", "pipeline", "run", CONFIG, *_sets(folder)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)


def _predictions(folder) -> pd.DataFrame:
    p = pd.read_parquet(folder / "r/dist/predictions.parquet")
    return p.sort_values(["model", "split", "idx"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    one, two = tmp_path_factory.mktemp("one"), tmp_path_factory.mktemp("two")
    r1, r2 = _run(one, 1), _run(two, 2)
    assert r1.returncode == 0, r1.stderr[-3000:]
    assert r2.returncode == 0, r2.stderr[-3000:]
    return one, two, r2


@pytest.mark.slow
def test_two_processes_predict_what_one_process_predicts(runs):
    one, two, _ = runs
    a, b = _predictions(one), _predictions(two)
    assert len(a) == len(b) > 0
    assert (a[["split", "idx", "model"]] == b[["split", "idx", "model"]]).all().all()  # every row exactly once
    assert (a["pred"] == b["pred"]).all()
    diff = np.abs(a[list(PROB_COLUMNS)].to_numpy() - b[list(PROB_COLUMNS)].to_numpy()).max()
    print(f"largest probability difference, 1 vs 2 processes: {diff:.1e}")
    assert diff < 1e-5
    ea, eb = (pd.read_parquet(f / "r/dist/epochs.parquet") for f in (one, two))
    assert np.allclose(ea["val_loss"], eb["val_loss"], rtol=1e-5) and (ea["tokens"] == eb["tokens"]).all()


@pytest.mark.slow
def test_rank_zero_writes_and_every_rank_is_sampled(runs):
    _, two, r2 = runs
    m = json.loads((two / "r/dist/manifest.json").read_text())
    assert m["processes"]["world_size"] == 2 and [r["rank"] for r in m["processes"]["ranks"]] == [0, 1]
    assert m["stages"]["train"]["batch"] == {"effective": 16, "micro": 8, "processes": 2, "accumulation": 1}
    # the command that re-runs it includes its launch over 2 processes
    assert [c.split(" run ")[0] for c in m["commands"]] == ["accelerate launch --multi_gpu --num_processes 2 -m pipeline"]
    res = pd.read_parquet(two / "r/dist/resources.parquet")
    per_stage = res.groupby("stage")["rank"].unique()
    assert all(sorted(v) == [0, 1] for v in per_stage), per_stage
    assert r2.stdout.count("[train] running") == 1  # rank 1 prints nothing
    assert not list((two / "r/dist").glob(".*.tmp"))


@pytest.mark.slow
def test_two_process_run_killed_after_an_epoch_resumes_to_the_same_predictions(runs, tmp_path):
    _, two, _ = runs
    killed = _run(tmp_path, 2, {"PIPELINE_KILL_AFTER_EPOCH": "1"})
    assert killed.returncode != 0
    status = subprocess.run([sys.executable, "-m", "pipeline", "status", CONFIG, *_sets(tmp_path)],
                            capture_output=True, text=True)
    assert "interrupted" in status.stdout, status.stdout
    resumed = _run(tmp_path, 2)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from the checkpoint of epoch 1/2" in resumed.stdout
    a, b = _predictions(two), _predictions(tmp_path)
    assert (a["pred"] == b["pred"]).all()
    assert np.abs(a[list(PROB_COLUMNS)].to_numpy() - b[list(PROB_COLUMNS)].to_numpy()).max() < 1e-6


def test_micro_batches_are_dealt_out_in_turn():
    rows = list(range(10))
    d0, d1 = distributed.Dist(0, 2, 0), distributed.Dist(1, 2, 1)
    assert distributed.micro_batches(rows, 3, d0) == [[0, 1, 2], [6, 7, 8]]
    assert distributed.micro_batches(rows, 3, d1) == [[3, 4, 5], [9]]
    assert distributed.micro_batches([0, 1], 3, d1) == []  # the end of an epoch: rank 1 still joins the sum


def test_effective_batch_splits_or_says_how_to_fix():
    assert distributed.accumulation_steps(16, None, 2) == (8, 1)
    assert distributed.accumulation_steps(16, 4, 2) == (4, 2)
    with pytest.raises(ConfigError, match=r"train.batch_size: 10 rows per step cannot be split evenly over 3 processes"):
        distributed.accumulation_steps(10, None, 3)
    with pytest.raises(ConfigError, match=r"train.micro_batch_size: .*fix: batch_size = micro_batch_size x processes"):
        distributed.accumulation_steps(16, 3, 2)
