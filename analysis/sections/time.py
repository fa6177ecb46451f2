"""Time: fine-tuning time per epoch, wall time per stage, and every run's time scaled to the same rows."""
from __future__ import annotations

import math

from analysis import fmt, stage_states
from analysis.facts import ReportFacts, RunFacts
from analysis.markdown import Markdown
from analysis.tables import bold, table
from analysis.training import padding_share
from records.graph import NAMES


def epoch_table(f: RunFacts) -> Markdown:
    e = f.epochs
    if e is None:
        return Markdown("")
    rows = [[int(r.epoch), fmt.seconds(r.seconds), fmt.integer(r.tokens), fmt.integer(r.padded_tokens),
             fmt.pct(padding_share(r.tokens, r.padded_tokens)), fmt.num(r.tokens_per_s, 0), fmt.gib(r.peak_allocated_bytes)]
            for r in e.itertuples()]
    rows.append([bold("all"), bold(fmt.seconds(f.finetune_seconds)), fmt.integer(e["tokens"].sum()),
                 fmt.integer(e["padded_tokens"].sum()), fmt.pct(padding_share(e["tokens"].sum(), e["padded_tokens"].sum())),
                 fmt.num(f.tokens_per_s, 0), fmt.gib(e["peak_allocated_bytes"].max())])
    return table(["epoch", "training time", "tokens", "tokens incl. padding", "padding", "tokens/s", "peak allocated"],
                 rows, align="rrrrrrr")


def stage_table(f: RunFacts) -> Markdown:
    """Every stage of the stage graph (and any other the manifest records): status, wall time, start."""
    rows = []
    for st in list(NAMES) + [s for s in f.manifest.stages if s not in NAMES]:
        rec = f.stage(st)
        rows.append([st, stage_states.label(f.run, st), fmt.seconds(rec.seconds, "—") if rec else "—",
                     (rec.start or "—") if rec else "—"])
    return table(["stage", "status", "wall time", "started (UTC)"], rows, align="llrl")


def runs_table(R: ReportFacts) -> Markdown:
    o, rows = R.original, []
    for f in R.runs:
        per_epoch = f.finetune_seconds / f.epochs_done if f.epochs_done else math.nan
        train_rows = f.rows("train")
        per_rows = per_epoch / train_rows * o.train_rows if train_rows else math.nan
        epochs = f"{f.epochs_done}" + (f" of {f.epochs_total}" if f.unfinished else "")
        rows.append([f.name, f.hardware, f.manifest.compute_dtype or "?", fmt.integer(train_rows, "?"), epochs,
                     fmt.seconds(f.finetune_seconds), fmt.seconds(per_epoch), fmt.seconds(per_rows)])
    rows.append([f"{o.label} (reference)", o.hardware, "not reported", fmt.integer(o.train_rows), str(o.epochs),
                 fmt.seconds(o.finetune_seconds), fmt.seconds(o.seconds_per_epoch), fmt.seconds(o.seconds_per_epoch)])
    return table(["run", "hardware", "dtype", "train rows", "epochs", "fine-tuning time", "per epoch",
                  f"per epoch per {o.train_rows:,} rows"], rows, align="lllrrrrr", widths=[18, 14, 8, 7, 7, 14, 10, 12])


def gpu_hours_table(R: ReportFacts) -> Markdown:
    """GPU time per run (recorded stage seconds x processes, plus tuning trials) and in total."""
    rows = []
    for f in R.runs:
        g = f.gpu_time
        rows.append([f.name, f.hardware, fmt.seconds(g.stage_seconds), str(g.processes),
                     fmt.seconds(g.tuning_seconds) if g.tuning_seconds else "—",
                     fmt.num(g.gpu_hours, 3) if g.gpu else "no GPU"])
    rows.append([bold("all runs"), "", "", "", "", bold(fmt.num(R.gpu_hours, 3))])
    return table(["run", "hardware", "stages (wall time)", "processes", "tuning trials", "GPU-hours"], rows,
                 align="llrrrr")


def recipe_list(f) -> Markdown:
    """A run's departures from a plain QLoRA recipe, as "a, b and c" (analysis.recipe); "none" without any."""
    diffs = f.recipe_differences if f is not None else []
    return Markdown(fmt.and_list(diffs) if diffs else "none")
