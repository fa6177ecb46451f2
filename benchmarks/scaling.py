"""One GPU against several: a scaling record computed from the results folders of the same experiment run
on 1 and on N GPUs (`pipeline run` and `accelerate launch --num_processes N -m pipeline run`).

    python benchmarks/scaling.py results/phi2-shape-h200 results/phi2-shape-h200x2 \
                                 [results/smollm2-snli-offline results/smollm2-snli-offline-2gpu ...]

Pairs of folders (one process, then several). Every figure is read from the runs' own tables and
manifests, through analysis/ as the report reads them (checked against the manifests' records): tokens/s of the warm epochs (epoch 1 holds the CUDA-graph captures), scaling efficiency =
tokens/s on N GPUs / (N x tokens/s on one), per-GPU peak memory (NVML and torch) and mean utilisation
during training per rank, test accuracy of both (and how many test rows the two predict differently).
Writes benchmarks/results/scaling-<time>.json and prints a table.
"""
from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: analysis/ from the repository root


def _facts(folder: Path):
    """The run as the report reads it (checked against its manifest's records)."""
    from analysis.facts import RunFacts
    from analysis.runs import load_run
    return RunFacts(load_run(folder))


def _per_rank(f) -> list[dict]:
    """analysis.processes.per_gpu, under the names this record has always used."""
    return [{"rank": int(g.rank), "gpu_index": None if g.gpu_index is None else int(g.gpu_index),
             "peak_gpu_mem_used_bytes": float(g.peak_gpu_mem_used_bytes),
             "peak_torch_reserved_bytes": float(g.peak_torch_reserved_bytes),
             "mean_gpu_util_pct_during_train": float(g.mean_gpu_util_pct)} for g in f.per_gpu.itertuples()]


def _finetuned_test(f) -> pd.DataFrame | None:
    """The fine-tuned model's test predictions with their gold label; None for random weights."""
    if not f.accuracy_meaningful or "finetuned" not in f.accuracy:
        return None
    return f.test[f.test["model"] == "finetuned"]


def compare(one: Path, many: Path) -> dict:
    a, b = _facts(one), _facts(many)
    world = b.world_size
    tps = [a.warm_tokens_per_s, b.warm_tokens_per_s]
    row = {"runs": [one.name, many.name], "processes": [1, world],
           "batch": [(f.stage("train") or {}).get("batch") for f in (a, b)],
           "finetune_seconds": [a.finetune_seconds, b.finetune_seconds],
           "tokens_per_s_warm_epochs": tps, "speedup": tps[1] / tps[0], "scaling_efficiency": tps[1] / (world * tps[0]),
           "per_gpu": [_per_rank(a), _per_rank(b)], "gpus": [(f.manifest.environment or {}).get("gpu") for f in (a, b)]}
    tests = [_finetuned_test(f) for f in (a, b)]
    if all(t is not None for t in tests):
        preds = [dict(zip(t["idx"], t["pred"], strict=True)) for t in tests]
        row["test_accuracy"] = [f.acc("finetuned").value for f in (a, b)]
        row["test_rows_predicted_differently"] = sum(preds[0][i] != preds[1].get(i) for i in preds[0])
        row["test_rows"] = len(tests[0])
    return row


def table(record: dict) -> str:
    """The record as a markdown table (printed by this script, and the README's scaling section)."""
    lines = ["| runs | GPUs | batch (effective = micro x GPUs x accumulation) | tokens/s (epochs after the first) | "
             "speed-up | efficiency | per-GPU peak memory, NVML (1 GPU / each of N) | test accuracy | "
             "test rows predicted differently |", "|---|---|---|---|---|---|---|---|---|"]
    for p in record["pairs"]:
        b = p["batch"][1] or {}
        acc = " vs ".join(f"{x:.1%}" for x in p.get("test_accuracy", [])) or "– (random weights)"
        mem = [[g["peak_gpu_mem_used_bytes"] / 2**30 for g in side] for side in p["per_gpu"]]
        mem_text = " / ".join(", ".join(f"{m:.1f} GiB" for m in side) for side in mem)
        lines.append(f"| {' vs '.join(p['runs'])} | 1 vs {p['processes'][1]} | {b.get('effective')} = {b.get('micro')} "
                     f"x {b.get('processes')} x {b.get('accumulation')} | {p['tokens_per_s_warm_epochs'][0]:,.0f} vs "
                     f"{p['tokens_per_s_warm_epochs'][1]:,.0f} | {p['speedup']:.2f}x | {p['scaling_efficiency']:.0%} | "
                     f"{mem_text} | {acc} | "
                     f"{p.get('test_rows_predicted_differently', '–')}{' of ' + str(p['test_rows']) if 'test_rows' in p else ''} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or len(argv) % 2:
        print(__doc__, file=sys.stderr)
        return 2
    folders = [Path(p) for p in argv]
    for f in folders:
        if not (f / "manifest.json").is_file():
            print(f"error: {f}: no manifest.json (fix: pass results folders of finished runs)", file=sys.stderr)
            return 2
    record = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "python benchmarks/scaling.py " + " ".join(argv),
              "note": "strong scaling: each pair has the same effective batch, rows, order and seed; tokens/s "
                      "are real tokens of the epochs after the first",
              "pairs": [compare(folders[i], folders[i + 1]) for i in range(0, len(folders), 2)]}
    out = ROOT / "benchmarks" / "results" / f"scaling-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}.json"
    # atomically: a crash mid-write leaves no half record for readme.py to read
    from records.store import atomic_write_json
    atomic_write_json(out, record)
    print(f"wrote {out}")
    print(table(record))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
