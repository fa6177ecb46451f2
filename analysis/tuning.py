"""How the configuration was chosen: the tuning table (written by `pipeline tune`, trials on the validation
rows only) and the manifest's `tuning` block, against the final run's resolved configuration."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import yaml

from analysis.runs import Run


def chosen_settings(meta: dict) -> dict:
    """The chosen trial's settings as {dotted config key: value}: tuning.chosen, else tuning.chosen_overrides
    (`key=value` words as `pipeline run --set` takes them, values in YAML)."""
    chosen = meta.get("chosen")
    if isinstance(chosen, dict) and chosen:
        return dict(chosen)
    out = {}
    for o in meta.get("chosen_overrides") or []:
        key, sep, value = str(o).partition("=")
        if not sep:
            continue
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def setting_value(v) -> str:
    if isinstance(v, list):
        return ", ".join(map(str, v))
    if isinstance(v, float):
        return f"{v:g}"
    return "—" if v is None else str(v)


@dataclass(frozen=True)
class Trial:
    """One row of the tuning table (all None for "no trial")."""
    trial: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    lora_r: int | None = None
    epochs: int | None = None
    val_accuracy: float | None = None

    @property
    def exists(self) -> bool:
        return self.trial is not None


@dataclass(frozen=True)
class Applied:
    """The manifest's `tuned` block: the pipeline itself applied a tune's choice to this run (`pipeline tune ...
    --then-run`, `pipeline run --tuned` / `--tuned-from RUN`). present is False when the config file and its
    `--set` overrides alone set the settings (every manifest made before `tuned` existed reads so)."""
    present: bool = False
    from_run: str | None = None      # whose tuning table chose
    other_run: bool = False          # that table is another run's, not this run's own
    trial: int | None = None         # the chosen trial
    trials: int | None = None        # how many trials the tune compared
    rule: str = ""
    grid: str = ""
    overrides: tuple = ()            # the chosen trial as `key=value`, applied over the config file


def applied_of(run: Run) -> Applied:
    tuned = run.manifest.tuned
    if not isinstance(tuned, dict):
        return Applied()
    from_run = tuned.get("from_run") or None
    return Applied(present=True, from_run=from_run, other_run=from_run not in (None, run.name),
                   trial=tuned.get("chosen_trial"), trials=tuned.get("trials"),
                   rule=" ".join(str(tuned.get("rule") or "").split()), grid=str(tuned.get("grid") or ""),
                   overrides=tuple(str(o) for o in tuned.get("overrides") or ()))


@dataclass
class Tuning:
    """present is False for a run without a tuning table; every other field is then empty, but `applied`, which
    a run tuned from another run's table carries without a table of its own."""
    trials: pd.DataFrame = field(default_factory=pd.DataFrame)     # the tuning table, by trial
    meta: dict = field(default_factory=dict)          # the manifest's tuning block
    settings: dict = field(default_factory=dict)      # the chosen trial's settings, {dotted key: value}
    differ: list = field(default_factory=list)        # (key, trial value, final run value) that do not match
    chosen: Trial = field(default_factory=Trial)
    trial_epochs: int | None = None
    final_epochs: int | None = None
    applied: Applied = field(default_factory=Applied)

    @property
    def present(self) -> bool:
        return len(self.trials) > 0

    @property
    def recorded(self) -> bool:
        """A tune's choice is on record for this run: its own tuning table, or the pipeline applied one."""
        return self.present or self.applied.present

    @property
    def same_epochs(self) -> bool:
        return self.trial_epochs == self.final_epochs

    def note(self, key: str) -> str:
        """A free-text field of the manifest's tuning block (grid, rule, source); "" when absent."""
        return " ".join(str(self.meta.get(key) or "").split())


def tuning_of(run: Run) -> Tuning:
    t = run.table("tuning")
    if t is None or not len(t):
        return Tuning(applied=applied_of(run))
    meta = run.manifest.tuning if isinstance(run.manifest.tuning, dict) else {}
    trials = t.sort_values("trial").reset_index(drop=True)
    rows = trials[trials["chosen"]]
    chosen = Trial() if not len(rows) else Trial(
        int(rows.iloc[0]["trial"]), float(rows.iloc[0]["learning_rate"]), int(rows.iloc[0]["batch_size"]),
        int(rows.iloc[0]["lora_r"]), int(rows.iloc[0]["epochs"]), float(rows.iloc[0]["val_accuracy"]))
    settings = chosen_settings(meta)
    return Tuning(trials=trials, meta=meta, settings=settings, chosen=chosen,
                  differ=[(k, v, run.cfg(k)) for k, v in settings.items() if run.cfg(k) != v],
                  trial_epochs=meta.get("epochs_per_trial") or chosen.epochs, final_epochs=run.cfg("train.epochs"),
                  applied=applied_of(run))
