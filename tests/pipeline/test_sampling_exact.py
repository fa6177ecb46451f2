"""Strided sampling (pipeline/recipe/data.py) on splits written here, row by row: which positions are taken,
which are dropped for having no gold label, the manifest's summary, and each refusal's exact line."""
import numpy as np
import pandas as pd
import pytest

from pipeline.recipe.data import load_samples, samples_fingerprint
from records.config import ConfigError
from records.config_reading import load_config


def _split(labels, name):
    n = len(labels)
    return pd.DataFrame({"premise": [f"{name} p{i}" for i in range(n)], "hypothesis": [f"{name} h{i}" for i in range(n)],
                         "label": labels})


def _cfg(tmp_path, folder, **roles):
    lines = ["run: sampling-test", "data:", "  source: local", f"  path: {folder}"]
    lines += [f"  {role}: {spec}" for role, spec in roles.items()]
    lines += ["model: {source: random, architecture: phi}", "tokenizer: {source: built}"]
    p = tmp_path / "c.yaml"
    p.write_text("\n".join(lines) + "\n")
    return load_config(p)


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    _split([0, 1, 2, -1, 0, 1, 2, 0, 1, 2, 0], "train").to_parquet(d / "full_train.parquet")
    _split([2, -1, 1, 0, 2, 1], "validation").to_parquet(d / "full_validation.parquet")
    _split([1, 0, 2, 1, 0], "test").to_parquet(d / "full_test.parquet")
    return d


def test_strides_offsets_limits_and_dropped_rows(tmp_path, folder):
    cfg = _cfg(tmp_path, folder, train="{source_split: train, stride: 3, offset: 0, limit: 3}",
               validation="{source_split: validation, stride: 1, offset: 1}",
               test="{source_split: test, stride: 2, offset: 1}")
    samples, summary = load_samples(cfg)
    by = {r: samples[samples["split"] == r] for r in ("train", "validation", "test")}
    # train: positions 0, 3, 6 (limit 3 of 0, 3, 6, 9); 3 has label -1: dropped
    assert by["train"]["idx"].tolist() == [0, 6] and by["train"]["label"].tolist() == [0, 2]
    assert by["train"]["premise"].tolist() == ["train p0", "train p6"]
    assert by["train"]["hypothesis"].tolist() == ["train h0", "train h6"]
    # validation: positions 1..5; 1 has no label
    assert by["validation"]["idx"].tolist() == [2, 3, 4, 5]
    assert by["test"]["idx"].tolist() == [1, 3] and by["test"]["label"].tolist() == [0, 1]
    assert set(by["test"]["source_split"]) == {"test"}
    assert samples.columns.tolist() == ["split", "source_split", "idx", "premise", "hypothesis", "label"]
    assert samples["idx"].dtype == np.int64 and samples["label"].dtype == np.int64
    assert summary["train"] == {"source_split": "train", "stride": 3, "offset": 0, "limit": 3, "rows_sampled": 3,
                                "rows_dropped_no_label": 1, "rows": 2, "label_counts": {"0": 1, "2": 1}}
    assert summary["validation"] == {"source_split": "validation", "stride": 1, "offset": 1, "limit": None,
                                     "rows_sampled": 5, "rows_dropped_no_label": 1, "rows": 4,
                                     "label_counts": {"0": 1, "1": 2, "2": 1}}
    assert summary["test"]["rows_sampled"] == 2 and summary["test"]["rows_dropped_no_label"] == 0
    assert list(summary) == ["train", "validation", "test"]


def test_roles_from_one_split_must_be_disjoint(tmp_path, folder):
    ok = _cfg(tmp_path, folder, train="{source_split: train, stride: 2, offset: 0}",
              validation="{source_split: train, stride: 2, offset: 1}",
              test="{source_split: test, stride: 1, offset: 0}")
    samples, _ = load_samples(ok)
    assert samples[samples["split"] == "validation"]["idx"].tolist() == [1, 5, 7, 9]  # 3 has no label
    for a, b, roles in (("train", "test", dict(train="{source_split: test, stride: 2, offset: 0}",
                                                validation="{source_split: validation, stride: 1, offset: 0}",
                                                test="{source_split: test, stride: 4, offset: 0}")),
                        ("validation", "test", dict(train="{source_split: train, stride: 1, offset: 0}",
                                                     validation="{source_split: test, stride: 3, offset: 0}",
                                                     test="{source_split: test, stride: 1, offset: 3}"))):
        with pytest.raises(ConfigError) as e:
            load_samples(_cfg(tmp_path, folder, **roles))
        n, first = (2, 0) if a == "train" else (1, 3)
        assert str(e.value) == (f"data.{a} and data.{b}: {n} rows of split 'test' are in both (e.g. idx {first}); "
                                f"change the stride or offset so they are disjoint")


