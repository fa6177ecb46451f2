"""Per-step records of the training loop, read back from the device in groups.

The loss and gradient norm of a step are tensors on the device; reading one on the host waits for the GPU,
so they are kept on the device and read every HOST_READ_EVERY steps (and at an epoch's last step), when the
NaN/inf guard runs too.
"""
from __future__ import annotations

import math

import torch


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: stop instead of writing garbage."""


# The loss and gradient norm are read on the host every this many steps, not every step: each read
# waits for the GPU, and with CUDA graphs the GPU otherwise runs ahead of Python by several steps.
HOST_READ_EVERY = 16


class StepLog:
    """Per-step records, filled in when the steps' losses are read back; the NaN/inf guard runs on every
    read. A diverged step is found at most HOST_READ_EVERY - 1 steps late; no state holding it is saved either
    way (the epoch's checkpoint and a mid-epoch state are written only after a read)."""

    def __init__(self, epoch: int, rows: list[dict], losses: list[float]):
        self.epoch, self.rows, self.losses, self.pending = epoch, rows, losses, []
        self.in_epoch = 0

    def add(self, global_step: int, loss: torch.Tensor, grad_norm: torch.Tensor | None, lr: float, tokens: int):
        # clone: a CUDA-graph replay writes every step's loss into the same tensor
        nan = torch.full((), float("nan"), device=loss.device)
        self.pending.append((global_step, torch.stack([loss.detach().float().clone(),
                                                        nan if grad_norm is None else grad_norm.float()]), lr, tokens))

    def read(self) -> float:
        values = torch.stack([p[1] for p in self.pending]).tolist()
        for (global_step, _, lr, tokens), (loss, grad_norm) in zip(self.pending, values, strict=True):
            self.in_epoch += 1
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"train: loss became {loss} at epoch {self.epoch}, step {self.in_epoch}; no state after it "
                    f"was saved (fix: lower train.learning_rate, or use quantization.compute_dtype: bfloat16 "
                    f"or float32 if float16 overflows)")
            self.rows.append({"step": global_step, "epoch": self.epoch, "loss": loss, "lr": lr,
                              "grad_norm": grad_norm, "tokens": tokens})
            self.losses.append(loss)
        self.pending = []
        return values[-1][0]
