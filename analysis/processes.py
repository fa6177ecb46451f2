"""Runs over several processes (accelerate launch): how the batch was split, and each GPU's share of the work.

Every fact comes from the run itself: the manifest's `processes` (world size, each rank's device), the
train stage's `batch` record (effective = micro-batch x processes x accumulation steps) and the resources
table's rows, which each rank samples for its own GPU (`rank`, `gpu_index`).
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from records.config import ADDED_AS_BEFORE, SAVE_CADENCE


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


# Train settings that say how the trainer groups and runs the rows, not what it learns from: the model, rows,
# hyperparameters and effective batch stay. A pair whose configs differ only here (and in the layout above) is
# set side by side as a near twin, its differences named: its speed-up is not the GPUs' alone. (Length buckets
# pad each micro-batch of the same rows to one of a few widths: the speed changes, what is learned does not beyond
# floating-point order; the dropout masks of a run over several GPUs already make it learn as another seed would.)
RUNNER_KEYS = ("length_buckets", "compile", "attention", "cuda_graphs")


class Absent:
    """A config key a run's manifest lacks: the code that made it had no such setting (or did not record it).
    The one such marker of analysis/: settings, effective values and near twins all compare against ABSENT."""

    def __repr__(self) -> str:
        return "absent"


ABSENT = Absent()


def _work(run) -> dict:
    c = {k: v for k, v in (run.manifest.config or {}).items() if k not in LAYOUT_KEYS}
    c["train"] = {k: v for k, v in (c.get("train") or {}).items() if k not in LAYOUT_TRAIN_KEYS}
    return c


def differences(a, b) -> dict[str, tuple]:
    """{dotted config key: (a's value, b's value)} where the work of runs a and b differs (layout keys aside),
    with "data fingerprint" when their data differ; ABSENT for a key one manifest lacks (older code)."""
    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out
    fa, fb = flat(_work(a)), flat(_work(b))
    for f in (fa, fb):
        for key in SAVE_CADENCE:  # how often a run saves never changes what it computes
            f.pop(key, None)
        for key, before in ADDED_AS_BEFORE.items():  # a setting added since: older code did its default
            f.setdefault(key, before)
    out = {k: (fa.get(k, ABSENT), fb.get(k, ABSENT)) for k in sorted(set(fa) | set(fb))
           if fa.get(k, ABSENT) != fb.get(k, ABSENT)}
    da, db = a.manifest.data.get("fingerprint"), b.manifest.data.get("fingerprint")
    if da != db:
        out["data fingerprint"] = (da, db)
    return out


def same_work(a, b) -> bool:
    """True when runs a and b computed the same thing: equal resolved configs apart from names, output
    folders and the micro-batch (how the effective batch was split), and the same data fingerprint."""
    return bool(a.manifest.config) and not differences(a, b)


def near_work(a, b) -> bool:
    """True when runs a and b differ, if at all, only in how the trainer grouped and ran the rows (RUNNER_KEYS)."""
    return bool(a.manifest.config) and all(k.removeprefix("train.") in RUNNER_KEYS and k.startswith("train.")
                                           for k in differences(a, b))


def counterpart(run, others) -> object | None:
    """The one-process run among `others` that did the same work as `run`; failing that, one that did it with
    other runner settings (near_work); None when the report has neither."""
    ones = [o for o in others if o is not run and world_size(o) == 1]
    return (next((o for o in ones if same_work(run, o)), None)
            or next((o for o in ones if near_work(run, o)), None))
