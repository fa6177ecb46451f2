"""The whole pipeline on CPU with the tiny config: tables, re-runs, partial re-runs, crash and resume."""
import json
import shutil

import pandas as pd
import pyarrow.parquet as pq
import pytest

import records.graph as stages
from records.schema import TABLES
from tests.conftest import cli, sets, tiny_overrides

CONFIG = "configs/tiny-cpu.yaml"
pytestmark = pytest.mark.slow  # whole pipeline runs: `make test` runs them, `make test-quick` leaves them out


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    ov = tiny_overrides(tmp)
    r = cli("run", CONFIG, *sets(ov))
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp, ov, r


def test_every_table_written_with_its_schema(tiny_run):
    tmp, _, r = tiny_run
    folder = tmp / "results" / "tiny-test"
    for name in ("samples", "predictions", "epochs", "steps", "resources", "params"):
        table = pq.read_table(folder / f"{name}.parquet")
        assert table.schema.equals(TABLES[name], check_metadata=False), name
        assert table.num_rows > 0, name
    m = json.loads((folder / "manifest.json").read_text())
    assert m["weights"] == "random" and m["compute_dtype"] == "float32"
    assert {s: v["status"] for s, v in m["stages"].items()} == dict.fromkeys(
        ["data", "params", "baseline", "train", "evaluate"], "done")
    assert m["data"]["splits"]["train"]["rows_dropped_no_label"] > 0  # the fixture has unlabelled rows
    preds = pd.read_parquet(folder / "predictions.parquet")
    assert set(preds["model"]) == {"baseline_head", "baseline_zeroshot", "epoch_1", "epoch_2", "epoch_3", "finetuned"}
    # each row set belongs to the stage the graph names as its owner
    assert {stages.owner_of("predictions", m) for m in preds["model"]} == {"baseline", "evaluate"}
    probs = preds[["p_entailment", "p_neutral", "p_contradiction"]].sum(axis=1)
    assert ((probs - 1).abs() < 1e-6).all()
    # The final adapter is the last epoch's: same predictions.
    a = preds[preds.model == "finetuned"].sort_values(["split", "idx"])["pred"].to_numpy()
    b = preds[preds.model == "epoch_3"].sort_values(["split", "idx"])["pred"].to_numpy()
    assert (a == b).all()
    epochs = pd.read_parquet(folder / "epochs.parquet")
    assert epochs["epoch"].tolist() == [1, 2, 3]
    assert abs(m["stages"]["train"]["finetune_seconds"] - epochs["seconds"].sum()) < 1e-6
    res = pd.read_parquet(folder / "resources.parquet")
    assert set(res["stage"]) == {"data", "params", "baseline", "train", "evaluate"}
    assert res["gpu_mem_used_bytes"].isna().all()  # CPU run: not measured, never 0
    # Measured on the loaded model == accounted on the meta device.
    assert m["stages"]["train"]["measured_params"]["stored_elements"] == m["params_summary"]["stored_elements"]
    assert "test accuracy finetuned" in r.stdout


def test_the_manifest_records_what_the_run_actually_used(tiny_run):
    """A CPU run: float32 everywhere, no fused AdamW, no CUDA graphs, random weights named as such, whatever the
    config's defaults ask for; and the disk the run itself takes."""
    from pipeline.telemetry.effective import folder_bytes
    tmp, _, _ = tiny_run
    folder = tmp / "results" / "tiny-test"
    m = json.loads((folder / "manifest.json").read_text())
    assert m["config"]["train"]["fused_optimizer"] is True and m["config"]["model"]["name"] == "microsoft/phi-2"
    used = m["effective"]["model"]
    assert used["name"]["source"] == "random" and used["name"]["architecture"] == "phi" and used["name"]["seed"] == 7
    assert used["name"]["config"]["hidden_size"] == 64
    assert used["frozen_weights_dtype"] == "float32" and used["class"] == "PhiForSequenceClassification"
    assert used["fast_gelu"] is True and used["half_precision_norms"] is False  # bfloat16 only
    assert used["attn_implementation"] in ("sdpa", "eager")
    assert m["effective"]["runtime"]["threads"] == 2
    train = m["stages"]["train"]
    assert train["optimizer"] == {"name": "AdamW", "fused": False}
    assert train["step"]["cuda_graphs"] is False and train["batch"]["micro"] == 16
    params = pd.read_parquet(folder / "params.parquet")
    assert "16-bit" not in set(params["dtype"]) and "float32" in set(params["dtype"])
    assert train["measured_params"]["bytes"] == m["params_summary"]["bytes"]  # the table's dtypes are the real ones
    fp = m["footprint"]
    assert fp["checkpoints_bytes"] == folder_bytes(tmp / "checkpoints" / "tiny-test") > 0
    assert fp["model_cache"].startswith("random-phi-") and fp["model_cache_bytes"] > 0
    assert 0 < fp["results_bytes"] <= folder_bytes(folder)
    assert fp["total_bytes"] == fp["checkpoints_bytes"] + fp["results_bytes"] + fp["model_cache_bytes"]


