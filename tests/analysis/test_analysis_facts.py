"""The facts layer: every number the report shows, checked against the parquet tables and the manifests
directly (independently of analysis/), and the decisions made from them."""
import math

import pandas as pd
import pytest

from analysis import training
from analysis.facts import report_facts
from tests.report_fixture import RUNS, edit_manifest, rewrite_table, write_run

GIB = 2 ** 30
COMMITTED = "smollm2-snli-offline"


def test_accuracy_and_paired_test_follow_the_predictions(results, facts):
    H = facts("fixture-gpu").headline
    p, s = pd.read_parquet(results / "fixture-gpu/predictions.parquet"), pd.read_parquet(results / "fixture-gpu/samples.parquet")
    t = p[p.split == "test"].merge(s[s.split == "test"][["idx", "label"]], on="idx")
    for model, rows in t.groupby("model"):
        assert H.acc(model).correct == int((rows.pred == rows.label).sum()) and H.acc(model).n == len(rows)
    head, ft = (t[t.model == m].set_index("idx") for m in ("baseline_head", "finetuned"))
    fixed, broken = int(((head.pred != head.label) & (ft.pred == ft.label)).sum()), int(((head.pred == head.label) & (ft.pred != ft.label)).sum())
    pair = H.pair()
    assert (pair.b_only, pair.a_only) == (fixed, broken)
    assert H.counts()["corrected"] == fixed and H.counts()["regressed"] == broken
    assert H.has_pair and H.scored_rows == 100


def test_shape_only_run_has_real_parameters_and_no_meaningful_accuracy(facts):
    R = facts("fixture-shape")
    H = R.headline
    assert not H.accuracy_meaningful and not H.has_pair
    assert (H.params.stored, H.params.trainable, H.params.logical) == (1_408_634_880, 18_357_760, 2_666_926_080)
    assert R.param_match == ["fixture-shape"] and R.shape_only_runs == ["fixture-shape"]


def test_memory_cap_against_the_peaks(results, facts):
    R = facts(",".join(RUNS))
    assert [f.name for f in R.capped] == ["fixture-shape"]
    cap = R.capped[0].cap
    res = pd.read_parquet(results / "fixture-shape/resources.parquet")
    worst = max(res.torch_allocated_bytes.max(), res.torch_reserved_bytes.max(), 9.9 * GIB * 1.1)  # manifest's exact peaks
    assert cap.cap == 15 * GIB and cap.share == pytest.approx(worst / (15 * GIB)) and cap.within
    assert cap.headroom == pytest.approx(15 * GIB - worst)
    assert R.headline.name == "fixture-gpu" and not R.headline.cap.applies


def test_exact_stage_peaks_from_the_manifest_count(facts):
    H = facts("fixture-gpu").headline
    # the sampler saw at most ~9.7 GiB allocated; the manifest's exact train-stage peak is 9.90 GiB
    assert H.peaks["peak_allocated_bytes"] == pytest.approx(9.9 * GIB)
    train = H.stage_peaks.set_index("stage").loc["train"]
    assert train["exact_max_allocated_bytes"] == pytest.approx(9.9 * GIB)


def test_cpu_run_in_progress(facts):
    H = facts("fixture-cpu").headline
    assert math.isnan(H.peaks["peak_gpu_mem_used_bytes"]) and math.isnan(H.peak_gpu_bytes)
    assert H.params.measured and H.run.table("params") is None  # totals from the manifest's params_summary
    assert H.epochs_done == 1 and H.epochs_total == 2 and H.unfinished
    assert not H.has_pair and H.case_counts() is None and H.counts()["corrected"] == 0
    assert not H.utilisation.low and math.isnan(H.utilisation.mean_pct)


def epochs(val_loss, val_accuracy):
    n = len(val_loss)
    return pd.DataFrame({"epoch": range(1, n + 1), "val_loss": val_loss, "val_accuracy": val_accuracy})


def test_validation_trend_is_decided_from_the_curve():
    # the committed SmolLM2 run: loss 0.640 at epoch 3 rising to 1.080 at epoch 5 while accuracy holds
    t = training.validation_trend(epochs([0.944, 0.677, 0.640, 0.752, 1.080], [0.535, 0.707, 0.788, 0.758, 0.798]))
    assert (t.kind, t.best_epoch, t.best_loss, t.last_epoch, t.last_loss) == ("over-confident", 3, 0.640, 5, 1.080)
    assert training.validation_trend(epochs([0.9, 0.6, 0.8], [0.5, 0.8, 0.6])).kind == "over-fitting"
    assert training.validation_trend(epochs([0.9, 0.6, 0.62], [0.5, 0.8, 0.6])).kind == "steady"  # within LOSS_RISE
    assert training.validation_trend(epochs([0.9, 0.7, 0.6], [0.5, 0.6, 0.7])).kind == "steady"
    assert training.validation_trend(epochs([0.9], [0.5])).kind == "unknown"


def test_the_committed_smollm2_run_is_over_confident():
    R = report_facts(None, COMMITTED)
    t, ep = R.headline.trend, R.headline.epochs
    best = ep.loc[ep["val_loss"].idxmin()]
    assert (t.best_epoch, t.last_epoch) == (best["epoch"], ep["epoch"].max())
    assert (t.best_loss, t.last_loss) == (best["val_loss"], ep["val_loss"].iloc[-1])
    # validation loss rose after its best epoch while accuracy did not fall: over-confidence, not over-fitting
    assert t.last_loss > t.best_loss and ep["val_accuracy"].iloc[-1] >= best["val_accuracy"]
    assert t.kind == "over-confident"


