"""Predictions: the classification head, and the zero-shot causal LM scoring the label words.

Rows are sorted by length before batching (less padding) and put back in order afterwards.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from pipeline.engine import distributed
from pipeline.model import batching, forward
from pipeline.telemetry.progress import bar
from records.schema import LABELS, PROB_COLUMNS


def encode(tokenizer, prompts: list[str], max_length: int) -> list[list[int]]:
    return [ids[:max_length] for ids in tokenizer(prompts, add_special_tokens=True)["input_ids"]]


def compute_dtype(model) -> torch.dtype:
    """The dtype the frozen weights were loaded in (the compute dtype of the run)."""
    return forward.body(model).get_input_embeddings().weight.dtype


def _batches(order: np.ndarray, size: int):
    for start in range(0, len(order), size):
        yield order[start : start + size]


def _shard(order: np.ndarray) -> np.ndarray:
    """This process's rows: every world-th of the length-sorted order, so each rank gets a similar mix."""
    dist = distributed.current()
    return order[dist.rank::dist.world]


def _gather(n: int, width: int, mine: np.ndarray, values: np.ndarray, extra: float) -> tuple[np.ndarray, float]:
    """Every rank's rows back into one [n, width] array (each row predicted exactly once), on every rank."""
    out, total = np.zeros((n, width)), 0.0
    for idx, vals, ex in distributed.gather_objects((mine, values, extra)):
        out[idx] = vals
        total += ex
    return out, total


@torch.no_grad()
def predict_head(model, tokenizer, prompts: list[str], labels: np.ndarray | None, *, batch_size: int,
                 max_length: int, multiple: int, device, desc: str) -> tuple[np.ndarray, float | None]:
    """-> (probabilities [n, 3], mean cross-entropy loss if labels are given).

    Rows are sorted by length so a batch holds rows of about one length (almost no padding); under
    several processes each predicts its share and the shares are gathered."""
    model.eval()
    dtype = compute_dtype(model)
    seqs = encode(tokenizer, prompts, max_length)
    mine = _shard(np.argsort([len(s) for s in seqs], kind="stable"))
    probs = np.zeros((len(mine), len(LABELS)))
    loss_sum = 0.0
    for part in bar(list(_batches(np.arange(len(mine)), batch_size)), desc=desc, unit="batch",
                    disable=not distributed.current().main):
        chunk = mine[part]
        batch = batching.padded([seqs[i] for i in chunk], tokenizer.pad_token_id, multiple).to(device)
        with forward.autocast(device, dtype):
            logits = forward.logits(model, batch)
        probs[part] = F.softmax(logits, dim=-1).cpu().numpy()
        if labels is not None:
            y = torch.as_tensor(labels[chunk], device=logits.device)
            loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
    probs, loss_sum = _gather(len(seqs), len(LABELS), mine, probs, loss_sum)
    return probs, (loss_sum / len(seqs) if labels is not None else None)


@torch.no_grad()
def predict_zeroshot(model, tokenizer, prompts: list[str], label_words: list[str], *, batch_size: int,
                     max_length: int, multiple: int, device, desc: str) -> np.ndarray:
    """Score each label word as the continuation of the prompt with the causal LM.

    A label's score is the summed log-probability of its tokens (" entailment" may be several tokens);
    the three scores are turned into probabilities with a softmax over the labels.
    """
    model.eval()
    dtype = compute_dtype(model)
    word_ids = [tokenizer(" " + w, add_special_tokens=False)["input_ids"] for w in label_words]
    prompt_ids = encode(tokenizer, prompts, max_length)
    items = [(r, k) for r in range(len(prompts)) for k in range(len(label_words))]
    seqs = [prompt_ids[r] + word_ids[k] for r, k in items]
    mine = _shard(np.argsort([len(s) for s in seqs], kind="stable"))
    scores = np.zeros(len(items))
    for chunk in bar(list(_batches(mine, batch_size)), desc=desc, unit="batch", disable=not distributed.current().main):
        batch = batching.padded([seqs[i] for i in chunk], tokenizer.pad_token_id, multiple).to(device)
        rows, positions, targets, owner = [], [], [], []
        for row, i in enumerate(chunk):
            r, k = items[i]
            start = len(prompt_ids[r])
            for t, token in enumerate(word_ids[k]):  # token t of the word is predicted at position start+t-1
                rows.append(row)
                positions.append(start + t - 1)
                targets.append(token)
                owner.append(i)
        with forward.autocast(device, dtype):
            logp = forward.token_logprobs(model, batch, torch.tensor(rows, device=device),
                                           torch.tensor(positions, device=device),
                                           torch.tensor(targets, device=device))
        np.add.at(scores, np.array(owner), logp.cpu().numpy())
    scores = _gather(len(items), 1, mine, scores[mine, None], 0.0)[0][:, 0]
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
