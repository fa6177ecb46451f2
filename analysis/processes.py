"""Runs over several processes (accelerate launch): how the batch was split, and each GPU's share of the work.

Every fact comes from the run itself: the manifest's `processes` (world size, each rank's device), the
train stage's `batch` record (effective = micro-batch x processes x accumulation steps) and the resources
table's rows, which each rank samples for its own GPU (`rank`, `gpu_index`).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Batch:
    effective: int | None
    micro: int | None
    processes: int
    accumulation: int | None

    @property
    def recorded(self) -> bool:
        return self.effective is not None


def batch(run) -> Batch:
    """The train stage's split of the effective batch; runs made before it was recorded: one process, the
    config's batch size, split unknown."""
    rec = run.stage("train")
    b = (rec.get("batch") if rec is not None else None) or {}
    if b:
        return Batch(b.get("effective"), b.get("micro"), int(b.get("processes") or 1), b.get("accumulation"))
    return Batch(None, None, world_size(run), None)


def world_size(run) -> int:
    return int((run.manifest.processes or {}).get("world_size") or 1)


def ranks(run) -> list[dict]:
    """Each rank's record (rank, device, gpu, host) as the run wrote it; [] for a one-process run."""
    return list((run.manifest.processes or {}).get("ranks") or [])


def per_gpu(run, stage: str = "train") -> pd.DataFrame:
    """One row per rank during `stage`: its GPU, peak device memory (NVML), peak torch reserved and mean
    GPU utilisation. Empty without resource rows for the stage."""
    res = run.table("resources")
    if res is None or not len(res):
        return pd.DataFrame()
    rows = res[res["stage"] == stage]
    out = []
    for rank, g in rows.groupby("rank"):
        gpu = g["gpu_index"].dropna()
        out.append({"rank": int(rank), "gpu_index": int(gpu.iloc[0]) if len(gpu) else None,
                    "peak_gpu_mem_used_bytes": g["gpu_mem_used_bytes"].max(),
                    "peak_torch_reserved_bytes": g["torch_reserved_bytes"].max(),
                    "mean_gpu_util_pct": g["gpu_util_pct"].mean(), "samples": len(g)})
    return pd.DataFrame(out)


# Config parts that say how a run is laid out, not what it computes: a run over several GPUs and a one-GPU run
# whose configs differ only here did the same work (same rows, model, settings, effective batch and order).
LAYOUT_KEYS = ("run", "description", "output")
LAYOUT_TRAIN_KEYS = ("micro_batch_size",)


def same_work(a, b) -> bool:
    """True when runs a and b computed the same thing: equal resolved configs apart from names, output
    folders and the micro-batch (how the effective batch was split), and the same data fingerprint."""
    def work(run) -> dict:
        c = {k: v for k, v in (run.manifest.config or {}).items() if k not in LAYOUT_KEYS}
        c["train"] = {k: v for k, v in (c.get("train") or {}).items() if k not in LAYOUT_TRAIN_KEYS}
        return c
    fa, fb = a.manifest.data.get("fingerprint"), b.manifest.data.get("fingerprint")
    return bool(a.manifest.config) and work(a) == work(b) and fa == fb


def counterpart(run, others) -> object | None:
    """The one-process run among `others` that did the same work as `run` (None when the report has none)."""
    return next((o for o in others if o is not run and world_size(o) == 1 and same_work(run, o)), None)
