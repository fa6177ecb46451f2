"""Base models: where the weights come from, how they are quantized, and the LoRA adapters on top.

Every base model ends up as a folder that `from_pretrained` can read, so the 4-bit path is the same
for all sources:
- hub / local: the id or folder as given;
- gguf: dequantized once into .cache/models/ (transformers reads GGUF but cannot 4-bit-quantize it
  directly, and re-reading the GGUF every stage would cost ~20 s each);
- random: a model built from an architecture config with the run's seed, saved once into .cache/models/
  (a shape-only run: real time, memory and parameter counts, meaningless accuracy).
"""
from __future__ import annotations

import gc
import json
import os
import shutil
from pathlib import Path

import torch

from pipeline.telemetry import quiet
from records.config import ConfigError, ExperimentConfig, fingerprint, from_hub
from records.effective import RANDOM_INIT
from records.hashing import file_sha256
from records.locate import resolve_file
from records.schema import LABELS

quiet.install()  # before transformers imports bitsandbytes (pipeline/telemetry/quiet.py says why)

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def cache_root(cfg: ExperimentConfig) -> Path:
    return Path(os.environ.get("NLI_CACHE", cfg.path(".cache")))


def pick_dtype(cfg: ExperimentConfig, device: torch.device) -> torch.dtype:
    """bf16 where the GPU has it, fp16 on older GPUs such as the T4, fp32 on CPU (bnb's CPU kernels and
    CPU autocast are slow or missing in half precision)."""
    name = cfg.quantization.compute_dtype
    if name != "auto":
        return DTYPES[name]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    return torch.float32


def _gguf_to_folder(cfg: ExperimentConfig, gguf: Path) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = cache_root(cfg) / "models" / f"gguf-{file_sha256(gguf)[:16]}"
    if (out / "config.json").is_file():
        return out
    print(f"Dequantizing {gguf.name} once into {out} (about 20 s on CPU)...", flush=True)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32,
                                                 **remote_code(cfg))
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, **remote_code(cfg))
    # The GGUF loader marks the model as quantized; it is plain float32 now, and save_pretrained
    # refuses a quantized model (DESIGN.md), so drop the marks before saving.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = building(out)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    return publish(tmp, out)


def building(out: Path) -> Path:
    """A folder of this process's own to build a cache entry in: trials of a tune on several GPUs start at once
    on a fresh cache, and each builds the same entry (one shared `.tmp` folder had two writers, and the second
    rename failed)."""
    return out.with_name(f"{out.name}.{os.getpid()}.tmp")


def publish(tmp: Path, out: Path) -> Path:
    """Make the finished `tmp` the cache entry `out` in one rename. If another process published it first, its
    folder is the same build of the same inputs: keep it and drop ours."""
    try:
        tmp.rename(out)
    except OSError:
        if not (out / "config.json").is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def random_config(cfg: ExperimentConfig):
    from transformers import AutoConfig
    return AutoConfig.for_model(cfg.model.architecture, **cfg.model.shape)


def _random_to_folder(cfg: ExperimentConfig, tokenizer) -> Path:
    from transformers import AutoModelForCausalLM

    config = random_config(cfg)
    if len(tokenizer) > config.vocab_size:
        raise ConfigError(f"model.shape.vocab_size: the tokenizer has {len(tokenizer)} tokens but the model only "
                          f"{config.vocab_size} embeddings (fix: vocab_size: {len(tokenizer)} or more)")
    config.pad_token_id = tokenizer.pad_token_id
    key = fingerprint({"arch": cfg.model.architecture, "config": config.to_dict(), "seed": cfg.seed})
    out = cache_root(cfg) / "models" / f"random-{cfg.model.architecture}-{key}"
    if (out / "config.json").is_file():
        return out
    torch.manual_seed(cfg.seed)
    # Initialise on the GPU when there is one: a 2.7B model initialises in seconds there, minutes on CPU.
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(dev):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16 if dev == "cuda" else torch.float32)
    tmp = building(out)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    # How the weights were drawn: with the config beside it, enough to draw them again elsewhere
    # (the adapter's provenance.json carries both).
    (tmp / RANDOM_INIT).write_text(json.dumps({"seed": cfg.seed, "device": dev, "dtype": str(model.dtype).removeprefix(
        "torch."), "torch": torch.__version__, "recipe": "torch.manual_seed(seed); AutoModelForCausalLM.from_config("
        "config, dtype=dtype) under torch.device(device)"}, indent=2) + "\n")
    del model
    return publish(tmp, out)


def base_location(cfg: ExperimentConfig, tokenizer=None) -> str:
    """A hub id or a local folder holding the base model's weights (see module docstring)."""
    m = cfg.model
    if m.source == "hub":
        return m.name
    if m.source == "local":
        return str(cfg.path(m.name))
    if m.source == "gguf":
        return str(_gguf_to_folder(cfg, resolve_file(m.name, "model.name", cfg.path("."))))
    return str(_random_to_folder(cfg, tokenizer))


def quantization_config(cfg: ExperimentConfig, dtype: torch.dtype):
    if not cfg.quantization.load_in_4bit:
        return None
    from transformers import BitsAndBytesConfig
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=cfg.quantization.quant_type,
                              bnb_4bit_use_double_quant=cfg.quantization.double_quant,
                              bnb_4bit_compute_dtype=dtype)


