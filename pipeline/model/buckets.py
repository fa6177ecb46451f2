"""A few fixed micro-batch widths for a whole run, so CUDA graphs and compiled code are made once per width.

Why: every distinct batch shape costs a CUDA-graph capture (and, with `train.compile: layers`, a compile of
the decoder layer). Widths rounded to a multiple of 32 give ~8 shapes per micro-batch size for packed
Phi-2 rows at micro-batch 8 and ~15 at 32; each capture is paid in the first epoch (DESIGN.md: 16.7 s
against 7.3 s warm). Rounding to a coarser multiple cuts shapes but pads every batch alike; instead the
widths here are quantiles of the run's own micro-batch sizes, so the widths sit where the batches are.

The sizes are computed from every epoch's row order before training starts (they depend only on the seed,
the rows and the micro-batch size), so a resumed run picks the same widths and replays the same shapes.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

from pipeline.model.batching import round_up


def widths(sizes: Iterable[int], count: int, multiple: int) -> list[int]:
    """At most `count` widths, each a multiple of `multiple`, at equal-count quantiles of `sizes`: the
    largest holds the largest size, so every size fits one."""
    ordered = sorted(sizes)
    if not ordered:
        return []
    # k = count picks the largest size itself, so every size fits
    return sorted({round_up(ordered[math.ceil(len(ordered) * k / count) - 1], multiple) for k in range(1, count + 1)})


def fit(size: int, widths: list[int], multiple: int) -> int:
    """The smallest width that holds `size` (a size beyond them all, which `widths` never leaves, is rounded
    up to `multiple`)."""
    return next((w for w in widths if w >= size), round_up(size, multiple))


def micro_batch_sizes(lengths: list[int], orders: Iterable[list[int]], micro: int, packed: bool) -> list[int]:
    """The width each micro-batch needs before rounding: its total length (packed) or its longest row
    (padded), for consecutive chunks of `micro` rows of each order."""
    out = []
    for order in orders:
        for start in range(0, len(order), micro):
            chunk = [lengths[i] for i in order[start:start + micro]]
            out.append(sum(chunk) if packed else max(chunk))
    return out
