"""What a run actually used, where its config left the decision to the run, the model or the hardware:
`quantization.compute_dtype: auto` ran as float32 on a CPU, `train.fused_optimizer: true` did not fuse off
the GPU, `model.name` of a random-weights run names nothing. records.effective.WHERE says where the manifest
records each decision; the report shows that value, and the config's request beside it where they differ.
Runs made before a decision was recorded say "not recorded", never the request in its place."""
from __future__ import annotations

from analysis.processes import ABSENT
from analysis.runs import Run
from analysis.settings import value_text
from records.effective import WHERE, identity_text

NOT_RECORDED = "not recorded"


def _lookup(run: Run, dotted: str):
    d = run.manifest.to_dict()
    for part in dotted.split("."):
        if not isinstance(d, dict) or d.get(part) is None:
            return ABSENT
        d = d[part]
    return d


def used(run: Run, key: str):
    """The value the run used for config field `key` (e.g. "train.cuda_graphs"); ABSENT when not recorded or
    when `key` is not a field the run resolves."""
    return _lookup(run, WHERE[key]) if key in WHERE else ABSENT


def _requested(run: Run, key: str, value) -> str:
    if key == "model.name" and run.cfg("model.source") == "random":
        return "random weights; the name is not used"
    return value_text(value)


def setting_text(run: Run, key: str, value) -> str:
    """A config setting's value as the run used it: "float32 (config: auto)", "no (config: yes)",
    "not recorded (config: yes)", or the value alone where the run used what the config says."""
    asked = _requested(run, key, value)
    if key not in WHERE or key == "model.revision" and run.cfg("model.source") != "hub":  # only the hub has one
        return asked
    got = used(run, key)
    if got is ABSENT:  # (a field newer than the run's config has no request to show either)
        return NOT_RECORDED if value is ABSENT else f"{NOT_RECORDED} (config: {asked})"
    shown = identity_text(got) if key == "model.name" else value_text(got)
    return shown if shown == asked or key == "model.name" else f"{shown} (config: {asked})"


def model_text(run: Run) -> str:
    """The base model as the run loaded it, in words (its portable identity)."""
    return setting_text(run, "model.name", run.cfg("model.name", ABSENT))


def frozen_weights_dtype(run: Run) -> str:
    """The dtype of the weights that are not 4-bit (embeddings, norms, biases, the frozen head), as loaded."""
    got = _lookup(run, "effective.model.frozen_weights_dtype")
    return NOT_RECORDED if got is ABSENT else str(got)


def short_model(run: Run) -> str:
    """The base model in a few words for a sentence or a table cell: a GGUF file's model name without its
    quantization suffix ("SmolLM2-135M-Instruct"), a hub or local name as written, "random weights" added
    for a shape-only run. The full identity (file, package, hash) is model_text's."""
    got = _lookup(run, "effective.model.name")
    name = run.cfg("model.name") or "unknown model"
    if isinstance(got, dict) and got.get("file"):
        stem = str(got["file"]).removesuffix(".gguf")
        name = stem.rsplit(".", 1)[0] if "." in stem else stem
    return f"{name} (random weights)" if run.cfg("model.source") == "random" else str(name)
