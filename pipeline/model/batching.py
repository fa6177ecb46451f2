"""Turning token sequences into model inputs: padded batches, or micro-batches packed into one row.

Both layouts give every sequence exactly the attention it would have alone, so the logits (and the
loss) are the same function of the weights; they differ only in how much padding the GPU computes.

- padded: right-padded rows, no attention mask. Right padding plus causal attention already keeps every
  real token from seeing a pad (pads come after it), and without a mask PyTorch can use its fused
  causal attention kernels. The classifier reads each row at its last real token.
- packed: the micro-batch's sequences laid end to end in one row, each with its own positions
  0..len-1 and a block-diagonal causal mask, so no sequence sees another. A micro-batch of 8 SNLI
  prompts (~62 tokens each, longest ~90) is ~500 real tokens; padded to the longest it is ~770, so
  packing cuts the computed tokens by about a third.

Widths are rounded up to a multiple (`train.pad_to_multiple_of`) so only a handful of shapes occur: each
shape costs cuBLAS heuristics once, and one CUDA graph capture when graphs are on.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def round_up(n: int, multiple: int) -> int:
    return int(math.ceil(n / multiple) * multiple)


@dataclass
class Batch:
    input_ids: torch.Tensor          # [rows, width] long
    position_ids: torch.Tensor       # [rows, width] long
    segments: torch.Tensor | None    # packed: [rows, width] sequence number per token, -1 for padding
    last: torch.Tensor               # [n] flat index (row * width + col) of each sequence's last token
    real_tokens: int                 # tokens that are not padding
    packed: bool

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.input_ids.shape)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The batch's tensors by name (what a CUDA graph copies into its static inputs)."""
        out = {"input_ids": self.input_ids, "position_ids": self.position_ids, "last": self.last}
        if self.segments is not None:
            out["segments"] = self.segments
        return out

    def pin(self) -> Batch:
        """Page-locked copies, so the copy to the GPU is asynchronous (the loop never waits on it)."""
        pinned = {k: v.pin_memory() for k, v in self.tensors().items()}
        return Batch(pinned["input_ids"], pinned["position_ids"], pinned.get("segments"), pinned["last"],
                     self.real_tokens, self.packed)

    def to(self, device) -> Batch:
        move = {k: v.to(device, non_blocking=True) for k, v in self.tensors().items()}
        return Batch(move["input_ids"], move["position_ids"], move.get("segments"), move["last"],
                     self.real_tokens, self.packed)


def padded(seqs: list[list[int]], pad_id: int, multiple: int, width: int | None = None) -> Batch:
    """Right-padded rows of width round_up(longest, multiple), or `width` (a length bucket) if given."""
    width = width or round_up(max(len(s) for s in seqs), multiple)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    positions = torch.arange(width, dtype=torch.long).expand(len(seqs), width).clone()
    last = torch.tensor([i * width + len(s) - 1 for i, s in enumerate(seqs)], dtype=torch.long)
    return Batch(ids, positions, None, last, sum(len(s) for s in seqs), packed=False)


def packed(seqs: list[list[int]], pad_id: int, multiple: int, width: int | None = None) -> Batch:
    """All sequences end to end in one row of width round_up(total, multiple), or `width` if given."""
    width = width or round_up(sum(len(s) for s in seqs), multiple)
    ids = torch.full((1, width), pad_id, dtype=torch.long)
    positions = torch.zeros((1, width), dtype=torch.long)
    segments = torch.full((1, width), -1, dtype=torch.long)
    last, at = [], 0
    for k, s in enumerate(seqs):
        n = len(s)
        ids[0, at : at + n] = torch.tensor(s, dtype=torch.long)
        positions[0, at : at + n] = torch.arange(n)
        segments[0, at : at + n] = k
        last.append(at + n - 1)
        at += n
    # Padding gets positions too (counting on from 0) so rotary embeddings stay in range.
    positions[0, at:] = torch.arange(width - at)
    return Batch(ids, positions, segments, torch.tensor(last, dtype=torch.long), at, packed=True)


def make(seqs: list[list[int]], pad_id: int, multiple: int, pack: bool, width: int | None = None) -> Batch:
    """`width`: the row width to use (pipeline.model.buckets picks it), at least what the rows need."""
    return packed(seqs, pad_id, multiple, width) if pack else padded(seqs, pad_id, multiple, width)


def block_causal_mask(segments: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """[rows, 1, width, width] mask for packed rows: a token sees earlier tokens of its own sequence.

    Padding forms one more "sequence" (segment -1), so every query row sees at least itself: a row with
    nothing to attend to would give NaN, and NaN in a padding position still poisons the LoRA weight
    gradients (0 x NaN = NaN in x^T @ grad). dtype None gives the boolean mask of PyTorch's SDPA
    (True = attend); a float dtype gives the additive mask eager attention expects (0 or the minimum).
    """
    width = segments.shape[-1]
    same = segments[:, :, None] == segments[:, None, :]
    causal = torch.ones(width, width, dtype=torch.bool, device=segments.device).tril()
    allowed = (same & causal)[:, None]
    if dtype is None:
        return allowed
    return torch.zeros(allowed.shape, dtype=dtype, device=segments.device).masked_fill(
        ~allowed, torch.finfo(dtype).min)
