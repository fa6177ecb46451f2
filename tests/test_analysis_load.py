"""Selecting and reading runs: order, overrides, absent runs, runs in progress, malformed inputs."""
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import load

try:
    from tests.report_fixture import ABSENT, RUNS, make_results, write_run
except ImportError:  # tests/ on sys.path instead of the project root
    from report_fixture import ABSENT, RUNS, make_results, write_run


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return make_results(tmp_path_factory.mktemp("results"))


def test_report_yaml_order_and_absent_runs(results, monkeypatch):
    monkeypatch.delenv("REPORT_RUNS", raising=False)
    sel = load.select(results)
    assert [r.name for r in sel.runs] == list(RUNS)
    assert sel.headline.name == RUNS[0]
    assert sel.listed_missing == [ABSENT]
    assert any(f"`{ABSENT}` listed but not found" in n for n in sel.notes)


def test_env_and_argument_override(results, monkeypatch):
    monkeypatch.setenv("REPORT_RUNS", f"{RUNS[2]},{RUNS[0]}")
    assert [r.name for r in load.select(results).runs] == [RUNS[2], RUNS[0]]
    assert [r.name for r in load.select(results, runs=RUNS[1]).runs] == [RUNS[1]]  # argument beats env


def test_no_listed_run_exists_falls_back_to_all(results, monkeypatch):
    monkeypatch.setenv("REPORT_RUNS", "nope-a,nope-b")
    sel = load.select(results)
    assert sorted(r.name for r in sel.runs) == sorted(RUNS)
    assert len(sel.listed_missing) == 2


def test_folders_without_manifest_are_ignored(tmp_path, monkeypatch):
    monkeypatch.delenv("REPORT_RUNS", raising=False)
    (tmp_path / "half-copied").mkdir()
    (tmp_path / "half-copied" / "samples.parquet").write_bytes(b"")
    sel = load.select(tmp_path)
    assert sel.runs == [] and sel.notes == []


def test_run_in_progress_is_tolerated(results):
    run = load.load_run(results / "fixture-cpu")
    assert run.table("params") is None                     # params.parquet missing
    assert run.table("samples") is not None
    gaps = run.gaps()
    assert any("train is running, 1 of 2 epochs done" in g for g in gaps)
    assert any("evaluate has not run" in g for g in gaps)
    assert any("params.parquet is missing" in g for g in gaps)
    assert run.gpu is None and run.hardware.startswith("CPU only")
    assert load.load_run(results / "fixture-gpu").complete


def test_malformed_manifest_names_the_file(tmp_path):
    write_run(tmp_path, "broken", kind="gpu", seed=1)
    path = tmp_path / "broken" / "manifest.json"
    path.write_text("{not json")
    with pytest.raises(load.ReportError) as e:
        load.select(tmp_path, runs="broken")
    assert str(path) in str(e.value) and "not valid JSON" in str(e.value)
    path.write_text(json.dumps({"run": "broken", "stages": []}))
    with pytest.raises(load.ReportError, match="stages"):
        load.load_run(tmp_path / "broken")


def test_table_with_missing_columns_names_the_file(tmp_path):
    write_run(tmp_path, "r", kind="gpu", seed=1)
    bad = tmp_path / "r" / "epochs.parquet"
    pq.write_table(pa.table({"epoch": [1]}), bad)
    with pytest.raises(load.ReportError) as e:
        load.load_run(tmp_path / "r")
    assert str(bad) in str(e.value) and "lacks columns" in str(e.value)


def test_bad_report_yaml(tmp_path, monkeypatch):
    monkeypatch.delenv("REPORT_RUNS", raising=False)
    (tmp_path / "report.yaml").write_text("runs: fixture-gpu\n")
    with pytest.raises(load.ReportError, match="report.yaml"):
        load.select(tmp_path)
