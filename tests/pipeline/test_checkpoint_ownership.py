"""Checkpoints belong to one config (issue 18): a resumed run never scores another config's adapters, two runs of
one name in different results folders never share checkpoints while they work, and `verify` checks that each
scored checkpoint is the train stage's own."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.status import status
from records.lock import FolderLock
from records.store import RunStore
from tests.conftest import sets
from tests.pipeline.reliability import (
    CONFIG,
    SimulatedKill,
    assert_same_results,
    config,
    copy_run,
    folder,
    killed_at,
    overrides,
    run,
    stage_lines,
    tree_state,
)

THREE = "train.epochs=3"
OTHER_LR = "train.learning_rate=1.0e-2"


def _meta(root, name) -> dict:
    return json.loads((root / "checkpoints" / "small" / name / "meta.json").read_text())


@pytest.fixture(scope="module")
def clean_three(tmp_path_factory):
    """The small run with 3 epochs, uninterrupted: what every way to it must end as."""
    root = tmp_path_factory.mktemp("clean-three")
    run(root, None, THREE)
    return root


def test_kill_change_lr_interrupt_go_back_scores_only_this_configs_adapters(clean_three, tmp_path, capsys):
    """The issue's case: killed after epoch 2; the learning rate changed, interrupted after its epoch 1 (which
    overwrote epoch_1); the learning rate set back. Resuming from epoch 2 would leave the other config's epoch_1
    to be scored as this run's: the run trains again from epoch 1 instead, and ends as a clean run."""
    work = tmp_path / "work"
    with killed_at("train:epoch_3:1"), pytest.raises(SimulatedKill):
        run(work, None, THREE)
    first = _meta(work, "epoch_1")["fingerprint"]
    assert _meta(work, "epoch_2")["fingerprint"] == first
    with killed_at("train:epoch_2:1"), pytest.raises(SimulatedKill):
        run(work, None, THREE, OTHER_LR)
    assert _meta(work, "epoch_1")["fingerprint"] != first  # the other config's, in this run's folder
    assert _meta(work, "epoch_2")["fingerprint"] == first

    capsys.readouterr()
    run(work, None, THREE)
    out = capsys.readouterr().out
    assert "Resuming" not in out and "epoch 1 was written by another config" in out, out
    assert_same_results(clean_three, work)  # every prediction, epoch_1's included, as a clean run's
    for k in (1, 2, 3):
        assert _meta(work, f"epoch_{k}")["fingerprint"] == first
    scored = RunStore(folder(work)).stage("evaluate").get("scored")
    assert {r["fingerprint"] for r in scored.values()} == {first} and len(scored) == 4
    assert not [line for line in _verify(work) if "evaluate scored" in line]


def _verify(root) -> list[str]:
    from records.verify import problems
    return problems(folder(root))


def test_a_done_run_whose_adapters_another_config_overwrote(clean_three, tmp_path, capsys):
    """Another config's run of the same name, in another results folder, trains into the shared checkpoint folder
    afterwards. This run's status says train is damaged (not up to date); evaluating alone refuses, never scoring
    them; a whole run trains again, and then evaluates this config's adapters."""
    work = copy_run(clean_three, tmp_path / "work")
    other = [*overrides(work, THREE, OTHER_LR)]
    other[1] = f"output.results_dir={tmp_path / 'other-results'}"
    capsys.readouterr()
    assert main(["run", CONFIG, *sets(other), "--stages", "data,train"]) == 0
    lines = stage_lines(status(config(work, THREE)))
    assert lines["train"].startswith("damaged: checkpoint epoch_1 was written by another config"), lines

    (folder(work) / "predictions.parquet").unlink()  # evaluate must run again now
    capsys.readouterr()
    assert main(["run", CONFIG, *sets(overrides(work, THREE)), "--stages", "evaluate"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "stage evaluate needs stage train" in err[0] and "another config" in err[0], err
    assert not (folder(work) / "predictions.parquet").exists()

    run(work, None, THREE)
    assert_same_results(clean_three, work)


def test_evaluate_refuses_another_configs_checkpoint(clean_three, tmp_path):
    """Below the planner, the evaluate stage itself never scores a checkpoint of another fingerprint."""
    from pipeline.recipe.context import RunContext
    from pipeline.recipe.evaluate import _adapters
    from records.errors import StageError
    from records.fingerprints import stage_fingerprints
    work = copy_run(clean_three, tmp_path / "work")
    cfg = config(work, THREE)
    ctx = RunContext(cfg, RunStore(folder(work)), stage_fingerprints(cfg))
    _adapters(ctx)
    meta = work / "checkpoints" / "small" / "epoch_2" / "meta.json"
    m = json.loads(meta.read_text())
    meta.write_text(json.dumps({**m, "fingerprint": "0123456789abcdef"}))
    with pytest.raises(StageError, match="checkpoint epoch_2 was written by another config.*not scored"):
        _adapters(ctx)


def test_two_results_folders_never_share_the_checkpoint_folder_at_once(clean_three, tmp_path, capsys):
    """A run of the same name into another results folder, while this one holds the checkpoint folder: refused with
    one line, nothing written."""
    work = copy_run(clean_three, tmp_path / "work")
    other = [*overrides(work, THREE, OTHER_LR)]
    other[1] = f"output.results_dir={tmp_path / 'other-results'}"
    lock = FolderLock(work / "checkpoints" / "small")
    lock.acquire()
    try:
        before = tree_state(tmp_path)
        capsys.readouterr()
        assert main(["run", CONFIG, *sets(other)]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and "in use by another run of the same name" in err[0], err
        assert tree_state(tmp_path) == before
    finally:
        lock.release()


def test_verify_checks_each_scored_checkpoints_fingerprint(clean_three, tmp_path):
    """A manifest whose evaluate scored another config's checkpoint (re-sealed as the store would) fails verify."""
    from records.manifest import Manifest
    work = copy_run(clean_three, tmp_path / "work")
    store = RunStore(folder(work))
    assert not [line for line in _verify(work) if "evaluate scored" in line]
    m = store.manifest()
    scored = m.stages["evaluate"].info["scored"]
    m.stages["evaluate"].info["scored"] = {**scored, "epoch_1": {**scored["epoch_1"], "fingerprint": "f" * 16}}
    store.write_manifest(m)
    assert any("scored checkpoint epoch_1 of train fingerprint ffff" in line for line in _verify(work))
    m = Manifest.read(store.manifest_path)
    m.stages["evaluate"].info["scored"] = {**scored, "final": {**scored["final"], "adapter_sha256": "0" * 64}}
    store.write_manifest(m)
    assert any("scored a checkpoint final other than the one train wrote" in line for line in _verify(work))
    pd.testing.assert_frame_equal(store.read("epochs"), RunStore(folder(clean_three)).read("epochs"))
