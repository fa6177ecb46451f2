"""Checkpoints: checkpoints/<run>/epoch_<k>/ and final/, and one mid-epoch state, mid_epoch/.

A folder holds the adapter (peft format), and state.pt with the optimizer, scheduler, grad-scaler and
RNG states, the per-epoch and per-step records and the data order. It is written as `<name>.tmp/` and
renamed, so a folder without `.tmp` is complete. state.pt holds only tensors and plain Python values, so
it loads with `torch.load(weights_only=True)`: a planted file cannot run code, and one that tries is refused
with one line. meta.json lists every other file of the folder with its sha256 and size: a folder whose files
differ (a disk error, a truncated copy, a swapped file) is never resumed from or evaluated.

mid_epoch/ holds the same files, written every `train.checkpoint_every_steps` steps or `..._minutes` minutes
inside an epoch, plus the position in the epoch (Key.POSITION), and its meta.json records the step. It is
replaced at each save and removed once its epoch's checkpoint exists: it is never scored and never listed in
the manifest, only resumed from, and only by the training setup (train fingerprint) that wrote it.
"""
from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.engine import distributed
from records import faults
from records.errors import StageError, output_error, refuse_link
from records.integrity import checkpoint_files, read_meta, verify_checkpoint
from records.store import umask

STATE_FILE = "state.pt"
MID_EPOCH = "mid_epoch"


class Key:
    """The keys of state.pt: written after each epoch by the training loop (pipeline/engine/loop.py) and read back
    by it on resume, named once so the two cannot drift apart."""
    OPTIMIZER = "optimizer"              # optimizer.state_dict()
    SCHEDULER = "scheduler"              # scheduler.state_dict()
    SCALER = "scaler"                    # the float16 grad scaler's state, or None
    RNG = "rng"                          # rank 0's RNG states (rng_state())
    RNG_BY_RANK = "rng_by_rank"          # every rank's RNG states, in rank order
    BEFORE_TRAINING = "before_training"  # validation metrics of the model before its first step
    EPOCHS = "epochs"                    # the epochs table's rows so far
    STEPS = "steps"                      # the steps table's rows so far
    ORDER = "order"                      # this epoch's data order (row positions)
    POSITION = "position"                # mid_epoch/ only: {epoch, step (done in the epoch), tokens, seconds,
                                         # padded_by_rank}: where in the epoch to go on, and its sums so far


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
    """The last epoch k such that the checkpoints of epochs 1..k are all complete, intact and of this exact
    training setup. Each is scored by the evaluate stage, so resuming past one of another config's (a run with
    other settings trained into the folder since) would leave that one in place to be scored as this run's.
    A damaged checkpoint is passed over, with a note: training falls back to the epoch before it."""
    done = 0
    while True:
        d = ckpt / f"epoch_{done + 1}"
        meta = read_meta(d) if d.is_dir() and not d.is_symlink() else {}
        if meta.get("fingerprint") != fingerprint or meta.get("epoch") != done + 1:
            if meta:
                later = sorted(p.name for p in ckpt.glob("epoch_*") if p.suffix != ".tmp"
                               and read_meta(p).get("fingerprint") == fingerprint and p.name != d.name)
                if later:
                    _note(f"note: the checkpoint of epoch {done + 1} was written by another config: not resumed "
                          f"past it (training from epoch {done + 1})")
            return done
        problem = verify_checkpoint(d)
        if problem is not None:
            _note(f"note: the checkpoint of epoch {done + 1} is damaged ({problem}): not resumed from")
            return done
        done += 1


def _note(text: str) -> None:
    if distributed.current().main:
        print(text, flush=True)


def load_state(folder: Path) -> dict:
    """state.pt, tensors and plain values only. Anything else (a pickle that would run code, a damaged file)
    is refused with one line; nothing in it runs."""
    path = folder / STATE_FILE
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise StageError(f"{path}: refused to load: not a plain checkpoint state ({type(e).__name__}: {first}) "
                         f"(fix: delete {folder} to resume from the epoch before, or run with --restart)") from None


def write_dir(final: Path, write) -> None:
    """Write a checkpoint folder atomically: into <final>.tmp, then one rename."""
    tmp = final.with_name(final.name + ".tmp")
    for p in (final.parent, final, tmp):  # rmtree and rename below must never act through a planted link
        refuse_link(p)
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        write(tmp)
        for f in tmp.iterdir():  # safetensors writes 0600 whatever the umask; results follow the user's umask
            os.chmod(f, 0o666 & ~umask())
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise output_error(e, getattr(e, "filename", None) or tmp) or e from None
    faults.point(final)  # a kill here leaves <final>.tmp behind, as a real one would
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


def write_meta(folder: Path, epoch: int, fingerprint: str, step: int | None = None) -> None:
    """Written last into the folder: it lists the other files' checksums. `step`: a mid-epoch state's steps
    done in `epoch`."""
    meta = {"epoch": epoch, "fingerprint": fingerprint, **({"step": step} if step is not None else {})}
    (folder / "meta.json").write_text(json.dumps({**meta, "files": checkpoint_files(folder)}))


def mid_epoch_state(ckpt: Path, fingerprint: str, epoch: int) -> Path | None:
    """checkpoints/<run>/mid_epoch/ when it is a complete, intact state of `epoch` (the one after the last
    complete epoch) written by this training setup; else None (a damaged one with a note)."""
    d = ckpt / MID_EPOCH
    meta = read_meta(d) if d.is_dir() and not d.is_symlink() else {}
    if meta.get("fingerprint") != fingerprint or meta.get("epoch") != epoch or not isinstance(meta.get("step"), int):
        return None
    problem = verify_checkpoint(d)
    if problem is not None:
        _note(f"note: the mid-epoch state of epoch {epoch} is damaged ({problem}): not resumed from")
        return None
    return d


def drop_mid_epoch(ckpt: Path) -> None:
    """Remove mid_epoch/ (its epoch's checkpoint now exists, so it is stale)."""
    d = ckpt / MID_EPOCH
    refuse_link(d)
    shutil.rmtree(d, ignore_errors=True)


class Cadence:
    """When to save a mid-epoch state: every `steps` optimizer steps (counted over the whole run, so the same
    steps whether or not the run resumed) and/or once `minutes` have passed since the last save. The clock is
    read only at the loop's host reads (`checked`): reading it costs nothing, but under several processes they
    must agree, so rank 0's decision is broadcast, and that is one collective per host read, not per step."""

    def __init__(self, steps: int | None, minutes: float | None):
        self.steps, self.minutes = steps, minutes
        self.restart_clock()

    def restart_clock(self) -> None:
        self.since = time.monotonic()

    def due(self, global_step: int, checked: bool) -> bool:
        if self.steps is not None and global_step % self.steps == 0:
            return True
        if self.minutes is None or not checked:
            return False
        late = time.monotonic() - self.since >= 60.0 * self.minutes
        return bool(distributed.broadcast_object(late))


def crash_point(epoch: int | None = None, step: int | None = None) -> None:
    """Crash injection for the resume tests: PIPELINE_KILL_AFTER_EPOCH=k SIGKILLs this process right after
    epoch k's checkpoint is complete, PIPELINE_KILL_AFTER_STEP=k right after optimizer step k (counted over the
    run), whatever was saved (a real kill: no cleanup, no flushing, no exception handlers)."""
    if (epoch is not None and os.environ.get("PIPELINE_KILL_AFTER_EPOCH") == str(epoch)) or \
            (step is not None and os.environ.get("PIPELINE_KILL_AFTER_STEP") == str(step)):
        os.kill(os.getpid(), signal.SIGKILL)
