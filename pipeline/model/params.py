"""Parameter accounting, computed on the meta device: no weights are loaded or even allocated.

Two honest ways to count a QLoRA model, both reported (DESIGN.md):
- stored elements: what `sum(p.numel() for p in model.parameters())` gives on the loaded 4-bit model.
  bitsandbytes packs two 4-bit values into one uint8 element, so every quantized Linear weight counts
  at half, and peft's SEQ_CLS wrapper keeps the classification head twice (the frozen original and
  the trainable copy in `modules_to_save`). This is the original study's 1,408,634,880 for Phi-2.
- logical parameters: every weight counted once at its logical size (peft's
  `get_nb_trainable_parameters` view, which also counts the head twice): 2,666,926,080 for Phi-2.
A test loads a real 4-bit model on CPU and checks that these numbers equal the measured ones.
"""
from __future__ import annotations

import re

import pandas as pd
import torch

from pipeline.model.loading import base_location, peft_config, pick_dtype, random_config, remote_code
from records.config import ExperimentConfig, from_hub


def arch_config(cfg: ExperimentConfig):
    """The architecture without weights: from `model.shape` when given (offline), else the model's config."""
    from transformers import AutoConfig

    if cfg.model.architecture and (cfg.model.shape or cfg.model.source == "random"):
        config = random_config(cfg)
    else:
        with from_hub("model.name", base_location(cfg)):
            config = AutoConfig.from_pretrained(base_location(cfg), **remote_code(cfg))
    config.num_labels = cfg.model.num_labels
    return config


def _skip_patterns(model) -> list[str]:
    """The modules transformers leaves unquantized (last module / output embedding / fp32-pinned)."""
    from transformers.quantizers.base import get_keys_to_not_convert
    keys = list(get_keys_to_not_convert(model))
    keys += list(getattr(model, "_keep_in_fp32_modules", None) or [])
    return keys


def _matches(name: str, patterns: list[str]) -> bool:
    # Same three rules as transformers' should_convert_module: prefix, regex match, or suffix.
    return any(re.match(f"{k}\\.", name) or re.match(f"{k}", name) or name.endswith(k) for k in patterns)


def quantized_weight_names(model) -> set[str]:
    skip = _skip_patterns(model)
    return {f"{n}.weight" for n, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and not _matches(n, skip)}


def _component(name: str) -> str:
    if "lora_" in name:
        return "lora adapters"
    if "modules_to_save" in name:
        return "classification head (trainable copy)"
    if "original_module" in name or re.search(r"(^|\.)(score|classifier)\.", name):
        return "classification head (frozen original)"
    if "embed" in name:
        return "embeddings"
    return "transformer body"


def frozen_dtype(cfg: ExperimentConfig, dtype: torch.dtype) -> torch.dtype:
    """What the weights that are not 4-bit (embeddings, norms, biases, the frozen head) are stored in when the
    model trains: the compute dtype they load in, or float32 where peft's prepare_model_for_kbit_training
    upcasts them (train.prepare_kbit)."""
    return torch.float32 if cfg.train.prepare_kbit and cfg.quantization.load_in_4bit else dtype


def account(cfg: ExperimentConfig, dtype: torch.dtype | None = None) -> pd.DataFrame:
    """The params table (schema `params`), one row per (component, dtype). `dtype` is the run's compute dtype;
    None picks it as a run on this machine would (pipeline.model.loading.pick_dtype)."""
    from peft import get_peft_model
    from transformers import AutoModelForSequenceClassification

    if dtype is None:
        dtype = pick_dtype(cfg, torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    frozen = frozen_dtype(cfg, dtype)
    config = arch_config(cfg)
    with torch.device("meta"):
        base = AutoModelForSequenceClassification.from_config(config)
        quantized = quantized_weight_names(base) if cfg.quantization.load_in_4bit else set()
        model = get_peft_model(base, peft_config(cfg))
    rows = []
    for name, p in model.named_parameters():
        # peft prefixes names with base_model.model.; the quantized set was taken before wrapping.
        plain = name.removeprefix("base_model.model.").replace(".base_layer", "")
        n = p.numel()
        if plain in quantized:
            stored, kind, nbytes = (n + 1) // 2, f"{cfg.quantization.quant_type} (uint8, 2 per element)", (n + 1) // 2
        elif p.requires_grad:
            stored, kind, nbytes = n, "float32", 4 * n
        else:
            stored, kind, nbytes = n, str(frozen).removeprefix("torch."), frozen.itemsize * n
        rows.append({"component": _component(name), "stored_elements": stored, "logical_params": n,
                     "trainable": n if p.requires_grad else 0, "bytes": nbytes, "dtype": kind})
    df = pd.DataFrame(rows)
    return (df.groupby(["component", "dtype"], as_index=False, sort=False)
              [["stored_elements", "logical_params", "trainable", "bytes"]].sum()
              [["component", "stored_elements", "logical_params", "trainable", "bytes", "dtype"]])


def totals(df: pd.DataFrame) -> dict:
    return {"stored_elements": int(df["stored_elements"].sum()), "logical_params": int(df["logical_params"].sum()),
            "trainable": int(df["trainable"].sum()), "bytes": int(df["bytes"].sum())}


def measured(model) -> dict:
    """The same figures read off a loaded model, for the manifest (a cross-check of `account`)."""
    stored = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    out = {"stored_elements": int(stored), "trainable": int(trainable),
           "bytes": int(sum(p.numel() * p.element_size() for p in model.parameters()))}
    if hasattr(model, "get_nb_trainable_parameters"):
        out["logical_params"] = int(model.get_nb_trainable_parameters()[1])
    return out
