"""Strided sampling: ids are row indices of the split as published; unlabelled rows dropped and counted."""
import pandas as pd
import pytest

from pipeline.recipe.data import load_samples
from records.config import ConfigError
from records.config_reading import load_config
from tests.conftest import ROOT


def _cfg(tmp_path, data_path, **splits):
    lines = ["run: data-test", "data:", "  source: local", f"  path: {data_path}"]
    for role, spec in splits.items():
        lines.append(f"  {role}: {spec}")
    lines += ["model: {source: random, architecture: phi}", "tokenizer: {source: built}"]
    p = tmp_path / "c.yaml"
    p.write_text("\n".join(lines) + "\n")
    return load_config(p)


def test_shared_snli_test_and_validation_every_100th(tmp_path, shared_snli):
    cfg = _cfg(tmp_path, shared_snli,
               train="{source_split: validation, stride: 10, offset: 5, limit: 1000}",
               validation="{source_split: validation, stride: 100, offset: 0}",
               test="{source_split: test, stride: 100, offset: 0}")
    samples, summary = load_samples(cfg)
    test = samples[samples["split"] == "test"]
    assert test["idx"].tolist() == list(range(0, 10000, 100))
    # PROVENANCE.md: the every-100th test sample has no unlabelled row; label counts {0: 30, 1: 34, 2: 36}
    assert summary["test"]["rows_dropped_no_label"] == 0
    assert test["label"].value_counts().sort_index().tolist() == [30, 34, 36]
    # The first test row as published (PROVENANCE.md): church choir / cracks in the ceiling / neutral.
    first = test.iloc[0]
    assert first["premise"].startswith("This church choir sings to the masses")
    assert first["hypothesis"] == "The church has cracks in the ceiling." and first["label"] == 1
    # Validation: idx 8400 has no gold label: sampled, then dropped and counted.
    val = samples[samples["split"] == "validation"]
    assert summary["validation"]["rows_sampled"] == 100 and summary["validation"]["rows_dropped_no_label"] == 1
    assert 8400 not in set(val["idx"]) and len(val) == 99
    assert set(val["idx"]) == set(range(0, 10000, 100)) - {8400}
    # Offline train rows: 5, 15, ..., 9995, disjoint from the validation rows.
    train = samples[samples["split"] == "train"]
    assert summary["train"]["rows_sampled"] == 1000
    assert set(train["idx"]) <= set(range(5, 10000, 10)) and not set(train["idx"]) & set(val["idx"])
    assert len(train) == 1000 - summary["train"]["rows_dropped_no_label"]
    # Every sampled text is byte-identical to the source row with that index.
    full = pd.read_parquet(shared_snli / "full_test.parquet").set_index("idx")
    assert (full.loc[test["idx"], "hypothesis"].to_numpy() == test["hypothesis"].to_numpy()).all()


def test_overlapping_roles_are_refused(tmp_path):
    cfg = _cfg(tmp_path, ROOT / "data/tiny-nli",
               train="{source_split: validation, stride: 2, offset: 0}",
               validation="{source_split: validation, stride: 4, offset: 0}",
               test="{source_split: test, stride: 1, offset: 0}")
    with pytest.raises(ConfigError, match=r"data.train and data.validation: \d+ rows of split 'validation' are in both"):
        load_samples(cfg)


def test_subset_file_is_refused(tmp_path, shared_snli):
    folder = tmp_path / "snli"
    folder.mkdir()
    for split in ("train", "validation", "test"):
        pd.read_parquet(shared_snli / "test_every100.parquet").to_parquet(folder / f"full_{split}.parquet")
    cfg = _cfg(tmp_path, folder)
    with pytest.raises(ConfigError, match="holds a subset"):
        load_samples(cfg)


def test_missing_columns_and_offset_past_end(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    for split in ("train", "validation", "test"):
        pd.DataFrame({"premise": ["a"] * 5, "hypo": ["b"] * 5, "label": [0] * 5}).to_parquet(folder / f"full_{split}.parquet")
    with pytest.raises(ConfigError, match=r"lacks columns \['hypothesis'\]"):
        load_samples(_cfg(tmp_path, folder))
    tiny = ROOT / "data/tiny-nli"
    with pytest.raises(ConfigError, match="data.test: offset 500 is past the end"):
        load_samples(_cfg(tmp_path, tiny, test="{source_split: test, stride: 1, offset: 500}"))
