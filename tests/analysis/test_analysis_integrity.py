"""Tables checked against the manifest's checksum record before the report uses them: every kind of damage
is one ReportError naming the file and the command (and stage) that rewrites it; a run recorded before
checksums existed is read unchecked, says so, and is still refused when a file cannot be parsed."""
import hashlib
import json
import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import runs
from records.graph import writers
from records.schema import TABLES
from tests.report_fixture import edit_manifest, write_run


@pytest.fixture
def run(tmp_path):
    """A complete run whose manifest records its tables (sha256, rows, bytes), as the store writes them."""
    return write_run(tmp_path, "r", kind="gpu", seed=1)


def fix_for(table: str) -> str:
    stages = writers(table)
    return f"`python -m pipeline run configs/r.yaml` re-runs {stages[0]}, the stage that writes it" \
        if len(stages) == 1 else "`python -m pipeline run configs/r.yaml` re-runs"


def test_intact_run_is_verified_table_by_table(run):
    r = runs.load_run(run)
    present = [t for t in TABLES if (run / f"{t}.parquet").is_file()]
    assert r.checksums.recorded and r.checksums.state == "verified" and r.checksums.verified == present
    rec = json.loads((run / "manifest.json").read_text())["tables"]["samples"]
    data = (run / "samples.parquet").read_bytes()
    assert rec == {"sha256": hashlib.sha256(data).hexdigest(), "rows": len(pd.read_parquet(run / "samples.parquet")),
                   "bytes": len(data)}


@pytest.mark.parametrize("table", ["samples", "predictions", "epochs", "steps", "resources", "params", "tuning"])
def test_truncated_table_names_the_file_and_the_stage_that_rewrites_it(run, table, refused):
    path = run / f"{table}.parquet"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    msg = refused(run, str(path), "damaged", "truncated")
    if table == "tuning":
        assert "`python -m pipeline tune configs/r.yaml configs/fixture-tuning.yaml`, which writes it" in msg
    elif table == "predictions":
        assert "re-runs baseline and evaluate, the stages that write it" in msg
    else:
        assert fix_for(table) in msg


def test_garbage_of_the_same_size_fails_the_checksum(run, refused):
    path = run / "epochs.parquet"
    path.write_bytes(bytes(b ^ 0x5A for b in path.read_bytes()))
    refused(run, str(path), "sha256 differs", fix_for("epochs"))


def test_a_valid_table_from_another_run_fails_the_checksum(run, tmp_path, refused):
    other = write_run(tmp_path / "other", "r", kind="gpu", seed=2)
    shutil.copy(other / "predictions.parquet", run / "predictions.parquet")
    refused(run, "predictions.parquet", "damaged")


def test_zero_byte_and_deleted_tables(run, refused):
    (run / "steps.parquet").write_bytes(b"")
    refused(run, "steps.parquet: empty file (0 bytes) where the manifest records", fix_for("steps"))
    (run / "steps.parquet").unlink()
    refused(run, "steps.parquet: missing, but the manifest records it (24 rows)", fix_for("steps"))


def test_dropped_column_with_a_matching_record_is_still_refused(run, refused):
    path = run / "epochs.parquet"
    pq.write_table(pq.read_table(path).drop(["val_loss"]), path)
    refused(run, "damaged")  # the record no longer matches
    edit_manifest(run, lambda m: m.tables.update(epochs={"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                                         "rows": 3, "bytes": path.stat().st_size}))
    refused(run, str(path), "lacks columns ['val_loss']", fix_for("epochs"))


def test_a_record_that_disagrees_with_its_own_file(run, refused):
    edit_manifest(run, lambda m: m.tables["epochs"].update(rows=7))
    refused(run, "epochs.parquet: 3 rows where the manifest records 7")


def test_a_table_the_manifest_does_not_record(run, refused):
    edit_manifest(run, lambda m: m.tables.pop("steps"))
    refused(run, "steps.parquet: not recorded in the manifest's tables", fix_for("steps"))


@pytest.mark.parametrize("record", ["abc", {"sha256": "xyz", "rows": 1, "bytes": 1},
                                    {"sha256": "0" * 64, "rows": -1, "bytes": 1}, {"sha256": "0" * 64, "rows": True}])
def test_malformed_tables_record_is_one_line(run, record, refused):
    edit_manifest(run, lambda m: m.tables.update(steps=record))
    refused(run, "manifest.json: malformed manifest, `tables.steps` must be")


def test_unknown_names_in_the_record_never_become_paths(run, tmp_path):
    """A name that is not a table of the schema (here a path out of the run folder) is ignored, not read."""
    (tmp_path / "secret.parquet").write_bytes(b"not for the report")
    edit_manifest(run, lambda m: m.tables.update({"../secret": {"sha256": "0" * 64, "rows": 1, "bytes": 1}}))
    assert runs.load_run(run).checksums.state == "verified"


# ----------------------------------------------------------------------- runs recorded before checksums
@pytest.fixture
def old_run(tmp_path):
    return write_run(tmp_path, "old", kind="gpu", seed=1, checksums=False)


def test_run_without_checksums_is_read_and_says_so(old_run):
    r = runs.load_run(old_run)
    assert not r.checksums.recorded and r.checksums.state == "not recorded" and r.checksums.verified == []
    assert "tables" not in json.loads((old_run / "manifest.json").read_text())


def test_committed_runs_verify_against_their_checksums_and_tag_every_process():
    folders = sorted((runs.DEFAULT_RESULTS).glob("*/manifest.json"))
    assert folders
    for folder in folders:
        run = runs.load_run(folder.parent)
        assert run.checksums.state == "verified", folder.parent.name
        res = run.table("resources")
        world = (run.manifest.processes or {}).get("world_size", 1)
        assert sorted(res["rank"].unique()) == list(range(world)), folder.parent.name
        assert res["gpu_index"].notna().all(), folder.parent.name  # all ran on GPUs


@pytest.mark.parametrize("damage, words", [
    (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    (lambda p: p.write_bytes(b"PAR1 not really"), "unreadable parquet file"),
    (lambda p: p.write_bytes(p.read_bytes()[:-40]), "unreadable parquet file"),
    (lambda p: pq.write_table(pa.table({"step": [1]}), p), "lacks columns"),
    (lambda p: pq.write_table(pq.read_table(p).drop(["loss"]).append_column("loss", pa.array(["x"] * 24)), p),
     "columns of the wrong type"),
])
def test_without_checksums_a_file_that_cannot_be_parsed_is_still_refused(old_run, damage, words, refused):
    path = old_run / "steps.parquet"
    damage(path)
    refused(old_run, str(path), words, "`python -m pipeline run configs/old.yaml` re-runs train")
