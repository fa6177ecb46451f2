"""Fixtures of the analysis tests: the fixture results folder and the report's facts over it."""
import pytest

from analysis.facts import report_facts
from tests.report_fixture import make_results


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """fixture-gpu (complete), fixture-shape (random weights, 15 GiB cap), fixture-cpu (in progress)."""
    return make_results(tmp_path_factory.mktemp("results"))


@pytest.fixture
def facts(results, monkeypatch):
    """facts("a,b") -> ReportFacts of those runs (the first is the headline); facts() -> report.yaml's."""
    monkeypatch.delenv("REPORT_RUNS", raising=False)
    return lambda runs=None, folder=None: report_facts(folder or results, runs)


@pytest.fixture
def refused():
    """refused(run_folder, *words) -> the one-line ReportError that loading the run raises; each word is in it."""
    from analysis import runs

    def check(folder, *words) -> str:
        with pytest.raises(runs.ReportError) as e:
            runs.load_run(folder)
        msg = str(e.value)
        assert "\n" not in msg, msg
        for w in words:
            assert w in msg, (w, msg)
        return msg
    return check
