"""Stage `evaluate`: the fine-tuned model (final adapter) and every epoch's checkpoint predict the
validation and test rows (`finetuned`, `epoch_1` .. `epoch_N` in the predictions table)."""
from __future__ import annotations

import pandas as pd

from pipeline.recipe.checks import model_loads
from pipeline.recipe.scoring import predict_splits
from records.errors import StageError
from records.integrity import foreign_checkpoints, verify_checkpoint


def prepare(ctx) -> None:
    """Unless train runs first in this call, its adapters must be on disk already, intact: say so before any
    write. The model must load too."""
    if "train" not in ctx.todo:
        _adapters(ctx)
    model_loads(ctx)


def _adapters(ctx) -> tuple:
    final = ctx.cfg.checkpoint_path / "final"
    if not (final / "adapter_config.json").is_file():
        raise StageError(f"stage evaluate: no final adapter in {final} (fix: run the train stage)")
    folders = [ctx.cfg.checkpoint_path / f"epoch_{k}" for k in range(1, ctx.cfg.train.epochs + 1)]
    epochs = [d / "adapter_model.safetensors" for d in folders]
    for path in epochs:
        if not path.is_file():
            raise StageError(f"stage evaluate: checkpoint {path} is missing (fix: --restart the train stage)")
    for d in [final, *folders]:
        problem = verify_checkpoint(d)
        if problem is not None:
            raise StageError(f"stage evaluate: checkpoint {d.name} is damaged: {problem} (fix: run with --stages "
                             f"train,evaluate --restart, which trains again)")
    # Only this config's adapters are scored: another config's run of the same name may have trained since.
    foreign = foreign_checkpoints(ctx.cfg.checkpoint_path, ctx.fingerprints["train"], ctx.cfg.train.epochs)
    if foreign:
        raise StageError(f"stage evaluate: {foreign[0]}: not scored (fix: run with --stages train,evaluate, which "
                         f"trains this config's adapters again)")
    return final, epochs


def scored(ctx) -> dict:
    """The manifest's record of what evaluate scored: each checkpoint's train fingerprint and adapter sha256
    (`pipeline verify` checks them against the train stage's fingerprint and its checkpoint records)."""
    from records.integrity import read_meta
    out = {}
    for name in ["final", *(f"epoch_{k}" for k in range(1, ctx.cfg.train.epochs + 1))]:
        meta = read_meta(ctx.cfg.checkpoint_path / name)
        out[name] = {"fingerprint": meta.get("fingerprint"),
                     "adapter_sha256": (meta.get("files") or {}).get("adapter_model.safetensors", {}).get("sha256")}
    return out


def run(ctx) -> dict:
    from peft import PeftModel, set_peft_model_state_dict
    from safetensors.torch import load_file

    from pipeline.engine.predict import predict_head
    from pipeline.model.loading import free, load_classifier
    final, epochs = _adapters(ctx)
    base = load_classifier(ctx.cfg, ctx.location, ctx.tokenizer, ctx.device, ctx.dtype)
    model = PeftModel.from_pretrained(base, str(final), is_trainable=False)
    ctx.note_model(model)
    frames = [predict_splits(ctx, predict_head, model, "finetuned", labels=None)]
    names = ["finetuned"]
    for k, path in enumerate(epochs, 1):
        set_peft_model_state_dict(model, load_file(str(path)))
        frames.append(predict_splits(ctx, predict_head, model, f"epoch_{k}", labels=None))
        names.append(f"epoch_{k}")
    ctx.store.replace_rows("predictions", pd.concat(frames, ignore_index=True), names)
    del model, base
    free()
    return {"scored": scored(ctx)}
