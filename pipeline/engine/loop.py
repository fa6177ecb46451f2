"""Fine-tuning: a plain PyTorch loop over one process or several, resumable per epoch.

Each optimizer step takes `train.batch_size` rows (the effective batch) from one global order. They are
cut into micro-batches that are dealt out to the processes (`pipeline.engine.distributed`); each micro-batch
runs forward + backward eagerly or as a CUDA-graph replay (`pipeline.engine.step`), weighted by its share of
the step's rows, and the gradients are summed over processes before clipping and the optimizer step. So
1 process or N, with or without accumulation, compute the same update from the same rows.

After every epoch rank 0 writes a checkpoint (`pipeline.engine.checkpoint`), and inside an epoch a mid-epoch
state every `train.checkpoint_every_steps` steps or `..._minutes` minutes. A killed run resumes from the latest
of them and ends with the same losses and weights as an uninterrupted one: the data order of epoch e comes from
its own generator (seed, e), a mid-epoch state records how many of its steps are done, and every rank's RNG,
the optimizer, scheduler and loss scaler are restored from the state.

Each step's batches are built when the loop reaches it, from token ids that are memory-mapped
(`pipeline.model.token_cache`): the host never holds an epoch of batches, so its memory does not grow with
the training set (issue 20: 550k rows).
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

from pipeline.engine import checkpoint, distributed, levers, resume
from pipeline.engine.checkpoint import Key
from pipeline.engine.predict import encode, predict_head
from pipeline.engine.step import make_step
from pipeline.engine.step_log import HOST_READ_EVERY, StepLog, TrainingDiverged  # noqa: F401 (the CLI catches it here)
from pipeline.model import batching, buckets, provenance
from pipeline.telemetry.progress import bar
from records.errors import StageError
from records.hashing import bytes_sha256


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """Row order of one epoch: its own generator, so resuming at any epoch gives the same order."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def _scheduler(cfg, optimizer, total_steps: int):
    from transformers import get_scheduler
    name = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}[cfg.train.scheduler]
    return get_scheduler(name, optimizer, num_warmup_steps=int(round(cfg.train.warmup_ratio * total_steps)),
                         num_training_steps=total_steps)


def _steps(cfg, seqs, labels, order, micro: int, dist, pad_id: int, pin: bool, skip: int = 0,
           widths: list[int] | None = None):
    """One epoch's optimizer steps from step `skip` on, each built only when the loop asks for it: its real
    tokens over all ranks, and this rank's micro-batches as (batch, labels, weight). Building a step's few
    micro-batches takes well under a millisecond, while the GPU still runs the steps queued before it.
    `widths`: the run's length buckets (pipeline.engine.levers.bucket_widths), or None for widths rounded to
    pad_to_multiple_of."""
    bs = cfg.train.batch_size
    for start in range(skip * bs, len(order), bs):
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
        lengths = getattr(seqs, "lengths", None)  # a token cache knows them without reading the ids again
        yield int(lengths[rows].sum()) if lengths is not None else sum(len(seqs[i]) for i in rows), mine


def _plan(cfg, seqs, labels, order, micro: int, dist, pad_id: int, pin: bool) -> list[tuple[int, list]]:
    """A whole epoch's steps at once (tests of the step weighting read them all)."""
    return list(_steps(cfg, seqs, labels, order, micro, dist, pad_id, pin))


def _validate(cfg, model, tokenizer, prompts, labels, device, desc: str) -> dict:
    probs, loss = predict_head(model, tokenizer, prompts, labels, batch_size=cfg.eval.batch_size,
                               max_length=cfg.tokenizer.max_length, multiple=cfg.train.pad_to_multiple_of,
                               device=device, desc=desc)
    return {"val_loss": loss, "val_accuracy": float((probs.argmax(1) == labels).mean())}


