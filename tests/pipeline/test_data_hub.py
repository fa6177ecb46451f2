"""The hub data source, offline: `datasets.load_dataset` is replaced by a stand-in serving our fixture,
so the code that turns a hub split into samples runs for real without a network."""
import pandas as pd
import pytest

from pipeline.recipe.data import load_samples
from records.config_reading import load_config
from tests.conftest import ROOT

datasets = pytest.importorskip("datasets")


def test_hub_source_samples_by_stride(tmp_path, monkeypatch):
    calls = []

    def fake_load_dataset(name, revision=None, split=None):
        calls.append((name, revision, split))
        df = pd.read_parquet(ROOT / "data/tiny-nli" / f"full_{split}.parquet").drop(columns=["idx"])
        return datasets.Dataset.from_pandas(df, preserve_index=False)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    p = tmp_path / "c.yaml"
    p.write_text("run: hub-test\ndata: {source: hub, name: stanfordnlp/snli, revision: abc,"
                 " train: {source_split: train, stride: 3, offset: 1, limit: 50}}\n"
                 "model: {source: random, architecture: phi}\ntokenizer: {source: built}\n")
    samples, summary = load_samples(load_config(p))
    assert sorted(set(calls)) == [("stanfordnlp/snli", "abc", s) for s in ("test", "train", "validation")]
    train = samples[samples.split == "train"]
    full = pd.read_parquet(ROOT / "data/tiny-nli/full_train.parquet")
    expected = [i for i in range(1, 150, 3) if full.label[i] != -1]
    assert train["idx"].tolist() == expected
    assert summary["train"]["rows_sampled"] == 50
    assert summary["train"]["rows_dropped_no_label"] == 50 - len(expected)
    assert (train["premise"].to_numpy() == full.premise[expected].to_numpy()).all()


def test_unreachable_hub_is_one_line_exit_2_nothing_written(tmp_path):
    """Offline (HF_HUB_OFFLINE=1, as on the machines this is built on), the default config's hub data fails
    with one line naming data.name, exit code 2, and no results folder."""
    from tests.conftest import cli
    r = cli("run", "configs/phi2-snli.yaml", "--set", f"output.results_dir={tmp_path}/r",
            "--set", f"output.checkpoint_dir={tmp_path}/c",
            env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: data.name: could not load 'stanfordnlp/snli' from the Hugging Face hub")
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "r").exists()
