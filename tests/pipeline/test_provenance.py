"""Adapter folders name their base model portably: the hub id where there is one, never a local path."""
import json
import os

import pytest

from pipeline.model.provenance import finish_adapter
from records.config_reading import load_config
from tests.conftest import ROOT


def test_a_hub_model_is_named_by_its_hub_id_and_revision(tmp_path):
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForSequenceClassification

    from pipeline.model.loading import peft_config, random_config
    cfg = load_config(ROOT / "configs/tiny-cpu.yaml", ["model.source=hub", "model.name=acme/nli-base",
                                                      "model.revision=abc123", "tokenizer.source=built"])
    config = random_config(cfg)
    config.num_labels, config.pad_token_id = 3, 0
    base = AutoModelForSequenceClassification.from_config(config)
    local = tmp_path / "somewhere" / "local"  # where it happened to be loaded from
    base.config.save_pretrained(local)
    base.name_or_path = str(local)
    model = get_peft_model(base, peft_config(cfg))
    model.save_pretrained(tmp_path / "a")
    finish_adapter(tmp_path / "a", cfg, model, torch.float32)
    adapter = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "acme/nli-base" and adapter["revision"] == "abc123"
    prov = json.loads((tmp_path / "a" / "provenance.json").read_text())
    assert prov["base_model"] == {"source": "hub", "hub_id": "acme/nli-base", "revision": "abc123"}
    assert prov["loaded_as"]["dtype"] == "float32" and prov["prompt"]["label_words"] == list(cfg.prompt.label_words)
    card = (tmp_path / "a" / "README.md").read_text()
    assert "base_model: acme/nli-base" in card and str(tmp_path) not in card
    for name in ("adapter_config.json", "provenance.json"):
        assert str(tmp_path) not in (tmp_path / "a" / name).read_text()


def test_a_cache_entry_built_by_two_processes_at_once_is_published_once(tmp_path):
    """Trials of a tune on several GPUs start together on a fresh cache and each builds the same model folder:
    each builds in a folder of its own, and the one that publishes second keeps the first's and drops its own."""
    from pipeline.model.loading import building, publish
    out = tmp_path / "models" / "gguf-abc"
    mine = building(out)
    assert mine != out.with_name(out.name + ".tmp") and str(os.getpid()) in mine.name
    first, second = out.with_name("gguf-abc.1.tmp"), out.with_name("gguf-abc.2.tmp")
    for d, text in ((first, "first"), (second, "second")):
        d.mkdir(parents=True)
        (d / "config.json").write_text(text)
    assert publish(first, out) == out
    assert publish(second, out) == out  # the rename fails: the entry exists
    assert (out / "config.json").read_text() == "first" and not second.exists()
    third = out.with_name("gguf-abc.3.tmp")
    third.mkdir()
    (out / "config.json").unlink()
    (out / "model.safetensors").write_text("half")
    with pytest.raises(OSError):  # the entry is there but incomplete: not ours to hide
        publish(third, out)
