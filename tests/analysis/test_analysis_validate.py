"""Data the report receives is validated before any number is computed from it: each bad value is one
ReportError naming the table, the row (counted from 0, as pandas counts) and the fix, never an IndexError in a
cell or a nonsense figure on the page. Tables are replaced as the pipeline would write them (checksums
updated), so it is the values that are refused, not the file."""
import math

import numpy as np
import pandas as pd
import pytest

from analysis import runs
from analysis.facts import report_facts
from tests.report_fixture import edit_manifest, rewrite_table, write_run


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("pristine"), "r", kind="gpu", seed=1)


@pytest.fixture
def run(pristine, tmp_path):
    import shutil
    return shutil.copytree(pristine, tmp_path / "r")


def changed(folder, table: str, change) -> None:
    df = pd.read_parquet(folder / f"{table}.parquet")
    change(df)
    rewrite_table(folder, table, df)


def _loads_whole(run) -> None:
    """The run loads and its predictions table is the file's rows, values unchanged (not merely present)."""
    table, on_disk = runs.load_run(run).table("predictions"), pd.read_parquet(run / "predictions.parquet")
    assert len(table) == len(on_disk) > 0
    for col in ("idx", "model", "pred", "p_neutral"):
        assert table[col].tolist() == on_disk[col].tolist(), col


def test_intact_run_passes(run):
    _loads_whole(run)


def where(df: pd.DataFrame, row: int) -> str:
    r = df.iloc[row]
    return f"predictions.parquet row {row} (split {r['split']}, idx {r['idx']}, model {r['model']})"


@pytest.mark.parametrize("column, value, words", [
    ("p_neutral", 1.7, "p_neutral = 1.7 is outside [0, 1]"),
    ("p_entailment", -0.25, "p_entailment = -0.25 is outside [0, 1]"),
    ("p_contradiction", 1e9, "p_contradiction = 1e+09 is outside [0, 1]"),
    ("p_neutral", float("nan"), "p_neutral is missing (null)"),
    ("p_neutral", float("inf"), "p_neutral = inf is not a finite number"),
    ("pred", 5, "pred = 5 is not one of 0 entailment, 1 neutral, 2 contradiction"),
    ("pred", -1, "pred = -1 is not one of"),
    ("split", "dev", "split = 'dev' is not one of train, validation, test"),
])
def test_a_bad_prediction_value_names_the_table_and_the_row(run, column, value, words, refused):
    df = pd.read_parquet(run / "predictions.parquet")
    row = 17 if column != "split" else 3
    df[column] = df[column].astype(object if isinstance(value, str) else df[column].dtype)
    df.loc[row, column] = value
    rewrite_table(run, "predictions", df)
    shown = where(df, row) if column != "split" else f"predictions.parquet row {row} (split dev, idx"
    assert df.loc[row, "model"] == "baseline_head"  # so the baseline stage rewrites it
    refused(run, f"{run / shown}", words,
            "(fix: `python -m pipeline run configs/r.yaml` re-runs baseline, the stage that writes it)")


def test_probabilities_that_do_not_sum_to_one(run, refused):
    def change(df):
        df.loc[40, ["p_entailment", "p_neutral", "p_contradiction"]] = [0.5, 0.5, 0.3]
    changed(run, "predictions", change)
    df = pd.read_parquet(run / "predictions.parquet")
    refused(run, where(df, 40), "probabilities sum to 1.3 (p_entailment + p_neutral + p_contradiction must be 1 "
                                "within 0.0001)")


def test_a_sum_within_the_tolerance_passes(run):
    changed(run, "predictions", lambda df: df.__setitem__("p_neutral", df["p_neutral"] + 5e-5))
    _loads_whole(run)


def test_duplicate_prediction_rows(run, refused):
    changed(run, "predictions", lambda df: df.__setitem__("idx", np.where(df.index == 5, df["idx"].shift(1), df["idx"])))
    df = pd.read_parquet(run / "predictions.parquet")
    refused(run, where(df, 5), "a second row for the same split, idx, model (one row per split, idx, model)")


def test_prediction_for_a_row_that_was_not_sampled(run, refused):
    changed(run, "predictions", lambda df: df.__setitem__("idx", np.where(df.index == 9, 999_999, df["idx"])))
    refused(run, "predictions.parquet row 9", "idx 999999", "a prediction for a row that is not in samples.parquet "
                                                          "(test idx 999999)")


