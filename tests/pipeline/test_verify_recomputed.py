"""`verify` recomputes what it can (issue 18): a manifest edited and re-sealed through the store (the seal proves only
that the store wrote it) fails when its figures disagree with the run's own tables."""
from __future__ import annotations

from records.store import RunStore
from records.verify import problems
from tests.pipeline.reliability import copy_run, folder

OWN = ("manifest.json: test_evaluations", "epochs_done", "epochs_total", "epochs.parquet says", "checkpoints says",
       "predictions.parquet")


def _found(work) -> list[str]:
    """verify's lines about recomputed figures (the small run's code version is not committed: that line is not ours)."""
    return [line for line in problems(folder(work)) if any(k in line for k in OWN)]


def test_a_sound_run_agrees_with_itself(small_reference, tmp_path):
    work = copy_run(small_reference.complete, tmp_path / "work")
    assert _found(work) == []


def test_a_resealed_accuracy_of_100_percent_is_caught(small_reference, tmp_path):
    """The issue's case: the fine-tuned accuracy set to 100 % and the manifest re-sealed."""
    work = copy_run(small_reference.complete, tmp_path / "work")
    store = RunStore(folder(work))
    m = store.manifest()
    real = m.test_evaluations[-1]["test_accuracy"]
    assert real < 1.0
    m.test_evaluations[-1]["test_accuracy"] = 1.0
    store.write_manifest(m)
    found = _found(work)
    assert len(found) == 1 and "says fine-tuned test accuracy 1.0" in found[0] and f"gives {real}" in found[0], found


def test_resealed_epochs_and_checkpoints_are_caught(small_reference, tmp_path):
    work = copy_run(small_reference.complete, tmp_path / "work")
    store = RunStore(folder(work))
    m = store.manifest()
    m.stages["train"].info["epochs_done"] = 1
    m.checkpoints = {k: v for k, v in m.checkpoints.items() if k != "epoch_2"}
    store.write_manifest(m)
    found = _found(work)
    assert any("train.epochs_done says 1, but the run trained 2 epochs" in line for line in found), found
    assert any("checkpoints says ['epoch_1', 'final']" in line for line in found), found


def test_a_rewritten_prediction_is_caught(small_reference, tmp_path):
    """One fine-tuned test prediction changed and the table re-recorded through the store: the accuracy no longer
    equals the history's."""
    work = copy_run(small_reference.complete, tmp_path / "work")
    store = RunStore(folder(work))
    preds = store.read("predictions")
    mine = preds[preds["model"].isin(["finetuned", "epoch_1", "epoch_2"])].copy()  # the evaluate stage's rows
    samples = store.read("samples")
    test = samples[samples["split"] == "test"].set_index("idx")["label"]
    row = mine.index[(mine["split"] == "test") & (mine["model"] == "finetuned")][0]
    label = int(test[mine.loc[row, "idx"]])
    mine.loc[row, "pred"] = label if mine.loc[row, "pred"] != label else (label + 1) % 3  # the accuracy changes
    store.replace_rows("predictions", mine, sorted(set(mine["model"])))
    found = _found(work)
    assert any("test_evaluations[" in line and "but predictions.parquet gives" in line for line in found), found


def test_export_refuses_what_verify_recomputes_differently(small_reference, tmp_path, capsys):
    """The issue's case went on: `export` published the re-sealed manifest. It refuses it now, one line."""
    from pipeline.cli import main
    work = copy_run(small_reference.complete, tmp_path / "work")
    store = RunStore(folder(work))
    m = store.manifest()
    m.test_evaluations[-1]["test_accuracy"] = 1.0
    store.write_manifest(m)
    capsys.readouterr()
    assert main(["export", str(folder(work)), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "says fine-tuned test accuracy 1.0" in err[0] and not (tmp_path / "out").exists()
