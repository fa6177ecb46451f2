"""Parameter accounting: the original study's exact figures, and the meta-device count equals a real 4-bit model's."""
import json

import pytest

from pipeline.model.params import account, measured, totals
from records.config_reading import load_config
from tests.conftest import ROOT, cli


def test_phi2_figures_from_the_cli_without_weights():
    r = cli("params", "configs/phi2-snli.yaml")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # DESIGN.md: a plain sum(p.numel()) on the 4-bit peft model; LoRA 18,350,080 + score 7,680; peft's logical count.
    assert out["stored_elements"] == 1_408_634_880
    assert out["trainable"] == 18_357_760
    assert out["logical_params"] == 2_666_926_080
    lora = [c for c in out["components"] if c["component"] == "lora adapters"][0]
    assert lora["trainable"] == 18_350_080


@pytest.mark.parametrize("targets", [["q_proj", "v_proj", "fc1", "fc2"], ["dense"]])
def test_meta_accounting_matches_a_loaded_4bit_model(tmp_path, targets):
    """Load the tiny Phi for real (4-bit NF4 on CPU through bitsandbytes) and count it."""
    from pipeline.model.loading import add_lora, load_classifier
    from pipeline.recipe.context import RunContext
    from pipeline.recipe.data import load_samples
    from records.store import RunStore
    cfg = load_config(ROOT / "configs/tiny-cpu.yaml", [f"output.results_dir={tmp_path}/r",
                                                        f"output.checkpoint_dir={tmp_path}/c",
                                                        f"lora.target_modules={json.dumps(targets)}"])
    ctx = RunContext(cfg, RunStore(cfg.results_path), fingerprints={})
    ctx.samples, _ = load_samples(cfg)
    model = add_lora(cfg, load_classifier(cfg, ctx.location, ctx.tokenizer, ctx.device, ctx.dtype))
    assert any(type(m).__name__ == "Linear4bit" for m in model.modules()), "the base must really be 4-bit"
    real = measured(model)
    meta = totals(account(cfg, ctx.dtype))
    assert real["stored_elements"] == meta["stored_elements"]
    assert real["bytes"] == meta["bytes"]  # the dtypes the params table names are the ones the model has
    assert real["trainable"] == meta["trainable"]
    assert real["logical_params"] == meta["logical_params"]
