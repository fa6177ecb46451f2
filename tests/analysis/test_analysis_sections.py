"""Section markdown from the fixture runs: the honest edge cases (CPU, shape-only, in progress, T4 cap)."""
import re

import pytest

from analysis import sections as S
from analysis import summary
from analysis.tables import esc, md_table

try:
    from tests.report_fixture import RUNS, make_results
except ImportError:
    from report_fixture import RUNS, make_results


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return make_results(tmp_path_factory.mktemp("results"))


@pytest.fixture
def report(results, tmp_path, monkeypatch):
    monkeypatch.setenv("REPORT_FIG_DIR", str(tmp_path / "fig"))
    monkeypatch.setenv("REPORT_DOC_DIR", str(tmp_path))
    monkeypatch.delenv("REPORT_RUNS", raising=False)

    def make(runs=None):
        return summary.build(results, runs)
    return make


def test_every_section_renders_for_every_headline(report):
    for name in RUNS:
        R = report(",".join([name] + [r for r in RUNS if r != name]))
        for fn in (S.notice, S.summary, S.setup, S.accuracy, S.time, S.parameters, S.resources, S.cases,
                   S.reproducibility, S.all_runs):
            md = fn(R)
            assert isinstance(md, str) and md.strip(), (name, fn.__name__)
            assert "None" not in re.sub(r"`[^`]*`", "", md.replace("None.", "")), (name, fn.__name__)


def test_cpu_run_says_not_measured_never_zero(report):
    R = report("fixture-cpu")
    res = S.resources(R)
    assert "not measured" in res
    row = next(ln for ln in res.splitlines() if ln.startswith("| GPU memory used, whole device"))
    assert "not measured" in row and "0.00 GiB" not in row
    assert "This run had no GPU" in res
    assert "not measured" in S.setup(R) or "none: GPU figures are not measured" in S.setup(R)


def test_shape_only_run_has_no_accuracy(report):
    R = report("fixture-shape")
    acc = S.accuracy(R)
    assert "random weights" in acc and "No accuracy is reported" in acc
    assert "%" not in acc
    assert "random weights" in S.cases(R)
    # but time, parameters and memory are there, with the original study's exact counts
    params = S.parameters(R)
    assert "1,408,634,880" in params and "2,666,926,080" in params and "reproduces both numbers exactly" in params
    assert "1,408,634,880 / 18,357,760 (identical to the original study's)" in S.summary(R)


def test_t4_budget_run_shows_peak_against_cap(report):
    R = report("fixture-shape")
    res = S.resources(R)
    assert "Memory cap" in res and "15.00 GiB" in res
    f = R.of(R.headline)
    c = S.cap_check(f)
    assert c["within"] and 0 < c["share"] < 1
    assert f"{100 * c['share']:.1f} %" in res


def test_run_in_progress_says_what_is_missing(report):
    R = report("fixture-cpu")
    assert "fine-tuned not evaluated yet" in S.summary(R)
    assert "Not available yet" in S.cases(R)
    assert "params table of **fixture-cpu** is missing" in S.parameters(R)
    assert "of 2 planned: the run is incomplete" in S.time(R)
    assert "incomplete" in S.notice(R)


def test_headline_accuracy_matches_predictions(report, results):
    import pandas as pd
    R = report()
    p = pd.read_parquet(results / "fixture-gpu" / "predictions.parquet")
    s = pd.read_parquet(results / "fixture-gpu" / "samples.parquet")
    m = p[(p.split == "test") & (p.model == "finetuned")].merge(s[s.split == "test"], on="idx")
    acc = (m.pred == m.label).mean()
    assert f"{100 * acc:.1f} %" in S.accuracy(R)
    assert f"{100 * acc:.1f} %" in S.summary(R)


def test_no_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("REPORT_RUNS", raising=False)
    (tmp_path / "report.yaml").write_text("runs: [a, b]\n")
    R = summary.build(tmp_path)
    assert "No runs are available" in S.notice(R)
    assert "`a` listed but not found" in S.notice(R)
    assert "No runs are available" in S.accuracy(R)
    assert "CC BY-SA 4.0" in S.reproducibility(R)


def test_markdown_escaping_in_tables():
    s = "A man with a *star* pays $5 | cash @ the_market [stall] #3 <door>."
    cell = esc(s)
    assert "|" not in cell.replace("\\|", "")
    t = md_table(["a", "b"], [[s, "x"]])
    assert t.count("\n|") == 3  # header, separator, one row: the pipe inside the cell did not split it


def test_exact_stage_peaks_from_the_manifest_count(report):
    R = report("fixture-gpu")
    res = S.resources(R)
    # the sampler saw at most ~9.7 GiB allocated; the manifest's exact train-stage peak is 9.90 GiB
    assert "9.90 GiB" in res
    assert R.of(R.headline).peaks["peak_allocated_bytes"] == pytest.approx(9.9 * 2 ** 30)
