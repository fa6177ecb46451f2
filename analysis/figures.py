"""Figures as PNG images, shown as a cell's output: report.qmd gives each its caption and alt text
(`#| fig-cap:` / `#| fig-alt:`), and both render paths place it like any Jupyter figure. Each function
returns a PNG, or None when there is nothing to draw (then the cell shows nothing). Names from a run (run,
model and stage names) are drawn through `label`: one short line, never read as mathtext.

(Over the project's ~300-line guide: every figure of the report is here, so that they share one style.)"""
from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis import fmt, resources, stats  # noqa: E402
from analysis.markdown import plain  # noqa: E402
from records.graph import NAMES  # noqa: E402
from records.schema import LABELS  # noqa: E402

# One colour per stage of the stage graph, in its order (Set2 repeats after eight stages).
STAGE_COLOURS = {name: matplotlib.colors.to_hex(plt.get_cmap("Set2")(i % 8)) for i, name in enumerate(NAMES)}
MODEL_LABELS = {"baseline_head": "baseline: untrained head", "baseline_zeroshot": "baseline: zero-shot prompt",
                "finetuned": "fine-tuned"}
DPI = 130
plt.rcParams.update({"font.size": 9, "axes.titlesize": 10, "axes.spines.top": False, "axes.spines.right": False,
                     "figure.dpi": DPI, "savefig.dpi": DPI})


def label(value, limit: int = 40) -> str:
    """Untrusted text as a matplotlib label: one bounded line (plain), `$` escaped so that it is drawn as
    written instead of parsed as mathtext (a malformed formula would fail the figure)."""
    return plain(value, limit).replace("$", r"\$")


def model_label(m: str) -> str:
    if m.startswith("epoch_") and m[6:].isdigit():
        return f"after epoch {m[6:]}"
    return MODEL_LABELS.get(m) or label(m)


class PNG:
    """A rendered figure; IPython shows it as image/png (Quarto and the fallback both take it from there)."""

    def __init__(self, data: bytes):
        self.data = data

    def _repr_png_(self) -> bytes:
        return self.data


def _png(fig) -> PNG:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return PNG(buf.getvalue())


def accuracy(facts, original, models=None) -> PNG | None:
    """Test accuracy per model with Wilson 95 % intervals; the original study's two figures as markers.
    `models`: only these (e.g. the baselines and the final model, without each epoch's checkpoint)."""
    accs = [a for a in facts.accuracy.values() if models is None or a.model in models]
    if not accs or not facts.accuracy_meaningful:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(accs) + 1.2))
    y = np.arange(len(accs))[::-1]
    vals = [a.value * 100 for a in accs]
    lo = [(a.value - a.ci[0]) * 100 for a in accs]
    hi = [(a.ci[1] - a.value) * 100 for a in accs]
    ax.barh(y, vals, color=["#bbbbbb" if a.model.startswith("baseline") else "#4c72b0" for a in accs], height=0.6)
    ax.errorbar(vals, y, xerr=[lo, hi], fmt="none", ecolor="black", capsize=3, lw=1)
    for yi, v in zip(y, vals, strict=False):
        ax.text(1, yi, f"{v:.1f} %", va="center", ha="left", fontsize=8, color="white" if v > 12 else "black")
    ax.set_yticks(y, [model_label(a.model) for a in accs])
    pos = {a.model: yi for a, yi in zip(accs, y, strict=False)}
    for model, value in (("baseline_head", original.accuracy_head), ("finetuned", original.accuracy_finetuned)):
        if model in pos:
            ax.plot(value * 100, pos[model], marker="D", mfc="white", mec="#c44e52", ms=7, ls="none",
                    label=original.label if model == "baseline_head" or "baseline_head" not in pos else None)
    chance = 100 / len(LABELS)
    ax.axvline(chance, color="#999999", ls=":", lw=1)
    ax.text(chance, y.max() + 0.55, " chance", fontsize=7, color="#666666", va="bottom")
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"test accuracy, % (n = {accs[0].n}; bars: Wilson 95 % interval)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8, frameon=False)
    return _png(fig)


