"""The verdict at the top and the context around it, computed from the runs: within noise or not, like for
like or not, GPU-hours, the one-class baseline and the recipe differences."""
import shutil
from dataclasses import replace

from analysis import verdict
from tests.report_fixture import edit_manifest, write_two_gpu_twin


def by_name(R) -> dict:
    return {c.name: c for c in verdict.criteria(R)}


def test_accuracy_is_within_noise_when_the_original_lies_in_the_interval_and_differs_otherwise(facts):
    R = facts("fixture-gpu,fixture-shape")
    a = R.accuracy_run.acc("finetuned")
    inside = by_name(R)["fine-tuned accuracy"]
    assert (inside.verdict == verdict.WITHIN) == (a.ci[0] <= R.original.accuracy_finetuned <= a.ci[1])
    R.original = replace(R.original, accuracy_finetuned=a.ci[1] + 0.01)   # just above the interval
    outside = by_name(R)["fine-tuned accuracy"]
    assert outside.verdict == verdict.DIFFERS and "outside" in outside.why
    R.original = replace(R.original, accuracy_finetuned=a.ci[0])         # on its edge: inside
    assert by_name(R)["fine-tuned accuracy"].verdict == verdict.WITHIN


def test_time_on_another_gpu_is_not_comparable_and_on_the_same_model_is_compared(facts, results, tmp_path):
    shutil.copytree(results / "fixture-shape", tmp_path / "shape")
    edit_manifest(tmp_path / "shape", lambda m: setattr(m, "gpu_memory_cap_bytes", None))  # uncapped: the time run
    R = facts("shape", tmp_path)
    assert R.time_run is not None and R.time_run.name == "shape"
    time = by_name(R)["fine-tuning time"]
    assert time.verdict == verdict.NOT_COMPARABLE and "not measured" in time.why and "NVIDIA H200" in time.why
    edit_manifest(tmp_path / "shape", lambda m: m.environment["gpu"].update(name="NVIDIA T4"))
    R = facts("shape", tmp_path)
    assert by_name(R)["fine-tuning time"].verdict in (verdict.WITHIN, verdict.DIFFERS)
    assert "times the original's time on the same GPU model" in by_name(R)["fine-tuning time"].why


def test_a_capacity_is_never_compared_as_a_peak(facts):
    R = facts("fixture-shape")
    mem = by_name(R)["peak GPU memory"]
    assert R.original.gpu_figure_is_capacity
    assert mem.verdict == verdict.NOT_COMPARABLE and "capacity, not a measured peak" in mem.why
    assert by_name(R)["parameter count"].verdict == verdict.SAME


def test_without_a_run_with_real_weights_accuracy_is_not_measured(facts):
    R = facts("fixture-shape")
    assert R.accuracy_run is None
    assert by_name(R)["fine-tuned accuracy"].verdict == verdict.NO_RUN
    assert by_name(R)["failure cases"].verdict == verdict.NO_RUN


def test_gpu_hours_are_stage_seconds_times_processes(facts, results, tmp_path):
    shutil.copytree(results / "fixture-gpu", tmp_path / "fixture-gpu")
    write_two_gpu_twin(tmp_path, "fixture-gpu", "twin")
    R = facts("fixture-gpu,twin", tmp_path)
    one, two = R.runs
    seconds = sum(rec.seconds for rec in two.manifest.stages.values() if rec.seconds is not None)
    assert two.gpu_time.processes == 2
    assert abs(two.gpu_time.gpu_hours - (seconds * 2 + two.gpu_time.tuning_seconds) / 3600) < 1e-12
    tuning = one.run.table("tuning")
    assert one.gpu_time.tuning_seconds == (tuning["seconds"].sum() if tuning is not None else 0)
    assert abs(R.gpu_hours - one.gpu_time.gpu_hours - two.gpu_time.gpu_hours) < 1e-12
    assert facts("fixture-cpu").headline.gpu_time.gpu_hours == 0  # a CPU-only run costs no GPU time


def test_one_class_baseline_counts_the_most_predicted_class(facts):
    H = facts("fixture-gpu").headline
    label, n, of = H.one_class
    base = H.test[H.test["model"] == "baseline_head"]
    assert of == len(base) and n == int((base["pred"] == label).sum()) == int(base["pred"].value_counts().max())
    assert facts("fixture-shape").headline.one_class == (-1, 0, 0)  # random weights: no baseline to speak of


def test_recipe_differences_name_a_stand_in_tokenizer_only_where_there_is_one(facts):
    shape = [str(d) for d in facts("fixture-shape").headline.recipe_differences]
    gpu = [str(d) for d in facts("fixture-gpu").headline.recipe_differences]
    assert any("stand-in tokenizer" in d for d in shape) == (facts("fixture-shape").headline.cfg("tokenizer.source")
                                                             not in ("model", None))
    assert not any("stand-in tokenizer" in d for d in gpu)  # SmolLM2's own tokenizer from the same package
