"""Going on from a saved state: restoring one (an epoch's checkpoint or the mid-epoch state) into the model,
optimizer, scheduler, loss scaler and RNGs, and saving the mid-epoch state.

Why exact: the losses after a resume must be those of the run that was not killed (issue 20). The adapter
weights, the optimizer's moments, the scheduler's step count, the float16 loss scale and every RNG are
restored bit for bit; the data order is recomputed from (seed, epoch) and checked against the saved one; the
loop skips the epoch's steps that are done and carries on the epoch's sums (tokens, padded tokens, seconds).
"""
from __future__ import annotations

from pathlib import Path

import torch

from pipeline.engine import checkpoint
from pipeline.engine.checkpoint import MID_EPOCH, Key


def restore(folder: Path, model, optimizer, scheduler, scaler, dist) -> dict:
    """Load `folder`'s adapter and states into the live objects; -> its state.pt (plain values, for the rows)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    state = checkpoint.load_state(folder)
    set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))
    optimizer.load_state_dict(state[Key.OPTIMIZER])
    scheduler.load_state_dict(state[Key.SCHEDULER])
    if scaler is not None and state.get(Key.SCALER):
        scaler.load_state_dict(state[Key.SCALER])
    by_rank = state.get(Key.RNG_BY_RANK) or [state[Key.RNG]]
    checkpoint.set_rng_state(by_rank[dist.rank] if len(by_rank) == dist.world else state[Key.RNG])
    if len(by_rank) != dist.world and dist.main:
        print(f"note: the checkpoint was written by {len(by_rank)} process(es), this run has {dist.world}: "
              "the data order is the same, dropout draws are not", flush=True)
    return state


def position_of(position: dict | None, dist) -> dict:
    """Where an epoch starts: step 0 with nothing counted, or a mid-epoch state's position, with this rank's
    count of padded tokens (all of them on rank 0 when the process count changed: only their sum is kept)."""
    if position is None:
        return {"step": 0, "tokens": 0, "padded": 0, "seconds": 0.0}
    by_rank = position["padded_by_rank"]
    padded = by_rank[dist.rank] if len(by_rank) == dist.world else (sum(by_rank) if dist.main else 0)
    return {"step": position["step"], "tokens": position["tokens"], "padded": padded,
            "seconds": position["seconds"]}


def save(ckpt: Path, model, state: dict, epoch: int, step: int, fingerprint: str) -> None:
    """Write checkpoints/<run>/mid_epoch/ (atomically, replacing the last one): the adapter, `state` and a
    meta.json naming the epoch, the steps done in it and the training setup."""
    def write(folder: Path):
        model.save_pretrained(folder)
        torch.save(state, folder / checkpoint.STATE_FILE)
        checkpoint.write_meta(folder, epoch, fingerprint, step=step)

    checkpoint.write_dir(ckpt / MID_EPOCH, write)
