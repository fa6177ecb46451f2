"""FlexAttention for packed rows: the same attention as the dense block-diagonal mask, without computing the
blocks that no sequence needs.

Why: a packed row holds a micro-batch's prompts end to end; SDPA under the dense [width x width] mask
computes every query-key pair of the row and throws most away (at micro-batch 32, ~2,100 tokens of ~62-token
prompts, over 95 % of the pairs are masked; the H200 profile: ~40 ms of a ~240 ms step). FlexAttention
takes a *block* mask (which 128 x 128 tiles hold any allowed pair) and a `mask_mod` for the pairs inside
those tiles, and skips the rest. Measured on the H200 for 32 rows x 67 tokens: 0.94 ms per layer against
1.24 for the dense mask (DESIGN.md).

How it plugs in: `use(model, "flex")` switches the transformers model to an attention function registered
here under FLEX; `pipeline.model.forward` then hands packed batches a BlockMask (built by `block_mask`
from the batch's segment ids) instead of the dense mask, and transformers passes a 4-D BlockMask through
to the attention function untouched. Rows without a BlockMask (padded batches, evaluation) go to
transformers' own SDPA function, so only packed training rows change path.

The block mask is built from tensors only (no `.item()`, no data-dependent shapes): its tile layout is fixed
by the row width, so it is built inside each CUDA-graph capture and replayed with the batch's segments,
i.e. built once per batch shape.

Which attention runs is decided by `choose` (a pure function, tested on CPU): FlexAttention's fused kernels
are Triton kernels that need an sm80 or later GPU; on a T4 (sm75) and on CPU the dense mask runs instead.
"""
from __future__ import annotations

import torch

FLEX = "nli_flex"  # the name under which transformers knows our attention function
BLOCK = 128        # FlexAttention's default tile: the granularity at which blocks are skipped
MIN_CAPABILITY = (8, 0)


def choose(requested: str, device_type: str, capability: tuple[int, int] | None,
           dtype: torch.dtype) -> tuple[str, str | None]:
    """-> (the attention that runs: "flex" or "dense", why it differs from `requested`, or None).

    flex needs a CUDA GPU of compute capability 8.0 or later (FlexAttention's Triton kernels; bfloat16 too)
    and a half or float32 compute dtype; anything else runs the dense mask, which computes the same values."""
    if requested != "flex":
        return "dense", None
    if device_type != "cuda":
        return "dense", f"FlexAttention runs fused only on a CUDA GPU, not on {device_type}: dense mask"
    if capability is None or tuple(capability) < MIN_CAPABILITY:
        cap = "unknown" if capability is None else f"sm{capability[0]}{capability[1]}"
        return "dense", f"FlexAttention's Triton kernels need sm80 or later, this GPU is {cap}: dense mask"
    if dtype not in (torch.bfloat16, torch.float16, torch.float32):
        return "dense", f"FlexAttention does not take {dtype}: dense mask"
    return "flex", None


