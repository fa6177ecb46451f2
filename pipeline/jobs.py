"""Independent `pipeline run` calls side by side, one per GPU: the trials of `pipeline tune --jobs N` and the seeds
of `pipeline run --seeds ... --jobs N`.

Each job is its own `python -m pipeline run CONFIG ...` process pinned to one GPU slot (CUDA_VISIBLE_DEVICES;
without a GPU, one process slot each), its output in a log file of its own. A job is an ordinary run, so a killed
batch, run again, skips the jobs that finished and resumes the others from their last complete epoch.
"""
from __future__ import annotations

import os
import queue
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Job:
    label: str        # in messages: "trial 2", "seed 3"
    log: str          # its log file's name (without folder): "trial2.log"
    args: list[str]   # after `python -m pipeline run CONFIG`


def default_jobs() -> int:
    """One job per visible GPU; one at a time without a GPU."""
    try:
        import torch  # only to count GPUs: heavy, and absent from the report environment
        return max(1, torch.cuda.device_count())
    except ImportError:
        return 1


def visible(slot: int) -> str:
    """The slot-th GPU of those this process may use (respecting an outer CUDA_VISIBLE_DEVICES)."""
    outer = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return outer[slot] if outer else str(slot)


def run_side_by_side(config_path: str, jobs: list[Job], slots: int, logs: Path) -> list[str]:
    """Run each job as `pipeline run config_path *job.args`, `slots` at a time, each on its own GPU slot.
    -> one line per failed job (empty when all finished)."""
    import torch  # to count GPUs (the full environment: these jobs train)
    gpus = torch.cuda.device_count()
    free: queue.Queue = queue.Queue()
    for slot in range(slots):
        free.put(slot)
    logs.mkdir(parents=True, exist_ok=True)

    def one(job: Job) -> str | None:
        slot = free.get()
        try:
            env = dict(os.environ)
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = visible(slot)
            log = logs / job.log
            where = f"GPU {env.get('CUDA_VISIBLE_DEVICES')}" if gpus else f"process slot {slot}"
            print(f"=== {job.label} started on {where} (log: {log})", flush=True)
            cmd = [sys.executable, "-m", "pipeline", "run", config_path, *job.args]
            with open(log, "w") as out:
                code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
            last = (log.read_text().strip().splitlines() or [""])[-1][:300]
            print(f"=== {job.label} {'finished' if code == 0 else f'failed (exit {code})'}: {last}", flush=True)
            return None if code == 0 else f"{job.label} failed (exit {code}); see {log}"
        finally:
            free.put(slot)

    with ThreadPoolExecutor(max_workers=slots) as pool:
        return [e for e in pool.map(one, jobs) if e]


def sets(overrides: list[str]) -> list[str]:
    """--set arguments, one pair per override."""
    return [a for s in overrides for a in ("--set", s)]
