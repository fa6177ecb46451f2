"""Stage `train`: LoRA adapters (and the classification head) on the 4-bit base model, by
pipeline.engine.loop.train. After every epoch the epochs and steps tables and the stage's progress facts are
written, so a killed run shows how far it got and resumes from its last complete epoch (or mid-epoch state).
The training prompts are tokenized once into a memory-mapped cache (pipeline.model.token_cache) that later runs
with the same rows, prompt and tokenizer open instead of tokenizing again."""
from __future__ import annotations

import pandas as pd

from pipeline.recipe.checks import lora_targets, model_loads
from records.hashing import bytes_sha256, file_sha256
from records.integrity import checkpoint_records


def prepare(ctx) -> None:
    """Before any write: the tokenizer and the model load, and every LoRA target names a module."""
    lora_targets(ctx)
    model_loads(ctx)


def training_tokens(ctx):
    """The training rows' token ids, from the cache (built by rank 0 first when missing). Its key is what the ids
    depend on: the data stage's fingerprint and a hash of the rows' text (so even a change in how rows are
    sampled that left the fingerprint alone builds a new cache), the template's bytes and the label words."""
    from pipeline.engine import distributed
    from pipeline.model.loading import cache_root
    from pipeline.model.token_cache import load_or_build
    cfg = ctx.cfg
    tr = ctx.samples[ctx.samples["split"] == "train"]
    premises, hypotheses = tr["premise"].to_numpy(), tr["hypothesis"].to_numpy()
    rows = pd.util.hash_pandas_object(tr[["premise", "hypothesis"]], index=False).to_numpy()
    key = {"data": ctx.fingerprints["data"], "rows": bytes_sha256(rows.tobytes()),
           "template": file_sha256(cfg.path(cfg.prompt.template)), "label_words": list(cfg.prompt.label_words)}
    return distributed.main_first(lambda: load_or_build(
        cache_root(cfg) / "tokens", key, ctx.tokenizer, cfg.tokenizer.max_length, len(tr),
        lambda start, stop: ctx.prompter.many(premises[start:stop], hypotheses[start:stop])))


def run(ctx) -> dict:
    from pipeline.engine.loop import train
    from pipeline.model.loading import add_lora, free, load_classifier
    from pipeline.model.params import measured
    cfg = ctx.cfg
    model = add_lora(cfg, load_classifier(cfg, ctx.location, ctx.tokenizer, ctx.device, ctx.dtype))
    counts = measured(model)  # a cross-check of the params stage, read off the loaded model
    ctx.note_model(model)

    def record_checkpoints():  # the manifest's copy of each checkpoint folder's file list (meta.json)
        ctx.store.update_manifest(checkpoints=checkpoint_records(cfg.checkpoint_path, ctx.fingerprints["train"]))

    def on_epoch(epochs: pd.DataFrame, steps: pd.DataFrame, info: dict):
        record_checkpoints()
        ctx.store.write("epochs", epochs)
        ctx.store.write("steps", steps)
        ctx.store.update_stage("train", **info)

    summary = train(cfg, model, ctx.tokenizer, ctx.prompter, ctx.samples, device=ctx.device, dtype=ctx.dtype,
                    fingerprint=ctx.fingerprints["train"], restart=ctx.restart, on_epoch=on_epoch,
                    tokens=training_tokens(ctx))
    if ctx.store.writer:
        record_checkpoints()  # with the final adapter
    del model
    free()
    return {**summary, "measured_params": counts}
