"""The results store: schema-checked tables, atomic writes, one owner per row set."""
import json
import os
import socket

import pandas as pd
import pytest

from pipeline.store import RunStore, atomic_write_bytes


def preds(model: str, n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"split": "test", "idx": range(n), "model": model, "pred": [0] * n,
                         "p_entailment": [0.5] * n, "p_neutral": [0.25] * n, "p_contradiction": [0.25] * n})


def test_write_read_roundtrip_and_schema_check(tmp_path):
    store = RunStore(tmp_path / "run")
    store.write("predictions", preds("finetuned"))
    back = store.read("predictions")
    assert back["model"].tolist() == ["finetuned"] * 3 and str(back["idx"].dtype) == "int64"
    with pytest.raises(ValueError, match=r"table predictions: missing columns \['pred'\]"):
        store.write("predictions", preds("x").drop(columns=["pred"]))
    assert store.read("predictions")["model"].tolist() == ["finetuned"] * 3  # the old table is intact


def test_replace_rows_keeps_other_owners(tmp_path):
    store = RunStore(tmp_path / "run")
    store.replace_rows("predictions", pd.concat([preds("baseline_head"), preds("baseline_zeroshot")]),
                       ["baseline_head", "baseline_zeroshot"])
    store.replace_rows("predictions", preds("finetuned", 2), ["finetuned"])
    store.replace_rows("predictions", preds("finetuned", 4), ["finetuned"])
    counts = store.read("predictions")["model"].value_counts().to_dict()
    assert counts == {"baseline_head": 3, "baseline_zeroshot": 3, "finetuned": 4}


def test_crash_during_write_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "t.bin"
    atomic_write_bytes(target, b"old")

    class Boom(Exception):
        pass

    import os
    real_replace = os.replace

    def failing_replace(*a, **k):
        raise Boom()

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(Boom):
        atomic_write_bytes(target, b"new and longer")
    monkeypatch.setattr(os, "replace", real_replace)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.bin"]  # no temporary file left behind


def test_stage_record_running_then_done_or_failed(tmp_path):
    store = RunStore(tmp_path / "run")
    store.begin_stage("data", "fp1")
    rec = store.stage("data")
    assert (rec.status, rec.fingerprint, rec.pid, rec.host) == ("running", "fp1", os.getpid(), socket.gethostname())
    assert rec.state() == "running"  # this very process
    store.update_stage("data", epochs_done=1)
    store.finish_stage("data", 1.5, rows=3)
    m = store.manifest()
    assert m.is_done("data", "fp1") and not m.is_done("data", "other")
    assert m.stage("data").get("rows") == 3 and m.stage("data").get("epochs_done") == 1
    assert m.stage("data").seconds == 1.5 and m.stage("data").end is not None
    store.begin_stage("train", "fp2")
    store.fail_stage("train", 2.0, RuntimeError("loss became nan\nmore detail"))
    rec = json.loads(store.manifest_path.read_text())["stages"]["train"]
    assert rec["status"] == "failed" and rec["error"] == "loss became nan"
    assert store.stage("train").state() == "failed"
    store.begin_stage("train", "fp3")  # a new attempt starts from a fresh record
    assert store.stage("train").error is None and store.stage("train").fingerprint == "fp3"


def test_update_manifest_knows_its_fields(tmp_path):
    store = RunStore(tmp_path / "run")
    store.update_manifest(run="r", weights="random")
    assert store.manifest().weights == "random"
    with pytest.raises(TypeError, match="manifest has no field 'wieghts'"):
        store.update_manifest(wieghts="random")


def test_running_stage_of_a_dead_process_is_interrupted(tmp_path):
    store = RunStore(tmp_path / "run")
    store.begin_stage("train", "fp")
    store.update_stage("train", pid=2**22 + 12345)  # no such process
    assert store.stage("train").state() == "interrupted"
    store.update_stage("train", host="another-machine")
    assert store.stage("train").state() == "running elsewhere"
