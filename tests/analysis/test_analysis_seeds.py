"""A seed study in numbers (analysis/seeds.py, analysis/sections/seeds.py) from a fixture study written as the
pipeline writes one (tests/report_fixture.py: write_seed_study): every figure recomputed here from the seed folders'
parquet files with pandas and the statistics module, not through analysis/."""
from __future__ import annotations

import json
import math
import statistics

import pandas as pd
import pytest

from analysis.errors import ReportError
from analysis.facts import report_facts
from analysis.sections import seeds as seed_sections
from analysis.seeds import Spread, t_quantile
from tests.report_fixture import make_results, seed_right, write_seed_study

SEEDS = (0, 1, 2)
T_975 = {1: 12.7062047, 2: 4.30265273, 4: 2.77644511, 9: 2.26215716, 30: 2.04227246}  # Student's t tables


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = make_results(tmp_path_factory.mktemp("seeds") / "results")
    write_seed_study(root, "fixture-gpu", SEEDS)
    return root


def _right(root, seed) -> pd.Series:
    return seed_right(root, "fixture-gpu", seed)


def test_mean_spread_interval_and_range_over_the_seeds(results):
    S = report_facts(results).seeds_of(report_facts(results).accuracy_run)
    assert S.present and S.seed_list == list(SEEDS) and not S.missing
    acc = [_right(results, k).mean() for k in SEEDS]
    assert list(S.accuracy.values) == pytest.approx(acc)
    assert S.accuracy.mean == pytest.approx(statistics.mean(acc))
    assert S.accuracy.sd == pytest.approx(statistics.stdev(acc))
    half = T_975[2] * statistics.stdev(acc) / math.sqrt(3)
    assert S.accuracy.ci == pytest.approx((statistics.mean(acc) - half, statistics.mean(acc) + half))
    assert (S.accuracy.min, S.accuracy.max) == (min(acc), max(acc))
    assert len(set(acc)) == 3  # the fixture's seeds differ, so the spread is not trivially zero
    secs = [pd.read_parquet(results / f"fixture-gpu-seed{k}" / "epochs.parquet")["seconds"].sum() for k in SEEDS]
    assert S.time.mean == pytest.approx(statistics.mean(secs)) and S.time.sd == pytest.approx(statistics.stdev(secs))
    assert S.accuracy.covers(min(acc)) and S.accuracy.covers(max(acc)) and not S.accuracy.covers(max(acc) + 0.01)


def test_first_and_warm_epochs_over_the_seeds(results):
    # a run outside the study's time range is read against the seeds' first and later epochs separately
    S = report_facts(results).seeds_of(report_facts(results).accuracy_run)
    epochs = [pd.read_parquet(results / f"fixture-gpu-seed{k}" / "epochs.parquet").sort_values("epoch")["seconds"]
              for k in SEEDS]
    assert list(S.first_epoch.values) == pytest.approx([e.iloc[0] for e in epochs])
    assert list(S.warm_epoch.values) == pytest.approx([e.iloc[1:].mean() for e in epochs])
    assert len(epochs[0]) > 1  # the fixture has later epochs, so the warm mean is not the first epoch again


def test_every_seed_row_with_its_wilson_interval(results):
    R = report_facts(results)
    S = R.seeds_of(R.accuracy_run)
    table = seed_sections.seed_table(S)
    for k in SEEDS:
        right = _right(results, k)
        n, c = len(right), int(right.sum())
        p, z = c / n, 1.959963984540054
        centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        row = next(line for line in table.splitlines() if line.startswith(f"| {k} |"))
        assert f"fixture-gpu-seed{k}" in row and f"{c} / {n}" in row and f"{100 * p:.1f} %" in row
        assert f"{100 * (centre - half):.1f} % – {100 * (centre + half):.1f} %" in row


def test_stable_and_seed_dependent_cases(results):
    R = report_facts(results)
    S = R.seeds_of(R.accuracy_run)
    right = pd.concat([_right(results, k) for k in SEEDS], axis=1, join="inner").sum(axis=1)
    want = {"stable right": int((right == 3).sum()), "stable wrong": int((right == 0).sum()),
            "seed-dependent": int(((right > 0) & (right < 3)).sum())}
    assert S.counts == want and sum(want.values()) == len(right) and all(want.values())
    every = int(right[right == 3].index[0])
    assert S.kinds[every] == "every seed right"
    # the case lists mark each row's kind
    from analysis.sections.cases import example_table
    corrected = example_table(R.accuracy_run, "corrected", S.kinds)
    assert "across seeds" in corrected.splitlines()[1]
    for line in corrected.splitlines()[3:]:
        idx = int(line.split("|")[1])
        assert line.rstrip(" |").endswith(S.kinds[idx])


def test_no_study_reads_as_absent(tmp_path):
    root = make_results(tmp_path / "results")
    R = report_facts(root)
    S = R.seeds_of(R.accuracy_run)
    assert not S.present and S.accuracy.n == 0 and math.isnan(S.accuracy.mean)


def test_an_edited_study_record_stops_the_report_with_one_line(tmp_path):
    root = make_results(tmp_path / "results")
    path = write_seed_study(root, "fixture-gpu", (0, 1))
    record = json.loads(path.read_text())
    record["seeds"] = record["seeds"][:1]
    path.write_text(json.dumps(record))
    R = report_facts(root)
    with pytest.raises(ReportError, match="its seal does not match"):
        R.seeds_of(R.accuracy_run)


@pytest.mark.parametrize("df", sorted(T_975))
def test_t_quantiles(df):
    assert t_quantile(df) == pytest.approx(T_975[df], rel=1e-6)


def test_spread_of_one_value_has_no_spread():
    s = Spread((0.7,))
    assert s.mean == 0.7 and math.isnan(s.sd) and all(math.isnan(x) for x in s.ci)
