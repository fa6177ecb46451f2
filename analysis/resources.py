"""Peaks per stage and whole-run figures from the resource sampler (resources.parquet).
All-null columns (GPU figures on a CPU run) stay NaN so the report says 'not measured'."""
from __future__ import annotations

import math

import pandas as pd

from pipeline.schema import STAGES

PEAK_COLUMNS = ("gpu_mem_used_bytes", "torch_allocated_bytes", "torch_reserved_bytes", "gpu_util_pct",
                "process_rss_bytes", "system_ram_used_bytes", "cpu_pct", "disk_used_bytes")


def stage_order(names) -> list[str]:
    names = list(dict.fromkeys(names))
    return [s for s in STAGES if s in names] + [s for s in names if s not in STAGES]


def _max(s: pd.Series) -> float:
    s = s.dropna()
    return float(s.max()) if len(s) else math.nan


def _mean(s: pd.Series) -> float:
    s = s.dropna()
    return float(s.mean()) if len(s) else math.nan


def per_stage(resources: pd.DataFrame | None, stages: dict | None = None) -> pd.DataFrame:
    if resources is None or not len(resources):
        return pd.DataFrame()
    rows = []
    for st in stage_order(resources["stage"]):
        d = resources[resources["stage"] == st]
        row = {"stage": st, "samples": len(d), "span_s": _max(d["elapsed_s"])}
        for c in PEAK_COLUMNS:
            row[f"peak_{c}"] = _max(d[c])
        row["mean_gpu_util_pct"] = _mean(d["gpu_util_pct"])
        row["mean_cpu_pct"] = _mean(d["cpu_pct"])
        row["exact_max_allocated_bytes"] = manifest_peak(stages, "torch_max_allocated_bytes", st)
        rows.append(row)
    return pd.DataFrame(rows)


def manifest_peak(stages: dict | None, key: str, stage: str | None = None) -> float:
    """Exact peaks the pipeline records per stage in the manifest (stages.<name>.peaks.<key>), e.g.
    torch_max_allocated_bytes from torch.cuda.max_memory_allocated; NaN when absent."""
    vals = []
    for name, rec in (stages or {}).items():
        if stage is not None and name != stage:
            continue
        v = ((rec or {}).get("peaks") or {}).get(key) if isinstance(rec, dict) else None
        if isinstance(v, (int, float)) and not math.isnan(v):
            vals.append(float(v))
    return max(vals) if vals else math.nan


def overall(resources: pd.DataFrame | None, epochs: pd.DataFrame | None = None, stages: dict | None = None) -> dict:
    """Whole-run peaks. peak_allocated also looks at the per-epoch and per-stage torch.cuda.max_memory_allocated
    (exact, where the sampler only sees moments)."""
    out = {f"peak_{c}": math.nan for c in PEAK_COLUMNS}
    out["mean_cpu_pct"] = math.nan
    if resources is not None and len(resources):
        for c in PEAK_COLUMNS:
            out[f"peak_{c}"] = _max(resources[c])
        out["mean_cpu_pct"] = _mean(resources["cpu_pct"])
    out["peak_epoch_allocated_bytes"] = _max(epochs["peak_allocated_bytes"]) if epochs is not None and len(epochs) else math.nan
    out["peak_stage_max_allocated_bytes"] = manifest_peak(stages, "torch_max_allocated_bytes")
    out["peak_stage_max_reserved_bytes"] = manifest_peak(stages, "torch_max_reserved_bytes")
    alloc = [v for v in (out["peak_torch_allocated_bytes"], out["peak_epoch_allocated_bytes"],
                         out["peak_stage_max_allocated_bytes"]) if not math.isnan(v)]
    out["peak_allocated_bytes"] = max(alloc) if alloc else math.nan
    reserved = [v for v in (out["peak_torch_reserved_bytes"], out["peak_stage_max_reserved_bytes"]) if not math.isnan(v)]
    out["peak_reserved_bytes"] = max(reserved) if reserved else math.nan
    return out


def timeline(resources: pd.DataFrame | None) -> pd.DataFrame:
    """Samples with t = seconds since the first sample of the run, in time order."""
    if resources is None or not len(resources):
        return pd.DataFrame()
    d = resources.sort_values("time").copy()
    d["t"] = d["time"] - d["time"].min()
    return d
