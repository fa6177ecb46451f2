"""Data the report receives, checked before any number is computed from it: each table's values (labels in
the label set, probabilities in [0, 1] summing to 1, no duplicate rows, no infinite or missing required
values), predictions against the samples they predict, and the manifest facts the report computes with.

A problem is a ReportError naming the table and the row, e.g.
    results/x/predictions.parquet row 17 (split test, idx 1700, model finetuned): p_neutral = 1.7 is outside [0, 1]
followed by the command that rewrites the table. Rows count from 0, as pandas and pyarrow count them
(`pd.read_parquet(path).iloc[17]`). Without these checks such a row surfaces as an IndexError deep in a
cell, or as "1000000000.00" on the page.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import ReportError
from analysis.integrity import rewrite_fix
from analysis.markdown import one_line
from records.graph import OWNER_KEY
from records.manifest import Manifest
from records.schema import LABELS, PROB_COLUMNS, SPLITS, TABLES

LABEL_IDS = tuple(range(len(LABELS)))
PROBABILITY_SUM_TOLERANCE = 1e-4
ALL = object()  # every column of the table


@dataclass(frozen=True)
class TableRules:
    required: tuple | object = ALL                 # columns that may not be null / NaN
    ranges: dict = field(default_factory=dict)     # column -> (lowest, highest); None = unbounded
    choices: dict = field(default_factory=dict)    # column -> allowed values
    key: tuple = ()                                # columns that identify a row: no two rows share them
    infinite_ok: tuple = ()                        # float columns where inf is a real measurement


_COUNT = (0, None)
RULES: dict[str, TableRules] = {
    "samples": TableRules(ranges={"idx": _COUNT}, choices={"split": SPLITS, "source_split": SPLITS,
                                                          "label": LABEL_IDS}, key=("split", "idx")),
    "predictions": TableRules(ranges={"idx": _COUNT, **{c: (0, 1) for c in PROB_COLUMNS}},
                              choices={"split": SPLITS, "pred": LABEL_IDS}, key=("split", "idx", "model")),
    "epochs": TableRules(required=("epoch", "seconds", "tokens", "padded_tokens"),
                         ranges={"epoch": (1, None), "train_loss": _COUNT, "val_loss": _COUNT, "val_accuracy": (0, 1),
                                 "seconds": _COUNT, "tokens": _COUNT, "padded_tokens": _COUNT, "tokens_per_s": _COUNT,
                                 "peak_allocated_bytes": _COUNT}, key=("epoch",)),
    "steps": TableRules(required=("step", "epoch"),
                        ranges={"step": (1, None), "epoch": (1, None), "loss": _COUNT, "lr": _COUNT,
                                "grad_norm": _COUNT, "tokens": _COUNT}, key=("step",),
                        # float16's loss scaler skips a step whose gradients overflowed: its norm is recorded as inf
                        infinite_ok=("grad_norm",)),
    "resources": TableRules(required=("stage", "time", "rank"),
                            ranges={"elapsed_s": _COUNT, "gpu_util_pct": (0, 100), "cpu_pct": (0, 100),
                                    "rank": _COUNT, "gpu_index": _COUNT,
                                    **{c: _COUNT for c in ("gpu_mem_used_bytes", "torch_allocated_bytes",
                                                           "torch_reserved_bytes", "process_rss_bytes",
                                                           "system_ram_used_bytes", "disk_used_bytes")}}),
    "params": TableRules(required=("component", "stored_elements", "logical_params", "trainable", "bytes"),
                         ranges={c: _COUNT for c in ("stored_elements", "logical_params", "trainable", "bytes")}),
    "tuning": TableRules(required=("trial", "learning_rate", "batch_size", "lora_r", "epochs", "chosen"),
                         ranges={"learning_rate": (0, None), "batch_size": (1, None), "lora_r": (1, None),
                                 "epochs": (1, None), "val_accuracy": (0, 1), "val_loss": _COUNT, "seconds": _COUNT},
                         key=("trial",)),
}


def _shown(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:g}"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return repr(one_line(v, 60))


class _Table:
    """One table being checked: raises the first problem found, naming the file and the row."""

    def __init__(self, path: Path, name: str, df: pd.DataFrame, manifest: Manifest):
        self.path, self.name, self.df, self.manifest = path, name, df, manifest

    def where(self, i: int) -> str:
        key = RULES[self.name].key or ((OWNER_KEY[self.name],) if self.name in OWNER_KEY else ())
        row = self.df.iloc[i]
        ids = ", ".join(f"{c} {_shown(row[c]) if not isinstance(row[c], str) else one_line(row[c], 60)}" for c in key)
        return f"{self.path} row {i}" + (f" ({ids})" if ids else "")

    def fail(self, mask, what) -> None:
        """Raise for the first row where `mask` holds; `what(row)` says what is wrong with it."""
        hits = np.flatnonzero(np.asarray(mask, dtype=bool))
        if len(hits):
            i = int(hits[0])
            row = self.df.iloc[i]
            owner = row[OWNER_KEY[self.name]] if self.name in OWNER_KEY else None
            owner = owner if isinstance(owner, str) else None
            raise ReportError(f"{self.where(i)}: {what(row)} {rewrite_fix(self.manifest, self.name, owner)}")

    def check(self) -> None:
        rules, df = RULES[self.name], self.df
        required = TABLES[self.name].names if rules.required is ALL else rules.required
        for c in required:
            self.fail(df[c].isna(), lambda r, c=c: f"{c} is missing (null)")
        for c in df.columns:
            if pd.api.types.is_float_dtype(df[c]) and c not in rules.infinite_ok:
                self.fail(np.isinf(df[c].to_numpy()), lambda r, c=c: f"{c} = {_shown(r[c])} is not a finite number")
        for c, values in rules.choices.items():
            bad = ~df[c].isna() & ~df[c].isin(values)
            listing = ", ".join(f"{v} {LABELS[v]}" for v in values) if values is LABEL_IDS else ", ".join(values)
            self.fail(bad, lambda r, c=c, listing=listing: f"{c} = {_shown(r[c])} is not one of {listing}")
        for c, (lo, hi) in rules.ranges.items():
            v = df[c]
            bad = (v < lo if lo is not None else False) | (v > hi if hi is not None else False)
            rule = f"is outside [{lo}, {hi}]" if hi is not None else f"must be >= {lo}"
            self.fail(bad, lambda r, c=c, rule=rule: f"{c} = {_shown(r[c])} {rule}")
        if self.name == "predictions":
            total = df[list(PROB_COLUMNS)].sum(axis=1)
            self.fail((total - 1).abs() > PROBABILITY_SUM_TOLERANCE,
                      lambda r: f"probabilities sum to {sum(r[c] for c in PROB_COLUMNS):.6g} "
                                f"({' + '.join(PROB_COLUMNS)} must be 1 within {PROBABILITY_SUM_TOLERANCE:g})")
        if rules.key:
            first = df.groupby(list(rules.key), sort=False, dropna=False).cumcount()
            self.fail(first > 0, lambda r: f"a second row for the same {', '.join(rules.key)} "
                                           f"(one row per {', '.join(rules.key)})")


def table(path: Path, name: str, df: pd.DataFrame, manifest: Manifest) -> None:
    """Check one table's values (see RULES); raises ReportError naming the file and the row."""
    _Table(path, name, df, manifest).check()


