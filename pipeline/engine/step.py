"""One training step's forward and backward: eager, or replayed from a CUDA graph per batch shape.

Why graphs: a QLoRA step of Phi-2 at micro-batch 8 launches ~7,000 small kernels (4-bit dequantize,
LoRA's two thin matmuls, dtype casts, rotary, layer norms) and the GPU sat idle ~80 % of the step while
Python queued them (DESIGN.md's profile: 242 ms per step, ~55 ms of it GPU work). A CUDA graph records
the whole forward + backward once per input shape and replays it with one launch.

What makes capture safe here:
- static shapes: `pipeline.model.batching` rounds widths to a multiple, so a handful of graphs cover an epoch;
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

from pipeline.engine import distributed
from pipeline.model import forward
from pipeline.model.batching import Batch

WARMUP_RUNS = 2  # before a capture: lazy initialisation (cuBLAS handles, bitsandbytes, allocator) happens here


class EagerStep:
    graphed = False

    def __init__(self, model, params, *, device, dtype, scaler=None):
        self.model, self.params, self.device, self.dtype, self.scaler = model, params, device, dtype, scaler

    def loss(self, batch: Batch, labels: torch.Tensor, cache: bool = True) -> torch.Tensor:
        with forward.autocast(self.device, self.dtype, cache):
            logits = forward.logits(self.model, batch)
        return F.cross_entropy(logits, labels)

    def __call__(self, batch: Batch, labels: torch.Tensor, weight: float = 1.0, first: bool = True) -> torch.Tensor:
        """Forward + backward of `weight` x the micro-batch's mean loss; gradients accumulate into p.grad
        (`zero_grad` clears them before an optimizer step's first micro-batch). -> the unweighted loss."""
        loss = self.loss(batch, labels)
        weighted = loss * weight
        (self.scaler.scale(weighted) if self.scaler is not None else weighted).backward()
        return loss.detach()

    def zero_grad(self, optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)

    def no_micro_batch(self) -> None:
        """This rank got no rows for this step (the end of an epoch): it adds zeros to the gradient sum."""
        for p in self.params:
            p.grad = torch.zeros_like(p)

    def all_reduce_grads(self) -> None:
        distributed.all_reduce_grads_([p.grad for p in self.params])


class _Captured:
    def __init__(self, graph, inputs: dict, labels: torch.Tensor, weight: torch.Tensor, loss: torch.Tensor):
        self.graph, self.inputs, self.labels, self.weight, self.loss = graph, inputs, labels, weight, loss


class GraphedStep(EagerStep):
    graphed = True

    def __init__(self, model, params, *, device, dtype, scaler=None, accumulate: bool = False):
        super().__init__(model, params, device=device, dtype=dtype, scaler=scaler)
        self.graphs: dict[tuple, _Captured] = {}
        self.pool = torch.cuda.graph_pool_handle()
        # The graphs write every micro-batch's gradients into `out` (views of one flat buffer, so summing
        # over ranks is one collective). Without accumulation the parameters' .grad are those views; with
        # it, .grad are a second flat buffer that each replay is added into.
        self.out_flat, self.out = _flat_like(params)
        self.acc_flat, acc = _flat_like(params) if accumulate else (self.out_flat, self.out)
        for p, g in zip(params, acc, strict=True):
            p.grad = g
        self.accumulate = accumulate
        self.fallback: str | None = None  # why graphs were given up, if they were
        if scaler is not None:
            scaler.scale(torch.ones((), device=device))  # creates the scale tensor outside any capture

    def _forward_backward(self, batch: Batch, labels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        loss = self.loss(batch, labels, cache=False)
        weighted = loss * weight
        scaled = self.scaler.scale(weighted) if self.scaler is not None else weighted
        grads = torch.autograd.grad(scaled, self.params, allow_unused=True)
        pairs = [(buf, g) for buf, g in zip(self.out, grads, strict=True) if g is not None]
        torch._foreach_copy_([b for b, _ in pairs], [g for _, g in pairs])
        return loss.detach()

    def _capture(self, batch: Batch, labels: torch.Tensor, weight: float) -> _Captured:
        inputs = {k: v.clone() for k, v in batch.tensors().items()}
        static = Batch(inputs["input_ids"], inputs["position_ids"], inputs.get("segments"), inputs["last"],
                       batch.real_tokens, batch.packed)
        static_labels = labels.clone()
        static_weight = torch.tensor(weight, dtype=torch.float32, device=self.device)
        cpu_rng, cuda_rng = torch.get_rng_state(), torch.cuda.get_rng_state(self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(WARMUP_RUNS):
                self._forward_backward(static, static_labels, static_weight)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: the resource sampler's thread may query the device while we capture.
        with torch.cuda.graph(graph, pool=self.pool, capture_error_mode="thread_local"):
            loss = self._forward_backward(static, static_labels, static_weight)
        torch.set_rng_state(cpu_rng)
        torch.cuda.set_rng_state(cuda_rng, self.device)
        return _Captured(graph, inputs, static_labels, static_weight, loss)

    def __call__(self, batch: Batch, labels: torch.Tensor, weight: float = 1.0, first: bool = True) -> torch.Tensor:
        loss = self._run(batch, labels, weight)
        if self.accumulate:
            (torch._foreach_copy_ if first else torch._foreach_add_)([p.grad for p in self.params], self.out)
        return loss

    def _run(self, batch: Batch, labels: torch.Tensor, weight: float) -> torch.Tensor:
        if self.fallback is not None:
            return self._forward_backward(batch, labels, torch.tensor(weight, device=self.device))
        key = (batch.shape, batch.packed, batch.last.shape[0])
        captured = self.graphs.get(key)
        if captured is None:
            try:
                captured = self.graphs[key] = self._capture(batch, labels, weight)
            except RuntimeError as e:  # a library op that cannot be captured: run eagerly from now on
                self.fallback = f"CUDA graph capture failed ({str(e).splitlines()[0][:200]}); running eagerly"
                print(f"warning: {self.fallback}", flush=True)
                self.graphs.clear()
                torch.cuda.synchronize(self.device)
                return self._forward_backward(batch, labels, torch.tensor(weight, device=self.device))
        for name, t in batch.tensors().items():
            captured.inputs[name].copy_(t, non_blocking=True)
        captured.labels.copy_(labels, non_blocking=True)
        captured.weight.fill_(weight)
        captured.graph.replay()
        return captured.loss

    def zero_grad(self, optimizer) -> None:
        pass  # every optimizer step's first replay overwrites the gradient buffers

    def no_micro_batch(self) -> None:
        self.acc_flat.zero_()

    def all_reduce_grads(self) -> None:
        distributed.all_reduce_(self.acc_flat)  # the .grad views share it: one collective, no copies


def _flat_like(params) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One float32 buffer with a view shaped like each parameter."""
    flat = torch.zeros(sum(p.numel() for p in params), dtype=torch.float32, device=params[0].device)
    return flat, [v.view_as(p) for v, p in zip(flat.split([p.numel() for p in params]), params, strict=True)]


def make_step(model, params, *, device, dtype, scaler, graphs: bool, accumulate: bool = False):
    if graphs and device.type == "cuda":
        return GraphedStep(model, params, device=device, dtype=dtype, scaler=scaler, accumulate=accumulate)
    return EagerStep(model, params, device=device, dtype=dtype, scaler=scaler)
