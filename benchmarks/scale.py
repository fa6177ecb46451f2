"""How the pipeline scales with the training set (issue 20): rows/s, host peak RSS and time to the first
optimizer step at growing train sizes, on CPU with the tiny model (configs/tiny-cpu.yaml).

    python benchmarks/scale.py                       # 1k, 10k, 100k rows: one whole epoch each
    python benchmarks/scale.py --rows 550152 --to-step 1   # the full SNLI train size, up to step 1
    python benchmarks/scale.py --record              # also write benchmarks/results/scale-<time>.json

The model is the tiny one with room for a word-level vocabulary of SNLI (model.shape.vocab_size=20000). The
train split is made by repeating rows to the size asked (SNLI has no train split here): SNLI's validation
and test rows from ../shared/data/snli when present, else this project's rule-made fixture (data/tiny-nli);
the output says which. Validation and test are the fixture's 120 rows each. Each size runs
`python -m pipeline run ... --stages data,train` with train.epochs=1 in a fresh process and a fresh cache (so
the token cache is built, as on a first run), polled for the resident memory of it and its children:
- time to step 1: from the process start to the end of the first optimizer step (the run is killed right after
  it with PIPELINE_KILL_AFTER_STEP=1; imports, sampling, tokenizer, token cache, model load and the start-of-
  training validation included);
- rows/s: train rows / the epoch's training seconds (epochs.parquet), for sizes run to the end of the epoch;
- peak RSS: the largest resident set of the run's processes, polled every 50 ms (the whole run: model included).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parent.parent
SNLI = ROOT.parent / "shared" / "data" / "snli"
FIXTURE = ROOT / "data" / "tiny-nli"
# One torch thread: on a shared 2-core machine two threads contend with other jobs and slow down by 10-50x.
THREADS = 1


def source_rows() -> tuple[pd.DataFrame, str]:
    cols = ["premise", "hypothesis", "label"]
    if (SNLI / "full_validation.parquet").is_file():
        frames = [pd.read_parquet(SNLI / f"full_{s}.parquet")[cols] for s in ("validation", "test")]
        rows = pd.concat(frames, ignore_index=True)
        return rows[rows["label"] >= 0].reset_index(drop=True), "SNLI validation + test rows (labelled), repeated"
    rows = pd.read_parquet(FIXTURE / "full_train.parquet")[cols]
    return rows[rows["label"].notna()].reset_index(drop=True), "the tiny-nli fixture's train rows, repeated"


def make_data(folder: Path, n: int) -> str:
    rows, what = source_rows()
    train = rows.iloc[[i % len(rows) for i in range(n)]].reset_index(drop=True)
    train.insert(0, "idx", range(n))
    folder.mkdir(parents=True)
    train.to_parquet(folder / "full_train.parquet")
    for split in ("validation", "test"):
        shutil.copy(FIXTURE / f"full_{split}.parquet", folder / f"full_{split}.parquet")
    return what


def peak_rss(proc: subprocess.Popen) -> tuple[int, float]:
    """Poll the process tree's resident memory until it exits: (peak bytes, seconds until exit)."""
    t0, peak, ps = time.perf_counter(), 0, psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    return peak, time.perf_counter() - t0


def run_once(n: int, work: Path, to_step: int | None) -> dict:
    data = work / "data"
    what = make_data(data, n)
    sets = [f"run=scale-{n}", f"output.results_dir={work / 'results'}", f"output.checkpoint_dir={work / 'ckpt'}",
            f"data.path={data}", "train.epochs=1", "data.train.limit=null",
            "model.shape.vocab_size=20000",  # the built word-level vocabulary of SNLI rows (~9k words)
            f"runtime.threads={THREADS}"]
    cmd = [sys.executable, "-m", "pipeline", "run", "configs/tiny-cpu.yaml", "--stages", "data,train"]
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "NLI_CACHE": str(work / "cache")}
    if to_step is not None:
        env["PIPELINE_KILL_AFTER_STEP"] = str(to_step)
    with open(work / "log.txt", "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        peak, seconds = peak_rss(proc)
    out = {"rows_asked": n, "rows_from": what, "peak_rss_bytes": peak, "exit": proc.returncode}
    results = work / "results" / f"scale-{n}"
    if to_step is not None:
        out["seconds_to_step"] = {"step": to_step, "seconds": round(seconds, 2)}
        out["killed_as_asked"] = proc.returncode == -9
    else:
        epochs = pd.read_parquet(results / "epochs.parquet")
        samples = pd.read_parquet(results / "samples.parquet")
        rows = int((samples["split"] == "train").sum())
        out.update(train_rows=rows, epoch_seconds=round(float(epochs["seconds"].iloc[0]), 2),
                   rows_per_s=round(rows / float(epochs["seconds"].iloc[0]), 1), process_seconds=round(seconds, 2))
    if proc.returncode not in (0, -9):
        out["log_tail"] = (work / "log.txt").read_text()[-2000:]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="1000,10000,100000", help="train sizes, comma-separated")
    ap.add_argument("--to-step", type=int, default=None, help="stop after this optimizer step (time to it)")
    ap.add_argument("--first-step", action="store_true", help="also time each size to step 1 (a second run)")
    ap.add_argument("--record", action="store_true", help="write benchmarks/results/scale-<time>.json")
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.rows.split(",")]
    runs = []
    for n in sizes:
        for to_step in ([args.to_step] if args.to_step else [None, *([1] if args.first_step else [])]):
            with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
                r = run_once(n, Path(tmp), to_step)
            runs.append(r)
            step = r.get("seconds_to_step")
            print(f"{n:>8,} rows ({r['rows_from']}): peak RSS {r['peak_rss_bytes'] / 2**30:.2f} GiB"
                  + (f", {r['rows_per_s']:,} rows/s over {r['train_rows']:,} train rows" if "rows_per_s" in r else "")
                  + (f", step {step['step']} after {step['seconds']} s from process start" if step else "")
                  + ("" if r["exit"] in (0, -9) else f", FAILED (exit {r['exit']}):\n{r.get('log_tail')}"), flush=True)
    if args.record:
        stamp = datetime.now(timezone.utc)
        record = {"created": stamp.isoformat(timespec="seconds"), "command": " ".join(["python", *sys.argv]),
                  "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "python": platform.python_version()},
                  "config": "configs/tiny-cpu.yaml, train.epochs=1, --stages data,train", "runs": runs}
        path = ROOT / "benchmarks" / "results" / f"scale-{stamp.strftime('%Y%m%dT%H%M%S')}.json"
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(f"recorded {path.relative_to(ROOT)}")
    return 0 if all(r["exit"] in (0, -9) for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
