"""Per-epoch checkpoints: checkpoints/<run>/epoch_<k>/ and final/.

A folder holds the adapter (peft format), and state.pt with the optimizer, scheduler, grad-scaler and
RNG states, the per-epoch and per-step records and the data order. It is written as `<name>.tmp/` and
renamed, so a folder without `.tmp` is complete. state.pt holds only tensors and plain Python values, so
it loads with `torch.load(weights_only=True)`: a planted file cannot run code.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
from pathlib import Path

import numpy as np
import torch


def rng_state() -> dict:
    """Every RNG's state in types `torch.load(weights_only=True)` accepts (no numpy objects, no pickles)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    v, internal, gauss_next = state["python"]
    random.setstate((v, tuple(internal), gauss_next))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def completed_epochs(ckpt: Path, fingerprint: str) -> int:
    """The last epoch whose checkpoint is complete and belongs to this exact training setup."""
    best = 0
    for d in ckpt.glob("epoch_*"):
        if d.suffix == ".tmp" or not (d / "state.pt").is_file():
            continue
        meta = json.loads((d / "meta.json").read_text()) if (d / "meta.json").is_file() else {}
        if meta.get("fingerprint") == fingerprint:
            best = max(best, int(meta["epoch"]))
    return best


def load_state(folder: Path) -> dict:
    return torch.load(folder / "state.pt", map_location="cpu", weights_only=True)


def write_dir(final: Path, write) -> None:
    """Write a checkpoint folder atomically: into <final>.tmp, then one rename."""
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


def write_meta(folder: Path, epoch: int, fingerprint: str) -> None:
    (folder / "meta.json").write_text(json.dumps({"epoch": epoch, "fingerprint": fingerprint}))


def crash_point(epoch: int) -> None:
    """Crash injection for the resume tests: PIPELINE_KILL_AFTER_EPOCH=k SIGKILLs this process right after
    epoch k's checkpoint is complete (a real kill: no cleanup, no flushing, no exception handlers)."""
    if os.environ.get("PIPELINE_KILL_AFTER_EPOCH") == str(epoch):
        os.kill(os.getpid(), signal.SIGKILL)
