"""Stage `train`: LoRA adapters (and the classification head) on the 4-bit base model, by
pipeline.engine.loop.train. After every epoch the epochs and steps tables and the stage's progress facts are
written, so a killed run shows how far it got and resumes from its last complete epoch."""
from __future__ import annotations

import pandas as pd

from pipeline.recipe.checks import lora_targets, model_loads
from records.integrity import checkpoint_records


def prepare(ctx) -> None:
    """Before any write: the tokenizer and the model load, and every LoRA target names a module."""
    lora_targets(ctx)
    model_loads(ctx)


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
                    fingerprint=ctx.fingerprints["train"], restart=ctx.restart, on_epoch=on_epoch)
    if ctx.store.writer:
        record_checkpoints()  # with the final adapter
    del model
    free()
    return {**summary, "measured_params": counts}
