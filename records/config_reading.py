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
from records.errors import shown
from records.schema import SPLITS


def deep_merge(old: dict, new: dict) -> dict:
    """`new` over `old`, section by section: a config over the one it `extends`, a stage's new effective facts
    over its earlier ones (a stage that did not run this time keeps them)."""
    out = dict(old)
    for k, v in new.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# A config or a tune grid is a few dozen settings a few levels deep. Bounds far above that refuse a received
# file built to exhaust memory (an alias bomb: 387 bytes that expand to gigabytes) or the stack (3,000 levels).
YAML_MAX_DEPTH = 32
YAML_MAX_ALIASES = 64


class _BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses nesting deeper than YAML_MAX_DEPTH and more than YAML_MAX_ALIASES aliases."""

    def compose_node(self, parent, index):
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > YAML_MAX_DEPTH:
                raise yaml.YAMLError(f"nested deeper than {YAML_MAX_DEPTH} levels")
            if self.check_event(yaml.AliasEvent):
                self._aliases = getattr(self, "_aliases", 0) + 1
                if self._aliases > YAML_MAX_ALIASES:
                    raise yaml.YAMLError(f"more than {YAML_MAX_ALIASES} aliases (*name)")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load_yaml(path: Path) -> Any:
    """The YAML file at `path` as plain data, read as UTF-8 whatever the locale, within the bounds above; a file
    that is missing, unreadable, not UTF-8, not YAML or out of bounds is one ConfigError line naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}; fix: save it as UTF-8)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror or e})") from None
    return _parse_yaml(text, str(path))


def _parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 (a SafeLoader, bounded)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{where}:{at} is not valid YAML ({shown(getattr(e, 'problem', None) or e)})") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply (fix: at most {YAML_MAX_DEPTH} levels)") from None


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found (fix: pass a path such as configs/tiny-cpu.yaml)")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: `extends` loops back to itself")
    raw = load_yaml(path) or {}
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
        return key.strip(), _parse_yaml(value, f"--set {key.strip()}")
    except ConfigError:
        raise ConfigError(f"--set {shown(text, 80)}: the value is not valid YAML, or nested deeper than "
                          f"{YAML_MAX_DEPTH} levels (fix: quote it)") from None


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
