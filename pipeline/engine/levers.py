"""The throughput levers of issue 19 that change how the model runs, applied from the config before training.

Each is a config field of `train` (records/config.py), off by default until the H200 benchmark
(benchmarks/bench.py, one ladder line per lever) shows it pays:
- `attention: flex`: FlexAttention for packed rows, where the GPU can (pipeline/model/attention.py decides);
- `compile: layers`: the decoder layers compiled for training steps (pipeline/model/compiling.py);
- `length_buckets`: a few fixed micro-batch widths for the run (pipeline/model/buckets.py).

`apply` sets the first two on the model from the config every time training starts, and undoes them when
the config says off, so one loaded model can be trained under several settings (the benchmark does). What
ran goes into the manifest (stages.train.step), including why a requested lever did not run.
"""
from __future__ import annotations

import torch

from pipeline.model import attention, buckets, compiling


def apply(cfg, model, device: torch.device, dtype: torch.dtype) -> dict:
    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    kind, why = attention.choose(cfg.train.attention, device.type, capability, dtype)
    attention.use(model, kind)
    return {"attention": kind, "attention_note": why, "compile": cfg.train.compile,
            "compiled_layers": compiling.use(model, cfg.train.compile)}


def bucket_widths(cfg, seqs, micro: int, orders: list[list[int]]) -> list[int] | None:
    """The run's micro-batch widths (None: no buckets), from every epoch's row order (`orders`): the same
    for a resumed run as for an uninterrupted one. The rows' lengths are read only when buckets are asked for."""
    count = cfg.train.length_buckets
    if count is None:
        return None
    cached = getattr(seqs, "lengths", None)  # a token cache knows them without reading the ids
    lengths = cached.tolist() if cached is not None else [len(s) for s in seqs]
    sizes = buckets.micro_batch_sizes(lengths, orders, micro, cfg.train.packing)
    return buckets.widths(sizes, count, cfg.train.pad_to_multiple_of)
