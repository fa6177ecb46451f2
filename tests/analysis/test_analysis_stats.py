"""Statistics against values worked out by hand in the test."""
import math

import pandas as pd
import pytest

from analysis import fmt, stats


def test_mcnemar_exact_hand_computed():
    # b=2, c=10: p = 2 * sum_{k<=2} C(12,k) / 2^12 = 2 * (1 + 12 + 66) / 4096
    expected = 2 * (1 + 12 + 66) / 4096
    assert stats.mcnemar_exact(2, 10) == pytest.approx(expected, abs=1e-15)
    assert round(stats.mcnemar_exact(2, 10), 4) == 0.0386
    assert stats.mcnemar_exact(10, 2) == stats.mcnemar_exact(2, 10)  # two-sided, symmetric


def test_mcnemar_edge_cases():
    assert stats.mcnemar_exact(0, 0) == 1.0          # no discordant pairs: no evidence
    assert stats.mcnemar_exact(3, 3) == 1.0          # capped at 1
    assert stats.mcnemar_exact(0, 5) == pytest.approx(2 / 32)  # 2 * (1/2)^5
    assert stats.mcnemar_exact(0, 1) == 1.0


def test_wilson_interval_by_formula():
    k, n, z = 75, 100, 1.959963984540054
    p = k / n
    centre = (p + z ** 2 / (2 * n)) / (1 + z ** 2 / n)
    half = z / (1 + z ** 2 / n) * math.sqrt(p * (1 - p) / n + z ** 2 / (4 * n ** 2))
    lo, hi = stats.wilson(k, n)
    assert lo == pytest.approx(centre - half, abs=1e-12)
    assert hi == pytest.approx(centre + half, abs=1e-12)
    assert (round(lo, 4), round(hi, 4)) == (0.6570, 0.8245)  # 75/100: [65.70 %, 82.45 %]


def test_wilson_bounds():
    lo, hi = stats.wilson(0, 20)
    assert lo == 0.0 and 0 < hi < 0.2
    lo, hi = stats.wilson(20, 20)
    assert hi == 1.0 and lo > 0.8
    assert all(math.isnan(x) for x in stats.wilson(0, 0))


def _joined():
    # gold:     0 0 1 1 2 2
    # head:     1 0 0 1 0 0   -> right at rows 1, 3            (2/6)
    # finetuned:0 0 1 2 2 0   -> right at rows 0, 1, 2, 4      (4/6)
    gold = [0, 0, 1, 1, 2, 2]
    rows = []
    for model, preds in (("baseline_head", [1, 0, 0, 1, 0, 0]), ("finetuned", [0, 0, 1, 2, 2, 0])):
        for i, (g, p) in enumerate(zip(gold, preds, strict=False)):
            rows.append({"split": "test", "idx": i * 100, "model": model, "pred": p, "label": g})
    return pd.DataFrame(rows)


def test_accuracy_paired_and_confusion():
    df = _joined()
    assert stats.accuracy(df, "baseline_head").correct == 2
    assert stats.accuracy(df, "finetuned").value == pytest.approx(4 / 6)
    assert stats.accuracy(df, "nope") is None
    p = stats.paired(df, "baseline_head", "finetuned")
    # both right: row 1; head only: row 3; finetuned only: rows 0, 2, 4; both wrong: row 5
    assert (p.both_right, p.a_only, p.b_only, p.both_wrong, p.n) == (1, 1, 3, 1, 6)
    assert p.p_value == pytest.approx(stats.mcnemar_exact(1, 3))
    cm = stats.confusion(df, "finetuned")
    assert cm.loc["entailment", "entailment"] == 2
    assert cm.loc["neutral", "contradiction"] == 1
    assert cm.loc["contradiction", "entailment"] == 1
    assert cm.to_numpy().sum() == 6


def test_per_class_hand_computed():
    df = _joined()
    pc = stats.per_class(df, "finetuned").set_index("label")
    # entailment: predicted 3 times (rows 0, 1, 5), right twice; gold 2 -> P 2/3, R 1
    assert pc.loc["entailment", "precision"] == pytest.approx(2 / 3)
    assert pc.loc["entailment", "recall"] == pytest.approx(1.0)
    assert pc.loc["entailment", "f1"] == pytest.approx(2 * (2 / 3) / (2 / 3 + 1))
    # neutral: predicted once (right); gold 2 -> P 1, R 1/2
    assert pc.loc["neutral", "precision"] == pytest.approx(1.0)
    assert pc.loc["neutral", "recall"] == pytest.approx(0.5)
    head = stats.per_class(df, "baseline_head").set_index("label")
    # the head never predicts contradiction: precision undefined (NaN), recall 0
    assert math.isnan(head.loc["contradiction", "precision"])
    assert head.loc["contradiction", "recall"] == 0


def test_models_in_canonical_order():
    df = pd.DataFrame({"model": ["finetuned", "epoch_10", "epoch_2", "baseline_zeroshot", "baseline_head", "x"]})
    assert stats.models_in(df) == ["baseline_head", "baseline_zeroshot", "epoch_2", "epoch_10", "finetuned", "x"]


def test_formatting_never_turns_missing_into_zero():
    for f in (fmt.integer, fmt.gib, fmt.gb, fmt.mem, fmt.pct, fmt.pct_value, fmt.seconds, fmt.num):
        assert f(None) == "not measured"
        assert f(float("nan")) == "not measured"
    assert fmt.integer(1408634880) == "1,408,634,880"
    assert fmt.pct(0.75) == "75.0 %"
    assert fmt.gib(15 * 2 ** 30) == "15.00 GiB"
    assert fmt.gb(16_106_000_000) == "16.106 GB"


def test_compact_ids():
    assert fmt.compact_ids(range(0, 10000, 100)) == "0, 100, …, 9900 (step 100)"
    assert fmt.compact_ids([5, 15, 25, 35, 55, 65, 75]) == "5, 15, …, 35 (step 10); 55, 65, …, 75 (step 10)"
    assert fmt.compact_ids([1, 2, 3, 4, 9]) == "1–4; 9"
    assert fmt.compact_ids([7]) == "7"
    assert fmt.compact_ids([]) == "none"


def test_paired_without_pairs_has_no_p_value_and_significance_uses_alpha():
    empty = stats.Paired("baseline_head", "finetuned", 0, 0, 0, 0, 0)
    assert math.isnan(empty.p_value) and not empty.significant
    # 1 broken, 9 fixed: p = 2 * (1 + 10) / 1024 = 0.0215 < ALPHA; 3 broken, 6 fixed: p = 0.508 > ALPHA
    fixed = stats.Paired("baseline_head", "finetuned", 20, 5, 1, 9, 5)
    assert fixed.p_value == pytest.approx(22 / 1024) and fixed.significant and fixed.improved
    assert not stats.Paired("baseline_head", "finetuned", 20, 5, 3, 6, 6).significant
    worse = stats.Paired("baseline_head", "finetuned", 20, 5, 9, 1, 5)
    assert worse.significant and not worse.improved