def predictions_against_samples(folder: Path, tables: dict, manifest: Manifest) -> None:
    """Every prediction is of a row the run sampled (same split and idx)."""
    p, s = tables.get("predictions"), tables.get("samples")
    if p is None or s is None:
        return
    known = pd.MultiIndex.from_frame(s[["split", "idx"]])
    orphan = ~pd.MultiIndex.from_frame(p[["split", "idx"]]).isin(known)
    _Table(folder / "predictions.parquet", "predictions", p, manifest).fail(
        orphan, lambda r: f"a prediction for a row that is not in samples.parquet ({r['split']} idx {int(r['idx'])})")


# --------------------------------------------------------------------------------------- manifest facts
NUMBER = "a number"
MANIFEST_FACTS: tuple[tuple[str, object], ...] = (
    # the manifest facts the report computes with (kinds of the top-level keys are records.manifest's check)
    ("data.splits", dict), ("data.splits.*", dict),
    *((f"data.splits.*.{k}", int) for k in ("rows_sampled", "rows_dropped_no_label", "rows", "stride", "offset",
                                            "limit")),
    ("data.splits.*.label_counts", dict), ("data.splits.*.label_counts.*", int),
    ("environment.gpu", dict), ("environment.gpu.count", int), ("environment.gpu.memory_total_bytes", NUMBER),
    ("environment.cpu", dict), ("environment.cpu.logical_cores", int), ("environment.libraries", dict),
    ("environment.ram_total_bytes", NUMBER),
    ("stages.*.epochs_done", int), ("stages.*.epochs_total", int), ("stages.*.finetune_seconds", NUMBER),
    ("stages.*.peaks", dict), ("params_summary.*", NUMBER),
    ("tuning.epochs_per_trial", int), ("tuning.chosen", dict), ("tuning.chosen_overrides", list),
    ("commands.*", str), ("stages_requested.*", str), ("overrides", list), ("overrides.*", str),
    ("tuned", dict), ("tuned.chosen_trial", int), ("tuned.trials", int), ("tuned.overrides", list),
    ("test_evaluations", list), ("test_evaluations.*", dict), ("test_evaluations.*.settings", dict),
    ("test_evaluations.*.test_rows", int), ("test_evaluations.*.test_accuracy", NUMBER),
    ("config.data", dict), *((f"config.data.{s}", dict) for s in SPLITS),
    *((f"config.data.{s}.{k}", int) for s in SPLITS for k in ("stride", "offset", "limit")),
    ("config.train", dict), ("config.train.epochs", int), ("config.model", dict),
    ("config.model.trust_remote_code", bool),
)
_WORDS = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", NUMBER: "a number",
          bool: "true or false"}