def test_refusals_name_the_role_and_the_fix(tmp_path, folder):
    roles = dict(train="{source_split: train, stride: 1, offset: 0}",
                 validation="{source_split: validation, stride: 1, offset: 0}",
                 test="{source_split: test, stride: 1, offset: 0}")
    only_unlabelled = {**roles, "validation": "{source_split: validation, stride: 10, offset: 1}"}
    with pytest.raises(ConfigError) as e:
        load_samples(_cfg(tmp_path, folder, **only_unlabelled))
    assert str(e.value) == ("data.validation: all 1 rows sampled from split 'validation' have no gold label (-1), so "
                            "none is left (fix: change data.validation's stride, offset or limit, or use a labelled "
                            "split)")
    past = {**roles, "test": "{source_split: test, stride: 1, offset: 5}"}
    with pytest.raises(ConfigError) as e:
        load_samples(_cfg(tmp_path, folder, **past))
    assert str(e.value) == "data.test: offset 5 is past the end of split 'test' (5 rows)"
    _split([1, 0, 7, 1, 0], "test").to_parquet(folder / "full_test.parquet")
    with pytest.raises(ConfigError) as e:
        load_samples(_cfg(tmp_path, folder, **roles))
    assert str(e.value) == "data: split 'test' has labels outside -1..2 (e.g. 7); expected SNLI's 0/1/2 and -1"


def test_texts_must_be_text(tmp_path, folder):
    roles = dict(train="{source_split: train, stride: 1, offset: 0}",
                 validation="{source_split: validation, stride: 1, offset: 0}",
                 test="{source_split: test, stride: 1, offset: 0}")
    df = _split([1, 0, 2, 1, 0], "test").astype({"hypothesis": object})
    df.loc[3, "hypothesis"] = None
    df.loc[4, "hypothesis"] = None
    df.to_parquet(folder / "full_test.parquet")
    with pytest.raises(ConfigError) as e:
        load_samples(_cfg(tmp_path, folder, **roles))
    assert str(e.value) == ("data: split 'test' row 3: hypothesis is null (2 such rows among those sampled; fix: "
                            "repair the file, or sample other rows)")
    df = _split([1, 0, 2, 1, 0], "test").astype({"premise": object})
    df.loc[2, "premise"] = 42
    pd.DataFrame({"premise": df["premise"].map(lambda v: v if isinstance(v, str) else None), "hypothesis":
                  df["hypothesis"], "label": df["label"]}).to_parquet(folder / "full_test.parquet")
    with pytest.raises(ConfigError, match=r"^data: split 'test' row 2: premise is null \(1 such rows"):
        load_samples(_cfg(tmp_path, folder, **roles))


def test_samples_fingerprint_moves_with_any_value(tmp_path, folder):
    cfg = _cfg(tmp_path, folder, train="{source_split: train, stride: 1, offset: 0}",
               validation="{source_split: validation, stride: 1, offset: 0}",
               test="{source_split: test, stride: 1, offset: 0}")
    samples, _ = load_samples(cfg)
    fp = samples_fingerprint(samples)
    assert len(fp) == 16 and fp == samples_fingerprint(samples.copy())
    changed = samples.copy()
    changed.loc[0, "premise"] = "other"
    assert samples_fingerprint(changed) != fp


def test_unreadable_sources_are_one_line(tmp_path, folder):
    roles = dict(train="{source_split: train, stride: 1, offset: 0}",
                 validation="{source_split: validation, stride: 1, offset: 0}",
                 test="{source_split: test, stride: 1, offset: 0}")
    cfg = _cfg(tmp_path, folder, **roles)
    (folder / "full_test.parquet").write_bytes(b"")
    with pytest.raises(ConfigError) as e:
        load_samples(cfg)
    assert str(e.value) == (f"data.path: {folder / 'full_test.parquet'} is empty (0 bytes) (fix: replace it with "
                            f"the split's parquet file)")
    (folder / "full_test.parquet").write_text("premise,hypothesis,label\n")
    with pytest.raises(ConfigError) as e:
        load_samples(cfg)
    assert str(e.value).startswith(f"data.path: {folder / 'full_test.parquet'} is not a readable parquet file (")
    assert str(e.value).endswith(") (fix: point data.path at a folder of parquet files)")
    assert "Parquet magic bytes not found" in str(e.value)  # the reader's own first line, not a placeholder
    assert "\n" not in str(e.value)
    sub = _split([1, 0, 2], "test").assign(idx=[0, 2, 4])
    sub.to_parquet(folder / "full_test.parquet")
    with pytest.raises(ConfigError) as e:
        load_samples(cfg)
    assert str(e.value) == (f"data.path: {folder / 'full_test.parquet'} holds a subset (its idx is not 0..2); "
                            "point data.path at the full split so strides index the split as published")
    _split([1, 0, 2], "test").assign(idx=[0, 1, 2]).to_parquet(folder / "full_test.parquet")
    samples, _ = load_samples(cfg)  # a full split that carries its own idx column is fine
    assert samples[samples["split"] == "test"]["idx"].tolist() == [0, 1, 2]
    _split([1, 0, 2], "test").drop(columns=["premise", "label"]).to_parquet(folder / "full_test.parquet")
    with pytest.raises(ConfigError) as e:
        load_samples(cfg)
    assert str(e.value) == "data: split 'test' lacks columns ['premise', 'label'] (needs premise, hypothesis, label)"


