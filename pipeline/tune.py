"""Hyper-parameter trials on the validation rows only (never the test rows).

python -m pipeline tune CONFIG GRID: each trial is CONFIG plus the grid's overrides, trained for the
grid's epochs with the same code path as a run (data + train stages, into checkpoints/<run>/tuning/, resumable and
skipped when already done). The table of trials goes into results/<run>/tuning.parquet through the
results store; the chosen trial is the one with the best final-epoch validation accuracy (ties: lower
validation loss). `--print-overrides` prints the chosen trial as --set arguments for `run`.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from pipeline.config import ConfigError, load_config
from pipeline.store import RunStore

TUNABLE = ("train.learning_rate", "train.batch_size", "lora.r", "lora.alpha", "lora.target_modules",
           "lora.dropout", "train.warmup_ratio", "train.weight_decay", "train.scheduler")


def read_grid(path: Path) -> tuple[int, list[dict]]:
    if not path.is_file():
        raise ConfigError(f"{path}: grid file not found")
    raw = yaml.safe_load(path.read_text()) or {}
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


def tune(config_path: str, grid_path: str, overrides: list[str]) -> pd.DataFrame:
    from pipeline.runner import Runner
    epochs, trials = read_grid(Path(grid_path))
    base = load_config(config_path, overrides)
    rows = []
    for k, trial in enumerate(trials, 1):
        sets = list(overrides) + trial_overrides(trial) + [
            f"train.epochs={epochs}", f"run={base.run}-trial{k}",
            # trials are scratch work: they live beside the checkpoints, never in results/
            f"output.results_dir={base.checkpoint_path / 'tuning' / 'results'}",
            f"output.checkpoint_dir={base.checkpoint_path / 'tuning' / 'checkpoints'}"]
        cfg = load_config(config_path, sets)
        print(f"=== trial {k}/{len(trials)}: {', '.join(trial_overrides(trial))}", flush=True)
        runner = Runner(cfg, config_path, tuple(sets))
        runner.run(["data", "train"])
        ep = runner.store.read("epochs")
        last = ep.sort_values("epoch").iloc[-1]
        rows.append({"trial": k, "learning_rate": cfg.train.learning_rate, "batch_size": cfg.train.batch_size,
                     "lora_r": cfg.lora.r, "target_modules": ",".join(cfg.lora.target_modules),
                     "epochs": epochs, "val_accuracy": float(last["val_accuracy"]),
                     "val_loss": float(last["val_loss"]), "seconds": float(ep["seconds"].sum())})
    df = pd.DataFrame(rows)
    best = df.sort_values(["val_accuracy", "val_loss"], ascending=[False, True]).iloc[0]["trial"]
    df["chosen"] = df["trial"] == best
    chosen = trials[int(best) - 1]
    record(RunStore(base.results_path), df, config_path, grid_path, epochs, trials)
    print(df.to_string(index=False))
    print(f"chosen: trial {int(best)}: {' '.join('--set ' + o for o in trial_overrides(chosen))}")
    return df


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
