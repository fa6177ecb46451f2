"""The rendered report says how the headline run's settings were chosen, how many times its test rows were
scored and whether `pipeline verify` accepts each run, following the manifests built here (old and new kinds)."""
import re
import subprocess
import sys

import pytest

from analysis import fmt
from records.manifest import Manifest
from tests.report.helpers import ROOT, html_text
from tests.report_fixture import record_evaluations, write_run

pytestmark = pytest.mark.slow


def prose(path) -> str:
    return re.sub(r" ([:,.;)])", r"\1", html_text(path))  # html_text puts a space where a tag was


def render(results, out, runs) -> str:
    p = subprocess.run([sys.executable, "-m", "analysis.render", "--results", results, "--out", out, "--runs", runs,
                        "--formats", "html", "--engine", "nbclient"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return prose(out / "report.html")


def test_a_tuned_run_with_a_superseded_scoring_warns_and_lists_each(rendered):
    text = prose(rendered["html"])
    m = Manifest.read(rendered["results"] / "fixture-gpu" / "manifest.json")
    assert (f"The tunable settings of fixture-gpu are trial {m.tuned['chosen_trial']} of {m.tuned['trials']} that "
            "pipeline tune chose on the validation rows only") in text
    assert "The pipeline applied them itself" in text and "not applied by the tool" not in text
    old, now = m.test_evaluations
    assert (f"The test rows of fixture-gpu were scored {len(m.test_evaluations)} times, 1 of them under a "
            "configuration since superseded.") in text
    row = re.search(r"\b1 2025-11-20 09:00 UTC .*? recovered from an older manifest", text).group(0)
    assert old["git_commit"][:12] in row and fmt.pct(old["test_accuracy"]) in row
    assert f"train.learning_rate {old['settings']['train.learning_rate']:g} (now " \
           f"{m.config['train']['learning_rate']:g})" in row
    assert fmt.pct(now["test_accuracy"]) in text and old["source"] in text
    assert "2 times: 1 under superseded settings" in text and "not recorded (an older manifest)" in text


def test_every_run_says_whether_pipeline_verify_accepts_it(rendered):
    text = prose(rendered["html"])
    assert "0 of 3 runs pass" in text and "fixture-gpu: not verified:" in text
    assert "results/fixture-cpu/manifest.json: stage train is running, not done" in text  # one problem, as verify says


def test_an_untuned_run_scored_once_says_both(rendered, tmp_path):
    write_run(tmp_path / "results", "r", kind="gpu", seed=2)
    m = record_evaluations(tmp_path / "results" / "r")
    text = render(tmp_path / "results", tmp_path / "site", "r")
    assert "The settings were not applied by the tool" in text and "The pipeline applied them itself" not in text
    assert "How many times the test rows were scored: once, for the configuration reported here" in text
    assert m.test_evaluations[0]["git_commit"][:12] in text
    assert "scored 1 times" not in text and "since superseded" not in text


def test_an_older_manifest_cannot_say_how_often_the_test_rows_were_scored(rendered, tmp_path):
    text = render(rendered["results"], tmp_path / "site", "fixture-cpu")
    assert "How many times the test rows were scored: not known. The manifest of fixture-cpu predates the history" \
        in text
    assert "How the configuration was chosen" not in text  # neither a tuning table nor a tune's choice
