"""One process, or N launched by `accelerate launch --num_processes N -m pipeline run CONFIG`.

The pipeline stays a plain loop in both cases; this module says who this process is and holds the few
collectives it needs. accelerate sets up the process group (NCCL on GPUs, gloo with `--cpu`) and the
device of each rank; the same launch works across nodes with an accelerate config file.

What the pipeline does with several processes:
- every optimizer step's rows (the effective batch, `train.batch_size`) come from one global order and
  are split into micro-batches dealt out to the ranks in turn; each rank weights its micro-batch losses
  by their share of the step's rows and the gradients are summed over ranks (`all_reduce_`), so N
  processes compute the same update as one process would on the same rows;
- predictions are sharded over the ranks and gathered, so every row is predicted exactly once;
- rank 0 alone writes results/ and the checkpoints; the others wait at a barrier.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import torch

from records.config import ConfigError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def launched_world_size() -> int:
    """How many processes the launcher started (1 without a launcher)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


@lru_cache(maxsize=1)
def current() -> Dist:
    if launched_world_size() <= 1:
        return Dist()
    from accelerate import PartialState
    state = PartialState(cpu=_cpu())  # initialises the process group once
    return Dist(rank=state.process_index, world=state.num_processes, local_rank=state.local_process_index)


def _cpu() -> bool:
    # accelerate only builds a CPU process group (gloo) when asked for the CPU; without a GPU that is the
    # only choice, and `ACCELERATE_USE_CPU=1` asks for it on a GPU machine too.
    return not torch.cuda.is_available() or os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true")


def device() -> torch.device:
    """This rank's device under a launcher (accelerate's choice: cuda:<local rank>, or the CPU)."""
    from accelerate import PartialState
    current()
    return PartialState().device


def barrier() -> None:
    if current().active:
        torch.distributed.barrier()


def main_first(fn):
    """Run `fn` on rank 0 first, then on the others (which find what rank 0 made: a model cache folder)."""
    if not current().active:
        return fn()
    if current().main:
        out = fn()
        barrier()
        return out
    barrier()
    return fn()


def all_reduce_(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """In place, over all ranks (a no-op in one process)."""
    if current().active:
        torch.distributed.all_reduce(tensor, op={"sum": torch.distributed.ReduceOp.SUM,
                                                 "max": torch.distributed.ReduceOp.MAX}[op])
    return tensor


def all_reduce_grads_(grads: list[torch.Tensor]) -> None:
    """Sum gradients over ranks with one collective (one flat buffer, not one call per tensor)."""
    if not current().active or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    torch._foreach_copy_(grads, [v.view_as(g) for v, g in zip(flat.split([g.numel() for g in grads]), grads,
                                                               strict=True)])


def gather_objects(obj) -> list:
    """Every rank's `obj`, in rank order, on every rank."""
    if not current().active:
        return [obj]
    out = [None] * current().world
    torch.distributed.all_gather_object(out, obj)
    return out


def broadcast_object(obj):
    """Rank 0's `obj` on every rank."""
    if not current().active:
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def micro_batches(rows: list[int], micro: int, dist: Dist) -> list[list[int]]:
    """This rank's micro-batches of one optimizer step: micro-batch k (of `micro` rows) goes to rank
    k mod world. A rank can get none at the end of an epoch; it still joins the gradient sum."""
    chunks = [rows[i:i + micro] for i in range(0, len(rows), micro)]
    return [c for k, c in enumerate(chunks) if k % dist.world == dist.rank]


def accumulation_steps(batch_size: int, micro: int | None, world: int) -> tuple[int, int]:
    """-> (micro-batch size, accumulation steps) with batch_size = micro x world x accumulation."""
    if micro is None:
        if batch_size % world:
            raise ConfigError(f"train.batch_size: {batch_size} rows per step cannot be split evenly over {world} "
                              f"processes (fix: a multiple of {world}, or set train.micro_batch_size)")
        return batch_size // world, 1
    if batch_size % (micro * world):
        raise ConfigError(f"train.micro_batch_size: {batch_size} rows per step are not a whole number of "
                          f"micro-batches of {micro} over {world} processes (fix: batch_size = micro_batch_size x "
                          f"processes x accumulation steps)")
    return micro, batch_size // (micro * world)