def block_mask(segments: torch.Tensor):
    """A FlexAttention BlockMask equal to `batching.block_causal_mask(segments)`: a token attends to earlier
    tokens of its own sequence; padding (segment -1) forms one more sequence.

    Tiles: segments of a packed row only grow along it (padding is renumbered past the last sequence), so
    key tile kb can hold a pair for query tile qb <= kb's future only if kb <= qb and kb's last segment
    reaches qb's first. Every such tile is marked partial (mask_mod decides inside it), which is exact."""
    from torch.nn.attention.flex_attention import BlockMask

    rows, width = segments.shape
    docs = torch.where(segments < 0, segments.max(dim=1, keepdim=True).values + 1, segments).contiguous()
    tiles = -(-width // BLOCK)
    padded = torch.cat([docs, docs[:, -1:].expand(rows, tiles * BLOCK - width)], dim=1).view(rows, tiles, BLOCK)
    first, last = padded[:, :, 0], padded[:, :, -1]                    # [rows, tiles]
    allowed = (last[:, None, :] >= first[:, :, None]) & torch.ones(tiles, tiles, dtype=torch.bool,
                                                                   device=docs.device).tril()
    allowed = allowed.to(torch.int32)[:, None]                          # [rows, 1 head, q tiles, kv tiles]
    counts = allowed.sum(dim=-1).to(torch.int32)
    indices = torch.argsort(allowed, dim=-1, descending=True, stable=True).to(torch.int32)

    def mask_mod(b, h, q, kv):
        return (docs[b, q] == docs[b, kv]) & (q >= kv)

    return BlockMask.from_kv_blocks(counts, indices, BLOCK_SIZE=BLOCK, mask_mod=mask_mod,
                                    seq_lengths=(width, width))


_compiled = None


def _flex(query, key, value, mask, scale):
    """FlexAttention, compiled on CUDA (uncompiled it materialises the whole score matrix: a reference
    implementation, which is what CPU tests run). Inside a compiled region it is traced as it is."""
    global _compiled
    from torch.nn.attention.flex_attention import flex_attention
    if query.device.type != "cuda" or torch.compiler.is_compiling():
        return flex_attention(query, key, value, block_mask=mask, scale=scale, enable_gqa=query.shape[1] != key.shape[1])
    if _compiled is None:
        # One compiled kernel per (width, with or without grad) pair: past dynamo's limit of 8 recompiles it
        # falls back to the uncompiled reference silently, which is what made the first flex probe 6x slower
        # than dense (a run has up to 2 x the widths; train.length_buckets keeps that small).
        import torch._dynamo.config as dynamo
        name = "recompile_limit" if hasattr(dynamo, "recompile_limit") else "cache_size_limit"
        setattr(dynamo, name, max(getattr(dynamo, name), 64))
        _compiled = torch.compile(flex_attention, dynamic=False)
    return _compiled(query, key, value, block_mask=mask, scale=scale, enable_gqa=query.shape[1] != key.shape[1])


def attention_forward(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """transformers' attention-function signature: query/key/value [batch, heads, width, head_dim] ->
    ([batch, width, heads, head_dim], None)."""
    from torch.nn.attention.flex_attention import BlockMask
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    if not isinstance(attention_mask, BlockMask):
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout,
                                      **kwargs)
    if dropout:
        raise ValueError("FlexAttention path: attention dropout is not supported (Phi's attention_dropout is 0)")
    # Under autocast the rotary embedding leaves query/key in float32 while value is half; SDPA is cast by
    # autocast, flex_attention is not: cast all three to the compute dtype here.
    dtype = torch.get_autocast_dtype(query.device.type) if torch.is_autocast_enabled(query.device.type) \
        else value.dtype
    out = _flex(query.to(dtype), key.to(dtype), value.to(dtype), attention_mask, scaling)
    return out.transpose(1, 2).contiguous(), None


_registered = False


def use(model, kind: str) -> None:
    """Switch `model` (a transformers model, or a peft model around one) to FlexAttention for packed rows
    (`kind` "flex") or back to the attention it was loaded with ("dense"). Idempotent."""
    global _registered
    hf = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = hf.config
    if kind == "flex":
        if not _registered:
            from transformers import AttentionInterface
            AttentionInterface.register(FLEX, attention_forward)
            _registered = True
        if config._attn_implementation != FLEX:
            hf._nli_loaded_attention = config._attn_implementation
            _set(hf, FLEX)
    elif getattr(hf, "_nli_loaded_attention", None) is not None:
        _set(hf, hf._nli_loaded_attention)
        hf._nli_loaded_attention = None


def _set(hf, name: str) -> None:
    # Every sub-module's config is the same object in Phi and Llama; set_attn_implementation also checks the name.
    hf.set_attn_implementation(name)


def active(model) -> bool:
    hf = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(hf.config, "_attn_implementation", None) == FLEX