def test_final_adapter_reproduces_the_runs_predictions_elsewhere(tiny_run, tmp_path):
    """The final adapter names no local path, and plain transformers + peft (tools/predict_with_adapter.py, which
    uses no project code), run from another working directory, give the run's own test predictions."""
    import sys

    import numpy as np

    from tests.conftest import ROOT
    tmp, _, _ = tiny_run
    final = tmp / "checkpoints" / "tiny-test" / "final"
    cfg = json.loads((final / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["task_type"] == "SEQ_CLS" and cfg["r"] == 8
    assert cfg["base_model_name_or_path"] is None  # random weights have no hub id
    for name in ("adapter_config.json", "provenance.json", "README.md"):
        text = (final / name).read_text()
        assert str(ROOT) not in text and str(tmp) not in text and "/.cache" not in text, name
    base = json.loads((final / "provenance.json").read_text())["base_model"]
    assert base["source"] == "random" and base["seed"] == 7 and base["init"]["device"] == "cpu"

    folder = tmp / "results" / "tiny-test"
    samples = pd.read_parquet(folder / "samples.parquet").query("split == 'test'")
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"premise": p, "hypothesis": h}) + "\n"
                            for p, h in zip(samples["premise"], samples["hypothesis"], strict=True)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = __import__("subprocess").run([sys.executable, str(ROOT / "tools" / "predict_with_adapter.py"), str(final),
                                      str(rows), "--device", "cpu"], cwd=elsewhere, capture_output=True, text=True,
                                     timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    got = [json.loads(line) for line in r.stdout.splitlines()]
    preds = pd.read_parquet(folder / "predictions.parquet").query("split == 'test' and model == 'finetuned'")
    run = samples[["idx"]].merge(preds, on="idx", how="left")
    assert [g["pred"] for g in got] == run["pred"].tolist()  # every row
    diff = np.abs(np.array([g["probs"] for g in got]) - run[["p_entailment", "p_neutral", "p_contradiction"]].to_numpy())
    assert diff.max() < 1e-5, diff.max()
    assert "Failed to load" not in r.stderr and "Traceback" not in r.stderr and "arning" not in r.stderr


def test_unchanged_rerun_does_no_work(tiny_run):
    tmp, ov, _ = tiny_run
    before = {p.name: p.stat().st_mtime_ns for p in (tmp / "results" / "tiny-test").iterdir()}
    r = cli("run", CONFIG, *sets(ov))
    assert r.returncode == 0
    assert "all 5 stages up to date" in r.stdout
    after = {p.name: p.stat().st_mtime_ns for p in (tmp / "results" / "tiny-test").iterdir()}
    assert before == after  # not even the manifest was rewritten


def test_changed_field_reruns_only_dependent_stages(tiny_run, tmp_path):
    src, ov, _ = tiny_run
    shutil.copytree(src / "results", tmp_path / "results")
    shutil.copytree(src / "checkpoints", tmp_path / "checkpoints")
    ov = tiny_overrides(tmp_path)

    def rerun(*changes):
        r = cli("run", CONFIG, *sets(ov + list(changes)))
        assert r.returncode == 0, r.stderr[-2000:]
        return {s for s in ("data", "params", "baseline", "train", "evaluate") if f"[{s}] running" in r.stdout}

    # eval settings feed every prediction, not the training
    assert rerun("eval.batch_size=7") == {"baseline", "evaluate"}
    # a training field: the training and what reads its adapters
    assert rerun("eval.batch_size=7", "train.learning_rate=0.002") == {"train", "evaluate"}
    # the LoRA rank changes the parameter count too, but not the data or the baselines
    assert rerun("eval.batch_size=7", "train.learning_rate=0.002", "lora.r=4") == {"params", "train", "evaluate"}
    st = cli("status", CONFIG, *sets(ov + ["eval.batch_size=7", "train.learning_rate=0.002", "lora.r=4"]))
    assert st.stdout.count("up to date") == 5
    st = cli("status", CONFIG, *sets(ov))
    assert st.stdout.count("stale (inputs changed)") == 4  # all but data


def test_killed_run_resumes_and_matches_uninterrupted(tiny_run, tmp_path):
    ref_dir, _, _ = tiny_run
    ov = tiny_overrides(tmp_path)
    r = cli("run", CONFIG, *sets(ov), env={"PIPELINE_KILL_AFTER_EPOCH": "1"})
    assert r.returncode == -9  # SIGKILL right after epoch 1's checkpoint
    st = cli("status", CONFIG, *sets(ov))
    assert st.returncode == 0
    lines = dict(line.split(None, 1) for line in st.stdout.splitlines()[1:])
    assert lines["train"].startswith("interrupted (run again to resume)") and "1/3 epochs" in lines["train"]
    assert lines["evaluate"] == "not run" and lines["data"].startswith("up to date")
    r = cli("run", CONFIG, *sets(ov))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Resuming from the checkpoint of epoch 1/3" in r.stdout
    for s in ("data", "params", "baseline"):
        assert f"[{s}] up to date" in r.stdout
    assert "[train] running" in r.stdout and "[evaluate] running" in r.stdout
    key = ["model", "split", "idx"]
    ref = pd.read_parquet(ref_dir / "results/tiny-test/predictions.parquet").sort_values(key, ignore_index=True)
    got = pd.read_parquet(tmp_path / "results/tiny-test/predictions.parquet").sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(ref, got)
    ref_e = pd.read_parquet(ref_dir / "results/tiny-test/epochs.parquet")
    got_e = pd.read_parquet(tmp_path / "results/tiny-test/epochs.parquet")
    assert ref_e["train_loss"].tolist() == got_e["train_loss"].tolist()
    assert ref_e["val_accuracy"].tolist() == got_e["val_accuracy"].tolist()


def test_restart_starts_over(tiny_run, tmp_path):
    src, _, _ = tiny_run
    shutil.copytree(src / "results", tmp_path / "results")
    shutil.copytree(src / "checkpoints", tmp_path / "checkpoints")
    r = cli("run", CONFIG, *sets(tiny_overrides(tmp_path)), "--stages", "data,train", "--restart")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "[data] running" in r.stdout and "[train] running" in r.stdout and "Resuming" not in r.stdout


def test_stage_order_error(tmp_path):
    r = cli("run", CONFIG, *sets(tiny_overrides(tmp_path)), "--stages", "evaluate")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: stage evaluate needs stage train, which is not run (fix: --stages train,evaluate or run all stages)"]
    assert not (tmp_path / "results").exists()


def test_evaluate_without_checkpoints_is_refused_before_any_write(tiny_run, tmp_path):
    """The manifest says train is done, but its adapters are gone (another machine, a cleaned disk)."""
    src, _, _ = tiny_run
    shutil.copytree(src / "results", tmp_path / "results")
    folder = tmp_path / "results" / "tiny-test"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    r = cli("run", CONFIG, *sets(tiny_overrides(tmp_path) + ["eval.batch_size=5"]), "--stages", "evaluate")
    assert r.returncode == 2, r.stderr[-2000:]
    final = tmp_path / "checkpoints" / "tiny-test" / "final"
    assert r.stderr.strip().splitlines() == [
        f"error: stage evaluate: no final adapter in {final} (fix: run the train stage)"]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_a_missing_gpu_is_refused_before_any_write(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    r = cli("run", CONFIG, *sets(tiny_overrides(tmp_path) + ["runtime.device=cuda"]))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1] == (
        "error: runtime.device: cuda was asked for but no GPU is visible (fix: runtime.device: auto)")
    assert not (tmp_path / "results").exists()


def test_a_stage_is_marked_done_by_its_last_write(tmp_path, monkeypatch):
    """Every table a stage owns (its resource rows included) is on disk before its record says done."""
    from pipeline.run import Runner
    from records.config_reading import load_config
    from records.store import RunStore
    events, done = [], set()  # table writes ("samples", "resources:data") and done marks ("done:data"), in order
    real_write, real_manifest = RunStore._write, RunStore.write_manifest

    def write(self, name, table, row_sets=None):  # every table write, whole or by rows, goes through here
        owners = sorted(set(table.column("stage").to_pylist())) if name == "resources" else []
        events.append(f"resources:{','.join(owners)}" if name == "resources" else name)
        real_write(self, name, table, row_sets)

    def write_manifest(self, m):
        now = {s for s, rec in m.stages.items() if rec.status == "done"}
        events.extend(f"done:{s}" for s in sorted(now - done))
        done.update(now)
        real_manifest(self, m)

    monkeypatch.setattr(RunStore, "_write", write)
    monkeypatch.setattr(RunStore, "write_manifest", write_manifest)
    Runner(load_config(CONFIG, tiny_overrides(tmp_path)), CONFIG).run(["data", "params"])
    assert events == ["samples", "resources:data", "done:data", "params", "resources:data,params", "done:params"]


def test_nan_loss_stops_with_a_clear_message(tmp_path, monkeypatch):
    import torch

    import pipeline.engine.loop as train_mod
    import pipeline.model.forward as classify_mod
    from pipeline.run import Runner
    from records.config_reading import load_config
    real = classify_mod.logits
    monkeypatch.setattr(classify_mod, "logits", lambda *a, **k: real(*a, **k) * torch.tensor(float("nan")))
    cfg = load_config(CONFIG, tiny_overrides(tmp_path))
    with pytest.raises(train_mod.TrainingDiverged, match=r"train: loss became nan at epoch 1, step 1.*fix: lower train.learning_rate"):
        Runner(cfg, CONFIG).run(["data", "train"])
    m = json.loads((tmp_path / "results/tiny-test/manifest.json").read_text())
    assert m["stages"]["train"]["status"] == "failed" and "loss became nan" in m["stages"]["train"]["error"]
    assert not (tmp_path / "results/tiny-test/epochs.parquet").exists()
    res = pd.read_parquet(tmp_path / "results/tiny-test/resources.parquet")
    assert "train" in set(res["stage"])  # the failed stage's resource samples are kept
    assert not any(t.name == "ResourceSampler" and t.is_alive() for t in __import__("threading").enumerate())


def test_report_renders_from_the_pipelines_own_run(tiny_run, tmp_path):
    """Pipeline output -> report: every section, and the fine-tuned accuracy computed from the parquet."""
    from analysis import render
    from tests.report.helpers import html_text, section_headings
    tmp, _, _ = tiny_run
    results = tmp / "results"
    produced = render.render(results=results, runs="tiny-test", out=tmp_path / "site", engine="nbclient",
                             formats=("html",))
    text = html_text(produced["html"])
    for heading in section_headings().values():
        assert heading in text, heading
    # The tiny model has random weights: a shape-only run shows parameters and time, never an accuracy.
    stored = int(pd.read_parquet(results / "tiny-test/params.parquet")["stored_elements"].sum())
    assert f"{stored:,}" in text
    assert "random weights" in text
    assert "not measured" in text  # a CPU run has no GPU figures


def test_tune_records_trials_and_the_chosen_overrides(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("epochs: 1\ntrials:\n  - {train.learning_rate: 1.0e-3}\n"
                    "  - {train.learning_rate: 3.0e-3, lora.r: 4}\n")
    ov = sets(tiny_overrides(tmp_path))
    r = cli("tune", CONFIG, grid, *ov)
    assert r.returncode == 0, r.stderr[-2000:]
    folder = tmp_path / "results" / "tiny-test"
    table = pd.read_parquet(folder / "tuning.parquet")
    assert table["trial"].tolist() == [1, 2] and table["chosen"].sum() == 1
    assert table["lora_r"].tolist() == [8, 4] and (table["epochs"] == 1).all()
    best = table.sort_values(["val_accuracy", "val_loss"], ascending=[False, True]).iloc[0]
    assert bool(best["chosen"])
    m = json.loads((folder / "manifest.json").read_text())["tuning"]
    assert m["chosen_trial"] == int(best["trial"]) and m["trials"] == 2
    assert set(m) >= {"grid", "rule", "command", "chosen", "chosen_overrides"}
    printed = cli("tune", CONFIG, grid, *ov, "--print-overrides").stdout.split()
    assert printed == [w for o in m["chosen_overrides"] for w in ("--set", o)]
    assert not list(folder.parent.glob("tiny-test-trial*"))  # trials stay out of results/
