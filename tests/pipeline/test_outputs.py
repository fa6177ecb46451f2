"""Outputs are checked: a damaged or missing table makes `status` name it and `run` re-run the stage that owns it
(only that stage, by its rows in a shared table), and a damaged checkpoint is never resumed from or evaluated.

Each case damages a copy of the small run (tests/pipeline/reliability.py) as a disk, a bad copy or a hand edit
would, then checks status, the re-run, and that the results come out as the undamaged run's.
"""
from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.status import status
from records.errors import StageError
from records.graph import NAMES
from records.integrity import check, verify_checkpoint
from records.store import RunStore
from tests.pipeline.reliability import (
    SimulatedKill,
    assert_same_results,
    config,
    copy_run,
    folder,
    killed_at,
    run,
    stage_lines,
    tree_state,
)


def _lines(root) -> dict[str, str]:
    return stage_lines(status(config(root)))


def _edit(path, fn):
    df = pd.read_parquet(path)
    fn(df).to_parquet(path, index=False)


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _set_pred(model):
    def fn(df):
        row = df.index[df["model"] == model][0]
        df.loc[row, "pred"] = (df.loc[row, "pred"] + 1) % 3
        return df
    return lambda p: _edit(p, fn)


DAMAGE = [
    # (what is done to which file, the stages that must run again, what status says about it)
    ("truncated", "samples", _truncate, {"data"}, "samples.parquet is damaged: not a readable parquet file ("),
    ("garbage", "params", lambda p: p.write_bytes(b"PAR1 this is not a table PAR1"), {"params"},
     "params.parquet is damaged: not a readable parquet file ("),
    ("zero bytes", "epochs", lambda p: p.write_bytes(b""), {"train"}, "epochs.parquet is damaged: empty file (0 bytes)"),
    ("deleted", "steps", lambda p: p.unlink(), {"train"}, "steps.parquet is missing"),
    ("dropped column", "predictions", lambda p: _edit(p, lambda df: df.drop(columns=["p_neutral"])),
     {"baseline", "evaluate"}, "predictions.parquet is damaged: column 'p_neutral' is missing"),
    ("labels as words", "samples",
     lambda p: _edit(p, lambda df: df.assign(label=df["label"].map(["entailment", "neutral", "contradiction"].__getitem__))),
     {"data"}, "samples.parquet is damaged: column 'label' is "),
    ("one value changed", "params", lambda p: _edit(p, lambda df: df.assign(trainable=df["trainable"] + 1)),
     {"params"}, "params.parquet is damaged: its checksum differs from the manifest's record"),
    ("baseline rows changed", "predictions", _set_pred("baseline_head"), {"baseline"},
     "predictions.parquet is damaged: the rows of model 'baseline_head' differ from the manifest's record"),
    ("epoch rows dropped", "predictions", lambda p: _edit(p, lambda df: df[df["model"] != "epoch_1"]), {"evaluate"},
     "predictions.parquet is missing the rows of model 'epoch_1'"),
    ("rows no stage wrote", "predictions",
     lambda p: _edit(p, lambda df: pd.concat([df, df[df["model"] == "finetuned"].assign(model="planted")])),
     {"evaluate"}, "predictions.parquet is damaged: it holds rows of model 'planted', which no stage writes"),
    ("one stage's resource rows changed", "resources",
     lambda p: _edit(p, lambda df: df.assign(cpu_pct=df["cpu_pct"].where(df["stage"] != "params", 99.0))),
     {"params"}, "resources.parquet is damaged: the rows of stage 'params' differ from the manifest's record"),
]


