"""Corrected, regressed and unresolved cases: the rows themselves, the comparison with each baseline, and
the surface cues of the unresolved ones."""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import pandas as pd

from analysis import cases as cs
from analysis import fmt
from analysis.facts import BASELINES, ReportFacts, RunFacts
from analysis.markdown import Markdown
from analysis.tables import table
from records.schema import LABELS

SITE = Path(__file__).resolve().parent.parent.parent / "_site"  # the project's output-dir (_quarto.yml)
HEADER = ["test idx", "premise", "hypothesis", "gold", "baseline (head)", "fine-tuned"]
WIDTHS = [6, 34, 26, 10, 14, 14]


def _prediction(row, which: str) -> str:
    """e.g. "neutral 0.97 (gold 0.02)": the prediction's probability, and the gold label's when it is wrong."""
    pred, gold = int(row[f"pred_{which}"]), int(row["label"])
    s = f"{LABELS[pred]} {row[f'p_{LABELS[pred]}_{which}']:.2f}"
    return s + (f" (gold {row[f'p_{LABELS[gold]}_{which}']:.2f})" if pred != gold else "")


def _label(i) -> str:
    try:
        return LABELS[int(i)]
    except (ValueError, IndexError, TypeError):
        return str(i)


def example_table(f: RunFacts, category: str, kinds: dict[int, str] | None = None) -> Markdown:
    """The chosen rows of one category (cases.chosen: those the fine-tuned model was most sure of), each with
    its cues; the full list is in the CSV file (case_file). `kinds`: idx -> its kind across a seed study's seeds
    (analysis/seeds.py), shown as a last column."""
    df = cs.chosen(f.cases, category)
    if not len(df):
        return Markdown("None.")
    cues = cs.cue_list(df)
    rows = [[int(row["idx"]), row["premise"], row["hypothesis"], _label(row["label"]), _prediction(row, "base"),
             _prediction(row, "ft"), cues.loc[i]] for i, row in df.iterrows()]
    if kinds is not None:
        for r in rows:
            r.append(kinds.get(r[0], "not scored by the seeds"))
        return table(HEADER + ["cues", "across seeds"], rows, align="rlllllll", widths=WIDTHS + [10, 10])
    return table(HEADER + ["cues"], rows, align="rllllll", widths=WIDTHS + [10])


SHOWN = cs.SHOWN  # examples of each kind in the body
CASE_FILE = "report-cases.csv"
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(v):
    """A text cell a spreadsheet will not run as a formula: a leading = + - @ gets a quote before it."""
    return "'" + v if isinstance(v, str) and v.startswith(_FORMULA) else v


def case_file(R: ReportFacts, folder: Path | None = None) -> Markdown:
    """Write every compared test row of every run with cases to CASE_FILE in the site's folder ($REPORT_SITE,
    else _site/ beside report.qmd) and return a link to it; "" when no run has cases. The file is replaced
    atomically (a link at that path is replaced, never followed)."""
    frames = [_across_seeds(cs.full_list(f.cases), R.seeds_of(f)).assign(run=f.name) for f in R.runs
              if f.accuracy_meaningful and len(f.cases)]
    if not frames:
        return Markdown("")
    folder = Path(folder or os.environ.get("REPORT_SITE") or SITE)
    folder.mkdir(parents=True, exist_ok=True)
    df = pd.concat(frames, ignore_index=True)
    df = df[["run", *[c for c in df.columns if c != "run"]]].map(_cell)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".cases-", suffix=".csv")
    with os.fdopen(fd, "w", newline="") as out:
        df.to_csv(out, index=False)
    os.replace(tmp, folder / CASE_FILE)
    return Markdown(f"[{CASE_FILE}]({CASE_FILE})")


def _across_seeds(rows: pd.DataFrame, study) -> pd.DataFrame:
    """The case list with each row's kind across the seed study of its run's settings, where there is one."""
    if not study.accuracy.n:
        return rows
    return rows.assign(across_seeds=rows["idx"].map(study.kinds).fillna("not scored by the seeds"))


def comparison_table(f: RunFacts) -> Markdown:
    rows = []
    for b in BASELINES:
        c = f.case_counts(b)
        if c is not None:
            p = f.paired.get(b)
            rows.append([f"{b} → finetuned", c["corrected"], c["regressed"], c["unresolved"], c["kept"],
                         fmt.pvalue(p.p_value) if p else "—"])
    return table(["comparison", "corrected", "regressed", "unresolved", "both right", "exact McNemar p"], rows,
                 align="lrrrrr")


def cue_table(f: RunFacts) -> Markdown:
    def cell(v, cue: str) -> str:
        if isinstance(v, tuple):
            k, n = v
            return f"{k} / {n} ({fmt.pct(k / n if n else math.nan, 0)})"
        return fmt.num(v, 2 if "overlap" in cue else 1)
    bd = cs.cue_breakdown(f.cases)
    rows = [[r["cue"], *(cell(r[g], r["cue"]) for g in ("unresolved", "fine-tuned right", "all"))] for _, r in bd.iterrows()]
    return table(["cue", "among unresolved", "among fine-tuned right", "all test rows"], rows, align="lrrr")


def label_table(f: RunFacts) -> Markdown:
    lb = cs.label_breakdown(f.cases) if len(f.cases) else pd.DataFrame()
    rows = [[f"gold {g}", *(int(v) for v in lb.loc[g])] for g in lb.index]
    return table(["unresolved", *(f"predicted {x}" for x in LABELS)], rows, align="lrrr")


def error_rate_table(f: RunFacts) -> Markdown:
    ger = cs.gold_error_rates(f.cases) if len(f.cases) else pd.DataFrame()
    rows = [[r.label, r.rows, r.unresolved, r.ft_wrong, fmt.pct(r.ft_wrong / r.rows if r.rows else math.nan)]
            for r in ger.itertuples()]
    return table(["gold label", "test rows", "unresolved", "fine-tuned wrong", "error rate"], rows, align="lrrrr")


def thresholds(f: RunFacts) -> dict:
    return cs.cue_thresholds(f.cases)


def negation_words() -> str:
    return ", ".join(sorted(cs.NEGATION))
