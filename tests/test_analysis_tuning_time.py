"""The tuning provenance and the final run's epochs against the trial's, and the Time section's note on GPU
utilisation during training (said only when the mean is below the threshold)."""
import json
import re

import pandas as pd
import pytest

from analysis import fmt, summary
from analysis import sections as S
from analysis.tables import esc

try:
    from tests.report_fixture import write_run
except ImportError:
    from report_fixture import write_run

SOURCE = ("rebuilt from the printed table in docs/device-logs/2-tune.log (tools/tuning_from_log.py); the tune run's "
          "own tuning.parquet was lost on the GPU machine before packing")


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("REPORT_FIG_DIR", str(tmp_path / "fig"))
    monkeypatch.setenv("REPORT_DOC_DIR", str(tmp_path))
    monkeypatch.delenv("REPORT_RUNS", raising=False)
    return tmp_path / "results"


def edit_manifest(folder, fn):
    path = folder / "manifest.json"
    m = json.loads(path.read_text())
    fn(m)
    path.write_text(json.dumps(m))


def tuning_text(results, name):
    return S.tuning(summary.build(results, name))


# ---------------------------------------------------------------------------------------------- tuning
def test_tuning_source_is_shown_verbatim(results):
    write_run(results, "tuned", kind="gpu", seed=1, tuning_source=SOURCE)
    md = tuning_text(results, "tuned")
    assert f"**Provenance of this table** (the manifest's `tuning.source`, verbatim): \"{esc(SOURCE)}\"" in md
    assert "Provenance" in S.setup(summary.build(results, "tuned"))


def test_no_provenance_note_without_source(results):
    write_run(results, "tuned", kind="gpu", seed=1)
    assert "Provenance" not in tuning_text(results, "tuned")


def test_final_run_epochs_against_the_trials_come_from_the_manifest(results):
    folder = write_run(results, "tuned", kind="gpu", seed=1)
    md = tuning_text(results, "tuned")  # fixture: config.train.epochs 3, tuning.epochs_per_trial 2
    assert "The final run uses the chosen trial's settings" in md
    assert "but trains for 3 epochs instead of the trial's 2" in md
    assert "its resolved configuration has exactly these values" in md
    assert "`train.learning_rate` = 0.0002" in md and "`lora.target_modules` = q\\_proj, v\\_proj, fc1, fc2" in md

    def change(m):
        m["config"]["train"]["epochs"] = 7
        m["tuning"]["epochs_per_trial"] = 4
    edit_manifest(folder, change)
    assert "but trains for 7 epochs instead of the trial's 4" in tuning_text(results, "tuned")

    edit_manifest(folder, lambda m: m["config"]["train"].update(epochs=4))
    md = tuning_text(results, "tuned")
    assert "and the same 4 epochs" in md and "instead of" not in md


def test_trial_epochs_fall_back_to_the_tuning_table(results):
    folder = write_run(results, "tuned", kind="gpu", seed=1)
    edit_manifest(folder, lambda m: m["tuning"].pop("epochs_per_trial"))
    t = pd.read_parquet(folder / "tuning.parquet")
    trial_epochs = int(t.loc[t["chosen"], "epochs"].iloc[0])
    assert f"but trains for 3 epochs instead of the trial's {trial_epochs}" in tuning_text(results, "tuned")


def test_config_that_differs_from_the_chosen_trial_is_said(results):
    folder = write_run(results, "tuned", kind="gpu", seed=1)
    edit_manifest(folder, lambda m: m["config"]["train"].update(learning_rate=0.001))
    md = tuning_text(results, "tuned")
    assert "does not match the chosen trial in `train.learning_rate` (trial 0.0002, final run 0.001)" in md
    assert "exactly these values" not in md


def test_chosen_overrides_alone_are_read(results):
    folder = write_run(results, "tuned", kind="gpu", seed=1)
    edit_manifest(folder, lambda m: m["tuning"].pop("chosen"))
    md = tuning_text(results, "tuned")
    assert "`lora.r` = 16" in md and "`lora.target_modules` = q\\_proj, v\\_proj, fc1, fc2" in md
    assert "exactly these values" in md


# ---------------------------------------------------------------------------------------------- time
def util_sentence(md):
    return next((p for p in md.split("\n\n") if "launch-bound" in p), None)


def test_low_gpu_utilisation_during_train_is_noted_with_the_measured_figures(results):
    folder = write_run(results, "slow-loop", kind="gpu", seed=5, gpu_util=(5, 30))
    res = pd.read_parquet(folder / "resources.parquet")
    ep = pd.read_parquet(folder / "epochs.parquet")
    train = res.loc[res["stage"] == "train", "gpu_util_pct"]
    md = S.time(summary.build(results, "slow-loop"))
    s = util_sentence(md)
    assert s is not None
    assert f"averaged {fmt.pct_value(train.mean())}" in s and f"({len(train)} samples;" in s
    assert f"{fmt.num(ep['tokens_per_s'].min(), 0)} to {fmt.num(ep['tokens_per_s'].max(), 0)} tokens/s per epoch" in s
    assert "below 50 %" in s and "do not show what kept it waiting" in s
    assert re.search(r"\bbecause\b", s) is None  # an observation, no cause claimed


def test_no_utilisation_note_when_the_gpu_was_busy(results):
    folder = write_run(results, "busy", kind="gpu", seed=6, gpu_util=(55, 95))
    res = pd.read_parquet(folder / "resources.parquet")
    assert res.loc[res["stage"] == "train", "gpu_util_pct"].mean() >= S.LOW_GPU_UTIL_PCT
    md = S.time(summary.build(results, "busy"))
    assert util_sentence(md) is None and "utilisation" not in md


def test_threshold_applies_to_the_train_stage_only(results):
    folder = write_run(results, "busy-train", kind="gpu", seed=7, gpu_util=(60, 90))
    res = pd.read_parquet(folder / "resources.parquet")
    res.loc[res["stage"] != "train", "gpu_util_pct"] = 0.0  # idle outside training does not count
    res.to_parquet(folder / "resources.parquet")
    R = summary.build(results, "busy-train")
    assert S.train_utilisation(R.h)["low"] is False
    assert util_sentence(S.time(R)) is None


def test_no_utilisation_note_without_a_gpu(results):
    write_run(results, "cpu", kind="cpu", seed=8)
    R = summary.build(results, "cpu")
    assert S.train_utilisation(R.h) is None
    assert util_sentence(S.time(R)) is None
