"""The README's performance and scaling sections, generated from the latest benchmark records (never typed
by hand): benchmarks/results/<config>-<time>.json (benchmarks/bench.py, on a GPU, with targets) and
benchmarks/results/scaling-<time>.json (benchmarks/scaling.py).

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
           "scaling": ("<!-- scaling:start -->", "<!-- scaling:end -->")}


def _latest(pattern: str, keep, folder: Path) -> tuple[Path, dict] | None:
    found = [(r["created"], p, r) for p in folder.glob(pattern) for r in [json.loads(p.read_text())] if keep(r)]
    if not found:
        return None
    _, path, record = max(found, key=lambda t: t[0])
    return path, record


def latest_record(folder: Path = RESULTS) -> tuple[Path, dict] | None:
    """The newest bench.py record made on a GPU with a complete ladder (one with `targets`)."""
    return _latest("*.json", lambda r: r.get("gpu") and r.get("targets"), folder)


def latest_scaling(folder: Path = RESULTS) -> tuple[Path, dict] | None:
    """The newest scaling.py record."""
    return _latest("scaling-*.json", lambda r: "pairs" in r, folder)


def _gib(v) -> str:
    return "–" if v is None else f"{v / 2**30:.2f}"


def section(path: Path, r: dict) -> str:
    rel = path.relative_to(ROOT).as_posix()
    lines = [f"Measured on one {r['gpu']} (driver {r['driver']}; torch {r['libraries'].get('torch')}, "
             f"bitsandbytes {r['libraries'].get('bitsandbytes')}) by `{r['command']}` at commit "
             f"`{(r.get('git_commit') or 'unknown')[:12]}`; the full record, with the profiler's top kernels for "
             f"every line, is [{path.name}]({rel}). Phi-2's shape with random weights, 4-bit NF4 + LoRA r=16, "
             f"{r['train_rows']} training rows; tokens are real (non-padding) tokens; each pipeline line adds one "
             "change to the line above.", "",
             "| loop | setting | micro-batch | dtype | tokens/s | s/epoch | peak allocated GiB | peak reserved GiB "
             "| GPU busy | MFU |", "|---|---|---|---|---|---|---|---|---|---|"]
    for x in r["results"]:
        busy = "–" if x.get("gpu_busy_fraction") is None else f"{x['gpu_busy_fraction']:.0%}"
        mfu = "–" if x.get("mfu") is None else f"{x['mfu']:.1%}"
        lines.append(f"| {x['loop']} | {x['setting']} | {x['micro_batch']} | {x['dtype']} | {x['tokens_per_s']:,.0f} | "
                     f"{x['seconds_per_epoch']:.1f} | {_gib(x.get('peak_allocated_bytes'))} | "
                     f"{_gib(x.get('peak_reserved_bytes'))} | {busy} | {mfu} |")
    lines += ["", "| target | goal | measured | |", "|---|---|---|---|"]
    for t in r["targets"]:
        verdict = "met" if t["met"] else ("not measured" if t["met"] is None else f"missed by {t['missed_by']}")
        lines.append(f"| {t['target']} | {t['goal']}{t.get('unit', '')} | {t['measured']} | {verdict} |")
    for a in r.get("loss_agreement", []):
        lines += ["", f"What is learned does not change: over the first {a['steps']} steps at micro-batch "
                      f"{a['micro_batch']} (dropout off in both), the pipeline's per-step losses differ from the plain "
                      f"loop's by at most {a['max_relative_difference']:.1e} relative (mean "
                      f"{a['mean_relative_difference']:.1e}): bfloat16 rounding in different kernels."]
    return "\n".join(lines)


def scaling_section(path: Path, r: dict) -> str:
    from benchmarks.scaling import table
    rel = path.relative_to(ROOT).as_posix()
    gpus = {g.get("name") for p in r["pairs"] for g in p.get("gpus") or [] if g}
    return "\n".join([f"From [{path.name}]({rel}) (`{r['command']}`), on {', '.join(sorted(gpus)) or 'GPUs'}; "
                      f"{r['note']}.", "", table(r)])


def rewrite(readme: str, name: str, body: str) -> str:
    start, end = MARKERS[name]
    if start not in readme or end not in readme:
        raise SystemExit(f"README.md: the markers {start} and {end} are missing")
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    readme = old = (ROOT / "README.md").read_text()
    for name, found, render in (("performance", latest_record(), section),
                                ("scaling", latest_scaling(), scaling_section)):
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
    (ROOT / "README.md").write_text(readme)
    print("README.md: performance and scaling sections rewritten from the latest records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
