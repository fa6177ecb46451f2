"""Stage `params`: count stored, logical and trainable parameters on the meta device (pipeline/model/params.py);
the params table, and the totals in the manifest and the stage record."""
from __future__ import annotations

from pipeline.recipe.checks import lora_targets


def prepare(ctx) -> None:
    """Every LoRA target names a module of the model (peft would skip a misspelt one in the count)."""
    lora_targets(ctx)


def run(ctx) -> dict:
    from pipeline.model.params import account, totals
    df = account(ctx.cfg, ctx.dtype)
    ctx.store.write("params", df)
    ctx.store.update_manifest(params_summary=totals(df))
    return totals(df)