@pytest.mark.parametrize("table, row, column, value, words", [
    ("samples", 4, "label", 3, "label = 3 is not one of 0 entailment, 1 neutral, 2 contradiction"),
    ("samples", 4, "idx", -2, "idx = -2 must be >= 0"),
    ("samples", 6, "premise", None, "premise is missing (null)"),
    ("samples", 6, "hypothesis", None, "hypothesis is missing (null)"),
    ("epochs", 1, "val_accuracy", 1.5, "val_accuracy = 1.5 is outside [0, 1]"),
    ("epochs", 1, "seconds", -3.0, "seconds = -3 must be >= 0"),
    ("epochs", 2, "seconds", float("inf"), "seconds = inf is not a finite number"),
    ("epochs", 2, "epoch", 1, "a second row for the same epoch"),
    ("steps", 3, "lr", float("-inf"), "lr = -inf is not a finite number"),
    ("resources", 2, "cpu_pct", 250.0, "cpu_pct = 250 is outside [0, 100]"),
    ("resources", 2, "gpu_util_pct", -1.0, "gpu_util_pct = -1 is outside [0, 100]"),
    ("params", 1, "trainable", -7, "trainable = -7 must be >= 0"),
    ("tuning", 0, "val_accuracy", 2.0, "val_accuracy = 2 is outside [0, 1]"),
    ("tuning", 0, "learning_rate", float("nan"), "learning_rate is missing (null)"),
])
def test_other_tables_are_checked_too(run, table, row, column, value, words, refused):
    def change(df):
        if value is None:
            df[column] = df[column].astype(object)
        df.loc[row, column] = value
    changed(run, table, change)
    refused(run, f"{table}.parquet row {row}", words, "(fix: ")


def test_resources_rows_name_the_stage_that_owns_them(run, refused):
    changed(run, "resources", lambda df: df.__setitem__("cpu_pct", np.where(df.index == 30, 400.0, df["cpu_pct"])))
    stage = pd.read_parquet(run / "resources.parquet").loc[30, "stage"]
    refused(run, f"resources.parquet row 30 (stage {stage})", f"re-runs {stage}, the stage that writes it")


def test_inf_grad_norm_is_a_real_measurement(run):
    """float16's loss scaler skips a step whose gradients overflowed and records its norm as inf."""
    changed(run, "steps", lambda df: df.__setitem__("grad_norm", np.where(df.index == 0, math.inf, df["grad_norm"])))
    assert math.isinf(runs.load_run(run).table("steps")["grad_norm"][0])


def test_hostile_text_in_a_row_id_is_shown_as_plain_text(run, refused):
    changed(run, "predictions", lambda df: (df.__setitem__("model", np.where(df.index == 2, "evil\n\x1b[31m<b>", df["model"])),
                                            df.__setitem__("pred", np.where(df.index == 2, 9, df["pred"]))))
    msg = refused(run, "predictions.parquet row 2 (split test, idx")
    assert "\x1b" not in msg and "model evil [31m<b>" in msg


# ----------------------------------------------------------------------------------- manifest facts
@pytest.mark.parametrize("change, words", [
    (lambda m: m.data["splits"]["test"].update(rows="100"), "`data.splits.test.rows` must be an integer, got str"),
    (lambda m: m.data.update(splits=["test"]), "`data.splits` must be a mapping, got list"),
    (lambda m: m.data["splits"]["test"]["label_counts"].update({"7": 1}), "`data.splits.test.label_counts` has key '7'"),
    (lambda m: m.environment.update(gpu="NVIDIA H200"), "`environment.gpu` must be a mapping, got str"),
    (lambda m: m.environment["gpu"].update(count="<b>2</b>"), "`environment.gpu.count` must be an integer, got str"),
    (lambda m: m.environment.update(ram_total_bytes="16 GB"), "`environment.ram_total_bytes` must be a number"),
    (lambda m: m.stages["train"].info.update(epochs_total="<script>"), "`stages.train.epochs_total` must be an integer"),
    (lambda m: m.stages["train"].info.update(peaks=[1]), "`stages.train.peaks` must be a mapping"),
    (lambda m: m.params_summary.update(trainable=True), "`params_summary.trainable` must be a number, got bool"),
    (lambda m: m.tuning.update(epochs_per_trial="2"), "`tuning.epochs_per_trial` must be an integer"),
    (lambda m: m.commands.append(7), "`commands.1` must be a string, got int"),
    (lambda m: m.config["data"].update(test="every 100th"), "`config.data.test` must be a mapping"),
    (lambda m: m.config["train"].update(epochs=2.5), "`config.train.epochs` must be an integer, got float"),
    (lambda m: m.config["model"].update(trust_remote_code="no"), "`config.model.trust_remote_code` must be true or "
                                                                 "false, got str"),
])
def test_manifest_facts_the_report_computes_with(run, change, words, refused):
    edit_manifest(run, change)
    refused(run, str(run / "manifest.json"), "malformed manifest", words,
            "(fix: the pipeline writes manifest.json: restore the run folder as the pipeline left it, or re-run it: "
            "`python -m pipeline run configs/r.yaml`)")


def test_report_facts_of_a_bad_run_is_the_same_error(run, monkeypatch):
    monkeypatch.delenv("REPORT_RUNS", raising=False)
    changed(run, "predictions", lambda df: df.__setitem__("pred", np.where(df.index == 0, 3, df["pred"])))
    with pytest.raises(runs.ReportError, match=r"predictions.parquet row 0 .*pred = 3 is not one of"):
        report_facts(run.parent, "r")
