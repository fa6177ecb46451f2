"""The README's performance, scaling and seed-study cost sections, generated from the latest benchmark records and
the committed runs (never typed by hand): benchmarks/results/<config>-<time>.json (benchmarks/bench.py, on a GPU,
with targets), benchmarks/results/scaling-<time>.json (benchmarks/scaling.py), scale-<time>.json and
scale-gpu-<time>.json (benchmarks/scale.py) and results/<run>/manifest.json.

    python benchmarks/readme.py          rewrite the sections between their markers in README.md
    python benchmarks/readme.py --check  exit 1 if README.md's sections differ from the records (a test runs this)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.scaling from the repository root
RESULTS = ROOT / "benchmarks" / "results"
MARKERS = {"performance": ("<!-- performance:start -->", "<!-- performance:end -->"),
           "scaling": ("<!-- scaling:start -->", "<!-- scaling:end -->"),
           "seeds": ("<!-- seeds:start -->", "<!-- seeds:end -->"),
           "scale": ("<!-- scale:start -->", "<!-- scale:end -->")}
# What a seed study of each committed run costs (`pipeline run --seeds`): that many times the run's own recorded time.
SEED_STUDIES = (("smollm2-snli-offline", "--seeds 0-4 --tuned", 5), ("phi2-shape-h200", "--seeds 0-2", 3))


def _latest(pattern: str, keep, folder: Path) -> tuple[Path, dict] | None:
    found = [(r["created"], p, r) for p in folder.glob(pattern) for r in [json.loads(p.read_text())] if keep(r)]
    if not found:
        return None
    _, path, record = max(found, key=lambda t: (t[0], t[1].name))  # a tie in time: the later name (-ladder)
    return path, record


def latest_record(folder: Path = RESULTS) -> tuple[Path, dict] | None:
    """The newest bench.py record made on a GPU by one command with its targets (the default-only record; a
    record continued over device calls is a ladder, shown by latest_full_ladder)."""
    return _latest("*.json", lambda r: r.get("gpu") and r.get("targets") and not r.get("appended"), folder)


def latest_full_ladder(folder: Path = RESULTS) -> tuple[Path, dict] | None:
    """The newest GPU record with the ladder's first line (eager) at more than one micro-batch size."""
    return _latest("*.json", lambda r: r.get("gpu") and r.get("targets") and
                   len({x["micro_batch"] for x in r["results"] if x["setting"].startswith("eager")}) > 1, folder)


def latest_scaling(folder: Path = RESULTS) -> tuple[Path, dict] | None:
    """The newest scaling.py record."""
    return _latest("scaling-*.json", lambda r: "pairs" in r, folder)


def _gib(v) -> str:
    return "–" if v is None else f"{v / 2**30:.2f}"


def _row_order(x: dict) -> tuple:
    """A record continued over device calls holds its rows in the order they were measured; the table shows them
    by micro-batch, the plain loop first, then the ladder's order, the float16 line last."""
    from benchmarks.bench import LADDERS
    order = [line[0] for line in LADDERS["all"]]
    at = next((i for i, name in enumerate(order) if x["setting"].startswith(name)), len(order))
    return x["micro_batch"], x["loop"] != "plain", x["dtype"] != "bfloat16", at


