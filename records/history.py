"""The test rows' history: every evaluation of a run name's test rows, kept in the manifest
(`test_evaluations`) across re-runs, restarts and changed configs.

Why: the test rows must be scored once, for the final configuration. A run name whose test rows were scored
under settings that were later changed (a learning rate tried, then tuned away) has been looked at twice,
and a reader of the report must be told. The evaluate stage's record is replaced by every re-run; this list
is only ever appended to. A manifest made before the list existed gets its earlier evaluation as the first
entry (from its evaluate record), before the new run's header replaces the config and code version it names.
"""
from __future__ import annotations

import pandas as pd

from records.config import TUNABLE
from records.manifest import Manifest

SEEDED = "the evaluate record of a manifest written before test evaluations were listed"


def settings(config: dict) -> dict:
    """The tunable fields' values in a resolved config (plain data): what a reader compares across entries."""
    out = {}
    for key in TUNABLE:
        section, name = key.split(".")
        value = (config.get(section) or {}).get(name)
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def test_accuracies(predictions: pd.DataFrame, samples: pd.DataFrame) -> dict[str, tuple[int, float]]:
    """Model -> (test rows scored, accuracy on them), from the run's tables (also the run's closing summary)."""
    gold = samples[samples["split"] == "test"][["idx", "label"]]
    test = predictions[predictions["split"] == "test"].merge(gold, on="idx")
    stats = test.assign(ok=test["pred"] == test["label"]).groupby("model")["ok"].agg(["size", "mean"])
    return {str(model): (int(r["size"]), float(r["mean"])) for model, r in stats.iterrows()}


def test_accuracy(predictions: pd.DataFrame, samples: pd.DataFrame) -> tuple[int, float | None]:
    """(test rows, the fine-tuned model's accuracy on them)."""
    return test_accuracies(predictions, samples).get("finetuned", (0, None))


def entry(m: Manifest, predictions: pd.DataFrame, samples: pd.DataFrame, command: str | None, finished: str | None,
          fingerprint: str | None, source: str | None = None) -> dict:
    """One evaluation: when it finished, under which evaluate fingerprint, and the config, code and tune that the
    manifest `m` names for the call that made it."""
    rows, acc = test_accuracy(predictions, samples)
    return {"finished": finished, "fingerprint": fingerprint,
            "config_fingerprint": m.config_fingerprint, "git_commit": (m.code_version or {}).get("git_commit"),
            "command": command, "settings": settings(m.config or {}),
            "tuned_trial": (m.tuned or {}).get("chosen_trial"), "test_rows": rows, "test_accuracy": acc,
            **({"source": source} if source else {})}


def seeded(m: Manifest, read) -> list | None:
    """The history to carry into a new call's header: the manifest's own list, or, for a manifest made before
    the list existed whose evaluate stage is done, that evaluation as the first entry (`read(name)`: the run's
    table, empty when it cannot be read). None: nothing evaluated."""
    if m.test_evaluations is not None:
        return m.test_evaluations
    rec = m.stage("evaluate")
    if rec is None or rec.status != "done":
        return None
    return [entry(m, read("predictions"), read("samples"), (m.commands or [None])[-1], rec.end, rec.fingerprint,
                  source=SEEDED)]


def superseded(m: Manifest) -> list[dict]:
    """The entries made under another configuration than the evaluate stage's current one."""
    rec = m.stage("evaluate")
    now = rec.fingerprint if rec is not None else None
    return [e for e in (m.test_evaluations or []) if isinstance(e, dict) and e.get("fingerprint") != now]
