"""The report's seed section, rendered: from a fixture study of the headline run's settings (tests/report_fixture.py:
write_seed_study) the accuracy section, the verdict and the cases give the seeds' mean, spread, range, every seed and
the stable / seed-dependent rows, each figure recomputed here from the seed folders' parquet files; without a study
the report says in one line that it rests on one seed (the shared fixture render, tests/report/conftest.py)."""
from __future__ import annotations

import statistics

import pandas as pd
import pytest

from analysis import render
from tests.report.helpers import html_text
from tests.report_fixture import make_results, seed_right, write_seed_study

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def with_study(tmp_path_factory):
    import os
    os.environ.pop("REPORT_RUNS", None)
    base = tmp_path_factory.mktemp("render-seeds")
    results = make_results(base / "results")
    write_seed_study(results, "fixture-gpu", SEEDS)
    produced = render.render(results=results, out=base / "site", engine="nbclient", formats=("html",),
                             build_dir=base / "build")
    return results, html_text(produced["html"])


def _right(root, seed) -> pd.Series:
    return seed_right(root, "fixture-gpu", seed)


def test_the_seed_section_gives_mean_spread_range_and_every_seed(with_study):
    results, text = with_study
    acc = [_right(results, k).mean() for k in SEEDS]
    mean, sd = statistics.mean(acc), statistics.stdev(acc)
    assert (f"Over {len(SEEDS)} seeds the fine-tuned test accuracy had a mean of {100 * mean:.1f} % and a standard "
            f"deviation of {100 * sd:.1f} percentage points") in text
    assert f"ranged from {100 * min(acc):.1f} % to {100 * max(acc):.1f} %" in text
    for k, a in zip(SEEDS, acc, strict=True):
        right = _right(results, k)
        assert f"{k} fixture-gpu-seed{k} {int(right.sum())} / {len(right)} {100 * a:.1f} %" in text
    inside = min(acc) <= 0.75 <= max(acc)
    assert f"The original’s 75 % lies {'inside' if inside else 'outside'} that range" in text
    assert "the data sample is the same for every seed" in text
    assert "one seed; no seed study yet" not in text


def test_the_verdict_and_the_cases_speak_of_the_seeds(with_study):
    results, text = with_study
    acc = [_right(results, k).mean() for k in SEEDS]
    verdict = text.split("Verdict at a glance")[1].split("What stands in for what")[0]
    assert f"Over {len(SEEDS)} seeds of the same settings" in verdict and f"{100 * statistics.mean(acc):.1f} %" in verdict
    right = pd.concat([_right(results, k) for k in SEEDS], axis=1, join="inner").sum(axis=1)
    assert (f"Of the {len(right)} test rows, {int((right == 3).sum())} are right with every one of the 3 seeds of the "
            f"study, {int((right == 0).sum())} with none, and {int(((right > 0) & (right < 3)).sum())} depend on the "
            f"seed") in text


def test_without_a_study_the_report_says_one_seed(rendered):
    text = html_text(rendered["html"])
    assert "Across seeds: one seed; no seed study yet" in text
    assert "One seed; no seed study yet: the fine-tuned accuracy above is one run’s" in text
    assert "Over 3 seeds" not in text
