"""Fine-tuning: a plain PyTorch loop, resumable per epoch; each step is eager or a CUDA-graph replay.

After every epoch a checkpoint folder `checkpoints/<run>/epoch_<k>/` holds the adapter (peft format),
optimizer, scheduler, grad-scaler and RNG states, the data order and the per-step records. It is
written as `epoch_<k>.tmp/` and renamed, so a folder without `.tmp` is complete. A killed run resumes
from its last complete epoch and ends with the same weights as an uninterrupted one: the data order
of epoch e comes from its own generator (seed, e), and every RNG is restored from the checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline import batching
from pipeline.predict import encode, predict_head
from pipeline.progress import bar
from pipeline.step import make_step


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: stop instead of writing garbage."""


def _rng_state() -> dict:
    """Every RNG's state in types `torch.load(weights_only=True)` accepts (no numpy objects, no pickles)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    v, internal, gauss_next = state["python"]
    random.setstate((v, tuple(internal), gauss_next))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """Row order of one epoch: its own generator, so resuming at any epoch gives the same order."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def _crash_point(epoch: int) -> None:
    """Crash injection for the resume test: PIPELINE_KILL_AFTER_EPOCH=k SIGKILLs this process right after
    epoch k's checkpoint is complete (a real kill: no cleanup, no flushing, no exception handlers)."""
    import os
    import signal
    if os.environ.get("PIPELINE_KILL_AFTER_EPOCH") == str(epoch):
        os.kill(os.getpid(), signal.SIGKILL)


def completed_epochs(ckpt: Path, fingerprint: str) -> int:
    """The last epoch whose checkpoint is complete and belongs to this exact training setup."""
    best = 0
    for d in ckpt.glob("epoch_*"):
        if d.suffix == ".tmp" or not (d / "state.pt").is_file():
            continue
        meta = json.loads((d / "meta.json").read_text()) if (d / "meta.json").is_file() else {}
        if meta.get("fingerprint") == fingerprint:
            best = max(best, int(meta["epoch"]))
    return best


def _scheduler(cfg, optimizer, total_steps: int):
    from transformers import get_scheduler
    name = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}[cfg.train.scheduler]
    return get_scheduler(name, optimizer, num_warmup_steps=int(round(cfg.train.warmup_ratio * total_steps)),
                         num_training_steps=total_steps)


def _atomic_dir(final: Path, write) -> None:
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


# The loss and gradient norm are read on the host every this many steps, not every step: each read
# waits for the GPU, and with CUDA graphs the GPU otherwise runs ahead of Python by several steps.
HOST_READ_EVERY = 16


class _StepLog:
    """Per-step records, filled in when the step's loss is read back; the NaN/inf guard runs on every read.

    A diverged step is found at most HOST_READ_EVERY - 1 steps late; nothing of the epoch is saved either
    way (the checkpoint is written after the epoch's last read)."""

    def __init__(self, epoch: int, rows: list[dict], losses: list[float]):
        self.epoch, self.rows, self.losses, self.pending = epoch, rows, losses, []

    def add(self, global_step: int, loss, grad_norm, lr: float, tokens: int) -> None:
        # clone: a CUDA-graph replay writes every step's loss into the same tensor
        self.pending.append((global_step, loss.detach().clone(), grad_norm, lr, tokens))

    def read(self) -> float:
        values = torch.stack([p[1] for p in self.pending]).tolist()
        norms = [None if p[2] is None else p[2] for p in self.pending]
        norm_values = torch.stack([n for n in norms if n is not None]).tolist() if any(n is not None for n in norms) else []
        it = iter(norm_values)
        for (global_step, _, norm, lr, tokens), value in zip(self.pending, values, strict=True):
            if not math.isfinite(value):
                in_epoch = len([r for r in self.rows if r["epoch"] == self.epoch]) + 1
                raise TrainingDiverged(
                    f"train: loss became {value} at epoch {self.epoch}, step {in_epoch}; nothing of this epoch "
                    f"was saved (fix: lower train.learning_rate, or use quantization.compute_dtype: bfloat16 "
                    f"or float32 if float16 overflows)")
            self.rows.append({"step": global_step, "epoch": self.epoch, "loss": value, "lr": lr,
                              "grad_norm": float("nan") if norm is None else float(next(it)), "tokens": tokens})
            self.losses.append(value)
        self.pending = []
        return values[-1]


