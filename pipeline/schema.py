"""The results schema, declared once. Every table in results/<run>/ is written and read through these.

Only pyarrow here: the report side (`analysis/`) imports this module and must never pull in torch.
Missing measurements are nulls (e.g. GPU columns on a CPU run), never zeros.
"""
import pyarrow as pa

LABELS = ("entailment", "neutral", "contradiction")  # SNLI / HF ClassLabel order: 0, 1, 2
PROB_COLUMNS = tuple(f"p_{name}" for name in LABELS)

TABLES: dict[str, pa.Schema] = {
    # One row per sampled example that has a gold label. idx is the row index in the *source* split.
    "samples": pa.schema([
        ("split", pa.string()),          # train | validation | test (the role in this experiment)
        ("source_split", pa.string()),   # the split of the source dataset the row was taken from
        ("idx", pa.int64()),
        ("premise", pa.string()),
        ("hypothesis", pa.string()),
        ("label", pa.int64()),           # 0 entailment, 1 neutral, 2 contradiction
    ]),
    # One row per (split, idx, model). model: baseline_head, baseline_zeroshot, epoch_1..N, finetuned.
    "predictions": pa.schema([
        ("split", pa.string()),
        ("idx", pa.int64()),
        ("model", pa.string()),
        ("pred", pa.int64()),
        *[(c, pa.float64()) for c in PROB_COLUMNS],
    ]),
    # One row per training epoch. Fine-tuning time of the run = sum(seconds), as in the original study.
    "epochs": pa.schema([
        ("epoch", pa.int64()),
        ("train_loss", pa.float64()),     # mean loss over the epoch's steps
        ("val_loss", pa.float64()),
        ("val_accuracy", pa.float64()),
        ("seconds", pa.float64()),        # wall time of the training steps of this epoch (no eval)
        ("tokens", pa.int64()),           # non-padding tokens seen
        ("padded_tokens", pa.int64()),    # tokens including padding (what the GPU actually computed)
        ("tokens_per_s", pa.float64()),   # tokens / seconds
        ("peak_allocated_bytes", pa.float64()),  # torch.cuda.max_memory_allocated in the epoch; null on CPU
    ]),
    "steps": pa.schema([
        ("step", pa.int64()),             # global optimizer step, from 1
        ("epoch", pa.int64()),
        ("loss", pa.float64()),
        ("lr", pa.float64()),
        ("grad_norm", pa.float64()),
        ("tokens", pa.int64()),
    ]),
    # Time series from the background sampler, tagged with the stage that was running.
    "resources": pa.schema([
        ("stage", pa.string()),
        ("time", pa.float64()),                  # unix seconds
        ("elapsed_s", pa.float64()),             # seconds since the stage started
        ("gpu_util_pct", pa.float64()),          # NVML; null without a GPU
        ("gpu_mem_used_bytes", pa.float64()),    # NVML, whole device; null without a GPU
        ("torch_allocated_bytes", pa.float64()), # null without a GPU
        ("torch_reserved_bytes", pa.float64()),  # null without a GPU
        ("process_rss_bytes", pa.float64()),
        ("system_ram_used_bytes", pa.float64()),
        ("cpu_pct", pa.float64()),               # whole machine, 0-100
        ("disk_used_bytes", pa.float64()),       # the filesystem holding the checkpoints
        ("rank", pa.int64()),                    # the process that sampled (0 in a one-process run)
        ("gpu_index", pa.int64()),               # its CUDA device index; null without a GPU
    ]),
    # Parameter accounting by component. stored_elements is what sum(p.numel()) gives on the 4-bit model
    # (bitsandbytes packs two 4-bit values per uint8 element); logical_params counts every weight once as
    # the architecture defines it (peft's get_nb_trainable_parameters view).
    "params": pa.schema([
        ("component", pa.string()),
        ("stored_elements", pa.int64()),
        ("logical_params", pa.int64()),
        ("trainable", pa.int64()),
        ("bytes", pa.int64()),
        ("dtype", pa.string()),
    ]),
    # Hyper-parameter trials chosen on validation rows only (never test). Written by `pipeline tune`.
    "tuning": pa.schema([
        ("trial", pa.int64()),
        ("learning_rate", pa.float64()),
        ("batch_size", pa.int64()),
        ("lora_r", pa.int64()),
        ("target_modules", pa.string()),
        ("epochs", pa.int64()),
        ("val_accuracy", pa.float64()),
        ("val_loss", pa.float64()),
        ("seconds", pa.float64()),
        ("chosen", pa.bool_()),
    ]),
}

# Columns a table gained after runs were recorded without them, and what they mean in such a table (resources
# rows of a one-process run were all sampled by rank 0, on a device index nobody recorded). The report fills
# them in when it reads an older table, and so does the store when it carries older rows into a new file.
LATER_COLUMNS: dict[str, dict[str, object]] = {"resources": {"rank": 0, "gpu_index": None}}
