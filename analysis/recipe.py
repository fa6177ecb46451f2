"""How a run's training recipe departs from a plain QLoRA recipe of transformers and peft (the model's own
tokenizer, rows padded per batch, eager steps, peft's prepare_model_for_kbit_training, the model's own
activation): the differences a reader must know before setting its time beside the original study's.
Each comes from the run's resolved config, or from what the train stage recorded it actually did."""
from __future__ import annotations

from analysis.markdown import Markdown, code, text


def _used(run, key: str, config_key: str):
    """What the train stage recorded it did (its `step` record), else the config's request."""
    rec = run.stage("train")
    step = (rec.get("step") if rec is not None else None) or {}
    return step[key] if step.get(key) is not None else run.cfg(config_key)


def differences(run) -> list[Markdown]:
    """One phrase per departure, in words; [] for a run that departs in none of them."""
    out = []
    tok, tok_name = run.cfg("tokenizer.source"), run.cfg("tokenizer.name")
    own = tok == "model" or (tok_name == run.cfg("model.name") and run.cfg("model.source") != "random")
    if tok and not own:
        out.append(Markdown(f"a stand-in tokenizer ({code(run.cfg('tokenizer.name') or tok)}), not the model's own"))
    if run.cfg("train.batch_size"):
        out.append(Markdown(f"batch {text(run.cfg('train.batch_size'))} (the original study's is not recorded here)"))
    if _used(run, "packing", "train.packing"):
        out.append(Markdown("rows of similar length packed into each batch"))
    if _used(run, "cuda_graphs", "train.cuda_graphs"):
        out.append(Markdown("CUDA graphs for the training step"))
    if run.cfg("train.prepare_kbit") is False:
        out.append(Markdown(f"no {code('prepare_model_for_kbit_training')}"))
    if ((run.manifest.effective or {}).get("model") or {}).get("fast_gelu", run.cfg("model.fast_gelu")):
        out.append(Markdown("a fused tanh GELU"))
    if run.cfg("train.fused_optimizer"):
        out.append(Markdown("fused AdamW"))
    return out
