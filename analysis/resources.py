"""Peaks per stage and whole-run figures from the resource sampler (resources.parquet), the memory cap
check and the GPU utilisation during training. All-null columns (GPU figures on a CPU run) stay NaN so
the report says 'not measured'."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from records.graph import NAMES

PEAK_COLUMNS = ("gpu_mem_used_bytes", "torch_allocated_bytes", "torch_reserved_bytes", "gpu_util_pct",
                "process_rss_bytes", "system_ram_used_bytes", "cpu_pct", "disk_used_bytes")
LOW_GPU_UTIL_PCT = 50  # below this mean NVML utilisation during train, the loop is called launch-bound


def stage_order(names) -> list[str]:
    names = list(dict.fromkeys(names))
    return [s for s in NAMES if s in names] + [s for s in names if s not in NAMES]


def _max(s: pd.Series) -> float:
    s = s.dropna()
    return float(s.max()) if len(s) else math.nan


def _mean(s: pd.Series) -> float:
    s = s.dropna()
    return float(s.mean()) if len(s) else math.nan


def manifest_peak(stages: dict, key: str, stage: str | None = None) -> float:
    """Exact peaks the pipeline records per stage in the manifest (stages.<name>.peaks.<key>), e.g.
    torch_max_allocated_bytes from torch.cuda.max_memory_allocated; NaN when absent."""
    vals = []
    for name, rec in stages.items():
        if stage is not None and name != stage:
            continue
        v = (rec.get("peaks") or {}).get(key)
        if isinstance(v, (int, float)) and not math.isnan(v):
            vals.append(float(v))
    return max(vals) if vals else math.nan


def per_stage(resources: pd.DataFrame | None, stages: dict) -> pd.DataFrame:
    if resources is None or not len(resources):
        return pd.DataFrame()
    rows = []
    for st in stage_order(resources["stage"]):
        d = resources[resources["stage"] == st]
        row = {"stage": st, "samples": len(d), "span_s": _max(d["elapsed_s"])}
        for c in PEAK_COLUMNS:
            row[f"peak_{c}"] = _max(d[c])
        row["mean_gpu_util_pct"] = _mean(d["gpu_util_pct"])
        row["gpu_util_samples"] = int(d["gpu_util_pct"].notna().sum())
        row["mean_cpu_pct"] = _mean(d["cpu_pct"])
        row["exact_max_allocated_bytes"] = manifest_peak(stages, "torch_max_allocated_bytes", st)
        rows.append(row)
    return pd.DataFrame(rows)


def overall(resources: pd.DataFrame | None, epochs: pd.DataFrame | None, stages: dict) -> dict:
    """Whole-run peaks. peak_allocated also looks at the per-epoch and per-stage torch.cuda.max_memory_allocated
    (exact, where the sampler only sees moments)."""
    out = {f"peak_{c}": math.nan for c in PEAK_COLUMNS}
    out["mean_cpu_pct"] = math.nan
    if resources is not None and len(resources):
        for c in PEAK_COLUMNS:
            out[f"peak_{c}"] = _max(resources[c])
        out["mean_cpu_pct"] = _mean(resources["cpu_pct"])
    epoch_peak = _max(epochs["peak_allocated_bytes"]) if epochs is not None and len(epochs) else math.nan
    alloc = [v for v in (out["peak_torch_allocated_bytes"], epoch_peak,
                         manifest_peak(stages, "torch_max_allocated_bytes")) if not math.isnan(v)]
    out["peak_allocated_bytes"] = max(alloc) if alloc else math.nan
    reserved = [v for v in (out["peak_torch_reserved_bytes"], manifest_peak(stages, "torch_max_reserved_bytes"))
                if not math.isnan(v)]
    out["peak_reserved_bytes"] = max(reserved) if reserved else math.nan
    return out


PAUSE_S = 60.0  # a longer stretch without samples is a pause between calls (the sampler samples every ~0.5 s)
PAUSE_SHOWN_S = 2.0


def timeline(resources: pd.DataFrame | None) -> pd.DataFrame:
    """Samples in time order with t = seconds of sampled time since the run's first sample. Stages run in
    separate calls (a re-run that skipped what was up to date, a resume) leave pauses of minutes or days
    with nothing to draw: each pause longer than PAUSE_S is cut to PAUSE_SHOWN_S, and `pause_s` holds what
    was cut before that sample (0 elsewhere), so a figure can mark it."""
    if resources is None or not len(resources):
        return pd.DataFrame()
    d = resources.sort_values("time").reset_index(drop=True).copy()
    step = d["time"].diff().fillna(0.0)
    d["pause_s"] = step.where(step > PAUSE_S, 0.0)
    d["t"] = (step - (d["pause_s"] - PAUSE_SHOWN_S).clip(lower=0.0)).cumsum()
    return d


@dataclass(frozen=True)
class CapCheck:
    """A run's GPU memory cap (the T4 budget) against its peak allocated / reserved memory; cap is NaN for a
    run without one."""
    cap: float = math.nan
    allocated: float = math.nan
    reserved: float = math.nan

    @property
    def applies(self) -> bool:
        return not math.isnan(self.cap)

    @property
    def worst(self) -> float:
        vals = [v for v in (self.allocated, self.reserved) if not math.isnan(v)]
        return max(vals) if vals else math.nan

    @property
    def share(self) -> float:
        return self.worst / self.cap

    @property
    def measured(self) -> bool:
        return self.applies and not math.isnan(self.worst)

    @property
    def within(self) -> bool:
        return self.measured and self.worst <= self.cap

    @property
    def headroom(self) -> float:
        return self.cap - self.worst


@dataclass(frozen=True)
class TrainUtilisation:
    """Mean NVML GPU utilisation over the train stage's samples, beside the epochs' tokens per second; NaN
    when either is not measured (CPU run, no train samples, no epochs)."""
    mean_pct: float = math.nan
    samples: int = 0
    tokens_per_s_min: float = math.nan
    tokens_per_s_max: float = math.nan
    epochs: int = 0

    @property
    def threshold_pct(self) -> float:
        return LOW_GPU_UTIL_PCT

    @property
    def low(self) -> bool:
        """Below LOW_GPU_UTIL_PCT: the GPU sat idle for most of training (False when not measured)."""
        return self.mean_pct < LOW_GPU_UTIL_PCT


def train_utilisation(stage_peaks: pd.DataFrame, epochs: pd.DataFrame | None) -> TrainUtilisation:
    if epochs is None or not len(stage_peaks) or "train" not in set(stage_peaks["stage"]):
        return TrainUtilisation()
    row = stage_peaks[stage_peaks["stage"] == "train"].iloc[0]
    tps = epochs["tokens_per_s"].dropna()
    if math.isnan(row["mean_gpu_util_pct"]) or not len(tps):
        return TrainUtilisation()
    return TrainUtilisation(float(row["mean_gpu_util_pct"]), int(row["gpu_util_samples"]), float(tps.min()),
                            float(tps.max()), len(tps))
