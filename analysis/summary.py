"""Per-run figures gathered once (accuracy, paired tests, time, parameters, resource peaks, case counts)
and the original study's reference figures. Sections and tables read these; nothing here formats text."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd
import yaml

from analysis import cases, load, resources, stats

ORIGINAL_FILE = Path(__file__).resolve().parent / "original_study.yaml"
BASELINES = ("baseline_head", "baseline_zeroshot")


def original_study() -> dict:
    data = yaml.safe_load(ORIGINAL_FILE.read_text())
    return data


@dataclass
class RunFigures:
    run: load.Run

    @property
    def name(self) -> str:
        return self.run.name

    @cached_property
    def test(self) -> pd.DataFrame:
        return stats.with_gold(self.run.table("predictions"), self.run.table("samples"), "test")

    @cached_property
    def validation(self) -> pd.DataFrame:
        return stats.with_gold(self.run.table("predictions"), self.run.table("samples"), "validation")

    @cached_property
    def models(self) -> list[str]:
        return stats.models_in(self.test)

    @cached_property
    def accuracy(self) -> dict[str, stats.Accuracy]:
        out = {}
        for m in self.models:
            a = stats.accuracy(self.test, m)
            if a is not None:
                out[m] = a
        return out

    @property
    def accuracy_meaningful(self) -> bool:
        return not self.run.shape_only

    @cached_property
    def paired(self) -> dict[str, stats.Paired]:
        out = {}
        for b in BASELINES:
            p = stats.paired(self.test, b, "finetuned")
            if p is not None:
                out[b] = p
        return out

    @cached_property
    def cases(self) -> pd.DataFrame:
        return cases.case_table(self.test, "baseline_head", "finetuned")

    def case_counts(self, baseline: str = "baseline_head") -> dict[str, int] | None:
        c = self.cases if baseline == "baseline_head" else cases.case_table(self.test, baseline, "finetuned")
        return cases.counts(c) if len(c) else None

    # --- time ---
    @cached_property
    def epochs(self) -> pd.DataFrame | None:
        e = self.run.table("epochs")
        return e.sort_values("epoch").reset_index(drop=True) if e is not None and len(e) else None

    @property
    def epochs_done(self) -> int:
        return 0 if self.epochs is None else len(self.epochs)

    @property
    def epochs_total(self) -> int | None:
        tr = self.run.stage("train") or {}
        return tr.get("epochs_total") or self.run.cfg("train.epochs")

    @property
    def finetune_seconds(self) -> float:
        """Fine-tuning time as the original study counts it: the sum of the epochs' training time."""
        return float(self.epochs["seconds"].sum()) if self.epochs is not None else math.nan

    @property
    def tokens_per_s(self) -> float:
        e = self.epochs
        if e is None or not e["seconds"].sum():
            return math.nan
        return float(e["tokens"].sum() / e["seconds"].sum())

    @property
    def train_rows(self) -> int | None:
        s = self.run.table("samples")
        if s is not None and len(s):
            return int((s["split"] == "train").sum())
        return ((self.run.manifest.get("data") or {}).get("splits", {}).get("train") or {}).get("rows")

    # --- parameters ---
    @cached_property
    def params(self) -> dict:
        t = self.run.table("params")
        if t is not None and len(t):
            return {"stored_elements": int(t["stored_elements"].sum()), "logical_params": int(t["logical_params"].sum()),
                    "trainable": int(t["trainable"].sum()), "bytes": int(t["bytes"].sum()), "from": "table"}
        s = self.run.manifest.get("params_summary") or {}
        if s.get("stored_elements") is not None:
            return {**s, "bytes": None, "from": "manifest"}
        return {}

    # --- resources ---
    @cached_property
    def peaks(self) -> dict:
        return resources.overall(self.run.table("resources"), self.run.table("epochs"), self.run.manifest.get("stages"))

    @cached_property
    def stage_peaks(self) -> pd.DataFrame:
        return resources.per_stage(self.run.table("resources"), self.run.manifest.get("stages"))

    @property
    def peak_gpu_bytes(self) -> float:
        """Peak device memory as nvidia-smi shows it (NVML), else torch reserved / allocated."""
        for k in ("peak_gpu_mem_used_bytes", "peak_reserved_bytes", "peak_allocated_bytes"):
            v = self.peaks.get(k, math.nan)
            if not math.isnan(v):
                return v
        return math.nan


@dataclass
class Report:
    selection: load.Selection
    original: dict
    figures: dict = field(default_factory=dict)

    @property
    def runs(self) -> list[load.Run]:
        return self.selection.runs

    @property
    def headline(self) -> load.Run | None:
        return self.selection.headline

    def of(self, run: load.Run) -> RunFigures:
        if run.name not in self.figures:
            self.figures[run.name] = RunFigures(run)
        return self.figures[run.name]

    @property
    def h(self) -> RunFigures | None:
        return self.of(self.headline) if self.headline else None


def build(results_dir=None, runs=None) -> Report:
    """Everything the report needs. REPORT_RESULTS / REPORT_RUNS are read by load.select."""
    sel = load.select(results_dir or os.environ.get("REPORT_RESULTS"), runs)
    return Report(selection=sel, original=original_study())
