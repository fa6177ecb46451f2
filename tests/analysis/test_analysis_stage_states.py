"""How far a run got: stages left out on purpose (stages_requested), interrupted, failed, running; the one
liveness rule is records.manifest's, so the report and `pipeline status` agree."""
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from analysis import runs, stage_states
from analysis.facts import RunFacts
from analysis.sections import notice, time
from tests.report_fixture import edit_manifest, write_run

SHAPE_STAGES = ("data", "params", "train")


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.delenv("REPORT_RUNS", raising=False)
    root = tmp_path / "results"
    write_run(root, "run-gpu", kind="gpu", seed=1)
    write_run(root, "shape-only", kind="shape", seed=2, stages_requested=SHAPE_STAGES)
    return root


def running_train(pid, host=None, start=None):
    def change(m):
        tr = m.stages["train"]
        tr.status, tr.end, tr.seconds, tr.pid, tr.host = "running", None, None, pid, host or socket.gethostname()
        if start is not None:
            tr.start = start
    return change


def iso(dt):
    return dt.isoformat(timespec="seconds")


def test_shape_only_run_without_baseline_and_evaluate_is_not_incomplete(results, facts):
    run = runs.load_run(results / "shape-only")
    assert stage_states.skipped(run) == ["baseline", "evaluate"]
    assert stage_states.state(run, "baseline") == "not requested"
    assert stage_states.label(run, "evaluate") == "not run (not requested)"
    assert run.table("predictions") is None
    assert stage_states.gaps(run) == [] and stage_states.complete(run)  # predictions are written only by the stages left out
    assert stage_states.skip_note(run) == "stages baseline and evaluate were not run (not requested)"
    assert stage_states.shape_skip_reason(run) == ("baseline and evaluation were skipped because accuracy means "
                                               "nothing with random weights")
    assert stage_states.status(run).startswith("complete for the stages requested; baseline, evaluate not run")

    R = facts("shape-only,run-gpu", results)
    note = notice.run_note(R.headline)
    assert note.shape_only and note.gaps == [] and note.stages_option == "`--stages data,params,train`"
    md = notice.run_notes(R)
    line = next(ln for ln in md.splitlines() if ln.startswith("- Run **shape-only**"))
    assert "Nothing is missing for what a shape-only run measures" in line and "incomplete" not in line
    assert "| baseline | not run (not requested) |" in time.stage_table(R.headline)
    assert R.shape_skipped_runs == ["shape-only"]


def test_requested_stage_that_is_missing_is_still_a_gap(results):
    folder = write_run(results, "stopped", kind="gpu", seed=3, stages_requested=("data", "params", "baseline", "train"))
    edit_manifest(folder, lambda m: setattr(m, "stages_requested", ["data", "params", "baseline", "train", "evaluate"]))
    run = runs.load_run(folder)
    assert stage_states.skipped(run) == []
    assert "stage evaluate has not run (it was requested)" in stage_states.gaps(run)
    assert stage_states.label(run, "evaluate") == "not run"


def test_shape_only_run_missing_a_requested_stage_is_incomplete(results, facts):
    edit_manifest(results / "shape-only", lambda m: m.stages.pop("train"))
    run = runs.load_run(results / "shape-only")
    assert "stage train has not run (it was requested)" in stage_states.gaps(run)
    note = notice.run_note(facts("shape-only", results).headline)
    assert note.shape_only and note.gaps  # the deliberate part is still said as such, the gap too
    md = notice.run_notes(facts("shape-only", results))
    assert "**shape-only** is incomplete" in md and "Nothing is missing" not in md


def test_pretrained_run_with_stages_left_out_says_why_predictions_are_missing(results, facts):
    write_run(results, "no-eval", kind="gpu", seed=4, stages_requested=("data", "params", "train"))
    H = facts("no-eval", results).headline
    assert H.gaps == [] and H.skipped == ["baseline", "evaluate"] and not H.accuracy
    assert H.why_missing == "stages baseline and evaluate were not run (not requested)"
    assert not stage_states.skipped_for_shape(H.run)


def test_old_manifest_without_stages_requested_counts_every_stage(results):
    edit_manifest(results / "shape-only", lambda m: setattr(m, "stages_requested", None))
    run = runs.load_run(results / "shape-only")
    assert run.manifest.stages_requested is None and stage_states.skipped(run) == []
    gaps = stage_states.gaps(run)
    assert "stage baseline has not run" in gaps and "table predictions.parquet is missing" in gaps


def test_running_stage_whose_process_is_gone_is_interrupted(results):
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    edit_manifest(results / "run-gpu", running_train(p.pid))
    run = runs.load_run(results / "run-gpu")
    assert stage_states.state(run, "train") == "interrupted"
    gap = next(g for g in stage_states.gaps(run) if "train" in g)
    assert gap.startswith("stage train was interrupted") and f"process {p.pid}" in gap and "is gone" in gap
    assert "| train | interrupted |" in time.stage_table(RunFacts(run))


def test_running_stage_with_its_process_alive_is_running(results):
    start = iso(datetime.now(timezone.utc) + timedelta(seconds=2))
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "pipeline"])
    try:
        edit_manifest(results / "run-gpu", running_train(p.pid, start=start))
        run = runs.load_run(results / "run-gpu")
        assert stage_states.state(run, "train") == "running"
        assert any(g.startswith("stage train is running") for g in stage_states.gaps(run))
        # the same pid, but the stage started before the process did: a reused pid, so the stage's process is gone
        edit_manifest(results / "run-gpu", running_train(p.pid, start=iso(datetime.now(timezone.utc) - timedelta(hours=1))))
        assert stage_states.state(runs.load_run(results / "run-gpu"), "train") == "interrupted"
    finally:
        p.kill()
        p.wait()


def test_running_stage_of_another_machine_cannot_be_checked(results):
    edit_manifest(results / "run-gpu", running_train(4242, host="gpu-box-elsewhere"))
    run = runs.load_run(results / "run-gpu")
    assert stage_states.state(run, "train") == "running elsewhere"
    assert stage_states.label(run, "train") == "running on another machine, or interrupted"
    gap = next(g for g in stage_states.gaps(run) if "train" in g)
    assert "host gpu-box-elsewhere" in gap and "cannot be checked from here" in gap


def test_failed_stage_is_incomplete_with_its_error(results):
    def fail(m):
        m.stages["train"].status, m.stages["train"].error = "failed", "CUDA out of memory"
        m.stages["train"].info["epochs_done"] = 1
    edit_manifest(results / "run-gpu", fail)
    run = runs.load_run(results / "run-gpu")
    assert "stage train failed, 1 of 3 epochs done: CUDA out of memory" in stage_states.gaps(run)
    assert stage_states.status(run).startswith("incomplete: ")
