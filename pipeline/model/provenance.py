"""Adapter folders that work on another machine.

peft's `save_pretrained` records the base model as the path it was loaded from, which for GGUF and random
weights is an absolute .cache/models/ path, and writes a template model card naming that path. Each
checkpoint folder gets the base model's portable identity instead (pipeline.telemetry.effective.model_identity):
- adapter_config.json: `base_model_name_or_path` is the hub id where there is one, else null (no hub id
  exists for dequantized GGUF or random weights, and a string that is not one makes peft's tools look it up
  on the hub); `revision` is the hub revision;
- provenance.json: that identity, how the base model was loaded (class, labels, 4-bit settings, dtype,
  attention, activation, the bitsandbytes CPU setting) and the prompt, so predictions can be reproduced;
- README.md: a short model card in words, replacing peft's empty template;
- the final adapter also gets the tokenizer, so predicting needs nothing from this project.
README.md of the project ("Using a fine-tuned adapter") shows the loading code on GPU and on CPU.
"""
from __future__ import annotations

import json
from pathlib import Path

from pipeline.model.loading import LayerNormInInputDtype
from pipeline.telemetry.effective import model_identity
from records.effective import identity_text
from records.schema import LABELS
from records.templates import read_template

PROVENANCE = "provenance.json"


def _hf(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def record(cfg, model, dtype) -> dict:
    """provenance.json's content for an adapter trained on `model` (a peft model) under `cfg`, whose frozen
    weights load (and compute) in `dtype` for prediction."""
    hf = _hf(model)
    facts = loaded_model(model)["model"]
    quant = getattr(hf.config, "quantization_config", None)
    identity = model_identity(cfg, getattr(hf.config, "_name_or_path", None))
    if identity["source"] == "hub" and facts.get("revision"):
        identity["commit"] = facts["revision"]
    return {
        "run": cfg.run, "description": cfg.description,
        "base_model": identity,
        "loaded_as": {
            "class": "AutoModelForSequenceClassification", "architecture_class": facts["class"],
            "num_labels": cfg.model.num_labels, "id2label": dict(enumerate(LABELS)),
            "pad_token_id": hf.config.pad_token_id,
            "quantization_config": quant.to_dict() if hasattr(quant, "to_dict") else quant,
            "dtype": str(dtype).removeprefix("torch."), "attn_implementation": facts["attn_implementation"],
            "hidden_act": facts["hidden_act"], "half_precision_norms": facts["half_precision_norms"],
            # pipeline.model.loading._no_cpu_repacking: without it, predictions on some CPUs shift by ~1e-5
            "bitsandbytes_support_avx512bf16_for_cpu": False,
        },
        "prompt": {"template": read_template(cfg.path(cfg.prompt.template))[0], "label_words": list(cfg.prompt.label_words),
                   "max_length": cfg.tokenizer.max_length},
        "prediction": "softmax of the classification head's logits at each prompt's last token",
    }


def _card(rec: dict) -> str:
    base = rec["base_model"]
    front = ["---", "library_name: peft"] + ([f"base_model: {base['hub_id']}"] if base["source"] == "hub" else []) + \
        ["tags:", "- lora", "- text-classification", "- natural-language-inference", "---", ""]
    labels = ", ".join(f"{i} {name}" for i, name in rec["loaded_as"]["id2label"].items())
    body = [f"# {rec['run']}: a LoRA adapter for three-way NLI", "", rec["description"], "",
            f"- Base model: {identity_text(base)}.",
            "- Loaded as `AutoModelForSequenceClassification` in 4-bit (bitsandbytes); the settings are in "
            "`provenance.json` (`loaded_as`).",
            f"- Labels: {labels}.",
            "- Input: the prompt template in `provenance.json` (`prompt`), filled with a premise and a hypothesis.",
            "- Loading on GPU and CPU: the project README, \"Using a fine-tuned adapter\".", ""]
    return "\n".join(front + body)


def finish_adapter(folder: Path, cfg, model, dtype, tokenizer=None) -> None:
    """Make the adapter peft just saved into `folder` portable (see the module docstring); `dtype` is the
    run's compute dtype, `tokenizer` is saved with it when given (the final adapter)."""
    folder = Path(folder)
    rec = record(cfg, model, dtype)
    base = rec["base_model"]
    path = folder / "adapter_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base["hub_id"] if base["source"] == "hub" else None
    config["revision"] = base.get("revision") or base.get("commit") if base["source"] == "hub" else None
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    (folder / PROVENANCE).write_text(json.dumps(rec, indent=2) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(_card(rec), encoding="utf-8")
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)


def loaded_model(model) -> dict:
    """What a loaded model (transformers, or peft around one) actually is, in `effective`'s layout."""
    hf = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = hf.config
    frozen = sorted({str(p.dtype).removeprefix("torch.") for n, p in hf.named_parameters()
                     if p.dtype.is_floating_point and "lora_" not in n and "modules_to_save" not in n})
    facts = {"class": type(hf).__name__,
             "attn_implementation": getattr(config, "_attn_implementation", None),
             "hidden_act": getattr(config, "hidden_act", None),
             # pipeline.model.loading swaps gelu_new for torch's fused tanh GELU; true whenever that GELU runs
             "fast_gelu": getattr(config, "hidden_act", None) == "gelu_pytorch_tanh",
             "half_precision_norms": any(isinstance(m, LayerNormInInputDtype) for m in hf.modules()),
             # the weights that are not 4-bit (embeddings, norms, biases, the frozen head), as stored
             "frozen_weights_dtype": ", ".join(frozen) or None}
    commit = getattr(config, "_commit_hash", None)
    if commit:
        facts["revision"] = commit
    return {"model": facts}