def _validate(cfg, model, tokenizer, prompts, labels, device, desc: str) -> dict:
    probs, loss = predict_head(model, tokenizer, prompts, labels, batch_size=cfg.eval.batch_size,
                               max_length=cfg.tokenizer.max_length, multiple=cfg.train.pad_to_multiple_of,
                               device=device, desc=desc)
    return {"val_loss": loss, "val_accuracy": float((probs.argmax(1) == labels).mean())}


def _load_state(folder: Path) -> dict:
    # weights_only: a planted state.pt cannot run code; everything in it is tensors and plain values.
    return torch.load(folder / "state.pt", map_location="cpu", weights_only=True)


def train(cfg, model, tokenizer, prompter, samples: pd.DataFrame, *, device, dtype, fingerprint: str,
          restart: bool, on_epoch, on_step=None) -> dict:
    """Train `model` (a peft model) in place. `on_epoch(epochs_df, steps_df, info)` persists progress;
    `on_step(epoch, global_step)`, if given, runs after every optimizer step (the benchmark's profiler).

    Returns a summary dict for the manifest.
    """
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    ckpt = cfg.checkpoint_path
    if restart:
        shutil.rmtree(ckpt, ignore_errors=True)
    ckpt.mkdir(parents=True, exist_ok=True)

    tr = samples[samples["split"] == "train"].reset_index(drop=True)
    va = samples[samples["split"] == "validation"].reset_index(drop=True)
    seqs = encode(tokenizer, prompter.many(tr["premise"], tr["hypothesis"]), cfg.tokenizer.max_length)
    labels = tr["label"].to_numpy()
    va_prompts = prompter.many(va["premise"], va["hypothesis"])
    va_labels = va["label"].to_numpy()

    bs = cfg.train.batch_size
    steps_per_epoch = math.ceil(len(seqs) / bs)
    total_steps = steps_per_epoch * cfg.train.epochs

    params = [p for p in model.parameters() if p.requires_grad]
    fused = cfg.train.fused_optimizer and device.type == "cuda"
    optimizer = torch.optim.AdamW(params, lr=cfg.train.learning_rate, weight_decay=cfg.train.weight_decay,
                                  fused=fused or None)
    scheduler = _scheduler(cfg, optimizer, total_steps)
    # float16 (a T4) needs loss scaling; bfloat16 and float32 do not.
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None

    done = 0 if restart else completed_epochs(ckpt, fingerprint)
    epoch_rows: list[dict] = []
    step_rows: list[dict] = []
    if done:
        d = ckpt / f"epoch_{done}"
        state = _load_state(d)
        set_peft_model_state_dict(model, load_file(str(d / "adapter_model.safetensors")))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        epoch_rows, step_rows = state["epochs"], state["steps"]
        _set_rng_state(state["rng"])
        print(f"Resuming from the checkpoint of epoch {done}/{cfg.train.epochs} in {d}", flush=True)

    # Where the curve starts: validation loss and accuracy before any training (a resumed run keeps
    # the first process's figures; measuring now would measure the trained adapter).
    start_metrics = state.get("before_training") if done else \
        _validate(cfg, model, tokenizer, va_prompts, va_labels, device, "validate (start)")

    step = make_step(model, params, device=device, dtype=dtype, scaler=scaler, graphs=cfg.train.cuda_graphs)
    global_step = done * steps_per_epoch
    for epoch in range(done + 1, cfg.train.epochs + 1):
        order = epoch_order(len(seqs), cfg.seed, epoch)
        # The epoch's batches are laid out on the CPU before the clock starts: the loop only copies them.
        plan = [(batching.make([seqs[i] for i in order[s * bs:(s + 1) * bs]], tokenizer.pad_token_id,
                               cfg.train.pad_to_multiple_of, cfg.train.packing),
                 torch.as_tensor(labels[order[s * bs:(s + 1) * bs]]))
                for s in range(steps_per_epoch)]
        if device.type == "cuda":
            plan = [(b.pin(), y.pin_memory()) for b, y in plan]
        model.train()
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        losses, tokens, padded = [], 0, 0
        log = _StepLog(epoch, step_rows, losses)
        progress = bar(plan, desc=f"epoch {epoch}/{cfg.train.epochs}", unit="step")
        for s, (batch, y) in enumerate(progress):
            loss = step(batch.to(device), y.to(device, non_blocking=True))
            if scaler is not None:
                scaler.unscale_(optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.train.max_grad_norm) \
                if cfg.train.max_grad_norm > 0 else None
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            step.zero_grad(optimizer)
            global_step += 1
            tokens += batch.real_tokens
            padded += batch.input_ids.numel()
            log.add(global_step, loss, grad_norm, float(scheduler.get_last_lr()[0]), batch.real_tokens)
            if len(log.pending) >= HOST_READ_EVERY or s == len(plan) - 1:
                progress.set_postfix(loss=f"{log.read():.3f}", refresh=False)
            if on_step is not None:
                on_step(epoch, global_step)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        peak = float(torch.cuda.max_memory_allocated()) if device.type == "cuda" else None

        metrics = _validate(cfg, model, tokenizer, va_prompts, va_labels, device, f"validate epoch {epoch}")
        epoch_rows.append({"epoch": epoch, "train_loss": float(np.mean(losses)), **metrics,
                           "seconds": seconds, "tokens": tokens, "padded_tokens": padded,
                           "tokens_per_s": tokens / seconds, "peak_allocated_bytes": peak})

        def write_epoch(folder: Path, epoch=epoch, order=order):
            model.save_pretrained(folder)
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict() if scaler is not None else None,
                        "rng": _rng_state(), "before_training": start_metrics, "epochs": epoch_rows,
                        "steps": step_rows, "order": order}, folder / "state.pt")
            (folder / "meta.json").write_text(json.dumps({"epoch": epoch, "fingerprint": fingerprint}))

        _atomic_dir(ckpt / f"epoch_{epoch}", write_epoch)
        on_epoch(pd.DataFrame(epoch_rows), pd.DataFrame(step_rows),
                 {"epochs_done": epoch, "epochs_total": cfg.train.epochs,
                  "finetune_seconds": float(sum(r["seconds"] for r in epoch_rows))})
        _crash_point(epoch)
        r = epoch_rows[-1]
        print(f"epoch {epoch}: train loss {r['train_loss']:.4f}, val loss {r['val_loss']:.4f}, "
              f"val accuracy {r['val_accuracy']:.3f}, {seconds:.1f} s, {r['tokens_per_s']:.0f} tokens/s", flush=True)

    # The final adapter in peft's format, loadable with PeftModel.from_pretrained.
    def write_final(folder: Path):
        model.save_pretrained(folder)
        (folder / "meta.json").write_text(json.dumps({"epoch": cfg.train.epochs, "fingerprint": fingerprint}))

    _atomic_dir(ckpt / "final", write_final)
    orders = [epoch_order(len(seqs), cfg.seed, e) for e in range(1, cfg.train.epochs + 1)]
    return {"epochs_done": cfg.train.epochs, "before_training": start_metrics, "epochs_total": cfg.train.epochs,
            "finetune_seconds": float(sum(r["seconds"] for r in epoch_rows)),
            "step": {"cuda_graphs": step.graphed and not getattr(step, "fallback", None),
                     "graphs_captured": len(getattr(step, "graphs", {})),
                     "graph_fallback": getattr(step, "fallback", None), "packing": cfg.train.packing},
            "data_order": f"torch.randperm per epoch, generator seed = seed*1000003 + epoch; sha256 "
                          f"{hashlib.sha256(json.dumps(orders).encode()).hexdigest()[:16]}",
            "checkpoints": str(ckpt.relative_to(cfg.path(".")) if ckpt.is_relative_to(cfg.path(".")) else ckpt)}
