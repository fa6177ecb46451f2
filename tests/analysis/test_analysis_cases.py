"""Corrected / regressed / unresolved cases and the cue breakdown on a hand-made table."""
import math

import pandas as pd

from analysis import cases, stats


def _joined():
    texts = [
        ("A man plays a guitar on a stage.", "A man plays a guitar.", 0),        # idx 0
        ("A dog runs in the snow.", "A cat sleeps.", 2),                          # idx 1
        ("Two kids eat ice cream.", "Nobody is eating.", 2),                      # idx 2
        ("A woman reads a book in a park.", "A woman reads a book for school today.", 1),  # idx 3
    ]
    preds = {"baseline_head": [1, 2, 0, 0], "finetuned": [0, 0, 1, 1]}
    rows = []
    for model, ps in preds.items():
        for i, ((p, h, g), pr) in enumerate(zip(texts, ps, strict=False)):
            probs = [0.1, 0.1, 0.1]
            probs[pr] = 0.8
            rows.append({"split": "test", "idx": i, "model": model, "pred": pr, "p_entailment": probs[0],
                         "p_neutral": probs[1], "p_contradiction": probs[2], "label": g, "premise": p,
                         "hypothesis": h})
    return pd.DataFrame(rows)


def test_categories():
    c = cases.case_table(_joined())
    # idx 0: head wrong, ft right -> corrected; idx 1: head right, ft wrong -> regressed;
    # idx 2: both wrong -> unresolved; idx 3: head wrong, ft right -> corrected
    assert list(c["category"]) == ["corrected", "regressed", "unresolved", "corrected"]
    assert cases.counts(c) == {"corrected": 2, "regressed": 1, "unresolved": 1, "kept": 0}
    # the counts agree with the paired test's discordant cells
    p = stats.paired(_joined(), "baseline_head", "finetuned")
    assert (p.b_only, p.a_only, p.both_wrong) == (2, 1, 1)


def test_cues():
    assert cases.has_negation("Nobody is eating.")
    assert cases.has_negation("The man isn't sleeping.")
    assert not cases.has_negation("A man is sleeping.")
    # content words of "A man plays a guitar." (minus stopwords): man, plays, guitar: all in the premise
    assert cases.overlap("A man plays a guitar on a stage.", "A man plays a guitar.") == 1.0
    assert cases.overlap("A dog runs in the snow.", "A cat sleeps.") == 0.0
    assert math.isnan(cases.overlap("x", "a the"))


def test_breakdowns():
    c = cases.case_table(_joined())
    bd = cases.cue_breakdown(c).set_index("cue")
    neg = bd.loc["negation word in the hypothesis"]
    assert neg["unresolved"] == (1, 1)          # the only unresolved row has "Nobody"
    assert neg["fine-tuned right"] == (0, 2)
    lb = cases.label_breakdown(c)
    assert lb.loc["contradiction", "neutral"] == 1 and lb.to_numpy().sum() == 1
    ger = cases.gold_error_rates(c).set_index("label")
    assert ger.loc["contradiction", "ft_wrong"] == 2 and ger.loc["contradiction", "rows"] == 2


def test_missing_model_gives_empty_table():
    j = _joined()
    assert cases.case_table(j[j["model"] != "finetuned"]).empty
