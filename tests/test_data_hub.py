"""The hub data source, offline: `datasets.load_dataset` is replaced by a stand-in serving our fixture,
so the code that turns a hub split into samples runs for real without a network."""
import pandas as pd
import pytest

from pipeline.config import load_config
from pipeline.data import load_samples
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
