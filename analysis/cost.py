"""What a run cost in GPU time: each recorded stage's wall seconds times the processes that ran it (one GPU
each), and the tuning trials' seconds where the run kept a tuning table (trials run in one process). A
CPU-only run costs no GPU time."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuTime:
    stage_seconds: float     # recorded wall seconds of the run's finished stages
    tuning_seconds: float    # the tuning trials' seconds (0 without a tuning table)
    processes: int
    gpu: bool

    @property
    def gpu_hours(self) -> float:
        """(stage seconds x processes + tuning seconds) / 3600; 0 without a GPU."""
        if not self.gpu:
            return 0.0
        return (self.stage_seconds * self.processes + self.tuning_seconds) / 3600


def gpu_time(run) -> GpuTime:
    stages = run.manifest.stages or {}
    seconds = sum(float(rec.seconds) for rec in stages.values() if rec.seconds is not None)
    tuning = run.table("tuning")
    tuned = float(tuning["seconds"].sum()) if tuning is not None and len(tuning) else 0.0
    return GpuTime(seconds, 0.0 if math.isnan(tuned) else tuned, run.processes, run.gpu is not None)
