"""The forward passes the pipeline runs: classification logits, and label-word log-probabilities.

Both call the transformer body (`model.model` for Phi and Llama) directly and apply the head only where
it is needed, instead of `model(...)`:
- the classifier reads each sequence at its last real token (the head is applied to n rows, not
  rows x width), which also works for packed rows, where transformers' own "rightmost non-pad token"
  pooling cannot;
- the zero-shot scorer applies the 51,200-word LM head only at the label-word positions, not at every
  position of every row (for a batch of 64 x 96 tokens that is 1.3 GB of float32 logits avoided).
`use_cache=False` everywhere: transformers otherwise builds a key/value cache in every training step.
"""
from __future__ import annotations

import contextlib

import torch

from pipeline.model import attention
from pipeline.model.batching import Batch, block_causal_mask


def _hf(model):
    """The transformers model under a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def body(model):
    hf = _hf(model)
    return getattr(hf, hf.base_model_prefix)


def classifier_head(model):
    hf = _hf(model)
    for name in ("score", "classifier"):
        if hasattr(hf, name):
            return getattr(hf, name)
    raise AttributeError(f"{type(hf).__name__} has no classification head (score / classifier)")


def autocast(device: torch.device, dtype: torch.dtype, cache: bool = True):
    """Mixed precision for half compute dtypes (frozen weights are half, trainable ones float32).

    `cache=False` while a CUDA graph is captured: autocast's cast cache must not outlive a capture."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype, cache_enabled=cache)


def _mask(model, batch: Batch):
    if not batch.packed:
        return None  # right padding + causal attention: no real token sees a pad
    if attention.active(model):  # FlexAttention: the same mask as tiles it can skip (pipeline/model/attention.py)
        return attention.block_mask(batch.segments)
    eager = getattr(_hf(model).config, "_attn_implementation", "sdpa") == "eager"
    return block_causal_mask(batch.segments, torch.float32 if eager else None)


def _hidden(model, batch: Batch) -> torch.Tensor:
    # Padded rows leave positions to transformers (0..width-1, the same): given explicitly, they would
    # trigger its packed-sequence detection, which reads a GPU value on the host and so cannot be
    # captured in a CUDA graph. Packed rows bring their mask, which skips that detection.
    return body(model)(input_ids=batch.input_ids, position_ids=batch.position_ids if batch.packed else None,
                       attention_mask=_mask(model, batch), use_cache=False).last_hidden_state


def logits(model, batch: Batch) -> torch.Tensor:
    """[n, num_labels] float32 logits, one row per sequence, read at its last real token."""
    hidden = _hidden(model, batch)
    last = hidden.reshape(-1, hidden.shape[-1])[batch.last]
    return classifier_head(model)(last).float()


def token_logprobs(model, batch: Batch, rows: torch.Tensor, positions: torch.Tensor,
                   targets: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
    """log p(targets[k] | tokens before positions[k] + 1) of a causal LM, for each k, as float32.

    Position t's hidden state predicts token t+1, so `positions` are the places *before* the targets.
    `allowed` ([rows, width, width] bool, True = attend) gives the attention explicitly, with the batch's own
    position ids: the zero-shot scorer lays the label words side by side after one prompt."""
    if allowed is None:
        hidden = _hidden(model, batch)
    else:
        eager = getattr(_hf(model).config, "_attn_implementation", "sdpa") == "eager"
        mask = allowed[:, None] if not eager else torch.zeros(allowed[:, None].shape, device=allowed.device).masked_fill(
            ~allowed[:, None], torch.finfo(torch.float32).min)
        hidden = body(model)(input_ids=batch.input_ids, position_ids=batch.position_ids, attention_mask=mask,
                             use_cache=False).last_hidden_state
    picked = hidden[rows, positions]
    logp = torch.log_softmax(_hf(model).get_output_embeddings()(picked).float(), dim=-1)
    return logp.gather(1, targets[:, None]).squeeze(1)