def test_a_number_where_text_belongs_is_named(tmp_path, folder):
    roles = dict(train="{source_split: train, stride: 1, offset: 0}",
                 validation="{source_split: validation, stride: 1, offset: 0}",
                 test="{source_split: test, stride: 1, offset: 0}")
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.table({"premise": ["a", "b", "c"], "hypothesis": [1.5, 7.0, 2.0], "label": [0, 1, 2]})
    pq.write_table(table, folder / "full_test.parquet")
    with pytest.raises(ConfigError) as e:
        load_samples(_cfg(tmp_path, folder, **roles))
    assert str(e.value) == ("data: split 'test' row 0: hypothesis is float 1.5, not text (3 such rows among those "
                            "sampled; fix: repair the file, or sample other rows)")


def _hub_cfg(tmp_path):
    p = tmp_path / "hub.yaml"
    p.write_text("run: hub-test\ndata: {source: hub, name: org/nli, revision: abc123,\n"
                 "  train: {source_split: train, stride: 2, offset: 0},\n"
                 "  validation: {source_split: validation, stride: 1, offset: 0},\n"
                 "  test: {source_split: test, stride: 1, offset: 0}}\n"
                 "model: {source: random, architecture: phi}\ntokenizer: {source: built}\n")
    return load_config(p, check_files=False)


def test_a_hub_source_loads_each_split_by_name_and_revision(tmp_path, monkeypatch):
    import sys
    import types
    calls = []

    class Split:
        def __init__(self, df):
            self.df = df

        def to_pandas(self):
            return self.df

    def load_dataset(name, revision=None, split=None):
        calls.append((name, revision, split))
        if split == "test":
            raise OSError("no network\nmore")
        return Split(_split([0, 1, 2, 0], split).set_axis([7, 8, 9, 10]))
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    with pytest.raises(ConfigError) as e:
        load_samples(_hub_cfg(tmp_path))
    assert calls == [("org/nli", "abc123", "train"), ("org/nli", "abc123", "validation"), ("org/nli", "abc123", "test")]
    assert str(e.value).startswith("data.name: could not load 'org/nli' from the Hugging Face hub or its cache "
                                   "(OSError: no network) (fix:")

    def all_splits(name, revision=None, split=None):
        return Split(_split([0, 1, 2, 0], split).set_axis([7, 8, 9, 10]))
    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=all_splits))
    samples, _ = load_samples(_hub_cfg(tmp_path))
    # positions in the split as published, whatever index the loaded frame carried
    assert samples[samples["split"] == "train"]["idx"].tolist() == [0, 2]
    assert samples[samples["split"] == "train"]["premise"].tolist() == ["train p0", "train p2"]
    assert samples.index.tolist() == list(range(len(samples)))


def test_a_hub_source_without_datasets_is_one_line(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(ConfigError) as e:
        load_samples(_hub_cfg(tmp_path))
    assert str(e.value) == ("data.source: hub needs the `datasets` package (fix: pip install datasets, or use "
                            "data.source: local)")


def test_samples_fingerprint_ignores_the_frames_index(tmp_path, folder):
    cfg = _cfg(tmp_path, folder, train="{source_split: train, stride: 1, offset: 0}",
               validation="{source_split: validation, stride: 1, offset: 0}",
               test="{source_split: test, stride: 1, offset: 0}")
    samples, _ = load_samples(cfg)
    assert samples.index.tolist() == list(range(len(samples)))
    assert samples_fingerprint(samples.set_axis(range(100, 100 + len(samples)))) == samples_fingerprint(samples)


def test_a_reader_error_is_cut_to_its_first_line_of_160_characters(tmp_path, folder, monkeypatch):
    import pipeline.recipe.data as data
    cfg = _cfg(tmp_path, folder, train="{source_split: train, stride: 1, offset: 0}",
               validation="{source_split: validation, stride: 1, offset: 0}",
               test="{source_split: test, stride: 1, offset: 0}")
    path = folder / "full_train.parquet"
    for raised, shown in ((ValueError("x" * 300 + "\nsecond line"), "x" * 160), (ValueError(""), "ValueError")):
        def fail(p, raised=raised):
            raise raised
        monkeypatch.setattr(data.pd, "read_parquet", fail)
        with pytest.raises(ConfigError) as e:
            load_samples(cfg)
        assert str(e.value) == (f"data.path: {path} is not a readable parquet file ({shown}) (fix: point data.path "
                                f"at a folder of parquet files)")
