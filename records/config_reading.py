"""Reading a config file: YAML (safe), `extends: other.yaml` (its keys merged over the other's, section by
section), `--set KEY=VALUE` overrides (values read as YAML), then every field checked (records/config.py) and,
unless asked not to, the files it names (records/config_paths.py).

Every error is one ConfigError line: "<path>: <field>: <what is wrong> (fix: ...)".
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from records.config import ConfigError, DataConfig, ExperimentConfig
from records.schema import SPLITS


def deep_merge(old: dict, new: dict) -> dict:
    """`new` over `old`, section by section: a config over the one it `extends`, a stage's new effective facts
    over its earlier ones (a stage that did not run this time keeps them)."""
    out = dict(old)
    for k, v in new.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found (fix: pass a path such as configs/tiny-cpu.yaml)")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: `extends` loops back to itself")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{at} is not valid YAML ({getattr(e, 'problem', e)})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read ({e})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: must be a mapping of settings at the top level")
    parent = raw.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str):
            raise ConfigError(f"{path}: extends: must be a file name, got {parent!r}")
        raw = deep_merge(_read_yaml(path.parent / parent, seen + (path.resolve(),)), raw)
    return raw


def _set_dotted(raw: dict, dotted: str, value):
    keys = dotted.split(".")
    d = raw
    for k in keys[:-1]:
        d = d.setdefault(k, {})
        if not isinstance(d, dict):
            raise ConfigError(f"--set {dotted}: {k} is not a section")
    d[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """`train.epochs=3` -> ("train.epochs", 3); the value is read as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text}: expected KEY=VALUE such as train.epochs=3")
    key, value = text.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        raise ConfigError(f"--set {text}: the value is not valid YAML (fix: quote it)") from None


def limits_by_default(raw: dict) -> tuple[str, ...]:
    """The splits (train, validation, test) whose `limit` the merged config text does not set while DataConfig's
    default for that split has one: their cap comes from records/config.py, not from anything the user wrote."""
    data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
    defaults = DataConfig()
    return tuple(role for role in SPLITS if getattr(defaults, role).limit is not None
                 and "limit" not in (data.get(role) if isinstance(data.get(role), dict) else {}))


def load_config(path: str | Path, overrides: list[str] | tuple = (), check_files: bool = True) -> ExperimentConfig:
    """The config at `path` with `--set` overrides, every field checked; files it names too unless
    `check_files` is false. Raises ConfigError: "<path>: <field>: <what is wrong> (fix: ...)"."""
    path = Path(path)
    raw = _read_yaml(path)
    try:
        for text_ in overrides:
            _set_dotted(raw, *parse_override(text_))
        cfg = ExperimentConfig.from_dict(raw)
        cfg.limits_by_default = limits_by_default(raw)
        if check_files:
            cfg.check_files()
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    return cfg
