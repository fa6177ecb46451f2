"""The README's performance section, generated from the latest GPU benchmark record (never typed by hand).

    python benchmarks/readme.py          rewrite the section between the markers in README.md
    python benchmarks/readme.py --check  exit 1 if README.md's section differs from the record (a test runs this)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- performance:start -->", "<!-- performance:end -->"


def latest_record(folder: Path = RESULTS) -> tuple[Path, dict] | None:
    """The newest record made on a GPU with a complete ladder (one with `targets`)."""
    found = []
    for p in folder.glob("*.json"):
        r = json.loads(p.read_text())
        if r.get("gpu") and r.get("targets"):
            found.append((r["created"], p, r))
    if not found:
        return None
    _, path, record = max(found, key=lambda t: t[0])
    return path, record


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    found = latest_record()
    if found is None:
        print("no GPU benchmark record with targets in benchmarks/results/", file=sys.stderr)
        return 1
    readme = (ROOT / "README.md").read_text()
    if START not in readme or END not in readme:
        print(f"README.md: the markers {START} and {END} are missing", file=sys.stderr)
        return 1
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{section(*found)}\n{END}{tail}"
    if args.check:
        if new != readme:
            print("README.md's performance section differs from the latest record "
                  "(fix: python benchmarks/readme.py)", file=sys.stderr)
            return 1
        return 0
    (ROOT / "README.md").write_text(new)
    print(f"README.md: performance section from {found[0].name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