def training(facts) -> PNG | None:
    """Training loss per step and validation per epoch; None for a shape-only run (its losses mean nothing)."""
    steps, epochs = facts.run.table("steps"), facts.epochs
    if not facts.accuracy_meaningful:
        return None
    has_steps = steps is not None and len(steps)
    has_epochs = epochs is not None and len(epochs)
    if not has_steps and not has_epochs:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    ax = axes[0]
    if has_steps:
        ax.plot(steps["step"], steps["loss"], lw=0.8, color="#4c72b0", alpha=0.6, label="loss per step")
        if len(steps) >= 10:
            w = max(3, len(steps) // 20)
            ax.plot(steps["step"], steps["loss"].rolling(w, min_periods=1).mean(), lw=1.5, color="#4c72b0",
                    label=f"moving mean ({w} steps)")
        for _, g in steps.groupby("epoch"):
            ax.axvline(g["step"].max(), color="#dddddd", lw=0.8, zorder=0)
        ax.set_xlabel("optimizer step (grey lines: end of an epoch)")
        ax.legend(fontsize=7, frameon=False)
    else:
        ax.text(0.5, 0.5, "steps table missing", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("training loss")
    ax.set_title("Training loss")
    ax = axes[1]
    if has_epochs:
        ax.plot(epochs["epoch"], epochs["val_accuracy"] * 100, marker="o", color="#55a868", label="validation accuracy")
        ax.set_ylabel("validation accuracy, %", color="#55a868")
        ax.set_ylim(0, 100)
        ax2 = ax.twinx()
        ax2.plot(epochs["epoch"], epochs["val_loss"], marker="s", color="#c44e52", label="validation loss")
        ax2.plot(epochs["epoch"], epochs["train_loss"], marker="^", ls="--", color="#8172b2", label="training loss (epoch mean)")
        ax2.set_ylabel("loss")
        ax2.spines["right"].set_visible(True)
        ax.set_xticks(list(epochs["epoch"]))
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, frameon=False, loc="lower left")
    else:
        ax.text(0.5, 0.5, "epochs table missing", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("epoch")
    ax.set_title("Per-epoch validation")
    fig.tight_layout()
    return _png(fig)


def confusion(facts, models: list[str]) -> PNG | None:
    joined = facts.test
    models = [m for m in models if (joined["model"] == m).any()]
    if not models or not facts.accuracy_meaningful:
        return None
    fig, axes = plt.subplots(1, len(models), figsize=(2.9 * len(models) + 0.4, 2.9), squeeze=False)
    short = [lab[:6] + "." if len(lab) > 7 else lab for lab in LABELS]
    for ax, m in zip(axes[0], models, strict=False):
        cm = stats.confusion(joined, m).to_numpy()
        ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(1, cm.max()))
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=10,
                        color="white" if cm[i, j] > cm.max() * 0.6 else "black")
        ax.set_xticks(range(len(LABELS)), short)
        ax.set_yticks(range(len(LABELS)), short)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.set_title(model_label(m), fontsize=9)
    fig.tight_layout()
    return _png(fig)


def _stage_bands(ax, tl) -> None:
    """The stages as background colour, and the cut pauses between calls as dotted lines."""
    for st, (a, b) in tl.groupby("stage")["t"].agg(["min", "max"]).iterrows():
        ax.axvspan(a, max(b, a + 0.5), color=STAGE_COLOURS.get(st, "#eeeeee"), alpha=0.25, lw=0)
    for t in tl.loc[tl["pause_s"] > 0, "t"]:
        ax.axvline(t - resources.PAUSE_SHOWN_S / 2, color="#555555", ls=":", lw=1)


