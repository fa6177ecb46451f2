"""Fine-tuning: a plain PyTorch loop over one process or several, resumable per epoch.

Each optimizer step takes `train.batch_size` rows (the effective batch) from one global order. They are
cut into micro-batches that are dealt out to the processes (`pipeline.engine.distributed`); each micro-batch
runs forward + backward eagerly or as a CUDA-graph replay (`pipeline.engine.step`), weighted by its share of
the step's rows, and the gradients are summed over processes before clipping and the optimizer step. So
1 process or N, with or without accumulation, compute the same update from the same rows.

After every epoch rank 0 writes a checkpoint (`pipeline.engine.checkpoint`). A killed run resumes from its last
complete epoch and ends with the same weights as an uninterrupted one: the data order of epoch e comes
from its own generator (seed, e), and every rank's RNG is restored from the checkpoint.
"""
from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.engine import checkpoint, distributed, levers
from pipeline.engine.checkpoint import Key
from pipeline.engine.predict import encode, predict_head
from pipeline.engine.step import make_step
from pipeline.model import batching, buckets, provenance
from pipeline.telemetry.progress import bar
from records.hashing import bytes_sha256


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: stop instead of writing garbage."""


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """Row order of one epoch: its own generator, so resuming at any epoch gives the same order."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def _scheduler(cfg, optimizer, total_steps: int):
    from transformers import get_scheduler
    name = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}[cfg.train.scheduler]
    return get_scheduler(name, optimizer, num_warmup_steps=int(round(cfg.train.warmup_ratio * total_steps)),
                         num_training_steps=total_steps)


# The loss and gradient norm are read on the host every this many steps, not every step: each read
# waits for the GPU, and with CUDA graphs the GPU otherwise runs ahead of Python by several steps.
HOST_READ_EVERY = 16


class _StepLog:
    """Per-step records, filled in when the steps' losses are read back; the NaN/inf guard runs on every
    read. A diverged step is found at most HOST_READ_EVERY - 1 steps late; nothing of the epoch is saved
    either way (its checkpoint is written after the epoch's last read)."""

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
                    f"train: loss became {loss} at epoch {self.epoch}, step {self.in_epoch}; nothing of this epoch "
                    f"was saved (fix: lower train.learning_rate, or use quantization.compute_dtype: bfloat16 "
                    f"or float32 if float16 overflows)")
            self.rows.append({"step": global_step, "epoch": self.epoch, "loss": loss, "lr": lr,
                              "grad_norm": grad_norm, "tokens": tokens})
            self.losses.append(loss)
        self.pending = []
        return values[-1][0]


def _plan(cfg, seqs, labels, order, micro: int, dist, pad_id: int, pin: bool,
          widths: list[int] | None = None) -> list[tuple[int, list]]:
    """One epoch's optimizer steps, laid out on the CPU before the clock starts: for each step, its real
    tokens over all ranks, and this rank's micro-batches as (batch, labels, weight). `widths`: the run's
    length buckets (pipeline.engine.levers.bucket_widths), or None for widths rounded to pad_to_multiple_of."""
    bs, steps = cfg.train.batch_size, []
    for start in range(0, len(order), bs):
        rows = order[start:start + bs]
        mine = []
        for chunk in distributed.micro_batches(rows, micro, dist):
            lengths = [len(seqs[i]) for i in chunk]
            width = buckets.fit(sum(lengths) if cfg.train.packing else max(lengths), widths,
                                cfg.train.pad_to_multiple_of) if widths else None
            batch = batching.make([seqs[i] for i in chunk], pad_id, cfg.train.pad_to_multiple_of, cfg.train.packing,
                                  width)
            y = torch.as_tensor(labels[chunk])
            mine.append((batch.pin(), y.pin_memory()) if pin else (batch, y))
            mine[-1] = (*mine[-1], len(chunk) / len(rows))
        steps.append((sum(len(seqs[i]) for i in rows), mine))
    return steps


def _validate(cfg, model, tokenizer, prompts, labels, device, desc: str) -> dict:
    probs, loss = predict_head(model, tokenizer, prompts, labels, batch_size=cfg.eval.batch_size,
                               max_length=cfg.tokenizer.max_length, multiple=cfg.train.pad_to_multiple_of,
                               device=device, desc=desc)
    return {"val_loss": loss, "val_accuracy": float((probs.argmax(1) == labels).mean())}


