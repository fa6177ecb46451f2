"""Issue 19's throughput levers (train.attention, train.length_buckets, train.compile): which attention runs
where, that FlexAttention's document mask is the dense block-diagonal mask, that length buckets cover every
micro-batch, and that the trainer with each lever learns what the plain peft-docs loop learns.

FlexAttention has no backward on CPU, so its training path is measured on the GPU only (benchmarks/bench.py's
agreement lines); here its forward is compared with the dense mask, and a CPU run asking for it is checked to
fall back to the dense mask and say so. torch.compile runs with the aot_eager backend on CPU (the same tracing
and autograd graphs as inductor, without code generation, which would cost minutes on two cores).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.model import attention, batching, buckets
from tests.pipeline.test_loss_agreement import _pipeline_losses, _plain_losses, _runner

BF16, FP16, FP32 = torch.bfloat16, torch.float16, torch.float32


@pytest.mark.parametrize("requested, device, capability, dtype, runs", [
    ("dense", "cuda", (9, 0), BF16, "dense"),   # asked for dense: dense everywhere
    ("flex", "cuda", (9, 0), BF16, "flex"),     # H200
    ("flex", "cuda", (8, 0), BF16, "flex"),     # A100: the first generation with the Triton kernels
    ("flex", "cuda", (8, 6), FP16, "flex"),
    ("flex", "cuda", (7, 5), FP16, "dense"),    # T4: float16, no Triton flex kernels
    ("flex", "cuda", (7, 0), FP32, "dense"),
    ("flex", "cuda", None, BF16, "dense"),      # capability unknown: the safe path
    ("flex", "cpu", None, FP32, "dense"),       # no fused kernels, and no backward at all on CPU
    ("flex", "cuda", (9, 0), torch.float64, "dense"),
])
def test_attention_is_chosen_by_capability_and_dtype(requested, device, capability, dtype, runs):
    got, why = attention.choose(requested, device, capability, dtype)
    assert got == runs
    assert (why is None) == (got == requested)  # a fallback always says why
    if device == "cuda" and capability is not None and capability < (8, 0):
        assert f"sm{capability[0]}{capability[1]}" in why and "sm80" in why


def _flex_or_skip():
    try:
        from torch.nn.attention.flex_attention import flex_attention
    except ImportError as e:  # torch before 2.5
        pytest.skip(f"no FlexAttention in torch {torch.__version__}: {e}")
    return flex_attention


@pytest.mark.parametrize("lengths, width", [
    ((5, 130, 9, 300, 1, 17), 480),   # a sequence across three 128-token tiles, padding in the last tile
    ((60,) * 8, 512),                 # exactly tile-aligned width, no padding
    ((61, 62, 70, 55, 90, 64, 58, 66), 544),  # a micro-batch of 8 SNLI-like prompts; width not a tile multiple
    ((3,), 40),                       # one tile, mostly padding
])
def test_flex_document_mask_equals_the_dense_block_diagonal_mask(lengths, width):
    flex_attention = _flex_or_skip()
    torch.manual_seed(0)
    rows = [batching.packed([[1] * n for n in lengths], 0, 1, width),
            batching.packed([[1] * n for n in reversed(lengths)], 0, 1, width)]  # two rows, different layouts
    segments = torch.cat([r.segments for r in rows])
    q, k, v = (torch.randn(2, 4, width, 16, dtype=torch.float64) for _ in range(3))
    mask = attention.block_mask(segments)
    dense = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=batching.block_causal_mask(segments, None))
    flex = flex_attention(q, k, v, block_mask=mask)
    assert torch.allclose(flex, dense, atol=1e-10), (flex - dense).abs().max()
    # and it skips tiles: fewer key tiles than causal attention over the whole row visits
    tiles = -(-width // attention.BLOCK)
    visited = int(mask.kv_num_blocks.sum())
    assert visited <= 2 * tiles * (tiles + 1) // 2
    if len(lengths) > 1 and max(lengths) < attention.BLOCK and tiles > 2:
        assert visited < 2 * tiles * (tiles + 1) // 2, mask


def test_flex_through_the_model_gives_the_dense_logits(tmp_path):
    _flex_or_skip()
    from pipeline.model import forward
    from pipeline.model.loading import add_lora, load_classifier
    runner = _runner(tmp_path)
    cfg = runner.cfg
    model = add_lora(cfg, load_classifier(cfg, runner.location, runner.tokenizer, runner.device, runner.dtype)).eval()
    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(3, 100, size=n)) for n in (5, 17, 9, 30, 1, 60, 70)]
    pad = runner.tokenizer.pad_token_id
    with torch.no_grad():
        dense = forward.logits(model, batching.packed(seqs, pad, 8))
        attention.use(model, "flex")
        assert attention.active(model)
        flex = forward.logits(model, batching.packed(seqs, pad, 8))
        padded = forward.logits(model, batching.padded(seqs, pad, 8))  # no BlockMask: transformers' SDPA
        attention.use(model, "dense")
    assert not attention.active(model) and model.get_base_model().config._attn_implementation == "sdpa"
    assert torch.allclose(flex, dense, atol=1e-5) and torch.allclose(padded, dense, atol=1e-5)


@pytest.mark.parametrize("count", [1, 2, 4, 50])
def test_length_buckets_hold_every_micro_batch_in_few_widths(count):
    rng = np.random.default_rng(1)
    lengths = list(rng.integers(20, 120, size=300))
    orders = [list(rng.permutation(300)) for _ in range(3)]
    sizes = buckets.micro_batch_sizes(lengths, orders, 8, packed=True)
    assert len(sizes) == 3 * 38 and sizes[0] == sum(lengths[i] for i in orders[0][:8])
    widths = buckets.widths(sizes, count, 32)
    assert 1 <= len(widths) <= count and widths == sorted(widths) and all(w % 32 == 0 for w in widths)
    fitted = [buckets.fit(s, widths, 32) for s in sizes]
    assert all(f >= s for f, s in zip(fitted, sizes, strict=True)) and set(fitted) <= set(widths)
    if count == 1:
        assert widths == [batching.round_up(max(sizes), 32)]
    # more buckets, less padding
    assert sum(fitted) <= sum(buckets.fit(s, buckets.widths(sizes, 1, 32), 32) for s in sizes)
    assert buckets.fit(10_000, widths, 32) == 10_016  # beyond every bucket: rounded up, never cut
    padded = buckets.micro_batch_sizes(lengths, orders[:1], 8, packed=False)
    assert padded[0] == max(lengths[i] for i in orders[0][:8])


def test_compiled_layers_share_one_graph_and_match_eager(tmp_path, monkeypatch):
    """Four decoder layers, one width: one graph, not four; the same logits and gradients as eager;
    evaluation stays eager."""
    import torch._dynamo
    import torch._dynamo.utils

    from pipeline.model import compiling, forward
    from pipeline.model.loading import add_lora, load_classifier
    monkeypatch.setattr(compiling, "BACKEND", "aot_eager")
    torch._dynamo.reset()
    runner = _runner(tmp_path, "model.shape.num_hidden_layers=4")
    cfg = runner.cfg
    model = add_lora(cfg, load_classifier(cfg, runner.location, runner.tokenizer, runner.device, runner.dtype)).train()
    params = [p for p in model.parameters() if p.requires_grad]
    rng = np.random.default_rng(0)
    batch = batching.packed([list(rng.integers(3, 100, size=n)) for n in (5, 17, 9, 30)], 0, 8)
    eager = forward.logits(model, batch)
    eager_grads = torch.autograd.grad(eager.sum(), params)
    try:
        assert compiling.use(model, "layers") == 4
        torch._dynamo.utils.counters.clear()
        for _ in range(2):
            compiled = forward.logits(model, batch)
            grads = torch.autograd.grad(compiled.sum(), params)
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
        assert torch.allclose(compiled, eager, atol=1e-5)
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads, eager_grads, strict=True))
        with torch.no_grad():
            model.eval()
            forward.logits(model, batching.padded([[4, 5, 6]], 0, 8))
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1  # nothing compiled for evaluation
    finally:
        compiling.use(model, "off")
    assert not any("forward" in layer.__dict__ for layer in compiling.decoder_layers(model))


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return _plain_losses(_runner(tmp_path_factory.mktemp("plain")))


@pytest.mark.slow
@pytest.mark.parametrize("sets", [
    ("train.length_buckets=3",),
    ("train.compile=layers",),
    ("train.attention=flex",),  # on CPU: falls back to the dense mask, and says so
    ("train.attention=flex", "train.length_buckets=3", "train.compile=layers"),  # stacked
], ids=["buckets", "compile", "flex-fallback", "stacked"])
def test_each_lever_learns_what_the_plain_loop_learns(tmp_path, monkeypatch, plain, sets):
    from pipeline.model import compiling
    monkeypatch.setattr(compiling, "BACKEND", "aot_eager")
    runner = _runner(tmp_path, *sets)
    summary = {}
    fast = _pipeline_losses(runner, summary)
    rel = np.abs(fast - plain) / np.abs(plain)
    print(f"{sets}: max relative loss difference over {len(fast)} steps: {rel.max():.2e}")
    assert len(fast) == len(plain) == 40 and rel.max() < 1e-2, rel
    assert fast[20:].mean() < fast[:20].mean() - 0.01  # it trained
    step = summary["step"]
    assert step["attention"] == "dense"
    assert (step["attention_note"] is not None) == ("train.attention=flex" in sets)
    assert step["compiled_layers"] == (2 if "train.compile=layers" in sets else 0)
    widths = step["length_buckets"]
    assert (widths is not None and 1 <= len(widths) <= 3) == ("train.length_buckets=3" in sets)