def _stage_legend(fig, tl) -> None:
    handles = [matplotlib.patches.Patch(color=STAGE_COLOURS.get(s, "#eeeeee"), alpha=0.5, label=label(s, 20))
               for s in resources.stage_order(tl["stage"].unique())]
    if (tl["pause_s"] > 0).any():
        handles.append(matplotlib.lines.Line2D([], [], color="#555555", ls=":", lw=1,
                                               label=f"pause cut ({_pauses(tl)})"))
    fig.legend(handles=handles, fontsize=7, frameon=False, loc="lower left", ncol=min(len(handles), 6),
               bbox_to_anchor=(0.08, 1.0), title="stage (background colour)", title_fontsize=7)


def _pauses(tl) -> str:
    cut = tl.loc[tl["pause_s"] > 0, "pause_s"]
    return ", ".join(fmt.seconds(x) for x in cut[:3]) + (", ..." if len(cut) > 3 else "")


TIME_AXIS = "seconds of sampled time since the run's first sample"


def resource_timeline(facts) -> PNG | None:
    run = facts.run
    tl = resources.timeline(run.table("resources"))
    if not len(tl):
        return None
    fig, axes = plt.subplots(3, 1, figsize=(9, 5.6), sharex=True)
    gib = fmt.GIB
    panels = [
        ("GPU memory, GiB", [("gpu_mem_used_bytes", "device memory used (NVML)"),
                             ("torch_allocated_bytes", "torch allocated"),
                             ("torch_reserved_bytes", "torch reserved")], gib),
        ("RAM, GiB", [("process_rss_bytes", "process RSS"), ("system_ram_used_bytes", "system RAM used")], gib),
        ("CPU, GPU util., %", [("cpu_pct", "CPU (whole machine)"), ("gpu_util_pct", "GPU utilisation")], 1),
    ]
    for ax, (title, series, scale) in zip(axes, panels, strict=False):
        _stage_bands(ax, tl)
        drawn = False
        for col, name in series:
            s = tl[col]
            if s.notna().any():
                ax.plot(tl["t"], s / scale, lw=1, label=name)
                drawn = True
        if title.startswith("GPU memory"):
            cap = run.cap_bytes
            if cap and drawn:
                ax.axhline(cap / gib, color="#c44e52", ls="--", lw=1, label=f"cap {cap / gib:.1f} GiB")
            if not drawn:
                ax.text(0.5, 0.5, "GPU not measured (no GPU in this run)", ha="center", va="center",
                        transform=ax.transAxes, color="#666666")
        if drawn:
            ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_ylabel(title)
    _stage_legend(fig, tl)
    axes[-1].set_xlabel(TIME_AXIS)
    fig.tight_layout()
    return _png(fig)


def runs_overview(report) -> PNG | None:
    """Fine-tuning time and peak GPU memory per run, each labelled with the hardware it used, the original
    study's time beside them. The original's GPU figure is a card's capacity, not a peak: it is drawn as a
    dashed capacity line, never as a bar beside measured peaks."""
    if not report.runs:
        return None
    original, rows = report.original, report.runs
    names = [f"{original.label} (reference)\n{label(original.hardware, 60)}"] + \
        [f"{label(f.name)}\n{label(f.hardware, 60)}" for f in rows]
    times = [original.finetune_seconds] + [f.finetune_seconds for f in rows]
    capacity = original.gpu_figure_is_capacity
    mems = [None if capacity else original.gpu_memory_bytes / fmt.GIB] + [f.peak_gpu_bytes / fmt.GIB for f in rows]
    fig, axes = plt.subplots(1, 2, figsize=(8, 0.55 * len(names) + 1.3))
    y = np.arange(len(names))[::-1]
    for ax, vals, title in ((axes[0], times, "fine-tuning time, s"), (axes[1], mems, "peak GPU memory, GiB")):
        colours = ["#c44e52"] + ["#4c72b0"] * len(rows)
        for i, (yi, v, c) in enumerate(zip(y, vals, colours, strict=False)):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                why = " a card's capacity, not a peak (dashed line)" if i == 0 and capacity else " not measured"
                ax.text(0, yi, why, va="center", fontsize=7, color="#666666")
            else:
                ax.barh(yi, v, color=c, height=0.6)
                ax.text(v, yi, f" {v:,.0f}" if v >= 100 else f" {v:,.1f}", va="center", fontsize=8)
        ax.set_yticks(y, names if ax is axes[0] else [""] * len(names), fontsize=7)
        ax.set_title(title)
        ax.margins(x=0.25)
    if capacity:
        cap = original.gpu_memory_bytes / fmt.GIB
        axes[1].axvline(cap, color="#c44e52", ls="--", lw=1)
        axes[1].text(cap, y[0] - 0.45, f"T4 capacity\n{cap:,.1f} GiB ", color="#c44e52", fontsize=7, va="top",
                     ha="right")
    fig.tight_layout()
    return _png(fig)


