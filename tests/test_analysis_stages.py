"""Stage states in the report: stages left out on purpose (stages_requested), interrupted, failed, running."""
import json
import re
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from analysis import load, summary
from analysis import sections as S

try:
    from tests.report_fixture import write_run
except ImportError:
    from report_fixture import write_run

SHAPE_STAGES = ("data", "params", "train")
SECTIONS = (S.notice, S.summary, S.setup, S.accuracy, S.time, S.parameters, S.resources, S.cases, S.reproducibility,
            S.all_runs)


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("REPORT_FIG_DIR", str(tmp_path / "fig"))
    monkeypatch.setenv("REPORT_DOC_DIR", str(tmp_path))
    monkeypatch.delenv("REPORT_RUNS", raising=False)
    root = tmp_path / "results"
    write_run(root, "run-gpu", kind="gpu", seed=1)
    write_run(root, "shape-only", kind="shape", seed=2, stages_requested=SHAPE_STAGES)
    return root


def edit_manifest(folder, fn):
    path = folder / "manifest.json"
    m = json.loads(path.read_text())
    fn(m)
    path.write_text(json.dumps(m))


def running_train(m, pid, host=None, start=None):
    tr = m["stages"]["train"]
    tr.update(status="running", end=None, seconds=None, pid=pid, host=host or socket.gethostname())
    if start is not None:
        tr["start"] = start


def iso(dt):
    return dt.isoformat(timespec="seconds")


def test_shape_only_run_without_baseline_and_evaluate_is_not_incomplete(results):
    run = load.load_run(results / "shape-only")
    assert run.stages_requested == list(SHAPE_STAGES)
    assert run.skipped() == ["baseline", "evaluate"]
    assert run.stage_state("baseline") == "not requested"
    assert run.stage_label("evaluate") == "not run (not requested)"
    assert run.table("predictions") is None
    assert run.gaps() == [] and run.complete  # predictions.parquet is written only by the stages left out

    R = summary.build(results, "shape-only,run-gpu")
    notice = S.notice(R)
    line = next(ln for ln in notice.splitlines() if ln.startswith("- Run **shape-only**"))
    assert "incomplete" not in line and "Nothing is missing for what a shape-only run measures" in line
    assert "baseline and evaluation were skipped because accuracy means nothing with random weights" in line
    assert "`--stages data,params,train`" in line
    assert "stages baseline and evaluate were not run (not requested)" in line
    time = S.time(R)
    assert re.search(r"\| baseline \| not run \(not requested\) \|", time)
    assert re.search(r"\| evaluate \| not run \(not requested\) \|", time)
    assert "not run (not requested)" in S.reproducibility(R)
    status = next(ln for ln in S.all_runs(R).splitlines() if ln.startswith("| status"))
    assert "complete for the stages requested" in status and "incomplete" not in status
    assert "without the baseline and evaluate stages on purpose" in S.summary(R)
    for fn in SECTIONS:  # every section renders with the shape-only run as headline
        md = fn(R)
        assert md.strip() and "None" not in re.sub(r"`[^`]*`", "", md), fn.__name__


def test_requested_stage_that_is_missing_is_still_a_gap(results):
    folder = write_run(results, "stopped", kind="gpu", seed=3, stages_requested=("data", "params", "baseline", "train"))
    edit_manifest(folder, lambda m: m.update(stages_requested=list(load.STAGES)))
    run = load.load_run(folder)
    assert run.skipped() == []
    assert "stage evaluate has not run (it was requested)" in run.gaps()
    assert run.stage_label("evaluate") == "not run"
    notice = S.notice(summary.build(results, "stopped"))
    assert "**stopped** is incomplete" in notice and "evaluate has not run" in notice


