"""Score the validation and test rows with one model: the predictions rows of one model name.
Shared by the baseline and evaluate stages."""
from __future__ import annotations

import pandas as pd


def predict_splits(ctx, predict, model, name: str, **kw) -> pd.DataFrame:
    """`predict` is pipeline.engine.predict.predict_head or predict_zeroshot; `kw` its own arguments."""
    from pipeline.engine.predict import to_frame
    cfg, frames = ctx.cfg, []
    for split in ("validation", "test"):
        rows = ctx.samples[ctx.samples["split"] == split].reset_index(drop=True)
        prompts = ctx.prompter.many(rows["premise"], rows["hypothesis"])
        out = predict(model, ctx.tokenizer, prompts, **kw, batch_size=cfg.eval.batch_size,
                      max_length=cfg.tokenizer.max_length, multiple=cfg.train.pad_to_multiple_of,
                      device=ctx.device, desc=f"{name} {split}")
        probs = out[0] if isinstance(out, tuple) else out  # predict_head also returns the loss
        frames.append(to_frame(rows, probs, name))
    return pd.concat(frames, ignore_index=True)
