"""The results schema, declared once: every table in results/<run>/, each column's type, meaning and unit,
and each table's key. The store writes and the report reads through `TABLES` (pyarrow schemas); the data
dictionary for users (docs/DATA.md, `python -m pipeline data-doc`) is printed from the same declarations
(`DOCS`), so the two cannot disagree.

Only pyarrow here: the report side (`analysis/`) imports this module and must never pull in torch.
Missing measurements are nulls (e.g. GPU columns on a CPU run), never zeros.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

SPLITS = ("train", "validation", "test")  # the roles a sampled row can have, and the source splits
LABELS = ("entailment", "neutral", "contradiction")  # SNLI / HF ClassLabel order: 0, 1, 2
PROB_COLUMNS = tuple(f"p_{name}" for name in LABELS)


REQUIRED = None  # a column every table written by this version or an earlier one has


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str
    unit: str = ""  # "" when the column has none (names, indices, labels)
    # A column added later: what it reads as in tables written before it existed (readers fill it in), e.g.
    # rank 0 for resources sampled before runs could span several processes. REQUIRED otherwise.
    older_tables: tuple | None = REQUIRED  # (value,): a 1-tuple, so that the value may itself be None
    # Added after manifests recorded row digests (records.integrity.row_digests): a row whose value here is the
    # older_tables value hashes as if the column were absent, so the digests recorded before it still match.
    digest_omits_older: bool = False

    @property
    def doc_for_users(self) -> str:
        if self.older_tables is REQUIRED:
            return self.doc
        value = "null" if self.older_tables[0] is None else self.older_tables[0]
        return f"{self.doc} Absent in tables written before it was added; read as {value}."


@dataclass(frozen=True)
class Table:
    name: str
    doc: str                 # what one row is
    key: tuple[str, ...]     # columns that identify a row (unique together)
    columns: tuple[Column, ...]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([(c.name, c.type) for c in self.columns])


BYTES, SECONDS, PCT = "bytes", "seconds", "percent (0-100)"
_LABEL_DOC = "Label index: 0 entailment, 1 neutral, 2 contradiction."

DOCS: dict[str, Table] = {t.name: t for t in (
    Table("samples", "One sampled example that has a gold label (rows without one are dropped and counted in the "
          "manifest's `data` block).", ("split", "idx"), (
        Column("split", pa.string(), "Role in this experiment: train, validation or test."),
        Column("source_split", pa.string(), "Split of the source dataset the row was taken from (the offline "
               "runs take their training rows from SNLI's validation split)."),
        Column("idx", pa.int64(), "Row index in the source split as published, so anyone can look the row up."),
        Column("premise", pa.string(), "Premise text, verbatim from the source."),
        Column("hypothesis", pa.string(), "Hypothesis text, verbatim from the source."),
        Column("label", pa.int64(), "Gold label. " + _LABEL_DOC),
    )),
    Table("predictions", "One model's prediction for one validation or test row.", ("split", "idx", "model"), (
        Column("split", pa.string(), "validation or test; joins samples on (split, idx)."),
        Column("idx", pa.int64(), "Row index in the source split; joins samples on (split, idx)."),
        Column("model", pa.string(), "baseline_head (pretrained model, untrained classification head), "
               "baseline_zeroshot (the causal LM scoring the label words), epoch_1..N (each epoch's adapter), "
               "finetuned (the final adapter)."),
        Column("pred", pa.int64(), "Predicted label, the argmax of the probabilities. " + _LABEL_DOC),
        *(Column(c, pa.float64(), f"Probability the model gives label {label}; the three sum to 1.",
                 "probability (0-1)") for c, label in zip(PROB_COLUMNS, LABELS, strict=True)),
    )),
    Table("epochs", "One training epoch. The run's fine-tuning time is sum(seconds), as the original study "
          "counts it.", ("epoch",), (
        Column("epoch", pa.int64(), "Epoch number, from 1."),
        Column("train_loss", pa.float64(), "Mean cross-entropy loss over the epoch's optimizer steps.", "nats"),
        Column("val_loss", pa.float64(), "Mean cross-entropy loss on the validation rows after the epoch.", "nats"),
        Column("val_accuracy", pa.float64(), "Accuracy on the validation rows after the epoch.", "fraction (0-1)"),
        Column("seconds", pa.float64(), "Wall time of the epoch's training steps (validation not included).",
               SECONDS),
        Column("tokens", pa.int64(), "Real (non-padding) tokens trained on.", "tokens"),
        Column("padded_tokens", pa.int64(), "Tokens including padding: what the device computed.", "tokens"),
        Column("tokens_per_s", pa.float64(), "tokens / seconds.", "tokens per second"),
        Column("peak_allocated_bytes", pa.float64(), "torch.cuda.max_memory_allocated during the epoch; null on "
               "CPU.", BYTES),
    )),
    Table("steps", "One optimizer step.", ("step",), (
        Column("step", pa.int64(), "Global optimizer step, from 1."),
        Column("epoch", pa.int64(), "The epoch the step belongs to."),
        Column("loss", pa.float64(), "Training loss of the step (mean over its rows).", "nats"),
        Column("lr", pa.float64(), "Learning rate used by the step.", "learning rate"),
        Column("grad_norm", pa.float64(), "Gradient norm before clipping; null when clipping is off.", "L2 norm"),
        Column("tokens", pa.int64(), "Real tokens in the step's rows (all processes).", "tokens"),
    )),
    Table("resources", "One sample of the background resource sampler, tagged with the stage that was "
          "running.", ("stage", "rank", "time"), (
        Column("stage", pa.string(), "The pipeline stage that was running."),
        Column("time", pa.float64(), "When the sample was taken.", "unix seconds"),
        Column("elapsed_s", pa.float64(), "Seconds since the stage started.", SECONDS),
        Column("gpu_util_pct", pa.float64(), "NVML GPU utilisation (share of time a kernel ran); null without a "
               "GPU.", PCT),
        Column("gpu_mem_used_bytes", pa.float64(), "NVML memory used on the whole device (every process); null "
               "without a GPU.", BYTES),
        Column("torch_allocated_bytes", pa.float64(), "torch.cuda memory allocated now; null without a GPU.", BYTES),
        Column("torch_reserved_bytes", pa.float64(), "torch.cuda memory reserved by the caching allocator; null "
               "without a GPU.", BYTES),
        Column("process_rss_bytes", pa.float64(), "Resident memory of this process and its children.", BYTES),
        Column("system_ram_used_bytes", pa.float64(), "RAM used on the whole machine (total - available).", BYTES),
        Column("cpu_pct", pa.float64(), "Busy share of all CPU cores of the machine since the previous sample.",
               PCT),
        Column("disk_used_bytes", pa.float64(), "Used bytes of the whole filesystem holding the checkpoints (the "
               "run's own footprint is the manifest's `footprint`).", BYTES),
        Column("rank", pa.int64(), "The process that took the sample (0 in a one-process run).",
               older_tables=(0,)),
        Column("gpu_index", pa.int64(), "That process's CUDA device index; null without a GPU.",
               older_tables=(None,)),
        Column("attempt", pa.int64(), "Which attempt at the stage took the sample, from 1: a stage killed or "
               "failed and run again (resumed) keeps the earlier attempts' rows, so a kill loses no measurement.",
               older_tables=(1,), digest_omits_older=True),
    )),
    Table("params", "Parameter accounting of the 4-bit model with its LoRA adapters, by component and storage "
          "dtype (counted on the meta device).", ("component", "dtype"), (
        Column("component", pa.string(), "Part of the model: embeddings, transformer body, lora adapters, "
               "classification head (frozen original / trainable copy)."),
        Column("stored_elements", pa.int64(), "What sum(p.numel()) gives on the loaded 4-bit model: bitsandbytes "
               "packs two 4-bit values per uint8 element.", "elements"),
        Column("logical_params", pa.int64(), "Every weight counted once as the architecture defines it (peft's "
               "get_nb_trainable_parameters view).", "parameters"),
        Column("trainable", pa.int64(), "Parameters the optimizer updates.", "parameters"),
        Column("bytes", pa.int64(), "Memory the weights take as stored.", BYTES),
        Column("dtype", pa.string(), "How the weights are stored: nf4/fp4 packed in uint8, or the torch dtype "
               "(float32, bfloat16, float16) the run used."),
    )),
    Table("tuning", "One hyper-parameter trial, trained and scored on the validation rows only (never test). "
          "Written by `pipeline tune`.", ("trial",), (
        Column("trial", pa.int64(), "Trial number in the grid, from 1."),
        Column("learning_rate", pa.float64(), "Peak learning rate.", "learning rate"),
        Column("batch_size", pa.int64(), "Rows per optimizer step.", "rows"),
        Column("lora_r", pa.int64(), "LoRA rank."),
        Column("target_modules", pa.string(), "Modules with LoRA adapters, comma-separated."),
        Column("epochs", pa.int64(), "Epochs trained."),
        Column("val_accuracy", pa.float64(), "Validation accuracy after the last epoch.", "fraction (0-1)"),
        Column("val_loss", pa.float64(), "Validation loss after the last epoch.", "nats"),
        Column("seconds", pa.float64(), "Training time of the trial.", SECONDS),
        Column("chosen", pa.bool_(), "The trial the run's settings were taken from (best validation accuracy, "
               "ties by lower validation loss)."),
    )),
)}

TABLES: dict[str, pa.Schema] = {name: t.schema for name, t in DOCS.items()}


# column name -> the value a row digest leaves out (Column.digest_omits_older)
DIGEST_OMITS: dict[str, object] = {c.name: c.older_tables[0] for t in DOCS.values() for c in t.columns
                                   if c.digest_omits_older}


def with_later_columns(name: str, table: pa.Table) -> pa.Table:
    """A table as read from disk, with the columns added after it was written filled in as the schema says
    (`Column.older_tables`); every reader goes through this (records.integrity.parse), so old results, recorded
    in their manifest or not, stay readable."""
    for c in DOCS[name].columns:
        if c.name not in table.column_names and c.older_tables is not REQUIRED:
            table = table.append_column(pa.field(c.name, c.type), pa.array([c.older_tables[0]] * table.num_rows, c.type))
    return table
