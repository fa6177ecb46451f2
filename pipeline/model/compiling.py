"""torch.compile of the decoder layers, for training steps only (`train.compile: layers`).

Why: with CUDA graphs the GPU no longer waits on Python, but it still runs ~7,000 small kernels per step at
micro-batch 8, a fifth of its time in dtype-cast copies (the H200 profile: 7.5 ms of ~47 ms in ~1,800
casts). Inductor fuses the elementwise work around the matmuls: the casts into and out of the 4-bit
linears, LoRA's dropout and scaling and its add onto the base output, the float32 LayerNorm round trip,
the tanh GELU, the rotary embedding and the residual adds. An earlier H200 probe compiled a whole eager step
to 2.0x, at ~100 s of compile per shape.

Why layers and not the step: all decoder layers run the same code, so one compiled graph serves every
layer (torch's "regional compilation"; parameters are graph inputs, not constants) and the compile costs
one layer's, per width (tests/pipeline/test_throughput_levers.py counts the graphs). The 4-bit matmuls of bitsandbytes and peft's wrappers may break the graph into
pieces; what lies between breaks is still fused.

How it coexists with the CUDA graphs of `pipeline.engine.step`: compiling happens in the warm-up runs
before a capture (the first call at a new width compiles the forward, its backward compiles at the first
backward); the capture then records the compiled kernels like any others, and replays skip Python and the
compiled code's guards alike. `dynamic=False`: each width gets kernels specialised to it, which is why
`train.length_buckets` keeps the widths few. Compile's own CUDA graphs ("reduce-overhead") are not used:
one graph per step, ours, holds everything.

Evaluation and inference (no gradients, or eval mode) run the layers' original forward: their many batch
shapes would each cost a compile for a pass that runs once per epoch.
"""
from __future__ import annotations

import torch

from pipeline.model.forward import body

BACKEND = "inductor"  # tests on CPU switch this to "aot_eager" (the same tracing, no code generation)
RECOMPILE_LIMIT = 64  # widths x (dropout on / off) x micro-batch sizes of a benchmark, well past torch's 8

_compiled: dict[str, object] = {}


def _layer_forward(layer, *args, **kwargs):
    return type(layer).forward(layer, *args, **kwargs)


def _compiled_forward():
    fn = _compiled.get(BACKEND)
    if fn is None:
        fn = _compiled[BACKEND] = torch.compile(_layer_forward, dynamic=False, backend=BACKEND)
    return fn


class _TrainingOnly:
    """A layer's `forward`: the compiled function while the layer trains with gradients on, else the original."""

    def __init__(self, layer):
        self.layer = layer

    def __call__(self, *args, **kwargs):
        if not (self.layer.training and torch.is_grad_enabled()):
            return type(self.layer).forward(self.layer, *args, **kwargs)
        # The first layer's input (the frozen embeddings' output) needs no gradient, the others' do: as it is,
        # that makes two graphs per width. Asking for it costs one unused input gradient (~1/32 of the
        # backward's input-gradient work) and halves the compiles.
        if args and isinstance(args[0], torch.Tensor) and not args[0].requires_grad:
            args = (args[0].detach().requires_grad_(), *args[1:])
        elif isinstance(kwargs.get("hidden_states"), torch.Tensor) and not kwargs["hidden_states"].requires_grad:
            kwargs["hidden_states"] = kwargs["hidden_states"].detach().requires_grad_()
        return _compiled_forward()(self.layer, *args, **kwargs)


def decoder_layers(model) -> list:
    layers = getattr(body(model), "layers", None)
    if layers is None:
        raise AttributeError(f"{type(body(model)).__name__} has no `layers`: cannot compile its decoder layers")
    return list(layers)


def use(model, mode: str) -> int:
    """Compile `model`'s decoder layers for training (`mode` "layers") or restore their eager forward
    ("off"). Idempotent. -> how many layers are compiled."""
    n = 0
    for layer in decoder_layers(model):
        if mode == "layers":
            if not isinstance(layer.__dict__.get("forward"), _TrainingOnly):
                layer.forward = _TrainingOnly(layer)
            n += 1
        elif isinstance(layer.__dict__.get("forward"), _TrainingOnly):
            del layer.forward
    if n:
        _raise_recompile_limit()
    return n


def _raise_recompile_limit() -> None:
    import torch._dynamo.config as dynamo
    for name in ("recompile_limit", "cache_size_limit"):  # the name since torch 2.6, and before
        if hasattr(dynamo, name) and getattr(dynamo, name) < RECOMPILE_LIMIT:
            setattr(dynamo, name, RECOMPILE_LIMIT)
