"""Exports (issue 18): an incomplete run is refused unless --partial, and then marked incomplete; an export never
goes into a results folder; an earlier export is replaced only with --force. One line, exit 2, nothing written."""
from __future__ import annotations

import json

import pytest

from pipeline.cli import main
from tests.pipeline.reliability import (
    SimulatedKill,
    copy_run,
    folder,
    killed_at,
    run,
    this_process_gone,
    tree_state,
)


def _refused(capsys, argv, words) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert len(err) == 1 and words in err[0] and captured.out == "", err
    return err[0]


def test_an_interrupted_run_is_refused_without_partial_and_marked_with_it(small_reference, tmp_path, capsys,
                                                                         monkeypatch):
    """The issue's case: an interrupted run's export wrote its partial epoch count and time as final figures."""
    work = copy_run(small_reference.before["train"], tmp_path / "work")
    with this_process_gone(monkeypatch), killed_at("train:epoch_2:1"), pytest.raises(SimulatedKill):
        run(work, ["train"])
    out = tmp_path / "out"
    with this_process_gone(monkeypatch):
        line = _refused(capsys, ["export", str(folder(work)), "--out", str(out)], "is incomplete")
        assert "train" in line and "--partial" in line and not out.exists()
        assert main(["export", str(folder(work)), "--out", str(out), "--partial"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["small.partial.csv", "small.partial.json"]
    summary = json.loads((out / "small.partial.json").read_text())
    assert summary["complete"] is False and any("train" in g for g in summary["incomplete"])


def test_a_complete_run_is_marked_complete_and_never_overwritten_without_force(small_reference, tmp_path, capsys):
    work = copy_run(small_reference.complete, tmp_path / "work")
    out = tmp_path / "out"
    assert main(["export", str(folder(work)), "--out", str(out)]) == 0
    assert json.loads((out / "small.json").read_text())["complete"] is True
    before = tree_state(out)
    line = _refused(capsys, ["export", str(folder(work)), "--out", str(out)], "exists (an earlier export)")
    assert "--force" in line and tree_state(out) == before
    (out / "small.csv").write_text("old")
    assert main(["export", str(folder(work)), "--out", str(out), "--force"]) == 0
    assert (out / "small.csv").read_text().startswith("run,section,metric")


@pytest.mark.parametrize("where", ["run folder", "inside it", "results folder"])
def test_an_export_never_goes_into_a_results_folder(small_reference, tmp_path, capsys, where):
    work = copy_run(small_reference.complete, tmp_path / "work")
    out = {"run folder": folder(work), "inside it": folder(work) / "exports",
           "results folder": folder(work).parent}[where]
    before = tree_state(work)
    _refused(capsys, ["export", str(folder(work)), "--out", str(out)], "which only the pipeline writes")
    assert tree_state(work) == before
