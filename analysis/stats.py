"""Accuracy with Wilson intervals, McNemar's exact test on paired predictions, confusion matrices and
per-class precision / recall / F1. Pure functions over pandas; no scipy needed (the binomial tail is
analysis.binomial's)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from analysis.binomial import fair_lower_tail
from records.schema import LABELS, PROB_COLUMNS

Z95 = 1.959963984540054  # two-sided 95 % normal quantile
ALPHA = 0.05             # the significance level of every test in the report, said nowhere else


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes out of n."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar test: twice the lower tail of binomial(b + c, 1/2) at min(b, c) on the discordant
    pairs, capped at 1. Linear in b + c at worst (analysis.binomial); agrees with the sum of exact fractions to
    about 1e-13 relative (tests/analysis/test_mcnemar_scale.py keeps that sum as the reference)."""
    n = b + c
    k = min(b, c)
    if 2 * k + 1 >= n:  # a tie, or one row apart: the tail holds at least half the mass, so p is exactly 1
        return 1.0
    return min(1.0, 2 * fair_lower_tail(k, n))


@dataclass
class Accuracy:
    model: str
    correct: int
    n: int

    @property
    def value(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    @property
    def ci(self) -> tuple[float, float]:
        return wilson(self.correct, self.n)


@dataclass
class Paired:
    a: str            # e.g. baseline_head
    b: str            # e.g. finetuned
    n: int
    both_right: int
    a_only: int       # a right, b wrong (regressed when a is the baseline)
    b_only: int       # a wrong, b right (corrected)
    both_wrong: int

    @cached_property
    def p_value(self) -> float:
        """Exact McNemar p; NaN when there are no pairs at all. Computed once per pair: the facts keep each Paired
        (RunFacts.paired), and the report reads its p in several places."""
        return mcnemar_exact(self.a_only, self.b_only) if self.n else float("nan")

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    @property
    def improved(self) -> bool:
        """More rows fixed by b than broken by it."""
        return self.b_only > self.a_only


def with_gold(predictions: pd.DataFrame, samples: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Predictions of one split joined with the gold label (inner join on split, idx)."""
    if predictions is None or samples is None:
        return pd.DataFrame(columns=["split", "idx", "model", "pred", *PROB_COLUMNS, "label", "premise", "hypothesis"])
    p = predictions[predictions["split"] == split]
    s = samples[samples["split"] == split][["idx", "label", "premise", "hypothesis"]]
    return p.merge(s, on="idx", how="inner")


def models_in(df: pd.DataFrame) -> list[str]:
    """Models in the canonical order: baselines, epochs by number, finetuned, then anything else."""
    names = list(dict.fromkeys(df["model"])) if len(df) else []

    def key(m: str):
        if m == "baseline_head":
            return (0, 0, m)
        if m == "baseline_zeroshot":
            return (1, 0, m)
        if m.startswith("epoch_") and m[6:].isdigit():
            return (2, int(m[6:]), m)
        if m == "finetuned":
            return (3, 0, m)
        return (4, 0, m)
    return sorted(names, key=key)


def accuracy(df: pd.DataFrame, model: str) -> Accuracy | None:
    d = df[df["model"] == model]
    if not len(d):
        return None
    return Accuracy(model, int((d["pred"] == d["label"]).sum()), len(d))


def paired(df: pd.DataFrame, a: str, b: str) -> Paired | None:
    da = df[df["model"] == a][["idx", "pred", "label"]]
    db = df[df["model"] == b][["idx", "pred"]]
    if not len(da) or not len(db):
        return None
    m = da.merge(db, on="idx", suffixes=("_a", "_b"))
    ra, rb = m["pred_a"] == m["label"], m["pred_b"] == m["label"]
    return Paired(a, b, len(m), int((ra & rb).sum()), int((ra & ~rb).sum()), int((~ra & rb).sum()),
                  int((~ra & ~rb).sum()))


def confusion(df: pd.DataFrame, model: str) -> pd.DataFrame:
    """Rows gold, columns predicted, in LABELS order; counts."""
    d = df[df["model"] == model]
    k = len(LABELS)
    m = np.zeros((k, k), dtype=int)
    for g, p in zip(d["label"], d["pred"], strict=False):
        if 0 <= g < k and 0 <= p < k:
            m[int(g), int(p)] += 1
    return pd.DataFrame(m, index=list(LABELS), columns=list(LABELS))


def per_class(df: pd.DataFrame, model: str) -> pd.DataFrame:
    """Precision, recall, F1 and support per label; precision is NaN (undefined) for a never-predicted label."""
    cm = confusion(df, model).to_numpy()
    rows = []
    for i, name in enumerate(LABELS):
        tp = cm[i, i]
        predicted = cm[:, i].sum()
        support = cm[i, :].sum()
        prec = tp / predicted if predicted else float("nan")
        rec = tp / support if support else float("nan")
        f1 = 2 * prec * rec / (prec + rec) if predicted and support and (prec + rec) > 0 else (
            0.0 if predicted and support else float("nan"))
        rows.append({"label": name, "precision": prec, "recall": rec, "f1": f1, "support": int(support),
                     "predicted": int(predicted)})
    return pd.DataFrame(rows)


def macro_f1(df: pd.DataFrame, model: str) -> float:
    f1 = per_class(df, model)["f1"]
    return float(f1.fillna(0.0).mean())
