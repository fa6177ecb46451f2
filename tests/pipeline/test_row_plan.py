"""No silent caps (issue 20): the rows each split will sample, shown by `pipeline status` before anything runs
(records/row_plan.py), and the one line the data stage prints when a limit the user never wrote cuts a split."""
from pathlib import Path

import pandas as pd
import pytest

from pipeline.recipe.data import load_samples
from pipeline.status import status
from records.config_reading import load_config
from records.row_plan import plan
from tests.pipeline.reliability import stage_lines

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CAP = "capped by the default limit: 1000; set data.train.limit: null for all"


def _split(n: int, name: str) -> pd.DataFrame:
    return pd.DataFrame({"premise": [f"{name} p{i}" for i in range(n)], "hypothesis": [f"{name} h{i}" for i in range(n)],
                         "label": [i % 3 for i in range(n)]})


@pytest.fixture
def folder(tmp_path):
    """A train split larger than the default limit (1,000), small validation and test splits."""
    d = tmp_path / "d"
    d.mkdir()
    _split(1_500, "train").to_parquet(d / "full_train.parquet")
    _split(40, "validation").to_parquet(d / "full_validation.parquet")
    _split(30, "test").to_parquet(d / "full_test.parquet")
    return d


def _cfg(tmp_path, folder, train: str, overrides=()):
    p = tmp_path / "c.yaml"
    p.write_text("\n".join([
        "run: rows-test", "data:", "  source: local", f"  path: {folder}", f"  train: {train}",
        "  validation: {source_split: validation, stride: 2, offset: 0}",
        "  test: {source_split: test, stride: 1, offset: 0}",
        "model: {source: random, architecture: phi}", "tokenizer: {source: built}",
        f"output: {{results_dir: {tmp_path / 'results'}, checkpoint_dir: {tmp_path / 'checkpoints'}}}"]) + "\n")
    return load_config(p, list(overrides))


def test_a_default_cap_is_said_in_one_line_when_the_data_stage_samples(tmp_path, folder, capsys):
    cfg = _cfg(tmp_path, folder, "{source_split: train, stride: 1}")  # no limit written: the default's 1,000
    samples, summary = load_samples(cfg)
    assert summary["train"]["rows"] == 1_000
    lines = [ln.strip() for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert lines == [f"train: 1,000 of 1,500 rows (split 'train' of 1,500 rows, stride 1, offset 0; {DEFAULT_CAP})"]


@pytest.mark.parametrize("train,rows", [
    ("{source_split: train, stride: 1, limit: 1000}", 1_000),  # the same cap, written by the user: not a default
    ("{source_split: train, stride: 1, limit: 200}", 200),
    ("{source_split: train, stride: 2}", 750),                 # the default does not bind: 750 of 750
    ("{source_split: train, stride: 1, limit: null}", 1_500),
])
def test_no_line_when_the_user_set_the_limit_or_it_does_not_bind(tmp_path, folder, capsys, train, rows):
    cfg = _cfg(tmp_path, folder, train)
    assert load_samples(cfg)[1]["train"]["rows"] == rows
    assert capsys.readouterr().out == ""


def test_a_limit_set_by_set_or_by_the_extended_file_is_the_users(tmp_path, folder):
    assert _cfg(tmp_path, folder, "{source_split: train}").limits_by_default == ("train",)
    assert _cfg(tmp_path, folder, "{source_split: train}", ["data.train.limit=1000"]).limits_by_default == ()
    child = tmp_path / "child.yaml"
    child.write_text("extends: c.yaml\nrun: child\n")
    (tmp_path / "c.yaml").write_text((tmp_path / "c.yaml").read_text().replace(
        "{source_split: train}", "{source_split: train, limit: 1000}"))
    assert load_config(child).limits_by_default == ()
    # replacing the whole train section without a limit falls back on the default again
    assert load_config(child, ["data.train={source_split: train, stride: 1}"]).limits_by_default == ("train",)


def test_status_shows_each_splits_rows_before_anything_runs(tmp_path, folder):
    text = status(_cfg(tmp_path, folder, "{source_split: train, stride: 1}"))
    lines = [ln.strip() for ln in text.splitlines()]
    assert f"train: 1,000 of 1,500 rows (split 'train' of 1,500 rows, stride 1, offset 0; {DEFAULT_CAP})" in lines
    assert "validation: 20 rows (split 'validation' of 40 rows, stride 2, offset 0; no limit)" in lines
    assert "test: 30 rows (split 'test' of 30 rows, stride 1, offset 0; no limit)" in lines
    assert stage_lines(text)["data"] == "not run"  # the stage lines still parse as before

    user = status(_cfg(tmp_path, folder, "{source_split: train, stride: 1, limit: 1000}"))
    assert "train: 1,000 of 1,500 rows (split 'train' of 1,500 rows, stride 1, offset 0; capped by limit: 1000)" in [
        ln.strip() for ln in user.splitlines()]
    assert "default" not in user


def test_sizes_not_known_are_said_not_guessed(tmp_path, folder):
    cfg = _cfg(tmp_path, folder, "{source_split: train, stride: 1}")
    (folder / "full_test.parquet").unlink()  # gone after the config was checked
    rows, why = plan(cfg)
    assert why == f"split sizes not known here: {folder / 'full_test.parquet'} is absent"
    assert rows[2].line() == "test: every row it takes (split 'test' of a size not known here, stride 1, offset 0; " \
                             "no limit)"
    assert rows[0].rows == 1_000 and rows[0].default_cap_note() is not None  # the splits that are there still count
    hub = load_config(ROOT / "configs" / "phi2-snli.yaml", check_files=False)
    rows, why = plan(hub)
    assert why == "split sizes not known here: the hub's stanfordnlp/snli is read by the data stage"
    assert rows[0].line() == "train: at most 1,000 rows (split 'train' of a size not known here, stride 550, " \
                             "offset 0; limit: 1000)"


def test_the_committed_configs_state_every_limit():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        if path.name.endswith("tuning.yaml"):
            continue  # a tuning grid, not a run's config
        assert load_config(path, check_files=False).limits_by_default == (), path


def test_snli_validation_as_train_capped_by_default(shared_snli, tmp_path, capsys):
    cfg = load_config(ROOT / "configs" / "smollm2-snli-offline.yaml", [
        "data.train={source_split: validation, stride: 1, offset: 5}", f"data.path={shared_snli}"], check_files=False)
    rows, why = plan(cfg)
    assert why is None and rows[0].source_rows == 10_000 and rows[0].rows == 1_000
    assert rows[0].default_cap_note() == ("train: 1,000 of 9,995 rows (split 'validation' of 10,000 rows, stride 1, "
                                          f"offset 5; {DEFAULT_CAP})")
