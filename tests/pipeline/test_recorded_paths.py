"""Paths recorded relative to the repository root, whatever the working directory (issue 18: a run started from a
subdirectory recorded `config_path` relative to it, so `verify` failed from anywhere and the recorded command could
not be re-run)."""
from __future__ import annotations

import os

from pipeline.cli import main
from records.config import project_path
from records.store import RunStore
from tests.conftest import ROOT, sets
from tests.pipeline.reliability import CONFIG, folder, overrides


def test_project_path_is_root_relative_inside_and_absolute_outside(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT / "configs")
    assert project_path("tiny-cpu.yaml") == "configs/tiny-cpu.yaml"
    assert project_path("../configs/./tiny-cpu.yaml") == "configs/tiny-cpu.yaml"
    monkeypatch.chdir(tmp_path)
    assert project_path(os.path.relpath(CONFIG)) == "configs/tiny-cpu.yaml"
    assert project_path("mine.yaml") == str(tmp_path / "mine.yaml")


def test_a_run_started_from_a_subdirectory_records_the_root_relative_config(tmp_path, monkeypatch):
    from records.verify import problems
    work = tmp_path / "work"
    monkeypatch.chdir(ROOT / "templates")
    assert main(["run", "../configs/tiny-cpu.yaml", *sets(overrides(work)), "--stages", "data"]) == 0
    m = RunStore(folder(work)).manifest()
    assert m.config_path == "configs/tiny-cpu.yaml"
    assert m.commands[-1].startswith("python -m pipeline run configs/tiny-cpu.yaml --set ")
    monkeypatch.chdir(tmp_path)  # verify, from anywhere, rebuilds the config from the recorded path
    assert not [line for line in problems(folder(work)) if "config" in line and "rebuilt" in line
                or "gives" in line]
