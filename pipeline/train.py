"""Fine-tuning: a plain PyTorch loop under accelerate (so multi-GPU can follow), resumable per epoch.

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
import torch.nn.functional as F

from pipeline.predict import collate, encode, last_token_logits, predict_head
from pipeline.progress import bar


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: stop instead of writing garbage."""


MIXED_PRECISION = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "no"}


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
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


def train(cfg, model, tokenizer, prompter, samples: pd.DataFrame, *, device, dtype, fingerprint: str,
          restart: bool, on_epoch) -> dict:
    """Train `model` (a peft model) in place. `on_epoch(epochs_df, steps_df, info)` persists progress.

    Returns a summary dict for the manifest.
    """
    from accelerate import Accelerator
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    ckpt = cfg.checkpoint_path
    if restart:
        shutil.rmtree(ckpt, ignore_errors=True)
    ckpt.mkdir(parents=True, exist_ok=True)

    tr = samples[samples["split"] == "train"].reset_index(drop=True)
    va = samples[samples["split"] == "validation"].reset_index(drop=True)
    max_len, multiple = cfg.tokenizer.max_length, cfg.train.pad_to_multiple_of
    seqs = encode(tokenizer, prompter.many(tr["premise"], tr["hypothesis"]), max_len)
    labels = tr["label"].to_numpy()
    va_prompts = prompter.many(va["premise"], va["hypothesis"])
    va_labels = va["label"].to_numpy()

    bs = cfg.train.batch_size
    steps_per_epoch = math.ceil(len(seqs) / bs)
    total_steps = steps_per_epoch * cfg.train.epochs

    acc = Accelerator(mixed_precision=MIXED_PRECISION[dtype], cpu=device.type == "cpu")
    params = [p for p in model.parameters() if p.requires_grad]
    fused = cfg.train.fused_optimizer and device.type == "cuda"
    optimizer = torch.optim.AdamW(params, lr=cfg.train.learning_rate, weight_decay=cfg.train.weight_decay,
                                  fused=fused or None)
    scheduler = _scheduler(cfg, optimizer, total_steps)

    done = 0 if restart else completed_epochs(ckpt, fingerprint)
    epoch_rows: list[dict] = []
    step_rows: list[dict] = []
    if done:
        d = ckpt / f"epoch_{done}"
        state = torch.load(d / "state.pt", map_location="cpu", weights_only=False)
        set_peft_model_state_dict(model, load_file(str(d / "adapter_model.safetensors")))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        epoch_rows, step_rows = state["epochs"], state["steps"]
        print(f"Resuming from the checkpoint of epoch {done}/{cfg.train.epochs} in {d}", flush=True)

    model, optimizer = acc.prepare(model, optimizer)
    if done:
        if acc.scaler is not None and state.get("scaler"):
            acc.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])

    # Where the curve starts: validation loss and accuracy before any training (a resumed run keeps
    # the first process's figures; measuring now would measure the trained adapter).
    if done:
        start_metrics = state.get("before_training")
    else:
        va_probs, va_loss = predict_head(model, tokenizer, va_prompts, va_labels, batch_size=cfg.eval.batch_size,
                                         max_length=max_len, multiple=multiple, device=device,
                                         desc="validate (start)")
        start_metrics = {"val_loss": va_loss, "val_accuracy": float((va_probs.argmax(1) == va_labels).mean())}

    global_step = done * steps_per_epoch
    for epoch in range(done + 1, cfg.train.epochs + 1):
        order = epoch_order(len(seqs), cfg.seed, epoch)
        model.train()
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        losses, tokens, padded = [], 0, 0
        progress = bar(range(steps_per_epoch), desc=f"epoch {epoch}/{cfg.train.epochs}", unit="step")
        for s in progress:
            chunk = order[s * bs : (s + 1) * bs]
            ids, mask = collate([seqs[i] for i in chunk], tokenizer.pad_token_id, multiple, device)
            y = torch.as_tensor(labels[chunk], device=device)
            with acc.autocast():
                logits = last_token_logits(model, ids, mask)
            loss = F.cross_entropy(logits, y)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise TrainingDiverged(
                    f"train: loss became {loss_value} at epoch {epoch}, step {s + 1}; nothing of this epoch "
                    f"was saved (fix: lower train.learning_rate, or use quantization.compute_dtype: bfloat16 "
                    f"or float32 if float16 overflows)")
            acc.backward(loss)
            grad_norm = float("nan")
            if cfg.train.max_grad_norm > 0:
                grad_norm = float(acc.clip_grad_norm_(params, cfg.train.max_grad_norm))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            global_step += 1
            n_tok = int(mask.sum().item())
            tokens += n_tok
            padded += int(mask.numel())
            losses.append(loss_value)
            step_rows.append({"step": global_step, "epoch": epoch, "loss": loss_value,
                              "lr": float(scheduler.get_last_lr()[0]), "grad_norm": grad_norm, "tokens": n_tok})
            progress.set_postfix(loss=f"{loss_value:.3f}", refresh=False)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        peak = float(torch.cuda.max_memory_allocated()) if device.type == "cuda" else None

        va_probs, va_loss = predict_head(model, tokenizer, va_prompts, va_labels, batch_size=cfg.eval.batch_size,
                                         max_length=max_len, multiple=multiple, device=device,
                                         desc=f"validate epoch {epoch}")
        epoch_rows.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": va_loss,
                           "val_accuracy": float((va_probs.argmax(1) == va_labels).mean()),
                           "seconds": seconds, "tokens": tokens, "padded_tokens": padded,
                           "tokens_per_s": tokens / seconds, "peak_allocated_bytes": peak})

        def write_epoch(folder: Path, epoch=epoch, order=order):
            acc.unwrap_model(model).save_pretrained(folder)
            torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "scaler": acc.scaler.state_dict() if acc.scaler is not None else None,
                        "rng": _rng_state(), "before_training": start_metrics, "epochs": epoch_rows, "steps": step_rows, "order": order},
                       folder / "state.pt")
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
        acc.unwrap_model(model).save_pretrained(folder)
        (folder / "meta.json").write_text(json.dumps({"epoch": cfg.train.epochs, "fingerprint": fingerprint}))

    _atomic_dir(ckpt / "final", write_final)
    orders = [epoch_order(len(seqs), cfg.seed, e) for e in range(1, cfg.train.epochs + 1)]
    return {"epochs_done": cfg.train.epochs, "before_training": start_metrics, "epochs_total": cfg.train.epochs,
            "finetune_seconds": float(sum(r["seconds"] for r in epoch_rows)),
            "data_order": f"torch.randperm per epoch, generator seed = seed*1000003 + epoch; sha256 "
                          f"{hashlib.sha256(json.dumps(orders).encode()).hexdigest()[:16]}",
            "checkpoints": str(ckpt.relative_to(cfg.path(".")) if ckpt.is_relative_to(cfg.path(".")) else ckpt)}
