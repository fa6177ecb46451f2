"""The seed study's figure: each seed's fine-tuned test accuracy as a point with its Wilson 95 % interval, beside
the accuracy run's baselines and its own fine-tuned figure, the seeds' mean and the original study's figure.
(Its own module: analysis/figures.py is at its size guide.)"""
from __future__ import annotations

import numpy as np

from analysis.figures import PNG, _png, label, model_label, plt


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
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    return _png(fig)
