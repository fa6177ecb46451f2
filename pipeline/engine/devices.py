"""Which device this process computes on, and how much of a GPU it may take.

In the engine, beside distributed.py, because under a launcher the answer is the rank's own GPU
(cuda:<local rank>); the dtype follows the device (pipeline/model/loading.py `pick_dtype`).
"""
from __future__ import annotations

import torch

from pipeline.engine import distributed
from records.config import ConfigError, ExperimentConfig


def pick_device(cfg: ExperimentConfig) -> torch.device:
    want = cfg.runtime.device
    if want == "cuda" and not torch.cuda.is_available():
        raise ConfigError("runtime.device: cuda was asked for but no GPU is visible (fix: runtime.device: auto)")
    if distributed.launched_world_size() > 1:  # under a launcher each rank has its own device (cuda:<local rank>)
        return distributed.device()
    return torch.device("cuda" if want in ("auto", "cuda") and torch.cuda.is_available() else "cpu")


def apply_gpu_cap(cfg: ExperimentConfig, device: torch.device) -> int | None:
    """Cap this process's GPU memory (the T4-budget run). Returns the cap in bytes."""
    cap = cfg.runtime.gpu_memory_cap_gib
    if cap is None or device.type != "cuda":
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    total = torch.cuda.get_device_properties(index).total_memory
    cap_bytes = int(cap * 1024**3)
    torch.cuda.set_per_process_memory_fraction(min(1.0, cap_bytes / total), index)
    return cap_bytes
