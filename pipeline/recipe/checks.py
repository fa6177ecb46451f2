"""Checks that stages' `prepare()` hooks share: they load what the stage will load, and write nothing.

Run for every stage about to run before the first write of the call, so a model id the hub cannot serve,
a tokenizer that does not load, or a LoRA target that names no module of the model is one line (exit 2)
with the manifest and every table as they were.
"""
from __future__ import annotations

from records.errors import ConfigError


def model_loads(ctx) -> None:
    """The tokenizer and the base model's config load (the hub answers, the folder or file is a model)."""
    from pipeline.model.loading import _model_config as model_config  # the very call the stage makes
    ctx.tokenizer  # noqa: B018  (built and cached on the context: the stage uses this one)
    model_config(ctx.cfg, ctx.location)


def lora_targets(ctx) -> None:
    """Every name in lora.target_modules matches a module of the model, as peft matches them (the whole name
    or its last dotted parts). peft refuses a list that matches nothing, but silently skips a name that
    matches nothing while another matches: a typo would train a different model than the config says."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from pipeline.model.params import arch_config
    config = arch_config(ctx.cfg)  # outside the meta device: it may load (a GGUF is dequantized once here)
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(config)
    names = [n for n, _ in model.named_modules() if n]
    for target in ctx.cfg.lora.target_modules:
        if not any(n == target or n.endswith("." + target) for n in names):
            leaves = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                             if isinstance(m, torch.nn.Linear)})
            raise ConfigError(f"lora.target_modules: {target!r} matches no module of the model (its linear layers "
                              f"are named {', '.join(leaves)})")
