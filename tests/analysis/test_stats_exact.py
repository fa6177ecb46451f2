"""analysis.stats against values worked out by hand: the boundaries a one-character bug would move (a tie, the
significance level, an empty model, a label out of range), each with the exact number the report shows."""
import math

import pandas as pd
import pytest

from analysis import stats


def test_a_tie_is_no_improvement():
    # 4 rows fixed and 4 broken: the fine-tuned model did not improve (a `>=` would call it improved)
    tie = stats.Paired("baseline_head", "finetuned", 10, 1, 4, 4, 1)
    assert not tie.improved
    assert tie.p_value == 1.0  # 2 * sum_{i<=4} C(8, i) / 256 = 2 * 163 / 256 > 1, capped


def test_significance_is_judged_at_five_percent():
    # 0 broken, 5 fixed: p = 2 / 32 = 0.0625, above 0.05 (not significant); 0 and 6: 2 / 64 = 0.03125, below
    assert stats.ALPHA == 0.05
    assert not stats.Paired("a", "b", 5, 0, 0, 5, 0).significant
    assert stats.Paired("a", "b", 6, 0, 0, 6, 0).significant


def test_mcnemar_exact_values():
    # floating point since issue 20 (analysis.binomial): equal to the exact value within a few units of the last bit
    exact = {"rel": 1e-14, "abs": 0}
    # b=1, c=4: 2 * (C(5,0) + C(5,1)) / 32 = 12 / 32
    assert stats.mcnemar_exact(1, 4) == pytest.approx(0.375, **exact)
    # b=3, c=9: 2 * (1 + 12 + 66 + 220) / 4096 = 598 / 4096
    assert stats.mcnemar_exact(3, 9) == pytest.approx(598 / 4096, **exact)
    assert stats.mcnemar_exact(9, 3) == stats.mcnemar_exact(3, 9)
    # b=2, c=3: one row apart, the tail is exactly half: p exactly 1
    assert stats.mcnemar_exact(2, 3) == 1.0
    # b=c=1: 2 * (1 + 2) / 4 = 1.5, capped at exactly 1
    assert stats.mcnemar_exact(1, 1) == 1.0


def test_wilson_values():
    # 0 of 10: centre = z²/20 / (1 + z²/10) = half, so the lower end is exactly 0 and the upper 2 * centre
    z = stats.Z95
    lo, hi = stats.wilson(0, 10)
    assert lo == 0.0
    assert hi == pytest.approx(2 * (z * z / 20) / (1 + z * z / 10), abs=1e-12)
    assert round(hi, 4) == 0.2775
    # 1 of 2: symmetric around 1/2
    lo, hi = stats.wilson(1, 1)  # one row is enough for an interval
    assert hi == 1.0 and round(lo, 4) == 0.2065
    lo, hi = stats.wilson(1, 2)
    assert lo == pytest.approx(1 - hi, abs=1e-12)
    assert (round(lo, 4), round(hi, 4)) == (0.0945, 0.9055)
    # a narrower z gives a narrower interval: z is used, not the default
    assert stats.wilson(1, 2, z=1.0)[1] < hi
    # floating point puts 16 of 16 a hair above 1 and 0 of 21 a hair below 0: the interval is clipped to [0, 1]
    assert stats.wilson(16, 16)[1] == 1.0 and stats.wilson(0, 21)[0] == 0.0
    assert all(math.isnan(x) for x in stats.wilson(3, -1))


def test_accuracy_value_and_interval():
    a = stats.Accuracy("m", 3, 4)
    assert a.value == 0.75
    assert a.ci == stats.wilson(3, 4)
    assert math.isnan(stats.Accuracy("m", 0, 0).value)


def _frame(rows):
    return pd.DataFrame(rows, columns=["split", "idx", "model", "pred", "label"])


def test_accuracy_counts_only_its_model():
    df = _frame([("test", 0, "a", 1, 1), ("test", 1, "a", 0, 1), ("test", 0, "b", 2, 2)])
    acc = stats.accuracy(df, "a")
    assert (acc.model, acc.correct, acc.n) == ("a", 1, 2)


def test_paired_counts_each_cell_on_shared_rows_only():
    df = _frame([
        ("test", 0, "a", 0, 0), ("test", 0, "b", 0, 0),    # both right
        ("test", 1, "a", 1, 1), ("test", 1, "b", 0, 1),    # a only
        ("test", 2, "a", 0, 2), ("test", 2, "b", 2, 2),    # b only
        ("test", 3, "a", 0, 2), ("test", 3, "b", 1, 2),    # both wrong
        ("test", 6, "a", 0, 1), ("test", 6, "b", 2, 1),    # both wrong
        ("test", 7, "a", 1, 1), ("test", 7, "b", 1, 1),    # both right
        ("test", 8, "a", 2, 2), ("test", 8, "b", 2, 2),    # both right
        ("test", 9, "a", 0, 0), ("test", 9, "b", 0, 0),    # both right
        ("test", 4, "a", 2, 2), ("test", 5, "b", 1, 1),    # unpaired rows: left out
    ])
    p = stats.paired(df, "a", "b")  # every cell a different count, so no two can be swapped unseen
    assert (p.a, p.b, p.n, p.both_right, p.a_only, p.b_only, p.both_wrong) == ("a", "b", 8, 4, 1, 1, 2)
    assert stats.paired(df, "a", "missing") is None
    assert stats.paired(df, "missing", "a") is None


