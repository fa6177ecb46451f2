"""`pipeline status`: each stage's state against the current config, in words, and what is wrong on disk.

The state comes from the manifest's one rule (records/manifest.py: StageRecord.state(), the same the
report uses); a done stage is then "up to date" or "stale" by its fingerprint against the config's, and
"damaged" when its outputs differ from the manifest's records (records/integrity.py, the check `run` makes
before it decides what to run). Below the stages: who holds the run's lock, damaged checkpoints, and
temporary files a killed run left. Above them: the rows each split will sample (records/row_plan.py), from
the config and the source's size alone, so a cap is seen before anything runs.
"""
from __future__ import annotations

from records.config import ExperimentConfig
from records.fingerprints import stage_fingerprints
from records.graph import NAMES
from records.integrity import check, foreign_checkpoints, stray_dirs, verify_checkpoint
from records.lock import holder
from records.manifest import Manifest
from records.row_plan import plan
from records.store import RunStore, stray_files


def describe(manifest: Manifest, name: str, fingerprint: str, damage: list[str] | None = None) -> str:
    """up to date | stale (inputs changed) | damaged: ... (run again to rewrite it) | interrupted (run again to
    resume) | not run | not requested | failed | running | running elsewhere."""
    state = manifest.stage_state(name)
    if state == "done" and damage:
        return f"damaged: {'; '.join(damage)} (run again to rewrite it)"
    if state == "done":
        return "up to date" if manifest.is_done(name, fingerprint) else "stale (inputs changed)"
    if state == "interrupted":
        return "interrupted (run again to resume)"
    return state


def status(cfg: ExperimentConfig) -> str:
    store = RunStore(cfg.results_path)
    manifest = store.manifest()
    found = check(store.folder, manifest)
    fingerprints = stage_fingerprints(cfg)
    if manifest.is_done("train", fingerprints["train"]):  # as the run sees it (pipeline/run.py, plan)
        foreign = foreign_checkpoints(cfg.checkpoint_path, fingerprints["train"], cfg.train.epochs)
        if foreign:
            found.stages.setdefault("train", []).extend(foreign)
    lines = [f"{cfg.run}: {store.folder}"]
    splits, unknown = plan(cfg)
    lines.append("  rows sampled per split (rows without a gold label are dropped after sampling):")
    lines += [f"    {s.line()}" for s in splits] + ([f"    {unknown}"] if unknown else [])
    for name in NAMES:
        rec = manifest.stage(name)
        facts = ""
        if rec is not None and rec.seconds is not None:
            facts += f", {rec.seconds:.1f} s"
        if rec is not None and rec.get("epochs_total"):
            facts += f", {rec.get('epochs_done', 0)}/{rec.get('epochs_total')} epochs"
        if rec is not None and rec.error:
            facts += f" - {rec.error}"
        lines.append(f"  {name:<9} {describe(manifest, name, fingerprints[name], found.stages.get(name))}{facts}")
    lines += [f"  damaged: {p}" for p in found.other]
    who = holder(store.folder)
    if who:
        lines.append(f"  in use by {who}")
    for folder in sorted(manifest.checkpoints or {}):
        path = cfg.checkpoint_path / folder
        problem = verify_checkpoint(path) if path.is_dir() else None
        if problem:
            lines.append(f"  checkpoint {folder} damaged: {problem} (it will not be resumed from or evaluated)")
    strays = stray_files(store.folder) + stray_dirs(cfg.checkpoint_path)
    if strays and not who:
        lines.append(f"  {len(strays)} temporary file(s) left by an interrupted write (the next run removes them)")
    return "\n".join(lines)
