"""`pipeline status`: each stage's state against the current config, in words.

The state comes from the manifest's one rule (pipeline/manifest.py: StageRecord.state(), the same the
report uses); a done stage is then "up to date" or "stale" by its fingerprint against the config's.
"""
from __future__ import annotations

from pipeline.config import ExperimentConfig
from pipeline.fingerprints import stage_fingerprints
from pipeline.manifest import Manifest
from pipeline.stages import NAMES
from pipeline.store import RunStore


def describe(manifest: Manifest, name: str, fingerprint: str) -> str:
    """up to date | stale (inputs changed) | interrupted (run again to resume) | not run | not requested |
    failed | running | running elsewhere."""
    state = manifest.stage_state(name)
    if state == "done":
        return "up to date" if manifest.is_done(name, fingerprint) else "stale (inputs changed)"
    if state == "interrupted":
        return "interrupted (run again to resume)"
    return state


def status(cfg: ExperimentConfig) -> str:
    store = RunStore(cfg.results_path)
    manifest = store.manifest()
    fingerprints = stage_fingerprints(cfg)
    lines = [f"{cfg.run}: {store.folder}"]
    for name in NAMES:
        rec = manifest.stage(name)
        facts = ""
        if rec is not None and rec.seconds is not None:
            facts += f", {rec.seconds:.1f} s"
        if rec is not None and rec.get("epochs_total"):
            facts += f", {rec.get('epochs_done', 0)}/{rec.get('epochs_total')} epochs"
        if rec is not None and rec.error:
            facts += f" - {rec.error}"
        lines.append(f"  {name:<9} {describe(manifest, name, fingerprints[name])}{facts}")
    return "\n".join(lines)
