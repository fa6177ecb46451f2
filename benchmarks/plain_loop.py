"""The reference: a QLoRA loop written the way the peft / bitsandbytes docs show it, nothing tuned.

- the model: 4-bit NF4 through BitsAndBytesConfig, eager attention, Phi's own `gelu_new`,
  `prepare_model_for_kbit_training` (which upcasts every non-quantized weight to float32), LoRA via
  `get_peft_model`;
- each step: pad the micro-batch to its longest row, `model(input_ids, attention_mask)` under autocast,
  cross-entropy on transformers' pooled logits, `loss.backward()`, clip, plain (unfused) AdamW, the
  scheduler.

It trains the same rows in the same order (`pipeline.engine.loop.epoch_order`), with the same seed, learning
rate and schedule as the pipeline's trainer, so the two can be compared step by step (the benchmark and
tests/test_loss_agreement.py do). The model is built by the caller (`reference_config` + the pipeline's
loaders), so both start from the same weights and the same LoRA initialisation.
"""
from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F


def reference_config(cfg):
    """The run's config, changed to the docs' recipe: eager attention, gelu_new, prepare_model_for_kbit."""
    import dataclasses
    model = dataclasses.replace(cfg.model, attn_implementation="eager", fast_gelu=False, half_precision_norms=False)
    train = dataclasses.replace(cfg.train, prepare_kbit=True, fused_optimizer=False, packing=False,
                                cuda_graphs=False)
    return dataclasses.replace(cfg, model=model, train=train)


def pad_longest(seqs: list[list[int]], pad_id: int, device):
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
    return ids.to(device), mask.to(device)


def train_plain(cfg, model, seqs: list[list[int]], labels, *, pad_id: int, device, dtype, epochs: int,
                max_steps: int | None = None, on_step=None) -> list[dict]:
    """Train `model` in place; returns one record per step (loss, tokens, seconds since the start)."""
    from pipeline.engine.loop import _scheduler, epoch_order

    bs = cfg.train.batch_size
    steps_per_epoch = math.ceil(len(seqs) / bs)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.train.learning_rate, weight_decay=cfg.train.weight_decay)
    scheduler = _scheduler(cfg, optimizer, steps_per_epoch * cfg.train.epochs)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    half = dtype != torch.float32
    records, t0 = [], time.perf_counter()
    model.train()
    for epoch in range(1, epochs + 1):
        order = epoch_order(len(seqs), cfg.seed, epoch)
        for s in range(steps_per_epoch):
            chunk = order[s * bs:(s + 1) * bs]
            ids, mask = pad_longest([seqs[i] for i in chunk], pad_id, device)
            y = torch.as_tensor(labels[chunk], device=device)
            with torch.autocast(device.type, dtype=dtype, enabled=half):
                logits = model(input_ids=ids, attention_mask=mask).logits
            loss = F.cross_entropy(logits.float(), y)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if cfg.train.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.train.max_grad_norm)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            records.append({"epoch": epoch, "step": len(records) + 1, "loss": loss.item(),
                            "tokens": int(mask.sum()), "padded_tokens": int(mask.numel()),
                            "seconds": time.perf_counter() - t0})
            if on_step is not None:
                on_step(records[-1])
            if max_steps is not None and len(records) >= max_steps:
                return records
    return records
