"""How the pipeline loads a config: the results contract's loader (records/config.py, torch-free) plus the one
check only the model side can make, `model.architecture` and `model.shape` against transformers' own config
class (pipeline/model/architecture.py). Every command that runs a model loads its config here, so a bad shape
is refused in one line before anything loads or is written.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.model.architecture import check_shape
from records import config_reading
from records import tuned as records_tuned
from records.config import ConfigError, ExperimentConfig


def check_model(cfg: ExperimentConfig, path: str | Path) -> ExperimentConfig:
    if cfg.model.architecture:
        try:
            check_shape(cfg.model.architecture, cfg.model.shape)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e.within('model')}") from None
    return cfg


def load_config(path: str | Path, overrides: list[str] | tuple = (), check_files: bool = True) -> ExperimentConfig:
    return check_model(config_reading.load_config(path, overrides, check_files=check_files), path)


def load_tuned(config_path: str, overrides: list[str], from_run: str | None,
               check_files: bool = True) -> tuple[ExperimentConfig, dict]:
    cfg, tuned = records_tuned.load_tuned(config_path, overrides, from_run, check_files=check_files)
    return check_model(cfg, config_path), tuned