def test_with_gold_joins_one_split_on_idx():
    preds = _frame([("test", 0, "m", 1, None), ("test", 1, "m", 2, None), ("validation", 0, "m", 0, None)])
    preds = preds.drop(columns=["label"])
    samples = pd.DataFrame({"split": ["test", "test", "validation"], "idx": [0, 2, 0], "label": [1, 0, 2],
                            "premise": ["p0", "p2", "v0"], "hypothesis": ["h0", "h2", "hv"]})
    j = stats.with_gold(preds, samples)
    assert j[["idx", "pred", "label", "premise"]].values.tolist() == [[0, 1, 1, "p0"]]
    v = stats.with_gold(preds, samples, split="validation")
    assert v[["idx", "pred", "label", "hypothesis"]].values.tolist() == [[0, 0, 2, "hv"]]
    empty = stats.with_gold(None, samples)
    assert len(empty) == 0 and empty.columns.tolist() == [
        "split", "idx", "model", "pred", "p_entailment", "p_neutral", "p_contradiction", "label", "premise",
        "hypothesis"]
    assert len(stats.with_gold(preds, None)) == 0


def test_models_in_orders_every_kind():
    df = pd.DataFrame({"model": ["zz", "finetuned", "epoch_x", "epoch_3", "epoch_1", "baseline_zeroshot",
                                 "baseline_head", "finetuned", "aa"]})
    assert stats.models_in(df) == ["baseline_head", "baseline_zeroshot", "epoch_1", "epoch_3", "finetuned",
                                   "aa", "epoch_x", "zz"]
    assert stats.models_in(pd.DataFrame({"model": []})) == []
    assert stats.models_in(pd.DataFrame()) == []  # no predictions table at all


def test_confusion_ignores_labels_out_of_range():
    df = _frame([("test", 0, "m", 0, 0), ("test", 1, "m", 2, 2), ("test", 2, "m", 3, 0), ("test", 3, "m", 0, -1),
                 ("test", 4, "m", -1, 1), ("test", 5, "m", 1, 3), ("test", 6, "x", 1, 1)])
    cm = stats.confusion(df, "m")
    assert cm.to_numpy().tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 1]]
    assert cm.to_numpy().dtype.kind == "i"  # counts print as 1, not 1.0


def test_per_class_f1_support_and_macro():
    # gold 0 0 1 1 2 ; pred 0 1 1 1 0
    df = _frame([("test", i, "m", p, g) for i, (g, p) in enumerate(zip([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], strict=True))])
    pc = stats.per_class(df, "m").set_index("label")
    # entailment: tp 1, predicted 2, support 2 -> P = R = F1 = 1/2
    assert pc.loc["entailment"].tolist()[:3] == [0.5, 0.5, 0.5]
    # neutral: tp 2, predicted 3, support 2 -> P 2/3, R 1, F1 = 2 * 2/3 / (5/3) = 0.8
    assert pc.loc["neutral", "f1"] == pytest.approx(0.8)
    # contradiction: tp 0, predicted 0, support 1 -> P NaN, R 0, F1 NaN (counted as 0 in the macro mean)
    assert math.isnan(pc.loc["contradiction", "precision"]) and pc.loc["contradiction", "recall"] == 0
    assert math.isnan(pc.loc["contradiction", "f1"])
    assert pc["support"].tolist() == [2, 2, 1] and pc["predicted"].tolist() == [2, 3, 0]
    assert stats.macro_f1(df, "m") == pytest.approx((0.5 + 0.8 + 0.0) / 3)


@pytest.mark.filterwarnings("error")  # an undefined ratio is NaN by decision, never a 0/0 division
def test_per_class_f1_is_zero_when_predicted_and_present_but_never_right():
    # gold 0 1 ; pred 1 0: both labels predicted and present, no true positive -> F1 0, not NaN
    df = _frame([("test", 0, "m", 1, 0), ("test", 1, "m", 0, 1)])
    pc = stats.per_class(df, "m").set_index("label")
    assert pc.loc["entailment", "f1"] == 0.0 and pc.loc["neutral", "f1"] == 0.0
    assert math.isnan(pc.loc["contradiction", "recall"])  # no gold row: recall undefined