def _fits(v, kind) -> bool:
    if v is None:
        return True  # not recorded
    if isinstance(v, bool) or kind is bool:
        return isinstance(v, bool) and kind is bool
    if kind is NUMBER:
        return isinstance(v, (int, float)) and math.isfinite(v)
    return isinstance(v, kind)


def _walk(value, parts: list[str], path: str):
    """(dotted path, value) of every value at `parts` below `value` (`*` = every key or item)."""
    if not parts:
        yield path, value
        return
    head, rest = parts[0], parts[1:]
    if isinstance(value, dict):
        items = value.items() if head == "*" else ([(head, value[head])] if head in value else [])
    elif isinstance(value, list) and head == "*":
        items = enumerate(value)
    else:
        return
    for k, v in items:
        yield from _walk(v, rest, f"{path}.{one_line(k, 40)}" if path else one_line(k, 40))


def manifest_facts(manifest: Manifest, where: Path) -> None:
    """The manifest values the report computes with have the kind it computes with (None = not recorded)."""
    d = manifest.to_dict()
    fix = (f"(fix: the pipeline writes manifest.json: restore the run folder as the pipeline left it, or re-run "
           f"it: `python -m pipeline run {one_line(manifest.config_path or 'CONFIG', 200)}`)")
    for spec, kind in MANIFEST_FACTS:
        for path, v in _walk(d, spec.split("."), ""):
            if not _fits(v, kind):
                raise ReportError(f"{where}: malformed manifest, `{path}` must be {_WORDS[kind]}, "
                                  f"got {type(v).__name__} {fix}")
    for path, counts in _walk(d, "data.splits.*.label_counts".split("."), ""):
        for k in counts or {}:
            if str(k) not in {str(i) for i in LABEL_IDS}:
                raise ReportError(f"{where}: malformed manifest, `{path}` has key {one_line(k, 40)!r}, which is not "
                                  f"a label id ({', '.join(map(str, LABEL_IDS))}) {fix}")
