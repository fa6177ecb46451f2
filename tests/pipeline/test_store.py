"""The results store: schema-checked tables, atomic writes, one owner per row set."""
import json
import os
import socket

import pandas as pd
import pytest

from records.store import RunStore, atomic_write_bytes


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
    assert m.stage("data").seconds == 1.5
    from datetime import datetime, timedelta, timezone
    end = datetime.fromisoformat(m.stage("data").end)  # a UTC time of now, not merely some value
    assert end.utcoffset() == timedelta(0) and abs(datetime.now(timezone.utc) - end) < timedelta(minutes=5)
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


def test_every_table_write_is_recorded_after_the_file(tmp_path, monkeypatch):
    """The manifest's `tables` entry is the sha256, rows and bytes of the file as written; shared tables get a
    digest per owner's rows too."""
    import hashlib

    from records import faults
    store = RunStore(tmp_path / "run")
    seen = []  # at each write point (bytes on disk, not yet renamed): which file, is the table there, is it recorded

    def observe(path):
        recorded = store.manifest_path.exists() and "predictions" in (store.manifest().tables or {})
        seen.append((os.path.basename(path), store.table_path("predictions").exists(), recorded))
    monkeypatch.setattr(faults, "point", observe)
    store.replace_rows("predictions", pd.concat([preds("baseline_head"), preds("finetuned", 2)]),
                       ["baseline_head", "finetuned"])
    # the table is in place before its record is written, and unrecorded until then
    assert seen == [("predictions.parquet", False, False), ("manifest.json", True, False)]
    m = store.manifest()
    data = store.table_path("predictions").read_bytes()
    assert m.tables["predictions"] == {"sha256": hashlib.sha256(data).hexdigest(), "rows": 5, "bytes": len(data)}
    assert {o: r["rows"] for o, r in m.row_sets["predictions"].items()} == {"baseline_head": 3, "finetuned": 2}
    with pytest.raises(TypeError, match="written by the store itself"):
        store.update_manifest(tables={})
    with pytest.raises(TypeError, match="written by the store itself"):
        store.update_manifest(seal="0" * 64)


def test_replace_rows_keeps_only_rows_the_manifest_vouches_for(tmp_path):
    """Another stage's rows that were changed on disk, and rows no stage owns, are not carried into the new
    file (whose record would then vouch for them): the changed owner's stage shows as damaged instead."""
    from records.integrity import check
    from records.manifest import StageRecord
    store = RunStore(tmp_path / "run")
    store.replace_rows("predictions", pd.concat([preds("baseline_head"), preds("baseline_zeroshot")]),
                       ["baseline_head", "baseline_zeroshot"])
    path = store.table_path("predictions")
    df = pd.read_parquet(path)
    df.loc[df["model"] == "baseline_zeroshot", "p_neutral"] = 0.9
    pd.concat([df, preds("planted")]).to_parquet(path, index=False)
    store.replace_rows("predictions", preds("finetuned"), ["finetuned"])
    assert sorted(set(store.read("predictions")["model"])) == ["baseline_head", "finetuned"]
    m = store.manifest()
    m.stages = {s: StageRecord(status="done") for s in ("baseline", "evaluate")}
    store.write_manifest(m)
    found = check(store.folder, store.manifest()).stages  # (no resources table here: that is missing too)
    about = {s: [p for p in problems if p.startswith("predictions")] for s, problems in found.items()}
    assert about == {"baseline": ["predictions.parquet is missing the rows of model 'baseline_zeroshot'"],
                     "evaluate": []}


def test_the_manifest_never_holds_nan(tmp_path):
    store = RunStore(tmp_path / "run")
    store.update_manifest(params_summary={"loss": float("nan"), "peak": float("inf"), "ok": 1.5})
    text = store.manifest_path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert store.manifest().params_summary == {"loss": None, "peak": None, "ok": 1.5}


def test_a_damaged_table_read_is_one_line(tmp_path):
    from records.errors import StageError
    store = RunStore(tmp_path / "run")
    store.write("params", pd.DataFrame({"component": ["x"], "stored_elements": [1], "logical_params": [1],
                                        "trainable": [0], "bytes": [2], "dtype": ["16-bit"]}))
    store.table_path("params").write_bytes(b"")
    with pytest.raises(StageError, match=r"params.parquet is damaged: empty file \(0 bytes\) \(fix: run again; "
                                         r"params rewrites it\)$"):
        store.read("params")


def test_write_points_are_named_and_logged(tmp_path, monkeypatch):
    from records import faults
    log = tmp_path / "points.txt"
    monkeypatch.setenv(faults.WRITE_LOG, str(log))
    faults.reset()
    store = RunStore(tmp_path / "run")
    with faults.stage("params"):
        store.update_manifest(run="r")
        store.update_manifest(run="r")
    store.update_manifest(run="r")
    assert log.read_text().splitlines() == faults.history == [
        "params:manifest.json:1", "params:manifest.json:2", "-:manifest.json:1"]
    faults.reset()