def per_gpu_timelines(runs) -> PNG | None:
    """Runs over several processes: each GPU's memory (NVML) and utilisation over time, one line per rank,
    on the stage bands of the run; two panels per run. None when no run has more than one process."""
    lines = [(f, tl) for f in runs for tl in [resources.timeline(f.run.table("resources"))]
             if len(tl) and tl["rank"].nunique() > 1]
    if not lines:
        return None
    fig, axes = plt.subplots(2 * len(lines), 1, figsize=(9, 4.2 * len(lines)), squeeze=False)
    for k, (f, tl) in enumerate(lines):
        pair = axes[2 * k:2 * k + 2, 0]
        for ax, (col, title, scale) in zip(pair, (("gpu_mem_used_bytes", "GPU memory used, GiB", fmt.GIB),
                                                  ("gpu_util_pct", "GPU utilisation, %", 1)), strict=True):
            _stage_bands(ax, tl)
            for rank, g in tl.groupby("rank"):
                gpu = g["gpu_index"].dropna()
                where = f"GPU {int(gpu.iloc[0])}" if len(gpu) else "no GPU"
                ax.plot(g["t"], g[col] / scale, lw=1, label=f"rank {int(rank)} ({where})")
            ax.set_ylabel(title, fontsize=8)
            ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        pair[0].set_title(label(f.name, 60), fontsize=9)
        pair[1].set_xlabel(TIME_AXIS, fontsize=8)
    fig.tight_layout()
    _stage_legend(fig, pd.concat([tl for _, tl in lines]))
    return _png(fig)


def seeds(facts, study, original) -> PNG | None:
    """`facts`: the accuracy run (analysis.facts.RunFacts); `study`: its seed study (analysis.seeds.SeedStudy)."""
    if not study.scored:
        return None
    rows = [(model_label(m), facts.acc(m), "#bbbbbb") for m in ("baseline_head", "baseline_zeroshot")
            if m in facts.accuracy]
    if "finetuned" in facts.accuracy:
        rows.append((f"{label(facts.name, 28)} (seed {facts.cfg('seed')})", facts.acc("finetuned"), "#8172b2"))
    rows += [(f"seed {s.seed}", s.accuracy, "#4c72b0") for s in study.scored]
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(rows) + 1.3))
    y = np.arange(len(rows))[::-1]
    for yi, (_, a, colour) in zip(y, rows, strict=True):
        ax.errorbar(a.value * 100, yi, xerr=[[(a.value - a.ci[0]) * 100], [(a.ci[1] - a.value) * 100]], fmt="o",
                    color=colour, ecolor=colour, capsize=3, lw=1, ms=5)
    ax.set_yticks(y, [r[0] for r in rows])
    ax.axvline(study.accuracy.mean * 100, color="#4c72b0", ls=":", lw=1, label=f"mean of {study.accuracy.n} seeds")
    ax.axvline(original.accuracy_finetuned * 100, color="#c44e52", ls="--", lw=1,
               label=f"{original.label}, fine-tuned")
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"test accuracy, % (n = {study.scored[0].accuracy.n} rows; bars: Wilson 95 % interval)")
    ax.legend(loc="lower left", fontsize=8, frameon=False)  # the points sit right of 60 %
    return _png(fig)
