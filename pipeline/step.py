"""One training step's forward and backward: eager, or replayed from a CUDA graph per batch shape.

Why graphs: a QLoRA step of Phi-2 at micro-batch 8 launches ~7,000 small kernels (4-bit dequantize,
LoRA's two thin matmuls, dtype casts, rotary, layer norms) and the GPU sat idle ~80 % of the step while
Python queued them (DESIGN.md's profile: 242 ms per step, ~55 ms of it GPU work). A CUDA graph records
the whole forward + backward once per input shape and replays it with one launch.

What makes capture safe here:
- static shapes: `pipeline.batching` rounds widths to a multiple, so a handful of graphs cover an epoch;
- nothing syncs with the host inside the step (no attention-mask checks: right padding needs no mask,
  packed rows bring a prepared 4-D mask; no `.item()`), and autocast runs with its cast cache off;
- gradients come out of `torch.autograd.grad` and are copied into one set of static buffers that the
  parameters' `.grad` point at, so the optimizer, clipping and the loss scaler run eagerly after the
  replay, unchanged (they are a few fused kernels);
- all graphs share one memory pool, which is safe because each replay's outputs (loss, gradients) are
  consumed before the next replay;
- warm-up runs before a capture draw random numbers (dropout): the RNG state is put back afterwards, so
  graphed runs draw the same dropout masks whether or not they resumed mid-way.
If capture fails on some library version, the step says so once and runs eagerly; the manifest records
which path ran.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from pipeline import classify
from pipeline.batching import Batch

WARMUP_RUNS = 2  # before a capture: lazy initialisation (cuBLAS handles, bitsandbytes, allocator) happens here


class EagerStep:
    graphed = False

    def __init__(self, model, params, *, device, dtype, scaler=None):
        self.model, self.params, self.device, self.dtype, self.scaler = model, params, device, dtype, scaler

    def loss(self, batch: Batch, labels: torch.Tensor, cache: bool = True) -> torch.Tensor:
        with classify.autocast(self.device, self.dtype, cache):
            logits = classify.logits(self.model, batch)
        return F.cross_entropy(logits, labels)

    def __call__(self, batch: Batch, labels: torch.Tensor) -> torch.Tensor:
        """Forward + backward; gradients accumulate into p.grad (the caller zeroes them). -> the loss."""
        loss = self.loss(batch, labels)
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        return loss.detach()

    def zero_grad(self, optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)


class _Captured:
    def __init__(self, graph, inputs: dict, labels: torch.Tensor, loss: torch.Tensor, template: Batch):
        self.graph, self.inputs, self.labels, self.loss, self.template = graph, inputs, labels, loss, template


class GraphedStep(EagerStep):
    graphed = True

    def __init__(self, model, params, *, device, dtype, scaler=None):
        super().__init__(model, params, device=device, dtype=dtype, scaler=scaler)
        self.graphs: dict[tuple, _Captured] = {}
        self.pool = torch.cuda.graph_pool_handle()
        self.grads = [torch.zeros_like(p) for p in params]
        for p, g in zip(params, self.grads, strict=True):
            p.grad = g
        self.fallback: str | None = None  # why graphs were given up, if they were
        if scaler is not None:
            scaler.scale(torch.ones((), device=device))  # creates the scale tensor outside any capture

    def _forward_backward(self, batch: Batch, labels: torch.Tensor) -> torch.Tensor:
        loss = self.loss(batch, labels, cache=False)
        scaled = self.scaler.scale(loss) if self.scaler is not None else loss
        grads = torch.autograd.grad(scaled, self.params, allow_unused=True)
        pairs = [(buf, g) for buf, g in zip(self.grads, grads, strict=True) if g is not None]
        torch._foreach_copy_([b for b, _ in pairs], [g for _, g in pairs])
        return loss.detach()

    def _capture(self, key: tuple, batch: Batch, labels: torch.Tensor) -> _Captured:
        inputs = {k: v.clone() for k, v in batch.tensors().items()}
        static = Batch(inputs["input_ids"], inputs["position_ids"], inputs.get("segments"), inputs["last"],
                       batch.real_tokens, batch.packed)
        static_labels = labels.clone()
        cpu_rng, cuda_rng = torch.get_rng_state(), torch.cuda.get_rng_state(self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_RUNS):
                self._forward_backward(static, static_labels)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: the resource sampler's thread may query the device while we capture.
        with torch.cuda.graph(graph, pool=self.pool, capture_error_mode="thread_local"):
            loss = self._forward_backward(static, static_labels)
        torch.set_rng_state(cpu_rng)
        torch.cuda.set_rng_state(cuda_rng, self.device)
        return _Captured(graph, inputs, static_labels, loss, static)

    def __call__(self, batch: Batch, labels: torch.Tensor) -> torch.Tensor:
        if self.fallback is not None:
            return self._eager(batch, labels)
        key = (batch.shape, batch.packed, batch.last.shape[0])
        captured = self.graphs.get(key)
        if captured is None:
            try:
                captured = self.graphs[key] = self._capture(key, batch, labels)
            except RuntimeError as e:  # a library op that cannot be captured: run eagerly from now on
                self.fallback = f"CUDA graph capture failed ({str(e).splitlines()[0][:200]}); running eagerly"
                print(f"warning: {self.fallback}", flush=True)
                self.graphs.clear()
                torch.cuda.synchronize(self.device)
                return self._eager(batch, labels)
        for name, t in batch.tensors().items():
            captured.inputs[name].copy_(t, non_blocking=True)
        captured.labels.copy_(labels, non_blocking=True)
        captured.graph.replay()
        return captured.loss

    def _eager(self, batch: Batch, labels: torch.Tensor) -> torch.Tensor:
        loss = self._forward_backward(batch, labels)
        return loss

    def zero_grad(self, optimizer) -> None:
        pass  # every replay overwrites the gradient buffers


def make_step(model, params, *, device, dtype, scaler, graphs: bool):
    if graphs and device.type == "cuda":
        return GraphedStep(model, params, device=device, dtype=dtype, scaler=scaler)
    return EagerStep(model, params, device=device, dtype=dtype, scaler=scaler)
