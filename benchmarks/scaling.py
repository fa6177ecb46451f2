"""One GPU against several: a scaling record computed from the results folders of the same experiment run
on 1 and on N GPUs (`pipeline run` and `accelerate launch --num_processes N -m pipeline run`).

    python benchmarks/scaling.py results/phi2-shape-h200 results/phi2-shape-h200x2 \
                                 [results/smollm2-snli-offline results/smollm2-snli-offline-2gpu ...]

Pairs of folders (one process, then several). Every figure is read from the runs' own tables and
manifests: tokens/s of the warm epochs (epoch 1 holds the CUDA-graph captures), scaling efficiency =
tokens/s on N GPUs / (N x tokens/s on one), per-GPU peak memory (NVML and torch) and mean utilisation
during training per rank, test accuracy of both (and how many test rows the two predict differently).
Writes benchmarks/results/scaling-<time>.json and prints a table.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def _read(folder: Path) -> dict:
    m = json.loads((folder / "manifest.json").read_text())
    t = {name: pd.read_parquet(folder / f"{name}.parquet") for name in ("epochs", "resources", "samples", "predictions")
         if (folder / f"{name}.parquet").is_file()}
    return {"manifest": m, **t}


def _per_rank(run: dict) -> list[dict]:
    res = run["resources"]
    train = res[res["stage"] == "train"]
    if "rank" not in train.columns:
        train = train.assign(rank=0, gpu_index=None)
    out = []
    for rank, g in train.groupby("rank"):
        out.append({"rank": int(rank), "gpu_index": None if g["gpu_index"].isna().all() else int(g["gpu_index"].iloc[0]),
                    "peak_gpu_mem_used_bytes": float(g["gpu_mem_used_bytes"].max()),
                    "peak_torch_reserved_bytes": float(g["torch_reserved_bytes"].max()),
                    "mean_gpu_util_pct_during_train": float(g["gpu_util_pct"].mean())})
    return out


def _accuracy(run: dict) -> dict | None:
    p, s = run.get("predictions"), run.get("samples")
    if p is None or s is None or run["manifest"].get("weights") == "random":
        return None
    test = p[(p["split"] == "test") & (p["model"] == "finetuned")].merge(
        s[s["split"] == "test"][["idx", "label"]], on="idx")
    return {"rows": len(test), "correct": int((test["pred"] == test["label"]).sum()),
            "accuracy": float((test["pred"] == test["label"]).mean()), "preds": dict(zip(test["idx"], test["pred"], strict=True))}


def compare(one: Path, many: Path) -> dict:
    a, b = _read(one), _read(many)
    world = (b["manifest"].get("processes") or {}).get("world_size", 1)
    warm = lambda e: e.iloc[1:] if len(e) > 1 else e  # noqa: E731
    tps = [float(warm(r["epochs"])["tokens"].sum() / warm(r["epochs"])["seconds"].sum()) for r in (a, b)]
    row = {"runs": [one.name, many.name], "processes": [1, world],
           "batch": [r["manifest"]["stages"]["train"].get("batch") for r in (a, b)],
           "finetune_seconds": [float(r["epochs"]["seconds"].sum()) for r in (a, b)],
           "tokens_per_s_warm_epochs": tps, "speedup": tps[1] / tps[0], "scaling_efficiency": tps[1] / (world * tps[0]),
           "per_gpu": [_per_rank(a), _per_rank(b)], "gpus": [(r["manifest"].get("environment") or {}).get("gpu")
                                                             for r in (a, b)]}
    acc = [_accuracy(r) for r in (a, b)]
    if all(acc):
        differ = sum(acc[0]["preds"][i] != acc[1]["preds"].get(i) for i in acc[0]["preds"])
        row["test_accuracy"] = [x["accuracy"] for x in acc]
        row["test_rows_predicted_differently"] = differ
        row["test_rows"] = acc[0]["rows"]
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
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")
    print(table(record))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