def train(cfg, model, tokenizer, prompter, samples: pd.DataFrame, *, device, dtype, fingerprint: str,
          restart: bool, on_epoch, on_step=None) -> dict:
    """Train `model` (a peft model) in place, on this process's share of every step.

    `on_epoch(epochs_df, steps_df, info)` persists progress (called on rank 0 only); `on_step(epoch,
    global_step)`, if given, runs after every optimizer step (the benchmark's profiler). Returns a
    summary dict for the manifest.
    """
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    dist = distributed.current()
    ckpt = cfg.checkpoint_path
    if restart and dist.main:
        shutil.rmtree(ckpt, ignore_errors=True)
    if dist.main:
        ckpt.mkdir(parents=True, exist_ok=True)
    distributed.barrier()

    tr = samples[samples["split"] == "train"].reset_index(drop=True)
    va = samples[samples["split"] == "validation"].reset_index(drop=True)
    seqs = encode(tokenizer, prompter.many(tr["premise"], tr["hypothesis"]), cfg.tokenizer.max_length)
    labels = tr["label"].to_numpy()
    va_prompts = prompter.many(va["premise"], va["hypothesis"])
    va_labels = va["label"].to_numpy()

    micro, accumulation = distributed.accumulation_steps(cfg.train.batch_size, cfg.train.micro_batch_size, dist.world)
    steps_per_epoch = math.ceil(len(seqs) / cfg.train.batch_size)
    total_steps = steps_per_epoch * cfg.train.epochs

    params = [p for p in model.parameters() if p.requires_grad]
    fused = cfg.train.fused_optimizer and device.type == "cuda"
    optimizer = torch.optim.AdamW(params, lr=cfg.train.learning_rate, weight_decay=cfg.train.weight_decay,
                                  fused=fused or None)
    scheduler = _scheduler(cfg, optimizer, total_steps)
    # float16 (a T4) needs loss scaling; bfloat16 and float32 do not.
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None

    done = 0 if restart else checkpoint.completed_epochs(ckpt, fingerprint)
    epoch_rows: list[dict] = []
    step_rows: list[dict] = []
    if done:
        d = ckpt / f"epoch_{done}"
        state = checkpoint.load_state(d)
        set_peft_model_state_dict(model, load_file(str(d / "adapter_model.safetensors")))
        optimizer.load_state_dict(state[Key.OPTIMIZER])
        scheduler.load_state_dict(state[Key.SCHEDULER])
        if scaler is not None and state.get(Key.SCALER):
            scaler.load_state_dict(state[Key.SCALER])
        epoch_rows, step_rows = state[Key.EPOCHS], state[Key.STEPS]
        by_rank = state.get(Key.RNG_BY_RANK) or [state[Key.RNG]]
        checkpoint.set_rng_state(by_rank[dist.rank] if len(by_rank) == dist.world else state[Key.RNG])
        if len(by_rank) != dist.world and dist.main:
            print(f"note: the checkpoint was written by {len(by_rank)} process(es), this run has {dist.world}: "
                  "the data order is the same, dropout draws are not", flush=True)
        if dist.main:
            print(f"Resuming from the checkpoint of epoch {done}/{cfg.train.epochs} in {d}", flush=True)
            # The tables again, from the checkpoint: a kill between its folder and the tables (or a damaged
            # table) must not leave them behind the checkpoint the run goes on from.
            on_epoch(pd.DataFrame(epoch_rows), pd.DataFrame(step_rows),
                     {"epochs_done": done, "epochs_total": cfg.train.epochs,
                      "finetune_seconds": float(sum(r["seconds"] for r in epoch_rows))})

    # Where the curve starts: validation loss and accuracy before any training (a resumed run keeps
    # the first process's figures; measuring now would measure the trained adapter).
    start_metrics = state.get(Key.BEFORE_TRAINING) if done else \
        _validate(cfg, model, tokenizer, va_prompts, va_labels, device, "validate (start)")

    ran = levers.apply(cfg, model, device, dtype)
    orders = [epoch_order(len(seqs), cfg.seed, e) for e in range(1, cfg.train.epochs + 1)]
    widths = levers.bucket_widths(cfg, [len(s) for s in seqs], micro, orders)
    step = make_step(model, params, device=device, dtype=dtype, scaler=scaler, graphs=cfg.train.cuda_graphs,
                     accumulate=accumulation > 1)
    global_step = done * steps_per_epoch
    for epoch in range(done + 1, cfg.train.epochs + 1):
        order = epoch_order(len(seqs), cfg.seed, epoch)
        plan = _plan(cfg, seqs, labels, order, micro, dist, tokenizer.pad_token_id, pin=device.type == "cuda",
                     widths=widths)
        model.train()
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        losses, tokens, padded = [], 0, 0
        log = _StepLog(epoch, step_rows, losses)
        progress = bar(plan, desc=f"epoch {epoch}/{cfg.train.epochs}", unit="step", disable=not dist.main)
        for s, (step_tokens, micro_batches) in enumerate(progress):
            step.zero_grad(optimizer)
            loss = torch.zeros((), device=device)
            for j, (batch, y, weight) in enumerate(micro_batches):
                loss = loss + weight * step(batch.to(device), y.to(device, non_blocking=True), weight, first=j == 0)
                padded += batch.input_ids.numel()
            if not micro_batches:
                step.no_micro_batch()
            if dist.active:
                step.all_reduce_grads()
                distributed.all_reduce_(loss)
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
            global_step += 1
            tokens += step_tokens
            log.add(global_step, loss, grad_norm, float(scheduler.get_last_lr()[0]), step_tokens)
            if len(log.pending) >= HOST_READ_EVERY or s == len(plan) - 1:
                progress.set_postfix(loss=f"{log.read():.3f}", refresh=False)
            if on_step is not None:
                on_step(epoch, global_step)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        peak = None
        if device.type == "cuda":  # the largest of the ranks' peaks
            peak = float(distributed.all_reduce_(torch.tensor(float(torch.cuda.max_memory_allocated()),
                                                              device=device), "max"))
        padded = int(distributed.all_reduce_(torch.tensor(padded, device=device)))

        metrics = _validate(cfg, model, tokenizer, va_prompts, va_labels, device, f"validate epoch {epoch}")
        epoch_rows.append({"epoch": epoch, "train_loss": float(np.mean(losses)), **metrics,
                           "seconds": seconds, "tokens": tokens, "padded_tokens": padded,
                           "tokens_per_s": tokens / seconds, "peak_allocated_bytes": peak})
        rngs = distributed.gather_objects(checkpoint.rng_state())
        if dist.main:
            def write_epoch(folder: Path, epoch=epoch, order=order, rngs=rngs):
                model.save_pretrained(folder)
                provenance.finish_adapter(folder, cfg, model, dtype)
                torch.save({Key.OPTIMIZER: optimizer.state_dict(), Key.SCHEDULER: scheduler.state_dict(),
                            Key.SCALER: scaler.state_dict() if scaler is not None else None,
                            Key.RNG: rngs[0], Key.RNG_BY_RANK: rngs, Key.BEFORE_TRAINING: start_metrics,
                            Key.EPOCHS: epoch_rows, Key.STEPS: step_rows, Key.ORDER: order},
                           folder / checkpoint.STATE_FILE)
                checkpoint.write_meta(folder, epoch, fingerprint)

            checkpoint.write_dir(ckpt / f"epoch_{epoch}", write_epoch)
            on_epoch(pd.DataFrame(epoch_rows), pd.DataFrame(step_rows),
                     {"epochs_done": epoch, "epochs_total": cfg.train.epochs,
                      "finetune_seconds": float(sum(r["seconds"] for r in epoch_rows))})
        distributed.barrier()
        checkpoint.crash_point(epoch)
        r = epoch_rows[-1]
        if dist.main:
            print(f"epoch {epoch}: train loss {r['train_loss']:.4f}, val loss {r['val_loss']:.4f}, "
                  f"val accuracy {r['val_accuracy']:.3f}, {seconds:.1f} s, {r['tokens_per_s']:.0f} tokens/s",
                  flush=True)

    # The final adapter in peft's format, loadable with PeftModel.from_pretrained.
    if dist.main:
        def write_final(folder: Path):
            model.save_pretrained(folder)
            provenance.finish_adapter(folder, cfg, model, dtype, tokenizer)
            checkpoint.write_meta(folder, cfg.train.epochs, fingerprint)

        checkpoint.write_dir(ckpt / "final", write_final)
    distributed.barrier()
    return {"epochs_done": cfg.train.epochs, "before_training": start_metrics, "epochs_total": cfg.train.epochs,
            "finetune_seconds": float(sum(r["seconds"] for r in epoch_rows)),
            "batch": {"effective": cfg.train.batch_size, "micro": micro, "processes": dist.world,
                      "accumulation": accumulation},
            "optimizer": {"name": type(optimizer).__name__, "fused": bool(optimizer.defaults.get("fused"))},
            "step": {"cuda_graphs": step.graphed and not getattr(step, "fallback", None),
                     "graphs_captured": len(getattr(step, "graphs", {})),
                     "graph_fallback": getattr(step, "fallback", None), "packing": cfg.train.packing,
                     **ran, "length_buckets": widths},
            "data_order": f"torch.randperm per epoch, generator seed = seed*1000003 + epoch; sha256 "
                          f"{bytes_sha256(json.dumps(orders).encode())[:16]}",
            "checkpoints": str(ckpt.relative_to(cfg.path(".")) if ckpt.is_relative_to(cfg.path(".")) else ckpt)}
