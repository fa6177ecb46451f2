"""What the benchmark measures besides wall time: FLOPs per token, the GPU's matmul ceiling, and the
profiler's view of a window of steps (how busy the GPU was, and which kernels took the time)."""
from __future__ import annotations

import time

import torch


def flops_per_token(model) -> dict:
    """Matrix FLOPs one training token costs, counted from the model's linear layers.

    A frozen weight costs 2 FLOPs per parameter forward and 2 backward (the input gradient; it has no
    weight gradient): 4. A trainable weight (LoRA, the head) costs 6: forward, input and weight
    gradients. Quantized weights count at their logical size (out x in), not their packed storage.
    Embedding lookups are not matmuls; attention scores (~2 x layers x width x tokens, small at ~60-token
    rows) are left out, so utilisation figures are slightly conservative."""
    frozen = trainable = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if not isinstance(module, torch.nn.Linear) or weight is None:
            continue
        n = module.in_features * module.out_features
        if weight.requires_grad:
            trainable += n
        else:
            frozen += n
    return {"frozen_linear_params": frozen, "trainable_linear_params": trainable,
            "flops_per_token": 4 * frozen + 6 * trainable}


def matmul_peak_tflops(dtype=torch.bfloat16, n: int = 8192, repeats: int = 10) -> float | None:
    """The bf16 (or fp16) dense matmul rate this GPU reaches here: the ceiling for utilisation."""
    if not torch.cuda.is_available():
        return None
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        a @ b
    end.record()
    torch.cuda.synchronize()
    seconds = start.elapsed_time(end) / 1000 / repeats
    del a, b
    torch.cuda.empty_cache()
    return 2 * n ** 3 / seconds / 1e12


class StepProfiler:
    """Profiles steps [first, first + count) of a loop that calls `step()` after each of its steps.

    busy_fraction = summed GPU kernel time / wall time of the window (one stream, so kernels rarely
    overlap). top = the kernels that took the most GPU time in the window."""

    def __init__(self, first: int, count: int = 10):
        self.first, self.count, self.n = first, count, 0
        self.prof = None
        self.t_start = self.t_end = None
        self.error: str | None = None

    def step(self) -> None:
        self.n += 1
        try:
            if self.n == self.first - 1:
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                acts = [torch.profiler.ProfilerActivity.CPU]
                if torch.cuda.is_available():
                    acts.append(torch.profiler.ProfilerActivity.CUDA)
                self.prof = torch.profiler.profile(activities=acts)
                self.prof.__enter__()
                self.t_start = time.perf_counter()
            elif self.n == self.first - 1 + self.count and self.prof is not None:
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                self.t_end = time.perf_counter()
                self.prof.__exit__(None, None, None)
        except Exception as e:  # a profiler failure must not lose the timing run
            self.error = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            self.prof = None

    def summary(self) -> dict:
        if self.prof is None or self.t_end is None:
            return {"gpu_busy_fraction": None, "profiled_steps": 0, "profile_error": self.error}
        try:
            events = [e for e in self.prof.key_averages() if getattr(e, "device_type", None) is not None]
            cuda = [e for e in events if str(e.device_type).endswith("CUDA") and e.self_device_time_total > 0]
            kernel_us = sum(e.self_device_time_total for e in cuda)
            wall_us = (self.t_end - self.t_start) * 1e6
            top = sorted(cuda, key=lambda e: e.self_device_time_total, reverse=True)[:15]
            launches = sum(e.count for e in cuda)
            return {"gpu_busy_fraction": (kernel_us / wall_us) if torch.cuda.is_available() else None,
                    "profiled_steps": self.count, "profile_wall_ms_per_step": wall_us / 1000 / self.count,
                    "gpu_kernel_ms_per_step": kernel_us / 1000 / self.count,
                    "kernels_per_step": launches / self.count,
                    "top_kernels": [{"name": e.key[:120], "ms_per_step": e.self_device_time_total / 1000 / self.count,
                                     "share": e.self_device_time_total / kernel_us if kernel_us else None,
                                     "calls_per_step": e.count / self.count} for e in top],
                    "profile_error": self.error}
        except Exception as e:
            return {"gpu_busy_fraction": None, "profiled_steps": 0,
                    "profile_error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
