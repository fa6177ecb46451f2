"""Runs whose settings are a tune's choice: `pipeline tune CONFIG GRID --then-run`, `pipeline run CONFIG --tuned`
(this run's own tuning table) and `--tuned-from RUN` (another run's, e.g. the 2-GPU twin of a tuned run).

The chosen trial's overrides come from the manifest that `pipeline tune` wrote (`tuning.chosen_overrides`),
never from a value typed into the config; the run records them as `tuned` in its manifest, so the config file
plus `overrides` plus `tuned.overrides` rebuilds the resolved config (`pipeline verify` does).

And the other way round: a results folder that holds a tuning record refuses a run whose tunable settings are
not the chosen ones (a plain `run` would otherwise train and score the test rows under the config file's
starting values, in the folder the report reads as the tuned run).
"""
from __future__ import annotations

from pathlib import Path

from records.config import TUNABLE, ConfigError, ExperimentConfig
from records.config_reading import load_config
from records.errors import shown
from records.history import settings
from records.store import RunStore


def flag(from_run: str | None, own: str) -> str:
    """The command-line flag that applies `from_run`'s tune to run `own`."""
    return "--tuned" if from_run in (None, "", own) else f"--tuned-from {from_run}"


def record_of(base: ExperimentConfig, from_run: str | None) -> tuple[str, dict]:
    """(run name, its manifest's tuning block) for `--tuned` (from_run None: the config's own run) or
    `--tuned-from RUN` (a run name beside it under output.results_dir, or a results folder)."""
    if from_run in (None, ""):
        folder = base.results_path
    else:
        folder = Path(from_run) if ("/" in from_run or Path(from_run).is_dir()) else base.results_path.parent / from_run
    tuning = RunStore(folder, writer=False).manifest().tuning if folder.is_dir() else None
    how = flag(from_run, base.run)
    if not tuning:
        raise ConfigError(f"{how}: {folder} holds no tuning record (fix: run `python -m pipeline tune CONFIG GRID` "
                          f"for that run first)")
    overrides = tuning.get("chosen_overrides")
    if not isinstance(overrides, list) or not all(isinstance(o, str) and "=" in o for o in overrides):
        raise ConfigError(f"{folder}/manifest.json: tuning.chosen_overrides must be a list of KEY=VALUE strings "
                          f"(fix: run `python -m pipeline tune` again, which rewrites it)")
    # A results folder is data from whoever sent it: only the fields a tune may choose are taken from it, so
    # it cannot point prompt.template, a data path or trust_remote_code anywhere.
    other = next((o for o in overrides if o.split("=", 1)[0].strip() not in TUNABLE), None)
    if other is not None:
        raise ConfigError(f"{how}: {folder}/manifest.json: tuning.chosen_overrides sets "
                          f"{shown(other.split('=', 1)[0])}, which is not tunable, refused (a tune chooses only "
                          f"{', '.join(TUNABLE)}; fix: tune that run again, or set the field yourself)")
    return folder.name, tuning


def load_tuned(config_path: str, overrides: list[str], from_run: str | None,
               check_files: bool = True) -> tuple[ExperimentConfig, dict]:
    """The config with the chosen trial applied, and the manifest's `tuned` block that says so."""
    base = load_config(config_path, overrides, check_files=check_files)
    name, tuning = record_of(base, from_run)
    chosen = list(tuning["chosen_overrides"])
    clash = sorted({o.split("=", 1)[0] for o in overrides} & {o.split("=", 1)[0] for o in chosen})
    if clash:
        raise ConfigError(f"--set {clash[0]}: the tune chose this field; drop the --set, or drop "
                          f"{flag(from_run, base.run)} to set it yourself")
    cfg = load_config(config_path, [*overrides, *chosen], check_files=check_files)
    tuned = {"from_run": name, "grid": tuning.get("grid"), "chosen_trial": tuning.get("chosen_trial"),
             "trials": tuning.get("trials"), "rule": tuning.get("rule"), "overrides": chosen}
    return cfg, tuned


def refuse_untuned(cfg: ExperimentConfig, config_path: str, overrides: list[str]) -> None:
    """ConfigError when cfg's results folder was tuned and cfg's tunable settings are not the chosen ones."""
    if not cfg.results_path.is_dir():
        return
    tuning = RunStore(cfg.results_path, writer=False).manifest().tuning
    if not tuning or not isinstance(tuning.get("chosen_overrides"), list):
        return
    try:
        chosen = load_config(config_path, [*overrides, *tuning["chosen_overrides"]], check_files=False)
    except ConfigError:
        return  # the recorded choice no longer loads: `--tuned` says so in its own words
    have, want = settings(cfg.to_dict()), settings(chosen.to_dict())
    differ = [k for k in want if have.get(k) != want[k]]
    if differ:
        raise ConfigError(f"{cfg.results_path}: tuned (trial {tuning.get('chosen_trial')} chose {differ[0]}="
                          f"{want[differ[0]]}), but this run has {differ[0]}={have[differ[0]]} (fix: add --tuned to "
                          f"run the chosen settings, or set another `run` name)")
