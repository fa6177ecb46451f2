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


def label_rows(prompt: list[int], words: list[list[int]]) -> tuple[list[int], list[int], list[int]]:
    """One row scoring every label word after `prompt` in one forward pass: the prompt, then each word's tokens.
    -> (ids, positions, groups). Each word's tokens take the positions they would have right after the prompt
    (so they all start at len(prompt)); group 0 is the prompt, k + 1 is word k: a word sees the prompt and its
    own earlier tokens, never another word (`word_attention`)."""
    ids, positions, groups = list(prompt), list(range(len(prompt))), [0] * len(prompt)
    for k, w in enumerate(words):
        ids += w
        positions += range(len(prompt), len(prompt) + len(w))
        groups += [k + 1] * len(w)
    return ids, positions, groups


def word_attention(groups: torch.Tensor) -> torch.Tensor:
    """[rows, width, width] bool, True = attend, for rows of `label_rows` groups (-1: padding): causal, within a
    group, and every word sees the whole prompt before it. Padding sees earlier padding (at least itself: a
    query that sees nothing gives NaN)."""
    width = groups.shape[-1]
    q, k = groups[:, :, None], groups[:, None, :]
    causal = torch.ones(width, width, dtype=torch.bool, device=groups.device).tril()
    return causal & ((q == k) | ((k == 0) & (q > 0)))


@torch.no_grad()
def predict_zeroshot(model, tokenizer, prompts: list[str], label_words: list[str], *, batch_size: int,
                     max_length: int, multiple: int, device, desc: str) -> np.ndarray:
    """Score each label word as the continuation of the prompt with the causal LM.

    A label's score is the summed log-probability of its tokens (" entailment" may be several tokens);
    the three scores are turned into probabilities with a softmax over the labels. One forward pass per prompt
    scores all the words (`label_rows`): a pass per word would compute the prompt once per word.
    """
    model.eval()
    dtype = compute_dtype(model)
    word_ids = [tokenizer(" " + w, add_special_tokens=False)["input_ids"] for w in label_words]
    prompt_ids = encode(tokenizer, prompts, max_length)
    rows = [label_rows(p, word_ids) for p in prompt_ids]
    mine = _shard(np.argsort([len(r[0]) for r in rows], kind="stable"))
    scores = np.zeros((len(prompts), len(label_words)))
    for chunk in bar(list(_batches(mine, batch_size)), desc=desc, unit="batch", disable=not distributed.current().main):
        width = batching.round_up(max(len(rows[i][0]) for i in chunk), multiple)
        ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
        positions = torch.arange(width, dtype=torch.long).repeat(len(chunk), 1)  # padding: in range, unused
        groups = torch.full((len(chunk), width), -1, dtype=torch.long)
        at_rows, at, targets, owner = [], [], [], []
        for row, i in enumerate(chunk):
            r_ids, r_pos, r_groups = rows[i]
            n, last = len(r_ids), len(prompt_ids[i]) - 1
            ids[row, :n], positions[row, :n], groups[row, :n] = (torch.tensor(v) for v in (r_ids, r_pos, r_groups))
            start = last + 1
            for k, w in enumerate(word_ids):  # token 0 of a word is predicted at the prompt's last token, token t
                for t, token in enumerate(w):  # at the word's token t - 1
                    at_rows.append(row)
                    at.append(last if t == 0 else start + t - 1)
                    targets.append(token)
                    owner.append((i, k))
                start += len(w)
        batch = batching.Batch(ids, positions, None, torch.zeros(0, dtype=torch.long), 0, packed=True).to(device)
        with forward.autocast(device, dtype):
            logp = forward.token_logprobs(model, batch, torch.tensor(at_rows, device=device),
                                           torch.tensor(at, device=device), torch.tensor(targets, device=device),
                                           allowed=word_attention(groups).to(device))
        np.add.at(scores, tuple(np.array(owner).T), logp.cpu().numpy())
    scores = _gather(len(prompts), len(label_words), mine, scores[mine], 0.0)[0]
    return softmax_rows(scores)


def softmax_rows(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def to_frame(samples: pd.DataFrame, probs: np.ndarray, model_name: str) -> pd.DataFrame:
    df = pd.DataFrame({"split": samples["split"].to_numpy(), "idx": samples["idx"].to_numpy(),
                       "model": model_name, "pred": probs.argmax(axis=1).astype("int64")})
    for j, col in enumerate(PROB_COLUMNS):
        df[col] = probs[:, j].astype("float64")
    return df
