"""Adapter folders name their base model portably: the hub id where there is one, never a local path."""
import json

from pipeline.config import load_config
from pipeline.provenance import finish_adapter
from tests.conftest import ROOT


def test_a_hub_model_is_named_by_its_hub_id_and_revision(tmp_path):
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForSequenceClassification

    from pipeline.model import peft_config, random_config
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
