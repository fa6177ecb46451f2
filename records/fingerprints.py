"""Stage fingerprints, driven by the stage graph (records/graph.py): a stage's fingerprint hashes the
config fields it reads (`Stage.reads`) and the fingerprints of its upstream stages (`Stage.upstream`).

So a changed field re-runs exactly the stages that read it and the stages downstream of those, and an
unchanged config re-runs nothing. The data stage also hashes what it reads beyond the config: the bytes
of local source files (or the hub id and revision), so a replaced parquet file re-samples.
"""
from __future__ import annotations

from pathlib import Path

from records.config import SAVE_CADENCE, ExperimentConfig, fingerprint
from records.graph import NAMES, stage
from records.hashing import file_sha256
from records.schema import SPLITS


def _pick(d: dict, dotted: str):
    for part in dotted.split("."):
        d = d[part]
    return d


def source_files(cfg: ExperimentConfig) -> dict[str, Path]:
    """Local source: split name -> parquet file (only the splits this config reads)."""
    folder = cfg.path(cfg.data.path)
    splits = sorted({getattr(cfg.data, r).source_split for r in SPLITS})
    return {s: folder / cfg.data.file_pattern.format(split=s) for s in splits}


def source_identity(cfg: ExperimentConfig) -> dict:
    """What the data stage's output depends on beyond the config: the bytes of local files."""
    if cfg.data.source == "hub":
        return {"hub": cfg.data.name, "revision": cfg.data.revision}
    return {split: file_sha256(p) for split, p in source_files(cfg).items()}


def without(d: dict, dotted_fields) -> dict:
    """A copy of the nested dict `d` without the (dotted) fields named; absent ones are ignored."""
    out = dict(d)
    for dotted in dotted_fields:
        head, _, rest = dotted.partition(".")
        if head in out and rest and isinstance(out[head], dict):
            out[head] = without(out[head], [rest])
        elif not rest:
            out.pop(head, None)
    return out


def stage_inputs(cfg: ExperimentConfig, name: str) -> dict:
    """The config values stage `name` reads, keyed by their dotted names; never the save cadence (SAVE_CADENCE:
    how often progress is saved changes no result, so it must not re-run a stage)."""
    d = without(cfg.to_dict(), SAVE_CADENCE)
    return {field: _pick(d, field) for field in stage(name).reads}


def stage_fingerprints(cfg: ExperimentConfig) -> dict[str, str]:
    """Stage name -> fingerprint, for every stage (upstream stages come first in NAMES)."""
    fps: dict[str, str] = {}
    for name in NAMES:
        extra = {"source": source_identity(cfg)} if name == "data" else {}
        upstream = {u: fps[u] for u in stage(name).upstream}
        fps[name] = fingerprint({"config": stage_inputs(cfg, name), "upstream": upstream, **extra})
    return fps