def train(cfg, model, tokenizer, prompter, samples: pd.DataFrame, *, device, dtype, fingerprint: str,
          restart: bool, on_epoch, on_step=None, tokens=None) -> dict:
    """Train `model` (a peft model) in place, on this process's share of every step.

    `on_epoch(epochs_df, steps_df, info)` persists progress (called on rank 0 only); `on_step(epoch,
    global_step)`, if given, runs after every optimizer step (the benchmark's profiler). `tokens`: the training
    rows' token ids (a `pipeline.model.token_cache.TokenCache`); None tokenizes them here, in memory. Returns a
    summary dict for the manifest.
    """
    dist = distributed.current()
    ckpt = cfg.checkpoint_path
    if restart and dist.main:
        shutil.rmtree(ckpt, ignore_errors=True)
    if dist.main:
        ckpt.mkdir(parents=True, exist_ok=True)
    distributed.barrier()

    tr = samples[samples["split"] == "train"].reset_index(drop=True)
    va = samples[samples["split"] == "validation"].reset_index(drop=True)
    seqs = tokens if tokens is not None else \
        encode(tokenizer, prompter.many(tr["premise"], tr["hypothesis"]), cfg.tokenizer.max_length)
    labels = tr["label"].to_numpy()
    del tr
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
    mid = None if restart else checkpoint.mid_epoch_state(ckpt, fingerprint, done + 1)
    epoch_rows: list[dict] = []
    step_rows: list[dict] = []
    state, position = None, None
    if mid is not None or done:
        d = mid if mid is not None else ckpt / f"epoch_{done}"
        state = resume.restore(d, model, optimizer, scheduler, scaler, dist)
        epoch_rows, step_rows = state[Key.EPOCHS], state[Key.STEPS]
        position = state.get(Key.POSITION) if mid is not None else None
        if position is not None and state[Key.ORDER] != epoch_order(len(seqs), cfg.seed, done + 1):
            raise StageError(f"{d}: its data order is not this run's (fix: run with --restart)")
        if dist.main:
            where = f"epoch {done}/{cfg.train.epochs}" if position is None else \
                f"step {position['step']}/{steps_per_epoch} of epoch {done + 1}/{cfg.train.epochs}"
            print(f"Resuming from the checkpoint of {where} in {d}", flush=True)
        if dist.main and done:
            # The tables again, from the checkpoint: a kill between its folder and the tables (or a damaged
            # table) must not leave them behind the checkpoint the run goes on from.
            on_epoch(pd.DataFrame(epoch_rows), pd.DataFrame(step_rows),
                     {"epochs_done": done, "epochs_total": cfg.train.epochs,
                      "finetune_seconds": float(sum(r["seconds"] for r in epoch_rows))})

    # Where the curve starts: validation loss and accuracy before any training (a resumed run keeps
    # the first process's figures; measuring now would measure the trained adapter).
    start_metrics = state.get(Key.BEFORE_TRAINING) if state is not None else \
        _validate(cfg, model, tokenizer, va_prompts, va_labels, device, "validate (start)")

    def progress_state(order, rngs, **extra) -> dict:
        """state.pt's content now: what a resumed run needs to go on exactly as this one would."""
        return {Key.OPTIMIZER: optimizer.state_dict(), Key.SCHEDULER: scheduler.state_dict(),
                Key.SCALER: scaler.state_dict() if scaler is not None else None,
                Key.RNG: rngs[0], Key.RNG_BY_RANK: rngs, Key.BEFORE_TRAINING: start_metrics,
                Key.EPOCHS: epoch_rows, Key.STEPS: step_rows, Key.ORDER: order, **extra}

    ran = levers.apply(cfg, model, device, dtype)
    orders = [epoch_order(len(seqs), cfg.seed, e) for e in range(1, cfg.train.epochs + 1)]
    widths = levers.bucket_widths(cfg, seqs, micro, orders)
    step = make_step(model, params, device=device, dtype=dtype, scaler=scaler, graphs=cfg.train.cuda_graphs,
                     accumulate=accumulation > 1)
    cadence = checkpoint.Cadence(cfg.train.checkpoint_every_steps, cfg.train.checkpoint_every_minutes)
    for epoch in range(done + 1, cfg.train.epochs + 1):
        order = orders[epoch - 1]
        at = resume.position_of(position if epoch == done + 1 else None, dist)
        skip = at["step"]
        global_step = (epoch - 1) * steps_per_epoch + skip
        model.train()
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        losses = [r["loss"] for r in step_rows if r["epoch"] == epoch]  # a resumed epoch's steps so far
        tokens, padded = at["tokens"], at["padded"]
        log = StepLog(epoch, step_rows, losses)
        log.in_epoch = skip
        progress = bar(_steps(cfg, seqs, labels, order, micro, dist, tokenizer.pad_token_id,
                              pin=device.type == "cuda", skip=skip, widths=widths),
                       total=steps_per_epoch, initial=skip, desc=f"epoch {epoch}/{cfg.train.epochs}", unit="step",
                       disable=not dist.main)
        for s, (step_tokens, micro_batches) in enumerate(progress, start=skip):
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
            read = len(log.pending) >= HOST_READ_EVERY or s == steps_per_epoch - 1
            if read:
                progress.set_postfix(loss=f"{log.read():.3f}", refresh=False)
            if s < steps_per_epoch - 1 and cadence.due(global_step, checked=read):
                if log.pending:
                    log.read()  # the state carries every step's record up to here
                rngs = distributed.gather_objects((checkpoint.rng_state(), padded))
                if dist.main:
                    here = {"epoch": epoch, "step": s + 1, "tokens": tokens, "padded_by_rank": [p for _, p in rngs],
                            "seconds": at["seconds"] + time.perf_counter() - t0}
                    resume.save(ckpt, model, progress_state(order, [r for r, _ in rngs], **{Key.POSITION: here}),
                                epoch, s + 1, fingerprint)
                distributed.barrier()
                cadence.restart_clock()
            if on_step is not None:
                on_step(epoch, global_step)
            checkpoint.crash_point(step=global_step)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = at["seconds"] + time.perf_counter() - t0
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
                torch.save(progress_state(order, rngs), folder / checkpoint.STATE_FILE)
                checkpoint.write_meta(folder, epoch, fingerprint)

            checkpoint.write_dir(ckpt / f"epoch_{epoch}", write_epoch)
            checkpoint.drop_mid_epoch(ckpt)
            on_epoch(pd.DataFrame(epoch_rows), pd.DataFrame(step_rows),
                     {"epochs_done": epoch, "epochs_total": cfg.train.epochs,
                      "finetune_seconds": float(sum(r["seconds"] for r in epoch_rows))})
        distributed.barrier()
        cadence.restart_clock()
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
