"""A seed study (analysis/seeds.py) in the report: every seed's row, and the phrases its paragraphs need. Every value
from the study record or a seed's folder goes through analysis.markdown (the tables' cells, `text`)."""
from __future__ import annotations

from analysis import fmt
from analysis.markdown import Markdown, text
from analysis.seeds import SeedStudy
from analysis.tables import table


def seed_table(s: SeedStudy) -> Markdown:
    """One row per seed of the study: its run, fine-tuned test accuracy with its Wilson interval, fine-tuning time."""
    rows = []
    for seed in s.seeds:
        a = seed.accuracy
        rows.append([seed.seed, seed.name,
                     f"{a.correct} / {a.n}" if a else "not scored", fmt.pct(a.value) if a else "not scored",
                     f"{fmt.pct(a.ci[0])} – {fmt.pct(a.ci[1])}" if a else "",
                     "folder not there yet" if seed.run is None else fmt.seconds(seed.finetune_seconds)])
    return table(["seed", "run", "correct", "fine-tuned accuracy", "95 % interval (Wilson)", "fine-tuning time"],
                 rows, align="rlrrrr", widths=[6, 30, 10, 12, 18, 14])


def summary_table(s: SeedStudy) -> Markdown:
    """Mean, standard deviation, 95 % t interval for the mean, minimum and maximum over the seeds."""
    rows = []
    if s.accuracy.n:
        a = s.accuracy
        rows.append(["fine-tuned test accuracy", a.n, fmt.pct(a.mean), fmt.num(100 * a.sd, 1) + " percentage points",
                     f"{fmt.pct(a.ci[0])} – {fmt.pct(a.ci[1])}", fmt.pct(a.min), fmt.pct(a.max)])
    if s.time.n:
        t = s.time
        rows.append(["fine-tuning time", t.n, fmt.seconds(t.mean), fmt.seconds(t.sd),
                     f"{fmt.seconds(t.ci[0])} – {fmt.seconds(t.ci[1])}", fmt.seconds(t.min), fmt.seconds(t.max)])
    return table(["over the seeds", "seeds", "mean", "standard deviation", "95 % interval for the mean (t)", "min",
                  "max"], rows, align="lrrrrrr")


def seeds_list(s: SeedStudy) -> Markdown:
    return text(fmt.and_list(s.seed_list))


def governs(s: SeedStudy) -> Markdown:
    """What the seed drives, as the study record says, in one escaped phrase."""
    return text(fmt.and_list(s.governs) or "not recorded")
