"""Tune, then run, as the tool does it: `tune --then-run` hands the chosen trial to the final run, the manifest
records it as `tuned` (never typed into a config), a tuned results folder refuses an untuned run, and every
evaluation of the test rows stays in the manifest's history, superseded ones included."""
from __future__ import annotations

import json

import pytest

from records.history import SEEDED, superseded
from records.manifest import Manifest
from records.store import RunStore
from tests.conftest import cli, sets, tiny_overrides

CONFIG = "configs/tiny-cpu.yaml"
GRID = "epochs: 1\ntrials:\n  - {train.learning_rate: 1.0e-3}\n  - {train.learning_rate: 3.0e-3, lora.r: 4}\n"


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tuned")
    (root / "grid.yaml").write_text(GRID)
    ov = sets(tiny_overrides(root))
    r = cli("tune", CONFIG, root / "grid.yaml", *ov, "--then-run")
    assert r.returncode == 0, r.stderr[-3000:]
    return root, ov, r


def _manifest(root, run="tiny-test") -> Manifest:
    return Manifest.read(root / "results" / run / "manifest.json")


def test_then_run_applies_the_chosen_trial_and_records_it(tuned_run):
    root, _, r = tuned_run
    m = _manifest(root)
    chosen = m.tuning["chosen"]
    assert m.tuned["chosen_trial"] == m.tuning["chosen_trial"] and m.tuned["from_run"] == "tiny-test"
    assert m.tuned["overrides"] == m.tuning["chosen_overrides"]
    assert m.config["train"]["learning_rate"] == chosen["train.learning_rate"]
    assert m.config["lora"]["r"] == chosen.get("lora.r", 8)
    assert m.commands[-1].startswith("python -m pipeline tune configs/tiny-cpu.yaml") and \
        m.commands[-1].endswith("--then-run")
    assert all(m.stage(s).status == "done" for s in ("data", "params", "baseline", "train", "evaluate"))
    assert f"final run with the chosen trial {m.tuned['chosen_trial']}" in r.stdout
    [only] = m.test_evaluations  # the test rows scored once, for the chosen trial
    assert only["tuned_trial"] == m.tuned["chosen_trial"] and only["fingerprint"] == m.stage("evaluate").fingerprint
    assert only["settings"]["train.learning_rate"] == chosen["train.learning_rate"] and only["test_rows"] > 0
    assert superseded(m) == []


def test_a_tuned_folder_refuses_a_run_with_other_settings(tuned_run):
    root, ov, _ = tuned_run
    before = (root / "results/tiny-test/manifest.json").read_bytes()
    r = cli("run", CONFIG, *ov)
    assert r.returncode == 2
    assert "tuned (trial" in r.stderr and "add --tuned" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    status = cli("status", CONFIG, *ov)  # answers, and says why every stage looks stale
    assert status.returncode == 0 and status.stdout.startswith("note: ") and "add --tuned" in status.stdout
    assert "note:" not in cli("status", CONFIG, *ov, "--tuned").stdout
    again = cli("run", CONFIG, *ov, "--tuned")  # the chosen settings: everything is up to date
    assert again.returncode == 0 and "nothing to do" in again.stdout
    clash = cli("run", CONFIG, *ov, "--set", "train.learning_rate=0.5", "--tuned")
    assert clash.returncode == 2 and "--set train.learning_rate: the tune chose this field" in clash.stderr
    assert (root / "results/tiny-test/manifest.json").read_bytes() == before


def test_tuned_from_takes_another_runs_choice(tuned_run, tmp_path):
    root, _, _ = tuned_run
    ov = ["--set", f"output.results_dir={root / 'results'}", "--set", f"output.checkpoint_dir={tmp_path}",
          "--set", "run=tiny-twin"]
    r = cli("run", CONFIG, *ov, "--tuned-from", "tiny-test", "--stages", "data,params")
    assert r.returncode == 0, r.stderr[-2000:]
    twin, tuned = _manifest(root, "tiny-twin"), _manifest(root)
    assert twin.tuned["from_run"] == "tiny-test" and twin.tuned["overrides"] == tuned.tuning["chosen_overrides"]
    assert twin.config["train"]["learning_rate"] == tuned.config["train"]["learning_rate"]
    assert twin.commands[-1].endswith("--tuned-from tiny-test --stages data,params")
    missing = cli("run", CONFIG, *ov, "--tuned-from", "no-such-run")
    assert missing.returncode == 2 and "holds no tuning record" in missing.stderr


def test_the_history_keeps_an_evaluation_under_a_superseded_configuration(tuned_run):
    root, ov, _ = tuned_run
    r = cli("run", CONFIG, *ov, "--tuned", "--set", "train.epochs=2")
    assert r.returncode == 0, r.stderr[-2000:]
    m = _manifest(root)
    first, second = m.test_evaluations
    assert second["fingerprint"] == m.stage("evaluate").fingerprint != first["fingerprint"]
    assert superseded(m) == [first]
    assert second["command"].endswith("--set train.epochs=2 --tuned")  # the recorded command re-runs it as run


def test_a_manifest_from_before_the_history_gets_its_evaluation_as_the_first_entry(tmp_path):
    ov = sets(tiny_overrides(tmp_path))
    assert cli("run", CONFIG, *ov).returncode == 0
    store = RunStore(tmp_path / "results" / "tiny-test")
    m = store.manifest()
    old_acc = m.test_evaluations[0]["test_accuracy"]
    m.test_evaluations = None  # as a manifest written before the list existed
    store.write_manifest(m)
    r = cli("run", CONFIG, *ov, "--set", "train.learning_rate=0.01")
    assert r.returncode == 0, r.stderr[-2000:]
    m = store.manifest()
    first, second = m.test_evaluations
    assert first["source"] == SEEDED and first["test_accuracy"] == pytest.approx(old_acc)
    assert first["settings"]["train.learning_rate"] != second["settings"]["train.learning_rate"] == 0.01
    assert json.loads((store.folder / "manifest.json").read_text())["test_evaluations"][0]["source"] == SEEDED