# ---------------------------------------------------------------------------------------------- utilisation
def test_low_gpu_utilisation_during_train_is_measured(tmp_path, facts):
    folder = write_run(tmp_path, "slow-loop", kind="gpu", seed=5, gpu_util=(5, 30))
    res, ep = pd.read_parquet(folder / "resources.parquet"), pd.read_parquet(folder / "epochs.parquet")
    train = res.loc[res["stage"] == "train", "gpu_util_pct"]
    u = facts("slow-loop", tmp_path).headline.utilisation
    assert u.low and u.mean_pct == pytest.approx(train.mean()) and u.samples == len(train)
    assert (u.tokens_per_s_min, u.tokens_per_s_max) == (ep.tokens_per_s.min(), ep.tokens_per_s.max())


def test_busy_gpu_and_idle_stages_other_than_train_are_not_low(tmp_path, facts):
    folder = write_run(tmp_path, "busy-train", kind="gpu", seed=7, gpu_util=(60, 90))
    res = pd.read_parquet(folder / "resources.parquet")
    res.loc[res["stage"] != "train", "gpu_util_pct"] = 0.0  # idle outside training does not count
    rewrite_table(folder, "resources", res)
    assert not facts("busy-train", tmp_path).headline.utilisation.low


# ---------------------------------------------------------------------------------------------- tuning
SOURCE = "rebuilt from the printed table in docs/device-logs/2-tune.log; the tune run's own table was lost"


def test_tuning_facts_against_the_final_config(tmp_path, facts):
    folder = write_run(tmp_path, "tuned", kind="gpu", seed=1, tuning_source=SOURCE)
    T = facts("tuned", tmp_path).headline.tuning
    assert T.present and T.chosen.trial == 2 and T.chosen.learning_rate == 2e-4
    assert T.settings["lora.r"] == 16 and T.differ == []
    assert (T.trial_epochs, T.final_epochs, T.same_epochs) == (2, 3, False)  # fixture: 2 epochs per trial, 3 final
    assert T.note("source") == SOURCE

    def change(m):
        m.config["train"]["learning_rate"] = 0.001
        m.tuning.pop("epochs_per_trial")
        m.tuning.pop("chosen")  # the chosen settings then come from chosen_overrides
    edit_manifest(folder, change)
    T = facts("tuned", tmp_path).headline.tuning
    assert T.differ == [("train.learning_rate", 0.0002, 0.001)]
    assert T.trial_epochs == 2  # from the chosen row of the tuning table
    assert T.settings["lora.target_modules"] == ["q_proj", "v_proj", "fc1", "fc2"]


def test_no_tuning_table_is_an_empty_tuning(facts):
    T = facts("fixture-shape").headline.tuning
    assert not T.present and not T.chosen.exists and T.note("grid") == ""


def test_no_runs_at_all_reads_as_missing_facts(tmp_path, facts):
    R = facts(None, tmp_path)
    H = R.headline
    assert R.runs == [] and H.name == "" and not H.accuracy and not H.params.measured and H.epochs is None
    assert H.trend.kind == "unknown" and not H.tuning.present and not H.cap.applies


def test_disk_keeps_the_runs_own_footprint_apart_from_the_filesystem(results, facts):
    from tests.report_fixture import FOOTPRINT
    R = facts(",".join(RUNS))
    gpu, shape = R.runs[0].disk, R.runs[1].disk
    assert gpu.recorded and gpu.own == FOOTPRINT["total_bytes"] and gpu.added == gpu.own
    assert dict(gpu.parts) == {"checkpoints": 350_000_000, "results": 2_000_000, "model_cache": 540_000_000}
    res = pd.read_parquet(results / "fixture-shape/resources.parquet").sort_values("time")
    assert not shape.recorded and math.isnan(shape.own)
    assert shape.filesystem_start == res["disk_used_bytes"].iloc[0] and shape.filesystem_peak == res["disk_used_bytes"].max()
    assert shape.added == shape.filesystem_growth == res["disk_used_bytes"].max() - res["disk_used_bytes"].iloc[0]
    totals = R.disk_totals
    assert totals.runs == 3 and totals.start_min == totals.start_max == 40e9
    assert totals.added_max == FOOTPRINT["total_bytes"]  # the most any run put on the disk, far below what it held


def test_a_pause_between_calls_is_cut_from_the_timeline_and_kept_as_a_mark():
    """Stages run in separate calls leave a pause with nothing to draw: cut to a couple of seconds, and
    how long it was kept for the figure's mark."""
    from analysis import resources
    t = [100.0, 100.5, 101.0, 1_101.0, 1_101.5]  # a 1,000 s pause before the fourth sample
    tl = resources.timeline(pd.DataFrame({"time": t, "stage": ["data"] * 3 + ["train"] * 2}))
    assert tl["pause_s"].tolist() == [0.0, 0.0, 0.0, 1_000.0, 0.0]
    assert tl["t"].tolist() == [0.0, 0.5, 1.0, 1.0 + resources.PAUSE_SHOWN_S, 1.5 + resources.PAUSE_SHOWN_S]
    short = resources.timeline(pd.DataFrame({"time": [0.0, 30.0], "stage": ["train"] * 2}))
    assert short["t"].tolist() == [0.0, 30.0] and not short["pause_s"].any()  # a quiet stretch is not a pause
