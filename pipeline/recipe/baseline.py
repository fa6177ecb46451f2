"""Stage `baseline`: the pretrained model before fine-tuning, two ways. `baseline_zeroshot`: the causal LM
scores the label words after the prompt (what the model knows). `baseline_head`: the classifier with its
fresh, untrained head (what fine-tuning starts from; near chance by construction)."""
from __future__ import annotations

import pandas as pd

from pipeline.recipe.checks import model_loads
from pipeline.recipe.scoring import predict_splits
from records.graph import owned_rows


def prepare(ctx) -> None:
    """Before any write: the tokenizer and the model load (a hub that cannot be reached fails here)."""
    model_loads(ctx)


def run(ctx) -> dict:
    from pipeline.engine.predict import predict_head, predict_zeroshot
    from pipeline.model.loading import free, load_causal_lm, load_classifier
    cfg = ctx.cfg
    lm = load_causal_lm(cfg, ctx.location, ctx.device, ctx.dtype)
    zeroshot = predict_splits(ctx, predict_zeroshot, lm, "baseline_zeroshot", label_words=cfg.prompt.label_words)
    del lm
    free()
    clf = load_classifier(cfg, ctx.location, ctx.tokenizer, ctx.device, ctx.dtype)
    ctx.note_model(clf)
    head = predict_splits(ctx, predict_head, clf, "baseline_head", labels=None)
    del clf
    free()
    ctx.store.replace_rows("predictions", pd.concat([head, zeroshot], ignore_index=True),
                           owned_rows("baseline", "predictions"))
    return {}
