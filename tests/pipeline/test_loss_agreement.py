"""The fast trainer learns what the plain peft-docs loop learns: same rows, order, seed and schedule give the
same per-step losses (float32 on CPU, so "the same" is tight: float noise only).

The pipeline's trainer packs each micro-batch into one row with a block-diagonal mask, reads the head at
the last real token itself, uses SDPA and the fused tanh GELU; the reference pads to the longest row and
runs transformers' own forward with eager attention, gelu_new and prepare_model_for_kbit_training.
"""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.plain_loop import reference_config, train_plain
from records.config_reading import load_config

CONFIG = "configs/tiny-cpu.yaml"


def _runner(tmp_path, *sets):
    from pipeline.run import Runner
    base = [f"output.results_dir={tmp_path}/r", f"output.checkpoint_dir={tmp_path}/c", "run=agree",
            "train.epochs=2", *sets]
    runner = Runner(load_config(CONFIG, base), CONFIG, tuple(base))
    runner.run(["data"])
    return runner.ctx  # the run's shared context: cfg, samples, tokenizer, device, dtype, location


def _pipeline_losses(runner, summary: dict | None = None) -> np.ndarray:
    """The trainer's per-step losses; `summary`, if given, receives what train() returns."""
    from pipeline.engine.loop import train
    from pipeline.model.loading import add_lora, load_classifier
    cfg = runner.cfg
    model = add_lora(cfg, load_classifier(cfg, runner.location, runner.tokenizer, runner.device, runner.dtype))
    steps = {}
    done = train(cfg, model, runner.tokenizer, runner.prompter, runner.samples, device=runner.device, dtype=runner.dtype,
          fingerprint="agreement", restart=True, on_epoch=lambda e, s, info: steps.update(df=s))
    if summary is not None:
        summary.update(done)
    return steps["df"]["loss"].to_numpy()


def _plain_losses(runner) -> np.ndarray:
    from pipeline.engine.predict import encode
    from pipeline.model.loading import add_lora, load_classifier
    cfg = reference_config(runner.cfg)
    model = add_lora(cfg, load_classifier(cfg, runner.location, runner.tokenizer, runner.device, runner.dtype))
    tr = runner.samples[runner.samples["split"] == "train"].reset_index(drop=True)
    seqs = encode(runner.tokenizer, runner.prompter.many(tr["premise"], tr["hypothesis"]), cfg.tokenizer.max_length)
    records = train_plain(cfg, model, seqs, tr["label"].to_numpy(), pad_id=runner.tokenizer.pad_token_id,
                          device=runner.device, dtype=runner.dtype, epochs=cfg.train.epochs)
    return np.array([r["loss"] for r in records])


@pytest.mark.slow
@pytest.mark.parametrize("packing", [True, False])
def test_pipeline_trainer_matches_the_plain_loop_step_by_step(tmp_path, packing):
    runner = _runner(tmp_path, f"train.packing={str(packing).lower()}")
    fast, plain = _pipeline_losses(runner), _plain_losses(runner)
    assert len(fast) == len(plain) == 2 * 20  # 320 rows, micro-batch 16, 2 epochs
    rel = np.abs(fast - plain) / np.abs(plain)
    print(f"packing={packing}: max relative loss difference over {len(fast)} steps: {rel.max():.2e}")
    assert rel.max() < 1e-4, rel
    # ...and training did something (agreement between two frozen models would prove nothing):
    # the second epoch's loss is lower than the first's.
    assert fast[20:].mean() < fast[:20].mean() - 0.01, (fast[:20].mean(), fast[20:].mean())


def test_packed_and_padded_batches_give_the_same_logits(tmp_path):
    import torch

    from pipeline.model import batching, forward
    from pipeline.model.loading import add_lora, load_classifier
    runner = _runner(tmp_path)
    cfg = runner.cfg
    model = add_lora(cfg, load_classifier(cfg, runner.location, runner.tokenizer, runner.device, runner.dtype)).eval()
    rng = np.random.default_rng(0)
    seqs = [list(rng.integers(3, 100, size=n)) for n in (5, 17, 9, 30, 1)]
    with torch.no_grad():
        a = forward.logits(model, batching.packed(seqs, runner.tokenizer.pad_token_id, 8))
        b = forward.logits(model, batching.padded(seqs, runner.tokenizer.pad_token_id, 8))
        alone = torch.cat([forward.logits(model, batching.padded([s], runner.tokenizer.pad_token_id, 1)) for s in seqs])
        ids, mask = (torch.tensor([s + [0] * (30 - len(s)) for s in seqs]),
                     torch.tensor([[1] * len(s) + [0] * (30 - len(s)) for s in seqs]))
        hf = model(input_ids=ids, attention_mask=mask).logits  # transformers' own masked forward and pooling
    for other in (b, alone, hf):
        assert torch.allclose(a, other, atol=1e-5), (a, other)
