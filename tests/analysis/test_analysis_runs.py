"""Selecting and reading runs: order, overrides, absent runs, runs in progress, malformed inputs (one line
naming the file)."""
import json

import pytest

from analysis import runs, stage_states
from tests.report_fixture import ABSENT, RUNS, write_run


def test_report_yaml_order_and_absent_runs(results, monkeypatch):
    monkeypatch.delenv("REPORT_RUNS", raising=False)
    sel = runs.select(results)
    assert [r.name for r in sel.runs] == list(RUNS)
    assert sel.listed_missing == [ABSENT]
    assert any(f"run {ABSENT} listed but not found" in n for n in sel.notes)


def test_env_and_argument_override(results, monkeypatch):
    monkeypatch.setenv("REPORT_RUNS", f"{RUNS[2]},{RUNS[0]}")
    assert [r.name for r in runs.select(results).runs] == [RUNS[2], RUNS[0]]
    assert [r.name for r in runs.select(results, runs=RUNS[1]).runs] == [RUNS[1]]  # argument beats env


def test_no_listed_run_exists_falls_back_to_all(results, monkeypatch):
    monkeypatch.setenv("REPORT_RUNS", "nope-a,nope-b")
    sel = runs.select(results)
    assert sorted(r.name for r in sel.runs) == sorted(RUNS)
    assert len(sel.listed_missing) == 2 and "every run found" in sel.notes[-1]


def test_folders_without_manifest_are_ignored(tmp_path, monkeypatch):
    monkeypatch.delenv("REPORT_RUNS", raising=False)
    (tmp_path / "half-copied").mkdir()
    (tmp_path / "half-copied" / "samples.parquet").write_bytes(b"")
    sel = runs.select(tmp_path)
    assert sel.runs == [] and sel.notes == []


def test_run_in_progress_is_tolerated(results):
    run = runs.load_run(results / "fixture-cpu")
    assert run.table("params") is None and run.table("samples") is not None
    gaps = stage_states.gaps(run)
    assert "stage train is running, 1 of 2 epochs done" in gaps
    assert "stage evaluate has not run" in gaps and "table params.parquet is missing" in gaps
    assert run.gpu is None and run.hardware == "CPU only (2 logical cores)"
    assert stage_states.complete(runs.load_run(results / "fixture-gpu"))


def test_the_report_reads_manifests_through_the_pipelines_manifest_object(results):
    from records.manifest import Manifest
    run = runs.load_run(results / "fixture-gpu")
    assert isinstance(run.manifest, Manifest)
    assert run.manifest.to_dict() == json.loads((results / "fixture-gpu" / "manifest.json").read_text())


@pytest.mark.parametrize("text, words", [
    ("{not json", "not valid JSON"),
    (json.dumps({"run": "broken", "stages": []}), "`stages` must be a mapping"),
    (json.dumps({"run": "broken", "stages_requested": "data,params"}), "`stages_requested` must be a list"),
    (json.dumps({"schema_version": 99}), "schema_version 99 is newer"),
])
def test_malformed_manifest_is_one_report_error_naming_the_file(tmp_path, text, words):
    write_run(tmp_path, "broken", kind="gpu", seed=1)
    path = tmp_path / "broken" / "manifest.json"
    path.write_text(text)
    with pytest.raises(runs.ReportError) as e:
        runs.select(tmp_path, runs="broken")
    assert str(path) in str(e.value) and words in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("text", ["runs: fixture-gpu\n", "runs: [a, [b]]\n", "runs: [a\n"])
def test_bad_report_yaml(tmp_path, monkeypatch, text):
    monkeypatch.delenv("REPORT_RUNS", raising=False)
    (tmp_path / "report.yaml").write_text(text)
    with pytest.raises(runs.ReportError, match="report.yaml"):
        runs.select(tmp_path)