def _ladder(r: dict) -> list[str]:
    lines = ["| loop | setting | micro-batch | dtype | tokens/s | s/epoch | first epoch s | peak allocated GiB "
             "| peak reserved GiB | GPU busy | MFU |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for x in sorted(r["results"], key=_row_order):
        busy = "–" if x.get("gpu_busy_fraction") is None else f"{x['gpu_busy_fraction']:.0%}"
        mfu = "–" if x.get("mfu") is None else f"{x['mfu']:.1%}"
        first = "–" if x.get("first_epoch_seconds") is None else f"{x['first_epoch_seconds']:.1f}"
        lines.append(f"| {x['loop']} | {x['setting']} | {x['micro_batch']} | {x['dtype']} | {x['tokens_per_s']:,.0f} | "
                     f"{x['seconds_per_epoch']:.1f} | {first} | {_gib(x.get('peak_allocated_bytes'))} | "
                     f"{_gib(x.get('peak_reserved_bytes'))} | {busy} | {mfu} |")
    return lines


def _flags(command: str, names=("--ladder", "--micro-batches")) -> str:
    """The flags of a continuing call that say what it added, e.g. `--ladder compile --micro-batches 8`."""
    words = command.split()
    return " ".join(f"{w} {words[i + 1]}" for i, w in enumerate(words[:-1]) if w in names)


def _made(path: Path, r: dict) -> str:
    more = "".join(f"; continued with `{_flags(a['command'])}` ({a['created']}, commit "
                   f"`{(a.get('git_commit') or '?')[:12]}`)" for a in r.get("appended", []))
    return (f"by `{r['command']}`{more}, on one {r['gpu']} (driver {r['driver']}; torch {r['libraries'].get('torch')}, "
            f"bitsandbytes {r['libraries'].get('bitsandbytes')}), {r['created']}"
            + (f", {r['wall_seconds'] / 60:.0f} minutes in all" if r.get("wall_seconds") else "") + ", record "
            f"[{path.name}]({path.relative_to(ROOT).as_posix()}) (git commit as recorded: "
            f"`{(r.get('git_commit') or 'unknown')[:12]}`)")


def _shorter_for(lever: dict, base: dict, longest: int = 1000) -> str:
    """The run lengths (whole epochs of these rows, up to `longest`) for which the lever's training time (its
    first epoch plus warm ones) is shorter than the default's: from N epochs on, up to N, every length, or none."""
    from benchmarks.bench import training_seconds
    shorter = [n for n in range(1, longest + 1) if training_seconds(lever, n) < training_seconds(base, n)]
    if not shorter:
        return "never"
    if len(shorter) == longest:
        return "from the first epoch"
    if shorter[0] == 1:
        return f"up to {shorter[-1]} epochs"
    return f"from {shorter[0]} epochs"


def _levers(r: dict) -> list[str]:
    """Whether each lever pays against the default at the record's micro-batches: warm tokens/s, and the time of
    this study's run length (5 epochs: the first, compiles and captures included, plus 4 warm ones)."""
    from benchmarks.bench import DEFAULT, LADDER, training_seconds
    rows = {(x["setting"], x["micro_batch"]): x for x in r["results"] if x["dtype"] == "bfloat16"}
    out = []
    for name, _, switches in LADDER:
        if switches["group"] not in ("lever", "opt-in"):
            continue
        for mb in sorted({x["micro_batch"] for x in r["results"]}):
            lever, base = rows.get((name, mb)), rows.get((DEFAULT, mb))
            if lever is None or base is None or lever.get("first_epoch_seconds") is None:
                continue
            five, five_base = training_seconds(lever, 5), training_seconds(base, 5)
            pays = _shorter_for(lever, base)
            out.append(f"| {name} | {mb} | {lever['tokens_per_s'] / base['tokens_per_s']:.2f}x | "
                       f"{lever['first_epoch_seconds']:.1f} s against {base['first_epoch_seconds']:.1f} s | "
                       f"{five:.1f} s against {five_base:.1f} s | {pays} |")
    if not out:
        return []
    return ["", "Each lever against the default, from the same record: warm throughput, and the time of a run as "
                "long as this study's (5 epochs: the first, with its compiles and graph captures, plus 4 warm):", "",
            "| line | micro-batch | warm tokens/s over the default's | first epoch | 5 epochs | shorter in total |",
            "|---|---|---|---|---|---|",
            *out]


def _not_measured(r: dict) -> list[str]:
    """The ladder lines the record lacks at any of its micro-batches: said, not hidden."""
    from benchmarks.bench import LADDERS
    mbs = sorted({x["micro_batch"] for x in r["results"]})
    have = {(x["setting"], x["micro_batch"]) for x in r["results"]}
    gaps = [f"{line[2]['key']} (micro-batch {', '.join(str(mb) for mb in mbs if (line[0], mb) not in have)})"
            for line in LADDERS["all"] if any((line[0], mb) not in have for mb in mbs)]
    return ["", f"Not in this record: {'; '.join(gaps)}."] if gaps else []


def section(path: Path, r: dict, full: tuple[Path, dict] | None = None) -> str:
    pipeline_lines = [x["setting"] for x in r["results"] if x["loop"] == "pipeline"]
    ladder = ("each pipeline line adds one change to the line above" if pipeline_lines[:1] and
              pipeline_lines[0].startswith("eager") else "the pipeline lines are the default (the history lines "
              "of the ladder below, all of them), then the opt-in and the float16 path")
    lines = [f"Measured {_made(path, r)}, with the profiler's top kernels for every line. Phi-2's shape with "
             f"random weights, 4-bit NF4 + LoRA r=16, {r['train_rows']} training rows; tokens are real (non-padding) "
             f"tokens; {ladder}.", "", *_ladder(r)]
    lines += ["", "| target | goal | measured | |", "|---|---|---|---|"]
    for t in r["targets"]:
        verdict = "met" if t["met"] else ("not measured in this record" if t["met"] is None
                                          else f"missed by {t['missed_by']}")
        measured = "–" if t["measured"] is None else f"{t['measured']:,}{t.get('unit', '')}"
        lines.append(f"| {t['target']} | {t['goal']:,} | {measured} | {verdict} |")
    for a in r.get("loss_agreement", []):
        lines += ["", f"Per-step losses against the plain loop's, first {a['steps']} steps at micro-batch "
                      f"{a['micro_batch']}, dropout off in both, same weights, rows, order and schedule; "
                      f"{a.get('setting', 'the default of this record')}: at most "
                      f"{a['max_relative_difference']:.1e} relative (mean {a['mean_relative_difference']:.1e})."]
    if full is not None and full[0] != path:
        bf16 = {**full[1], "results": [x for x in full[1]["results"] if x["dtype"] == "bfloat16"]}
        from benchmarks.bench import DEFAULT
        then = ("" if any(x["setting"] == DEFAULT for x in full[1]["results"]) else
                " Its default was an earlier one (the line that says so), not today's:")
        lines += ["", f"The ladder at micro-batches 8 and 32 (its bfloat16 lines), measured {_made(*full)}."
                      f"{then}", "", *_ladder(bf16), *_not_measured(bf16), *_levers(full[1])]
    return "\n".join(lines)


def scaling_section(path: Path, r: dict) -> str:
    from benchmarks.scaling import table
    rel = path.relative_to(ROOT).as_posix()
    gpus = {g.get("name") for p in r["pairs"] for g in p.get("gpus") or [] if g}
    return "\n".join([f"From [{path.name}]({rel}) (`{r['command']}`), on {', '.join(sorted(gpus)) or 'GPUs'}; "
                      f"{r['note']}.", "", table(r)])


def committed_runs(results: Path = ROOT / "results") -> tuple[Path, list[dict]] | None:
    """The manifests of the committed runs a seed study would repeat (SEED_STUDIES)."""
    found = [json.loads((results / run / "manifest.json").read_text()) for run, _, _ in SEED_STUDIES
             if (results / run / "manifest.json").is_file()]
    return (results, found) if found else None


def seeds_section(results: Path, manifests: list[dict]) -> str:
    """Cost of a seed study of each committed run: seeds x the stage seconds its manifest records."""
    lines = ["| study | one run (stages recorded in its manifest) | of which fine-tuning | the study, one GPU |",
             "|---|---|---|---|"]
    for m in manifests:
        run = m["run"]
        flags, n = next((f, k) for r, f, k in SEED_STUDIES if r == run)
        stages = m.get("stages") or {}
        total = sum(rec.get("seconds") or 0 for rec in stages.values())
        train = (stages.get("train") or {}).get("finetune_seconds")
        gpu = ((m.get("environment") or {}).get("gpu") or {}).get("name") or "CPU"
        config = m.get("config_path")
        asked = m.get("stages_requested")
        only = f" --stages {','.join(asked)}" if asked and len(asked) < 5 else ""
        lines.append(f"| `python -m pipeline run {config}{only} {flags}` | {total:.1f} s on 1 × {gpu} "
                     f"([{run}](results/{run}/manifest.json)) | {train:.1f} s | about {n} × {total:.1f} = "
                     f"{n * total:.0f} s |")
    return "\n".join(["Computed from the committed runs' manifests (each stage's recorded wall time, loading the model "
                      "included; starting Python is not):", "", *lines])


def scale_records(folder: Path = RESULTS) -> tuple[list[tuple[Path, dict]], tuple[Path, dict] | None] | None:
    """The CPU scale records (scale-*.json, in any order) and the newest GPU resume record (scale-gpu-*.json)."""
    cpu = [(p, json.loads(p.read_text())) for p in folder.glob("scale-2*.json")]
    gpu = _latest("scale-gpu-*.json", lambda r: "attempts" in r, folder)
    return (cpu, gpu) if cpu or gpu else None


def _cpu_scale_link(path: Path, record: dict) -> str:
    """A CPU scale record's link and the commit of the code it measured (records older than that field say so)."""
    commit = (record.get("code_version") or {}).get("git_commit")
    later = (record.get("code_version_at_end") or {}).get("git_commit")
    code = f"code `{commit[:7]}`" if commit else "code not recorded"
    if "code_version_at_end" in record:
        code += f", changed to `{(later or 'unknown')[:7]}` during the runs"
    return f"[{path.name}]({path.relative_to(ROOT).as_posix()}) ({code})"


def scale_section(cpu: list[tuple[Path, dict]], gpu: tuple[Path, dict] | None) -> str:
    """Rows/s, time to step 1 and peak RSS per train size on CPU (the newest record of each size and measure),
    and the H200 run killed mid-epoch and resumed."""
    newest: dict[tuple[int, str], tuple[Path, dict, dict]] = {}
    for path, r in sorted(cpu, key=lambda t: (t[1]["created"], t[0].name)):  # a newer record of a size and
        for run in r["runs"]:                                                  # measure replaces an older one
            kind = "step" if "seconds_to_step" in run else "epoch"
            if (run.get("killed_as_asked") is False) if kind == "step" else run.get("exit") not in (0, None):
                continue  # a run that failed before its step or its epoch measured nothing
            newest[(run["rows_asked"], kind)] = (path, r, run)
    lines = ["| train rows | rows/s over one epoch | peak RSS, whole epoch | seconds to step 1 (from process start) "
             "| peak RSS to step 1 | records |", "|---|---|---|---|---|---|"]
    for n in sorted({k[0] for k in newest}):
        ep, st = newest.get((n, "epoch")), newest.get((n, "step"))
        recs = ", ".join(sorted({_cpu_scale_link(x[0], x[1]) for x in (ep, st) if x}))
        rate = f"{ep[2]['rows_per_s']:,.0f}" if ep else "–"
        rss = f"{_gib(ep[2]['peak_rss_bytes'])} GiB" if ep else "–"
        first = f"{st[2]['seconds_to_step']['seconds']:.1f} s" if st else "–"
        rss_first = f"{_gib(st[2]['peak_rss_bytes'])} GiB" if st else "–"
        lines.append(f"| {n:,} | {rate} | {rss} | {first} | {rss_first} | {recs} |")
    out = []
    if newest:
        machines = {json.dumps(r.get("machine", {}).get("cpus")) for _, r, _ in newest.values()}
        _, some, run = next(iter(newest.values()))
        out = [f"On CPU: `{some['config']}` (the tiny model), one torch thread, on a machine of "
               f"{' or '.join(sorted(machines))} cores; train rows are {run['rows_from']}; every size in a fresh "
               "process with a fresh token cache; peak RSS is the run's processes' largest resident set, model "
               "included:", "", *lines]
    if gpu:
        path, r = gpu
        first, last = r["attempts"][0], r["attempts"][-1]
        ep = r["epochs"][-1]
        out += ["", f"On one {r['gpu']}: `{r['config']}` (SmolLM2-135M, 4-bit, LoRA), {r['train_rows']:,} train rows, "
                    f"{r['optimizer_steps']:,} optimizer steps in one epoch, record "
                    f"[{path.name}]({path.relative_to(ROOT).as_posix()}) (`{r['command']}`, code "
                    f"`{(r['code_version'].get('git_commit') or 'unknown')[:7]}`). Killed after step "
                    f"{first['killed_after_step']:,} ({first['seconds']:.0f} s, exit {first['exit']}, peak RSS "
                    f"{_gib(first['peak_rss_bytes'])} GiB), then run again with the same command, which said "
                    f"{'; '.join(repr(x) for x in last['resumed']) or 'nothing of resuming'} (exit {last['exit']}, {last['seconds']:.0f} s, "
                    f"peak RSS {_gib(last['peak_rss_bytes'])} GiB). The epoch: {ep['seconds']:.0f} s of training, "
                    f"{r['rows_per_s']:,.0f} rows/s, {ep['tokens_per_s']:,.0f} tokens/s, peak allocated "
                    f"{_gib(ep['peak_allocated_bytes'])} GiB; validation accuracy {ep['val_accuracy']:.1%}, test "
                    f"accuracy {r['test_accuracy'].get('finetuned', float('nan')):.1%} (untrained head "
                    f"{r['test_accuracy'].get('baseline_head', float('nan')):.1%}). The resources table keeps both "
                    f"attempts' samples ({', '.join(f'attempt {k}: {v}' for k, v in r['resource_samples_by_attempt'].items())})."]
    return "\n".join(out)


def rewrite(readme: str, name: str, body: str) -> str:
    start, end = MARKERS[name]
    if start not in readme or end not in readme:
        raise SystemExit(f"README.md: the markers {start} and {end} are missing")
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def main(argv: list[str] | None = None, readme_path: Path = ROOT / "README.md") -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    readme = old = readme_path.read_text()
    full = latest_full_ladder()
    for name, found, render in (("performance", latest_record(), lambda p, r: section(p, r, full)),
                                ("scaling", latest_scaling(), scaling_section),
                                ("seeds", committed_runs(), seeds_section),
                                ("scale", scale_records(), scale_section)):
        if found is None:
            print(f"no {name} record in benchmarks/results/", file=sys.stderr)
            return 1
        readme = rewrite(readme, name, render(*found))
    if args.check:
        if readme != old:
            print("README.md's performance or scaling section differs from the latest records "
                  "(fix: python benchmarks/readme.py)", file=sys.stderr)
            return 1
        return 0
    readme_path.write_text(readme)
    print("README.md: performance and scaling sections rewritten from the latest records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
