"""A run's hardware label says what the run used (its processes x its GPU model), never the machine's GPU
count: a one-process run on a two-GPU machine is "1 × ...". Checked on every committed run and on fixtures."""
import json
from pathlib import Path

import pytest

from analysis import runs
from analysis.facts import report_facts
from tests.report_fixture import edit_manifest, write_two_gpu_twin

COMMITTED = Path(__file__).resolve().parents[2] / "results"


def recorded(manifest: dict) -> tuple[int, set[str]]:
    """(processes, GPU models) as the manifest records them, read straight from its JSON."""
    procs = manifest.get("processes") or {}
    gpus = {r["gpu"] for r in procs.get("ranks") or [] if r.get("gpu")}
    if not gpus and (manifest.get("environment") or {}).get("gpu"):
        gpus = {manifest["environment"]["gpu"]["name"]}
    return int(procs.get("world_size") or 1), gpus


@pytest.mark.skipif(not runs.discover(COMMITTED), reason="no committed runs in results/")
@pytest.mark.parametrize("name", runs.discover(COMMITTED))
def test_every_committed_runs_label_matches_its_recorded_processes_and_gpu(name):
    manifest = json.loads((COMMITTED / name / "manifest.json").read_text())
    n, gpus = recorded(manifest)
    label = runs.load_run(COMMITTED / name).hardware
    count, _, model = label.partition(" × ")
    assert int(count) == n, (name, label, n)
    assert set(model.split(" + ")) == gpus, (name, label, gpus)


def test_one_process_on_a_two_gpu_machine_reads_one_gpu(results, tmp_path):
    import shutil
    shutil.copytree(results / "fixture-gpu", tmp_path / "one-of-two")
    edit_manifest(tmp_path / "one-of-two", lambda m: m.environment["gpu"].update(count=2))
    run = runs.load_run(tmp_path / "one-of-two")
    assert run.hardware == "1 × NVIDIA H200"
    assert run.machine_hardware == "2 × NVIDIA H200"


def test_a_run_over_two_processes_reads_two_gpus(results, tmp_path):
    import shutil
    shutil.copytree(results / "fixture-gpu", tmp_path / "fixture-gpu")
    write_two_gpu_twin(tmp_path, "fixture-gpu", "twin")
    f = report_facts(tmp_path, "twin").headline
    assert f.hardware == "2 × NVIDIA H200" and f.world_size == 2
