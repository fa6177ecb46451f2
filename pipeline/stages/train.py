"""Stage `train`: LoRA adapters (and the classification head) on the 4-bit base model, by
pipeline.train.train. After every epoch the epochs and steps tables and the stage's progress facts are
written, so a killed run shows how far it got and resumes from its last complete epoch."""
from __future__ import annotations

import pandas as pd


def run(ctx) -> dict:
    from pipeline.model import add_lora, free, load_classifier
    from pipeline.params import measured
    from pipeline.train import train
    cfg = ctx.cfg
    model = add_lora(cfg, load_classifier(cfg, ctx.location, ctx.tokenizer, ctx.device, ctx.dtype))
    counts = measured(model)  # a cross-check of the params stage, read off the loaded model
    ctx.note_model(model)

    def on_epoch(epochs: pd.DataFrame, steps: pd.DataFrame, info: dict):
        ctx.store.write("epochs", epochs)
        ctx.store.write("steps", steps)
        ctx.store.update_stage("train", **info)

    summary = train(cfg, model, ctx.tokenizer, ctx.prompter, ctx.samples, device=ctx.device, dtype=ctx.dtype,
                    fingerprint=ctx.fingerprints["train"], restart=ctx.restart, on_epoch=on_epoch)
    del model
    free()
    return {**summary, "measured_params": counts}
