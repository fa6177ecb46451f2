"""How the pipeline scales with the training set (issue 20): rows/s, host peak RSS and time to the first
optimizer step at growing train sizes, on CPU with the tiny model (configs/tiny-cpu.yaml).

    python benchmarks/scale.py                       # 1k, 10k, 100k rows: one whole epoch each
    python benchmarks/scale.py --rows 550152 --to-step 1   # the full SNLI train size, up to step 1
    python benchmarks/scale.py --record              # also write benchmarks/results/scale-<time>.json
    python benchmarks/scale.py --make-data .cache/snli-100k --rows 100000   # the GPU scale run's data only

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
sys.path.insert(0, str(ROOT))  # run as a script: records from the repository root
SNLI = ROOT.parent / "shared" / "data" / "snli"
FIXTURE = ROOT / "data" / "tiny-nli"
from records.store import atomic_write_json  # noqa: E402 (after the path above: records from the repository root)

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


def write_repeated(folder: Path, rows: pd.DataFrame, n: int, splits_from: Path) -> None:
    """`folder` with a train split of `n` rows, `rows` repeated in order (idx 0..n-1), and the validation and
    test splits of `splits_from` as they are."""
    train = rows.iloc[[i % len(rows) for i in range(n)]].reset_index(drop=True)
    train.insert(0, "idx", range(n))
    folder.mkdir(parents=True)
    train.to_parquet(folder / "full_train.parquet")
    for split in ("validation", "test"):
        shutil.copy(splits_from / f"full_{split}.parquet", folder / f"full_{split}.parquet")


def make_data(folder: Path, n: int) -> str:
    rows, what = source_rows()
    write_repeated(folder, rows, n, FIXTURE)
    return what


def make_gpu_data(folder: Path, n: int) -> str:
    """A folder for the GPU scale run (configs/smollm2-snli-100k.yaml): SNLI's real validation and test splits,
    and a train split of `n` rows made by repeating the labelled validation rows that no run evaluates on (every
    row but the every-100th, which the configs' validation sample takes; no test row), so that the run's test
    and validation accuracies stay honest. Refuses without SNLI (the fixture is no stand-in for a real model)."""
    if not (SNLI / "full_validation.parquet").is_file():
        raise SystemExit(f"--make-data: SNLI is not at {SNLI} (fix: lay ../shared/data/snli, as tools/device/"
                         f"setup.sh does)")
    if folder.exists():
        raise SystemExit(f"--make-data: {folder} exists (fix: remove it, or name a new folder)")
    full = pd.read_parquet(SNLI / "full_validation.parquet")
    pool = full[(full.index % 100 != 0) & (full["label"] >= 0)][["premise", "hypothesis", "label"]]
    write_repeated(folder, pool, n, SNLI)
    return (f"{n:,} train rows: SNLI's {len(pool):,} labelled validation rows outside the every-100th sample, "
            f"repeated {n / len(pool):.1f} times; validation and test are SNLI's own")


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


def resume_check(config: str, kill_after: int, out: Path) -> dict:
    """The GPU scale run (issue 20): `pipeline run CONFIG` killed right after optimizer step `kill_after`
    (PIPELINE_KILL_AFTER_STEP: a hard kill, nothing flushed on the way out), then the same command again, which
    resumes from the last mid-epoch checkpoint and finishes. Both processes are polled for peak RSS; the record
    holds what the finished run's own tables say (rows, steps, epoch seconds, accuracy, the attempts in its
    resource samples) and the resuming process's own line naming the checkpoint."""
    from records.code_version import run_code_version
    from records.config_reading import load_config
    cfg = load_config(config, [])
    results, ckpt = out / "results", out / "ckpt"
    cmd = [sys.executable, "-m", "pipeline", "run", config, "--set", f"output.results_dir={results}",
           "--set", f"output.checkpoint_dir={ckpt}"]
    attempts = []
    for kill in (kill_after, None):
        env = {k: v for k, v in os.environ.items() if k != "PIPELINE_KILL_AFTER_STEP"}
        if kill is not None:
            env["PIPELINE_KILL_AFTER_STEP"] = str(kill)
        log_path = out / f"attempt{len(attempts) + 1}.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            peak, seconds = peak_rss(proc)
        text = log_path.read_text(errors="replace")
        attempts.append({"killed_after_step": kill, "exit": proc.returncode, "seconds": round(seconds, 2),
                         "peak_rss_bytes": peak,
                         "resumed": [ln.strip() for ln in text.splitlines() if ln.startswith("Resuming from")]})
        print(f"attempt {len(attempts)}: exit {proc.returncode} after {seconds:.1f} s, peak RSS {peak / 2**30:.2f} GiB"
              + (f"; {attempts[-1]['resumed']}" if attempts[-1]["resumed"] else ""), flush=True)
        if kill is None and proc.returncode != 0:
            attempts[-1]["log_tail"] = text[-3000:]
    run = results / cfg.run
    record = {"config": config, "attempts": attempts, "code_version": run_code_version(ROOT)}
    if attempts[-1]["exit"] == 0:
        epochs = pd.read_parquet(run / "epochs.parquet")
        samples = pd.read_parquet(run / "samples.parquet")
        steps = pd.read_parquet(run / "steps.parquet")
        resources = pd.read_parquet(run / "resources.parquet")
        predictions = pd.read_parquet(run / "predictions.parquet")
        manifest = json.loads((run / "manifest.json").read_text())
        rows = int((samples["split"] == "train").sum())
        record.update(
            gpu=(manifest.get("environment", {}).get("gpu") or {}).get("name"),
            train_rows=rows, optimizer_steps=int(len(steps)),
            epoch_seconds=round(float(epochs["seconds"].iloc[-1]), 2),
            rows_per_s=round(rows / float(epochs["seconds"].iloc[-1]), 1),
            epochs=json.loads(epochs.to_json(orient="records")),
            test_accuracy={str(k): round(float(v), 4) for k, v in
                           predictions.merge(samples[["split", "idx", "label"]], on=["split", "idx"])
                           .query("split == 'test'").assign(ok=lambda d: d["pred"] == d["label"])
                           .groupby("model")["ok"].mean().items()},
            resource_samples_by_attempt={str(k): int(v) for k, v in
                                         resources.groupby("attempt").size().items()}
            if "attempt" in resources.columns else None,
            peak_gpu_allocated_bytes=None if resources["torch_allocated_bytes"].isna().all()
            else int(resources["torch_allocated_bytes"].max()))
    return record


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="1000,10000,100000", help="train sizes, comma-separated")
    ap.add_argument("--to-step", type=int, default=None, help="stop after this optimizer step (time to it)")
    ap.add_argument("--first-step", action="store_true", help="also time each size to step 1 (a second run)")
    ap.add_argument("--record", action="store_true", help="write benchmarks/results/scale-<time>.json")
    ap.add_argument("--make-data", metavar="FOLDER", default=None,
                    help="only write the GPU scale run's data folder with --rows train rows (one size) and exit")
    ap.add_argument("--resume-check", metavar="CONFIG", default=None,
                    help="GPU scale run: run CONFIG killed after --kill-after-step, then again to resume; record it")
    ap.add_argument("--kill-after-step", type=int, default=1000)
    ap.add_argument("--work", default=None, help="--resume-check's results and checkpoints (default: a temporary folder)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="where records are written")
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.rows.split(",")]
    if args.resume_check:
        stamp = datetime.now(timezone.utc)
        work = Path(args.work or tempfile.mkdtemp(prefix="scale-gpu-"))
        work.mkdir(parents=True, exist_ok=True)
        record = {"created": stamp.isoformat(timespec="seconds"), "command": " ".join(["python", *sys.argv]),
                  **resume_check(args.resume_check, args.kill_after_step, work)}
        path = Path(args.out) / f"scale-gpu-{stamp.strftime('%Y%m%dT%H%M%S')}.json"
        atomic_write_json(path, record)
        print(f"recorded {path}")
        done = record["attempts"][-1]["exit"] == 0 and record["attempts"][0]["exit"] != 0
        return 0 if done and record["attempts"][-1]["resumed"] else 1
    if args.make_data:
        if len(sizes) != 1:
            raise SystemExit("--make-data: give one size in --rows (fix: e.g. --rows 100000)")
        print(make_gpu_data(Path(args.make_data), sizes[0]))
        return 0
    from records.code_version import run_code_version
    measured = run_code_version(ROOT)  # the code the runs below measure (taken before them, not after)
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
                  "config": "configs/tiny-cpu.yaml, train.epochs=1, --stages data,train",
                  "code_version": measured, "runs": runs}
        after = run_code_version(ROOT)
        if (after.get("git_commit"), after.get("dirty")) != (measured.get("git_commit"), measured.get("dirty")):
            record["code_version_at_end"] = after  # the tree changed while the runs ran: the record says so
            print(f"warning: the code changed during the runs ({measured.get('git_commit')} -> "
                  f"{after.get('git_commit')}, dirty {after.get('dirty')}); the record keeps both", file=sys.stderr)
        path = Path(args.out) / f"scale-{stamp.strftime('%Y%m%dT%H%M%S')}.json"
        atomic_write_json(path, record)
        print(f"recorded {path}")
    return 0 if all(r["exit"] in (0, -9) for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
