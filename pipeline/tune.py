"""Hyper-parameter trials on the validation rows only (never the test rows).

python -m pipeline tune CONFIG GRID [--jobs N]: each trial is CONFIG plus the grid's overrides, trained for
the grid's epochs with the same code path as a run (data + train stages, into checkpoints/<run>/tuning/,
resumable and skipped when already done). The table of trials goes into results/<run>/tuning.parquet through
the results store; the chosen trial is the one with the best final-epoch validation accuracy (ties: lower
validation loss). `--then-run` then runs every stage with the chosen trial (records/tuned.py); `--restart` starts
the trials and that run over. `--print-overrides` prints the chosen trial as --set arguments.

Trials run `--jobs` at a time (default: one per visible GPU), each as its own `pipeline run` process pinned
to one GPU (CUDA_VISIBLE_DEVICES), its output in checkpoints/<run>/tuning/logs/. A trial is an ordinary
run, so a killed tune, run again, skips the trials that finished and resumes the others from their last
complete epoch. Trials are independent: the table is the same whatever --jobs is.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from pipeline.configs import load_config
from records.config import TUNABLE, ConfigError
from records.lock import held
from records.store import RunStore


def read_grid(path: Path) -> tuple[int, list[dict]]:
    from records.config_reading import load_yaml
    if not path.is_file():
        raise ConfigError(f"{path}: grid file not found")
    raw = load_yaml(path) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping with `epochs` and `trials` at the top level, got a "
                          f"{type(raw).__name__} (fix: see configs/smollm2-tuning.yaml)")
    epochs, trials = raw.get("epochs"), raw.get("trials")
    if not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"{path}: epochs: must be a positive integer (epochs per trial)")
    if not isinstance(trials, list) or not trials or not all(isinstance(t, dict) for t in trials):
        raise ConfigError(f"{path}: trials: must be a list of mappings such as {{train.learning_rate: 2.0e-4}}")
    for i, t in enumerate(trials, 1):
        for key in t:
            if key not in TUNABLE:
                raise ConfigError(f"{path}: trials[{i}].{key}: not tunable here (choose from {', '.join(TUNABLE)})")
    return epochs, trials


def trial_overrides(trial: dict) -> list[str]:
    return [f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in trial.items()]  # no spaces: one shell word each


def default_jobs() -> int:
    """One trial per visible GPU; one at a time without a GPU."""
    try:
        import torch  # only to count GPUs: heavy, and absent from the report environment
        return max(1, torch.cuda.device_count())
    except ImportError:
        return 1


def _trial_sets(base, overrides: list[str], trial: dict, k: int, epochs: int) -> list[str]:
    return list(overrides) + trial_overrides(trial) + [
        f"train.epochs={epochs}", f"run={base.run}-trial{k}",
        # trials are scratch work: they live beside the checkpoints, never in results/
        f"output.results_dir={base.checkpoint_path / 'tuning' / 'results'}",
        f"output.checkpoint_dir={base.checkpoint_path / 'tuning' / 'checkpoints'}"]


def _row(cfg, k: int, epochs: int) -> dict:
    ep = RunStore(cfg.results_path).read("epochs")
    if not len(ep) or ep["epoch"].max() != epochs:
        raise ConfigError(f"trial {k}: its run has no complete epochs table in {cfg.results_path} "
                          f"(fix: run the tune again to finish it)")
    last = ep.sort_values("epoch").iloc[-1]
    return {"trial": k, "learning_rate": cfg.train.learning_rate, "batch_size": cfg.train.batch_size,
            "lora_r": cfg.lora.r, "target_modules": ",".join(cfg.lora.target_modules),
            "epochs": epochs, "val_accuracy": float(last["val_accuracy"]),
            "val_loss": float(last["val_loss"]), "seconds": float(ep["seconds"].sum())}


def _run_concurrently(config_path: str, jobs: list[tuple[int, list[str]]], slots: int, logs: Path,
                      restart: bool = False) -> list[str]:
    """Run each (trial, sets) as `pipeline run` in its own process, `slots` at a time, each on its own GPU
    slot. -> one line per failed trial (empty when all finished)."""
    import torch
    gpus = torch.cuda.device_count()
    free: queue.Queue = queue.Queue()
    for slot in range(slots):
        free.put(slot)
    logs.mkdir(parents=True, exist_ok=True)

    def one(k: int, sets: list[str]) -> str | None:
        slot = free.get()
        try:
            env = dict(os.environ)
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = _visible(slot)
            log = logs / f"trial{k}.log"
            where = f"GPU {env.get('CUDA_VISIBLE_DEVICES')}" if gpus else f"process slot {slot}"
            print(f"=== trial {k} started on {where} (log: {log})", flush=True)
            cmd = [sys.executable, "-m", "pipeline", "run", config_path, *[a for s in sets for a in ("--set", s)],
                   "--stages", "data,train", *(["--restart"] if restart else [])]
            with open(log, "w") as out:
                code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
            last = (log.read_text().strip().splitlines() or [""])[-1][:300]
            print(f"=== trial {k} {'finished' if code == 0 else f'failed (exit {code})'}: {last}", flush=True)
            return None if code == 0 else f"trial {k} failed (exit {code}); see {log}"
        finally:
            free.put(slot)

    with ThreadPoolExecutor(max_workers=slots) as pool:
        return [e for e in pool.map(lambda j: one(*j), jobs) if e]


def _visible(slot: int) -> str:
    """The slot-th GPU of those this process may use (respecting an outer CUDA_VISIBLE_DEVICES)."""
    outer = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return outer[slot] if outer else str(slot)


def tune(config_path: str, grid_path: str, overrides: list[str], jobs: int | None = None,
         wait: bool = False, restart: bool = False) -> pd.DataFrame:
    """Run the trials and record them, holding the base run's lock throughout (records/lock.py): a `run` or
    another `tune` of the same results folder meanwhile would interleave its manifest writes with ours."""
    epochs, trials = read_grid(Path(grid_path))
    base = load_config(config_path, overrides)
    plans = []
    for k, trial in enumerate(trials, 1):
        sets = _trial_sets(base, overrides, trial, k, epochs)
        plans.append((k, sets, load_config(config_path, sets)))  # every trial's config checked before any runs
    with held(base.results_path, f"python -m pipeline tune {config_path} {grid_path}", wait):
        return _tune(config_path, grid_path, base, epochs, trials, plans, jobs or default_jobs(), restart)


def _tune(config_path: str, grid_path: str, base, epochs: int, trials: list[dict], plans: list,
          jobs: int, restart: bool) -> pd.DataFrame:
    from pipeline.run import Runner  # torch
    if jobs == 1:
        for k, sets, cfg in plans:
            print(f"=== trial {k}/{len(trials)}: {', '.join(trial_overrides(trials[k - 1]))}", flush=True)
            Runner(cfg, config_path, tuple(sets)).run(["data", "train"], restart=restart)
    else:
        print(f"{len(trials)} trials, {jobs} at a time", flush=True)
        failed = _run_concurrently(config_path, [(k, sets) for k, sets, _ in plans], jobs,
                                   base.checkpoint_path / "tuning" / "logs", restart)
        if failed:
            raise TrialsFailed("; ".join(failed) + " (fix: run the same tune again: finished trials are skipped)")
    df = pd.DataFrame([_row(cfg, k, epochs) for k, _, cfg in plans])
    best = df.sort_values(["val_accuracy", "val_loss"], ascending=[False, True]).iloc[0]["trial"]
    df["chosen"] = df["trial"] == best
    chosen = trials[int(best) - 1]
    record(RunStore(base.results_path), df, config_path, grid_path, epochs, trials)
    print(df.to_string(index=False))
    print(f"chosen: trial {int(best)}: {' '.join('--set ' + o for o in trial_overrides(chosen))}")
    return df


class TrialsFailed(RuntimeError):
    """Some trials of a concurrent tune failed; the message names them and their logs."""


RULE = "best final-epoch validation accuracy, ties by lower validation loss"


def record(store: RunStore, df: pd.DataFrame, config_path: str, grid_path: str, epochs: int, trials: list[dict],
           **extra) -> None:
    """The one writer of the tuning table and its manifest entry (`chosen` column marks the winner)."""
    best = int(df.loc[df["chosen"], "trial"].iloc[0])
    store.write("tuning", df)
    store.update_manifest(tuning={
        "grid": str(grid_path), "epochs_per_trial": epochs, "trials": len(trials), "chosen_trial": best,
        "chosen": trials[best - 1], "rule": RULE,
        "command": f"python -m pipeline tune {config_path} {grid_path}",
        "chosen_overrides": trial_overrides(trials[best - 1]), **extra})


def chosen_overrides(config_path: str, overrides: list[str]) -> list[str]:
    base = load_config(config_path, overrides)
    m = RunStore(base.results_path).manifest().tuning
    if not m:
        raise ConfigError(f"{base.results_path}: no tuning recorded (fix: run `python -m pipeline tune` first)")
    return trial_overrides(m["chosen"])