def test_shape_only_run_missing_a_requested_stage_is_incomplete(results):
    folder = results / "shape-only"
    edit_manifest(folder, lambda m: (m["stages"].pop("train"), m.update(stages_requested=list(SHAPE_STAGES))))
    run = load.load_run(folder)
    assert "stage train has not run (it was requested)" in run.gaps()
    notice = S.notice(summary.build(results, "shape-only"))
    assert "**shape-only** is incomplete" in notice
    assert "baseline and evaluation were skipped" in notice      # the deliberate part is still said as such
    assert "Nothing is missing" not in notice


def test_pretrained_run_with_stages_left_out_says_so_without_yet(results):
    folder = write_run(results, "no-eval", kind="gpu", seed=4, stages_requested=("data", "params", "train"))
    run = load.load_run(folder)
    assert run.gaps() == [] and run.skipped() == ["baseline", "evaluate"]
    R = summary.build(results, "no-eval")
    assert "random weights" not in S.notice(R)
    assert "not requested" in S.notice(R) and "incomplete" not in S.notice(R)
    acc = S.accuracy(R)
    assert "No test predictions exist for" in acc and "not requested" in acc


def test_old_manifest_without_stages_requested_counts_every_stage(results):
    folder = results / "shape-only"
    edit_manifest(folder, lambda m: m.pop("stages_requested"))
    run = load.load_run(folder)
    assert run.stages_requested is None and run.skipped() == []
    gaps = run.gaps()
    assert "stage baseline has not run" in gaps and "table predictions.parquet is missing" in gaps
    assert "incomplete" in S.notice(summary.build(results, "shape-only"))


def test_malformed_stages_requested_names_the_file(results):
    edit_manifest(results / "shape-only", lambda m: m.update(stages_requested="data,params"))
    with pytest.raises(load.ReportError, match=r"shape-only/manifest.json.*stages_requested"):
        load.load_run(results / "shape-only")


def test_running_stage_whose_process_is_gone_is_interrupted(results):
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    edit_manifest(results / "run-gpu", lambda m: running_train(m, p.pid))
    run = load.load_run(results / "run-gpu")
    assert run.stage_state("train") == "interrupted"
    gap = next(g for g in run.gaps() if "train" in g)
    assert gap.startswith("stage train was interrupted") and f"process {p.pid}" in gap and "is gone" in gap
    assert "| train | interrupted |" in S.time(summary.build(results, "run-gpu"))


def test_running_stage_with_its_process_alive_is_running(results):
    start = iso(datetime.now(timezone.utc) + timedelta(seconds=2))
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "pipeline"])
    try:
        edit_manifest(results / "run-gpu", lambda m: running_train(m, p.pid, start=start))
        run = load.load_run(results / "run-gpu")
        assert run.stage_state("train") == "running"
        assert any(g.startswith("stage train is running") for g in run.gaps())
        # the same pid, but the stage started before the process did: a reused pid, so the stage's process is gone
        edit_manifest(results / "run-gpu", lambda m: running_train(
            m, p.pid, start=iso(datetime.now(timezone.utc) - timedelta(hours=1))))
        assert load.load_run(results / "run-gpu").stage_state("train") == "interrupted"
    finally:
        p.kill()
        p.wait()


def test_running_stage_of_another_machine_cannot_be_checked(results):
    edit_manifest(results / "run-gpu", lambda m: running_train(m, 4242, host="gpu-box-elsewhere"))
    run = load.load_run(results / "run-gpu")
    assert run.stage_state("train") == "running elsewhere"
    gap = next(g for g in run.gaps() if "train" in g)
    assert "host gpu-box-elsewhere" in gap and "cannot be checked from here" in gap
    assert "incomplete" in S.notice(summary.build(results, "run-gpu"))


def test_failed_stage_is_incomplete_with_its_error(results):
    def fail(m):
        m["stages"]["train"].update(status="failed", error="CUDA out of memory", epochs_done=1)
    edit_manifest(results / "run-gpu", fail)
    run = load.load_run(results / "run-gpu")
    assert "stage train failed, 1 of 3 epochs done: CUDA out of memory" in run.gaps()
    assert "**run-gpu** is incomplete" in S.notice(summary.build(results, "run-gpu"))
