"""Corrected, regressed and unresolved test cases (a baseline against the fine-tuned model), and a
breakdown of simple surface cues that helps read the unresolved ones. Cues are descriptions, not causes."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from records.schema import LABELS, PROB_COLUMNS

CATEGORIES = {
    "corrected": "baseline wrong, fine-tuned right",
    "regressed": "baseline right, fine-tuned wrong",
    "unresolved": "both wrong",
    "kept": "both right",
}
NEGATION = {"no", "not", "never", "nobody", "nothing", "none", "neither", "nor", "without", "nowhere",
            "cannot", "n't"}
STOPWORDS = {"a", "an", "the", "is", "are", "was", "were", "be", "of", "in", "on", "at", "to", "and", "with",
             "for", "his", "her", "their", "its", "this", "that", "there", "some", "by", "as"}
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def words(text: str) -> list[str]:
    return _WORD.findall(str(text).lower())


def has_negation(text: str) -> bool:
    toks = words(text)
    return any(t in NEGATION or t.endswith("n't") for t in toks)


def overlap(premise: str, hypothesis: str) -> float:
    """Share of the hypothesis's content words that also occur in the premise (0..1)."""
    h = [t for t in words(hypothesis) if t not in STOPWORDS]
    if not h:
        return float("nan")
    p = set(words(premise))
    return sum(t in p for t in h) / len(h)


def case_table(joined: pd.DataFrame, baseline: str = "baseline_head", model: str = "finetuned") -> pd.DataFrame:
    """One row per test example present for both models: texts, gold, both predictions and probabilities,
    category, and the cues. `joined` is stats.with_gold(...) output."""
    keep = ["idx", "premise", "hypothesis", "label", "pred", *PROB_COLUMNS]
    a = joined[joined["model"] == baseline][keep]
    b = joined[joined["model"] == model][["idx", "pred", *PROB_COLUMNS]]
    if not len(a) or not len(b):
        return pd.DataFrame()
    m = a.merge(b, on="idx", suffixes=("_base", "_ft")).sort_values("idx").reset_index(drop=True)
    rb, rf = m["pred_base"] == m["label"], m["pred_ft"] == m["label"]
    m["category"] = np.select([~rb & rf, rb & ~rf, ~rb & ~rf], ["corrected", "regressed", "unresolved"], "kept")
    m["negation"] = m["hypothesis"].map(has_negation)
    m["overlap"] = [overlap(p, h) for p, h in zip(m["premise"], m["hypothesis"], strict=False)]
    m["hyp_words"] = m["hypothesis"].map(lambda t: len(words(t)))
    return m


def counts(cases: pd.DataFrame) -> dict[str, int]:
    c = cases["category"].value_counts() if len(cases) else {}
    return {k: int(c.get(k, 0)) for k in CATEGORIES}


def cue_thresholds(cases: pd.DataFrame) -> dict:
    """Thresholds from the data itself: 'long' = more words than the median hypothesis of the test rows."""
    return {"high_overlap": 0.8, "long_words": float(cases["hyp_words"].median()) if len(cases) else float("nan")}


def cue_flags(cases: pd.DataFrame) -> pd.DataFrame:
    t = cue_thresholds(cases)
    return pd.DataFrame({
        "negation": cases["negation"],
        "high_overlap": cases["overlap"] >= t["high_overlap"],
        "long": cases["hyp_words"] > t["long_words"],
    }, index=cases.index)


def cue_list(cases: pd.DataFrame) -> pd.Series:
    """A short text per row naming the cues present, e.g. 'negation; high overlap'."""
    f = cue_flags(cases)
    names = {"negation": "negation", "high_overlap": "high overlap", "long": "long hypothesis"}
    return f.apply(lambda r: "; ".join(names[k] for k in names if r[k]) or "none", axis=1)


def cue_breakdown(cases: pd.DataFrame) -> pd.DataFrame:
    """Rate of each cue among unresolved cases vs among the cases the fine-tuned model gets right."""
    if not len(cases):
        return pd.DataFrame()
    f = cue_flags(cases)
    groups = {
        "unresolved": cases["category"] == "unresolved",
        "fine-tuned right": cases["category"].isin(["corrected", "kept"]),
        "all": pd.Series(True, index=cases.index),
    }
    rows = []
    for cue, label in (("negation", "negation word in the hypothesis"),
                       ("high_overlap", "lexical overlap ≥ 80 %"),
                       ("long", "hypothesis longer than the median")):
        row = {"cue": label}
        for g, mask in groups.items():
            n = int(mask.sum())
            k = int((f[cue] & mask).sum())
            row[g] = (k, n)
        rows.append(row)
    for stat, label in (("overlap", "mean lexical overlap"), ("hyp_words", "mean hypothesis length (words)")):
        row = {"cue": label}
        for g, mask in groups.items():
            row[g] = float(cases.loc[mask, stat].mean()) if mask.any() else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def label_breakdown(cases: pd.DataFrame, category: str = "unresolved") -> pd.DataFrame:
    """Gold label x fine-tuned prediction counts among one category."""
    sub = cases[cases["category"] == category]
    m = pd.crosstab(sub["label"], sub["pred_ft"]).reindex(index=range(len(LABELS)), columns=range(len(LABELS)),
                                                            fill_value=0)
    m.index = list(LABELS)
    m.columns = list(LABELS)
    return m


def gold_error_rates(cases: pd.DataFrame) -> pd.DataFrame:
    """Per gold label: rows, unresolved, fine-tuned wrong (unresolved + regressed)."""
    rows = []
    for i, name in enumerate(LABELS):
        sub = cases[cases["label"] == i]
        rows.append({"label": name, "rows": len(sub), "unresolved": int((sub["category"] == "unresolved").sum()),
                     "ft_wrong": int(sub["category"].isin(["unresolved", "regressed"]).sum())})
    return pd.DataFrame(rows)


SHOWN = 4  # examples of each kind the report's body shows; the full lists go to a CSV file beside it


def confidence(cases: pd.DataFrame, which: str = "ft") -> pd.Series:
    """The probability a model gave its own prediction, per row (`which`: "ft" or "base")."""
    probs = np.column_stack([cases[f"p_{name}_{which}"].to_numpy() for name in LABELS])
    return pd.Series(probs[np.arange(len(cases)), cases[f"pred_{which}"].astype(int).to_numpy()], index=cases.index)


def chosen(cases: pd.DataFrame, category: str, k: int = SHOWN) -> pd.DataFrame:
    """The `k` rows of a category the fine-tuned model was most sure of (ties: lowest idx first): its clearest
    corrections, and its most confident mistakes among regressed and unresolved rows."""
    sub = cases[cases["category"] == category] if len(cases) else cases
    if not len(sub):
        return sub
    order = pd.DataFrame({"c": -confidence(sub), "idx": sub["idx"]}).sort_values(["c", "idx"]).index
    return sub.loc[order[:k]]


def full_list(cases: pd.DataFrame) -> pd.DataFrame:
    """Every compared row in words, one row each, for the CSV beside the report."""
    if not len(cases):
        return pd.DataFrame()
    name = dict(enumerate(LABELS))
    return pd.DataFrame({
        "idx": cases["idx"].astype(int), "category": cases["category"], "premise": cases["premise"],
        "hypothesis": cases["hypothesis"], "gold": cases["label"].map(name),
        "baseline": cases["pred_base"].map(name), "baseline_p": confidence(cases, "base").round(4),
        "finetuned": cases["pred_ft"].map(name), "finetuned_p": confidence(cases, "ft").round(4),
        "cues": cue_list(cases)})
