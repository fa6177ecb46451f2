"""analysis.cases word by word and row by row: every negation word and stopword the cue tables rely on, each
category, each cue's threshold, and the exact cells of every breakdown, on rows written out here."""
import math

import pandas as pd
import pytest

from analysis import cases

NEGATIONS = ["no", "not", "never", "nobody", "nothing", "none", "neither", "nor", "without", "nowhere", "cannot",
             "n't"]
STOPWORDS = ["a", "an", "the", "is", "are", "was", "were", "be", "of", "in", "on", "at", "to", "and", "with",
             "for", "his", "her", "their", "its", "this", "that", "there", "some", "by", "as"]


@pytest.mark.parametrize("word", NEGATIONS)
def test_each_negation_word_is_a_negation(word):
    assert cases.has_negation(f"The cat is {word.upper()} here")
    assert word in cases.NEGATION


def test_negation_needs_a_whole_word():
    assert cases.has_negation("He doesn't run") and cases.has_negation("they won't")
    assert not cases.has_negation("a note on knots")  # "no" inside a word is no negation
    assert not cases.has_negation("")


@pytest.mark.parametrize("word", STOPWORDS)
def test_each_stopword_is_left_out_of_overlap(word):
    # hypothesis: the stopword and "dog"; premise has only "dog": overlap 1 exactly when the stopword is ignored
    assert cases.overlap("dog", f"{word} dog") == 1.0
    assert word in cases.STOPWORDS


def test_words_and_overlap_values():
    assert cases.words("It's A Dog's-life, 42!") == ["it's", "a", "dog's", "life", "42"]
    assert cases.overlap("a man sits", "man dog cat sits") == 0.5
    assert cases.overlap("A MAN", "the man") == 1.0
    assert math.isnan(cases.overlap("anything", ""))


def _row(idx, label, base, ft, hyp="A man sleeps.", premise="A man sleeps at home."):
    out = []
    for model, pred in (("baseline_head", base), ("finetuned", ft)):
        probs = [0.1, 0.1, 0.1]
        probs[pred] = 0.8
        out.append({"split": "test", "idx": idx, "model": model, "pred": pred, "p_entailment": probs[0],
                    "p_neutral": probs[1], "p_contradiction": probs[2], "label": label, "premise": premise,
                    "hypothesis": hyp})
    return out


def _table():
    rows = (_row(3, 0, 0, 0, hyp="A man sleeps.")                                   # kept
            + _row(1, 1, 0, 1, hyp="A man does not sleep at all today.")             # corrected, negation, long
            + _row(2, 2, 2, 0, hyp="Dogs run.", premise="Cats sit.")                 # regressed
            + _row(0, 2, 1, 1, hyp="Nobody sleeps in a big old house.", premise="x")  # unresolved, negation, long
            + _row(4, 1, 0, 2, hyp="A man sleeps on a bed.", premise="A man sleeps."))  # unresolved
    return pd.DataFrame(rows)


def test_case_table_rows_and_cues():
    c = cases.case_table(_table())
    assert c["idx"].tolist() == [0, 1, 2, 3, 4]  # sorted by idx
    assert c["category"].tolist() == ["unresolved", "corrected", "regressed", "kept", "unresolved"]
    assert c["negation"].tolist() == [True, True, False, False, False]
    assert c["hyp_words"].tolist() == [7, 8, 2, 3, 6]
    assert c["overlap"].tolist() == [0.0, 1 / 6, 0.0, 1.0, 2 / 3]  # "sleep" is not "sleeps"
    assert c.loc[1, "pred_base"] == 0 and c.loc[1, "pred_ft"] == 1 and c.loc[1, "p_neutral_ft"] == 0.8
    assert c.loc[1, "p_entailment_base"] == 0.8
    assert cases.counts(c) == {"corrected": 1, "regressed": 1, "unresolved": 2, "kept": 1}
    assert cases.counts(pd.DataFrame()) == {"corrected": 0, "regressed": 0, "unresolved": 0, "kept": 0}
    assert cases.case_table(_table(), baseline="finetuned", model="baseline_head")["category"].tolist() == [
        "unresolved", "regressed", "corrected", "kept", "unresolved"]
    assert c.columns.tolist() == [
        "idx", "premise", "hypothesis", "label", "pred_base", "p_entailment_base", "p_neutral_base",
        "p_contradiction_base", "pred_ft", "p_entailment_ft", "p_neutral_ft", "p_contradiction_ft", "category",
        "negation", "overlap", "hyp_words"]
    j = _table()
    for missing in ("baseline_head", "finetuned"):  # either model absent: no table at all, not an empty one
        assert cases.case_table(j[j["model"] != missing]).columns.tolist() == []


def test_cue_thresholds_and_flags():
    c = cases.case_table(_table())
    assert cases.cue_thresholds(c) == {"high_overlap": 0.8, "long_words": 6.0}
    assert math.isnan(cases.cue_thresholds(pd.DataFrame())["long_words"])
    f = cases.cue_flags(c)
    assert f["high_overlap"].tolist() == [False, False, False, True, False]
    assert f["long"].tolist() == [True, True, False, False, False]  # 6 words is the median: not longer
    exact = c.copy()
    exact.loc[0, "overlap"] = 0.8
    assert cases.cue_flags(exact)["high_overlap"].tolist()[0]  # 80 % counts as high
    assert cases.cue_list(c).tolist() == ["negation; long hypothesis", "negation; long hypothesis", "none",
                                          "high overlap", "none"]


def test_cue_breakdown_cells():
    c = cases.case_table(_table())
    bd = cases.cue_breakdown(c).set_index("cue")
    assert bd.index.tolist() == ["negation word in the hypothesis", "lexical overlap ≥ 80 %",
                                 "hypothesis longer than the median", "mean lexical overlap",
                                 "mean hypothesis length (words)"]
    assert bd.columns.tolist() == ["unresolved", "fine-tuned right", "all"]
    assert bd.loc["negation word in the hypothesis"].tolist() == [(1, 2), (1, 2), (2, 5)]
    assert bd.loc["lexical overlap ≥ 80 %"].tolist() == [(0, 2), (1, 2), (1, 5)]
    assert bd.loc["hypothesis longer than the median"].tolist() == [(1, 2), (1, 2), (2, 5)]
    assert bd.loc["mean lexical overlap"].tolist() == pytest.approx([1 / 3, 7 / 12, 11 / 30])
    assert bd.loc["mean hypothesis length (words)"].tolist() == pytest.approx([6.5, 5.5, 26 / 5])
    assert cases.cue_breakdown(pd.DataFrame()).empty
    none_unresolved = c[c["category"] != "unresolved"]
    assert math.isnan(cases.cue_breakdown(none_unresolved).set_index("cue").loc["mean lexical overlap",
                                                                                 "unresolved"])


def test_label_and_gold_breakdowns():
    c = cases.case_table(_table())
    lb = cases.label_breakdown(c)
    assert lb.index.tolist() == ["entailment", "neutral", "contradiction"] == lb.columns.tolist()
    assert lb.to_numpy().tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert cases.label_breakdown(c, "regressed").to_numpy().tolist() == [[0, 0, 0], [0, 0, 0], [1, 0, 0]]
    ger = cases.gold_error_rates(c)
    assert ger.to_dict("records") == [
        {"label": "entailment", "rows": 1, "unresolved": 0, "ft_wrong": 0},
        {"label": "neutral", "rows": 2, "unresolved": 1, "ft_wrong": 1},
        {"label": "contradiction", "rows": 2, "unresolved": 1, "ft_wrong": 2},
    ]
