"""Predictions: the classification head, and the zero-shot causal LM scoring the label words.

Rows are sorted by length before batching (less padding) and put back in order afterwards.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from pipeline.progress import bar
from pipeline.schema import LABELS, PROB_COLUMNS


def _pad_to(n: int, multiple: int) -> int:
    return int(math.ceil(n / multiple) * multiple)


def encode(tokenizer, prompts: list[str], max_length: int) -> list[list[int]]:
    return [ids[:max_length] for ids in tokenizer(prompts, add_special_tokens=True)["input_ids"]]


def collate(seqs: list[list[int]], pad_id: int, multiple: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded batch, length rounded up to `multiple` so the GPU sees few distinct shapes."""
    width = _pad_to(max(len(s) for s in seqs), multiple)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids.to(device), mask.to(device)


def last_token_logits(model, ids, mask) -> torch.Tensor:
    """Sequence-classification logits read at each row's last real token.

    We pick the position from the attention mask ourselves rather than from pad_token_id: when the pad
    token is EOS (common for decoder-only models) transformers' own search can land on the wrong token.
    """
    out = model(input_ids=ids, attention_mask=mask)
    logits = out.logits
    if logits.dim() == 3:  # a model that returns per-token logits
        last = mask.sum(dim=1) - 1
        logits = logits[torch.arange(len(ids), device=ids.device), last]
    return logits.float()


def _batches(order: np.ndarray, size: int):
    for start in range(0, len(order), size):
        yield order[start : start + size]


@torch.no_grad()
def predict_head(model, tokenizer, prompts: list[str], labels: np.ndarray | None, *, batch_size: int,
                 max_length: int, multiple: int, device, desc: str) -> tuple[np.ndarray, float | None]:
    """-> (probabilities [n, 3], mean cross-entropy loss if labels are given)."""
    model.eval()
    seqs = encode(tokenizer, prompts, max_length)
    order = np.argsort([len(s) for s in seqs], kind="stable")
    probs = np.zeros((len(seqs), len(LABELS)))
    loss_sum = 0.0
    for chunk in bar(list(_batches(order, batch_size)), desc=desc, unit="batch"):
        ids, mask = collate([seqs[i] for i in chunk], tokenizer.pad_token_id, multiple, device)
        logits = last_token_logits(model, ids, mask)
        probs[chunk] = F.softmax(logits, dim=-1).cpu().numpy()
        if labels is not None:
            y = torch.as_tensor(labels[chunk], device=logits.device)
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
    return probs, (loss_sum / len(seqs) if labels is not None else None)


@torch.no_grad()
def predict_zeroshot(model, tokenizer, prompts: list[str], label_words: list[str], *, batch_size: int,
                     max_length: int, multiple: int, device, desc: str) -> np.ndarray:
    """Score each label word as the continuation of the prompt with the causal LM.

    A label's score is the summed log-probability of its tokens (" entailment" may be several tokens);
    the three scores are turned into probabilities with a softmax over the labels.
    """
    model.eval()
    word_ids = [tokenizer(" " + w, add_special_tokens=False)["input_ids"] for w in label_words]
    prompt_ids = encode(tokenizer, prompts, max_length)
    items = [(r, k) for r in range(len(prompts)) for k in range(len(label_words))]
    seqs = [prompt_ids[r] + word_ids[k] for r, k in items]
    order = np.argsort([len(s) for s in seqs], kind="stable")
    scores = np.zeros(len(items))
    for chunk in bar(list(_batches(order, batch_size)), desc=desc, unit="batch"):
        ids, mask = collate([seqs[i] for i in chunk], tokenizer.pad_token_id, multiple, device)
        logp = F.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        for row, i in enumerate(chunk):
            r, k = items[i]
            start = len(prompt_ids[r])
            targets = torch.tensor(word_ids[k], device=logp.device)
            # token t is predicted by the logits at position t-1
            scores[i] = logp[row, start - 1 : start - 1 + len(targets)].gather(1, targets[:, None]).sum().item()
    return softmax_rows(scores.reshape(len(prompts), len(label_words)))


def softmax_rows(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def to_frame(samples: pd.DataFrame, probs: np.ndarray, model_name: str) -> pd.DataFrame:
    df = pd.DataFrame({"split": samples["split"].to_numpy(), "idx": samples["idx"].to_numpy(),
                       "model": model_name, "pred": probs.argmax(axis=1).astype("int64")})
    for j, col in enumerate(PROB_COLUMNS):
        df[col] = probs[:, j].astype("float64")
    return df