@pytest.mark.parametrize("what,table,damage,stages,said", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_a_damaged_table_is_named_and_its_stage_runs_again(small_reference, tmp_path, capsys, what, table, damage,
                                                          stages, said):
    work = copy_run(small_reference.complete, tmp_path)
    damage(folder(work) / f"{table}.parquet")
    lines = _lines(work)
    for s in NAMES:
        if s in stages:
            assert lines[s].startswith("damaged: ") and said in lines[s] and "(run again to rewrite it)" in lines[s], \
                (s, lines[s])
        else:
            assert lines[s].startswith("up to date"), (s, lines[s])
    capsys.readouterr()
    run(work)
    out = capsys.readouterr().out
    assert {s for s in NAMES if f"[{s}] running again: " in out} == stages, out
    assert {s for s in NAMES if f"[{s}] up to date" in out} == set(NAMES) - stages, out
    assert all(line.startswith("up to date") for line in _lines(work).values())
    assert_same_results(small_reference.complete, work)
    assert not check(folder(work), RunStore(folder(work)).manifest())
    assert "planted" not in set(pd.read_parquet(folder(work) / "predictions.parquet")["model"])


def test_an_unchanged_run_checks_clean_and_records_every_table(small_reference):
    store = RunStore(folder(small_reference.complete))
    m = store.manifest()
    assert not check(store.folder, m)
    assert set(m.tables) == {"samples", "params", "predictions", "epochs", "steps", "resources"}
    for name, rec in m.tables.items():
        data = store.table_path(name).read_bytes()
        import hashlib
        assert rec == {"sha256": hashlib.sha256(data).hexdigest(), "rows": len(store.read(name)), "bytes": len(data)}
    assert set(m.row_sets["resources"]) == set(NAMES)
    assert set(m.row_sets["predictions"]) == {"baseline_head", "baseline_zeroshot", "finetuned", "epoch_1", "epoch_2"}
    assert set(m.checkpoints) == {"epoch_1", "epoch_2", "final"}
    assert set(m.checkpoints["final"]) >= {"adapter_model.safetensors", "adapter_config.json"}
    assert set(m.checkpoints["epoch_1"]) >= {"adapter_model.safetensors", "state.pt"}


def test_a_needed_upstream_table_that_is_damaged_stops_the_run_naming_it(small_reference, tmp_path):
    """`--stages evaluate` cannot mend the samples its input stage wrote: it stops, naming the file and the fix."""
    work = copy_run(small_reference.complete, tmp_path)
    (folder(work) / "epochs.parquet").write_bytes(b"")
    before = tree_state(work)
    with pytest.raises(StageError, match=r"^stage evaluate needs stage train, which is damaged: epochs.parquet is "
                                         r"damaged: empty file \(0 bytes\).*\(fix: --stages train,evaluate"):
        run(work, ["evaluate"], "eval.batch_size=5")
    assert tree_state(work) == before


def test_a_damaged_tuning_table_is_named_by_status(small_reference, tmp_path):
    """The tuning table has no stage: status names it and the command that rewrites it; a run is not stopped."""
    from pipeline.tune import record
    work = copy_run(small_reference.complete, tmp_path)
    store = RunStore(folder(work))
    df = pd.DataFrame({"trial": [1], "learning_rate": [1e-3], "batch_size": [16], "lora_r": [8],
                       "target_modules": ["q_proj"], "epochs": [1], "val_accuracy": [0.5], "val_loss": [1.0],
                       "seconds": [1.0], "chosen": [True]})
    record(store, df, "CONFIG", "GRID", 1, [{"train.learning_rate": 1e-3}])
    assert "\n  damaged: " not in status(config(work))
    _truncate(store.table_path("tuning"))
    text = status(config(work))
    assert "  damaged: tuning.parquet is damaged: not a readable parquet file" in text
    assert "(fix: run `python -m pipeline tune` again, which rewrites it)" in text
    assert run(work) == {"ran": []}


def _flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_checkpoint_is_not_resumed_from(small_reference, tmp_path, capsys):
    """Killed before the final adapter, with epoch 2's adapter damaged since: the resume passes it over, says so,
    trains epoch 2 again from epoch 1, and ends with the uninterrupted run's results."""
    work = copy_run(small_reference.before["train"], tmp_path)
    with killed_at("train:final:1"), pytest.raises(SimulatedKill):
        run(work, ["train"])
    ckpt = work / "checkpoints" / "small"
    _flip_a_byte(ckpt / "epoch_2" / "adapter_model.safetensors")
    assert "differs from its checksum in meta.json" in verify_checkpoint(ckpt / "epoch_2")
    capsys.readouterr()
    run(work, ["train"])
    out = capsys.readouterr().out
    assert f"note: the checkpoint of epoch 2 is damaged ({ckpt / 'epoch_2' / 'adapter_model.safetensors'} differs " \
           f"from its checksum in meta.json): not resumed from" in out
    assert "Resuming from the checkpoint of epoch 1/2" in out
    assert_same_results(small_reference.after["train"], work)
    assert verify_checkpoint(ckpt / "epoch_2") is None  # written again


@pytest.mark.parametrize("damage", ["flipped byte", "planted file", "deleted meta.json"])
def test_evaluate_refuses_a_damaged_checkpoint_before_any_write(small_reference, tmp_path, damage):
    work = copy_run(small_reference.complete, tmp_path)
    final = work / "checkpoints" / "small" / "final"
    if damage == "flipped byte":
        _flip_a_byte(final / "adapter_model.safetensors")
    elif damage == "planted file":
        (final / "adapter_model.bin").write_bytes(b"not written by the pipeline")
    else:
        (final / "meta.json").unlink()
    assert f"checkpoint final damaged: {verify_checkpoint(final)}" in status(config(work))
    before = tree_state(work)
    with pytest.raises(StageError, match=r"^stage evaluate: checkpoint final is damaged: .* \(fix: run with --stages "
                                         r"train,evaluate --restart, which trains again\)$"):
        run(work, None, "eval.batch_size=5")
    assert tree_state(work) == before


def test_checkpoint_meta_lists_every_file(small_reference):
    for name in ("epoch_1", "epoch_2", "final"):
        folder_ = small_reference.complete / "checkpoints" / "small" / name
        meta = json.loads((folder_ / "meta.json").read_text())
        assert set(meta["files"]) == {p.name for p in folder_.iterdir()} - {"meta.json"}
        assert verify_checkpoint(folder_) is None


def test_the_committed_runs_check_clean():
    """Runs made before records existed (and before the schema's newest columns) are not called damaged: there
    is nothing to compare them with, and `run` must not redo GPU work because a column was added since."""
    from records.manifest import Manifest
    from tests.conftest import ROOT
    committed = sorted((ROOT / "results").glob("*/manifest.json"))
    assert committed
    for path in committed:
        assert not check(path.parent, Manifest.read(path)), path.parent.name


def test_a_checkpoint_from_before_file_lists_is_read_unchecked(tmp_path):
    """meta.json without `files` (checkpoints written before this check) has nothing to compare with: accepted,
    as older tables are; a meta.json that is gone or unreadable is not."""
    folder_ = tmp_path / "epoch_1"
    folder_.mkdir()
    (folder_ / "adapter_model.safetensors").write_bytes(b"x")
    (folder_ / "meta.json").write_text(json.dumps({"epoch": 1, "fingerprint": "f"}))
    assert verify_checkpoint(folder_) is None
    (folder_ / "meta.json").write_text("{not json")
    assert verify_checkpoint(folder_) == f"{folder_ / 'meta.json'} is missing or unreadable"
