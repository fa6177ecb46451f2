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
from pathlib import Path

import pandas as pd

from pipeline.configs import load_config
from pipeline.jobs import Job, default_jobs, run_side_by_side, sets
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


def tune(config_path: str, grid_path: str, overrides: list[str], jobs: int | None = None,
         wait: bool = False, restart: bool = False) -> pd.DataFrame:
    """Run the trials and record them, holding the base run's lock throughout (records/lock.py): a `run` or
    another `tune` of the same results folder meanwhile would interleave its manifest writes with ours."""
    epochs, trials = read_grid(Path(grid_path))
    base = load_config(config_path, overrides)
    plans = []
    for k, trial in enumerate(trials, 1):
        trial_sets = _trial_sets(base, overrides, trial, k, epochs)
        plans.append((k, trial_sets, load_config(config_path, trial_sets)))  # every trial's config checked before any runs
    with held(base.results_path, f"python -m pipeline tune {config_path} {grid_path}", wait):
        return _tune(config_path, grid_path, base, epochs, trials, plans, jobs or default_jobs(), restart)


def _tune(config_path: str, grid_path: str, base, epochs: int, trials: list[dict], plans: list,
          jobs: int, restart: bool) -> pd.DataFrame:
    from pipeline.run import Runner  # torch
    if jobs == 1:
        for k, trial_sets, cfg in plans:
            print(f"=== trial {k}/{len(trials)}: {', '.join(trial_overrides(trials[k - 1]))}", flush=True)
            Runner(cfg, config_path, tuple(trial_sets)).run(["data", "train"], restart=restart)
    else:
        print(f"{len(trials)} trials, {jobs} at a time", flush=True)
        failed = run_side_by_side(config_path, [
            Job(f"trial {k}", f"trial{k}.log", [*sets(trial_sets), "--stages", "data,train",
                                                 *(["--restart"] if restart else [])])
            for k, trial_sets, _ in plans], jobs, base.checkpoint_path / "tuning" / "logs")
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