def _load_kwargs(cfg: ExperimentConfig, device: torch.device, dtype: torch.dtype) -> dict:
    kw = dict(dtype=dtype, device_map={"": device.index or 0} if device.type == "cuda" else {"": "cpu"},
              quantization_config=quantization_config(cfg, dtype), **remote_code(cfg))
    if cfg.model.revision and cfg.model.source == "hub":
        kw["revision"] = cfg.model.revision
    if cfg.model.attn_implementation:
        kw["attn_implementation"] = cfg.model.attn_implementation
    return kw


def remote_code(cfg: ExperimentConfig) -> dict:
    """`trust_remote_code` for every from_pretrained: off (transformers then never runs Python shipped with a
    model) unless the config asks with model.trust_remote_code."""
    return {"trust_remote_code": cfg.model.trust_remote_code}


def _model_config(cfg: ExperimentConfig, location: str, **updates):
    from transformers import AutoConfig
    with from_hub("model.name", location):
        config = AutoConfig.from_pretrained(location, **remote_code(cfg),
                                            **({"revision": cfg.model.revision}
                                               if cfg.model.revision and cfg.model.source == "hub" else {}))
    if cfg.model.fast_gelu and getattr(config, "hidden_act", None) == "gelu_new":
        config.hidden_act = "gelu_pytorch_tanh"
    for k, v in updates.items():
        setattr(config, k, v)
    return config


def load_classifier(cfg: ExperimentConfig, location: str, tokenizer, device, dtype):
    """The base model with a fresh classification head (seeded: the head's init is part of the run)."""
    from transformers import AutoModelForSequenceClassification

    config = _model_config(cfg, location, num_labels=cfg.model.num_labels, id2label=dict(enumerate(LABELS)),
                           label2id={n: i for i, n in enumerate(LABELS)}, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(cfg.seed)
    model = AutoModelForSequenceClassification.from_pretrained(location, config=config,
                                                               **_load_kwargs(cfg, device, dtype))
    model.config.pad_token_id = tokenizer.pad_token_id
    return _half_norms(cfg, _no_cpu_repacking(model), dtype)


def _no_cpu_repacking(model):
    """bitsandbytes (0.50) repacks 4-bit weights into an inference-only layout the first time a CPU
    model runs in eval mode. Training through the repacked weights then fails ("a view of a leaf
    Variable ... in-place") and results shift by ~1e-5, which would break exact resume. Keep one layout."""
    for m in model.modules():
        if hasattr(m, "support_avx512bf16_for_cpu"):
            m.support_avx512bf16_for_cpu = False
    return model


def load_causal_lm(cfg: ExperimentConfig, location: str, device, dtype):
    from transformers import AutoModelForCausalLM
    return _half_norms(cfg, _no_cpu_repacking(AutoModelForCausalLM.from_pretrained(
        location, config=_model_config(cfg, location), **_load_kwargs(cfg, device, dtype))), dtype)


class LayerNormInInputDtype(torch.nn.LayerNorm):
    """nn.LayerNorm that returns its input's dtype under autocast (autocast's own rule returns float32).

    Under bfloat16 autocast a float32 LayerNorm output makes the whole residual stream float32: every
    4-bit linear then casts its input down and its output back up, LoRA's dropout and adds run in
    float32, and activations take twice the memory (the Phi-2 profile: ~2,100 cast kernels per step, a
    fifth of the GPU time). The normalisation itself still accumulates in float32 inside the kernel."""

    def forward(self, x):
        with torch.autocast(x.device.type, enabled=False):
            weight = None if self.weight is None else self.weight.to(x.dtype)
            bias = None if self.bias is None else self.bias.to(x.dtype)
            return torch.nn.functional.layer_norm(x, self.normalized_shape, weight, bias, self.eps)


def _half_norms(cfg: ExperimentConfig, model, dtype):
    # bfloat16 only: it has float32's range, so a bfloat16 residual stream cannot overflow. float16's
    # range is far smaller (Phi-2's activations are known to overflow it), so the T4 keeps float32 norms.
    if cfg.model.half_precision_norms and dtype == torch.bfloat16:
        for m in model.modules():
            if type(m) is torch.nn.LayerNorm:
                m.__class__ = LayerNormInInputDtype
    return model


def peft_config(cfg: ExperimentConfig):
    from peft import LoraConfig, TaskType
    return LoraConfig(task_type=TaskType.SEQ_CLS, r=cfg.lora.r, lora_alpha=cfg.lora.alpha,
                      lora_dropout=cfg.lora.dropout, target_modules=list(cfg.lora.target_modules),
                      bias=cfg.lora.bias)


def add_lora(cfg: ExperimentConfig, model):
    """LoRA on the configured modules; the classification head trains as a full copy (peft SEQ_CLS)."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    gc_kwargs = {"use_reentrant": False}  # reentrant checkpointing breaks with peft (DESIGN.md)
    if cfg.train.prepare_kbit and cfg.quantization.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.train.gradient_checkpointing,
                                                gradient_checkpointing_kwargs=gc_kwargs)
    elif cfg.train.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gc_kwargs)
        model.enable_input_require_grads()
    model = get_peft_model(model, peft_config(cfg))
    # Trainable weights (LoRA and the head copy) live in float32 so AdamW updates are not rounded
    # away; the matmuls still run in the compute dtype under autocast.
    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()
    return model


def free() -> None:
    """Give memory back after the caller has dropped its references (`del model; free()`)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
