"""results/ holds only runs that `pipeline verify` accepts: made by the pipeline (sealed manifests, tables as
written), from the committed configs, by code that is a commit of this repository."""
from __future__ import annotations

import subprocess

import pytest

from records.config import PROJECT_ROOT
from records.verify import problems

RESULTS = PROJECT_ROOT / "results"
# A run's reproduction records lie beside it (<run>.reproductions/): verify checks them with their run.
RUNS = sorted(p.name for p in RESULTS.iterdir() if p.is_dir() and p.suffix != ".reproductions") \
    if RESULTS.is_dir() else []


def _git_checkout() -> bool:
    return subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True).returncode == 0


@pytest.mark.parametrize("run", RUNS)
def test_every_committed_run_passes_verify(run):
    if not _git_checkout():
        pytest.skip("not a git checkout: code versions cannot be checked here")
    assert problems(RESULTS / run) == []


def test_results_holds_runs():
    assert RUNS, "results/ holds no runs: the report's default has nothing to render"
