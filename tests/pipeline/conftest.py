"""Fixtures of the pipeline tests."""
from __future__ import annotations

from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def small_reference(tmp_path_factory):
    """The small run (tests/pipeline/reliability.py), made once per session in this process, one stage per
    call: `before[s]` / `after[s]` are copies of the run folder tree just before and after stage s, `points[s]`
    the names of its writes (records/faults.py), `complete` the tree after the last stage."""
    from records import faults
    from records.graph import NAMES
    from tests.pipeline.reliability import copy_run, run
    root = tmp_path_factory.mktemp("small-reference")
    before, after, points = {}, {}, {}
    for s in NAMES:
        before[s] = copy_run(root, tmp_path_factory.mktemp(f"before-{s}"))
        faults.reset()
        run(root, [s])
        points[s] = list(faults.history)
        after[s] = copy_run(root, tmp_path_factory.mktemp(f"after-{s}"))
    faults.reset()
    return SimpleNamespace(before=before, after=after, points=points, complete=after[NAMES[-1]])
