"""Config fields that check themselves, and `Section`, the dataclass base that runs the checks.

Each field is made by one of the functions below (integer, number, text, choice, flag, names, mapping,
section). It keeps its help text and its rule in the dataclass field's metadata, peft-style, so a field's
type, range and explanation sit on one line of the config class. Constructing a Section checks every
field in `__post_init__`, then the section's own cross-field rules (`check()`).

An error names the field relative to the section that raised it ("stride: must be >= 1, got 0");
`Section.from_dict` adds the path on the way out ("data.test.stride: ..."), so the user reads one line
naming the field and the fix. Torch-free and transformers-free.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
from typing import Any, Callable

from records.errors import ConfigError

Check = Callable[[Any, str], Any]  # (value, field name) -> the value to keep; raises ConfigError


def _field(default, help: str, check: Check, **meta):
    meta = {"help": help, "check": check, **meta}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _or_null(check: Check, optional: bool) -> Check:
    return (lambda v, name: None if v is None else check(v, name)) if optional else check


def _in_range(v, name: str, min=None, gt=None, max=None):
    if min is not None and v < min:
        raise ConfigError(f"{name}: must be >= {min}, got {v!r}")
    if gt is not None and v <= gt:
        raise ConfigError(f"{name}: must be > {gt}, got {v!r}")
    if max is not None and v > max:
        raise ConfigError(f"{name}: must be <= {max}, got {v!r}")
    return v


def integer(default, help: str, *, min=None, optional: bool = False):
    def check(v, name):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ConfigError(f"{name}: must be an integer, got {v!r}")
        return _in_range(v, name, min=min)
    return _field(default, help, _or_null(check, optional), min=min)


def number(default, help: str, *, min=None, gt=None, max=None, optional: bool = False):
    """A finite float (ints accepted): NaN and inf are refused, they would poison every result downstream."""
    def check(v, name):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            hint = " (write 2e-4 as 2.0e-4 so YAML reads a number)" if _looks_numeric(v) else ""
            raise ConfigError(f"{name}: must be a number, got {v!r}{hint}")
        if not math.isfinite(v):
            raise ConfigError(f"{name}: must be a finite number, got {v!r}")
        return _in_range(float(v), name, min=min, gt=gt, max=max)
    return _field(default, help, _or_null(check, optional), min=min, gt=gt, max=max)


def _looks_numeric(v) -> bool:
    try:
        float(v)
        return isinstance(v, str)
    except (TypeError, ValueError):
        return False


def text(default, help: str, *, optional: bool = False, pattern: str | None = None, rule: str = ""):
    """A string; with `pattern`, it must match it whole, else `rule` (what it must be, and the fix) is shown."""
    def check(v, name):
        if not isinstance(v, str):
            raise ConfigError(f"{name}: must be a string, got {v!r}")
        if pattern is not None and not re.fullmatch(pattern, v):
            raise ConfigError(f"{name}: {rule}, got {v!r}")
        return v
    return _field(default, help, _or_null(check, optional))


def choice(default, options: tuple, help: str):
    def check(v, name):
        if v not in options:
            close = difflib.get_close_matches(str(v), [str(o) for o in options], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{name}: must be one of {', '.join(map(repr, options))}, got {v!r}{hint}")
        return v
    return _field(default, help, check, choices=options)


def flag(default: bool, help: str):
    def check(v, name):
        if not isinstance(v, bool):
            raise ConfigError(f"{name}: must be true or false, got {v!r}")
        return v
    return _field(default, help, check)


def names(default: list, help: str, *, at_least_one: str = ""):
    """A list of strings; `at_least_one`, when given, is the fix shown for an empty list."""
    def check(v, name):
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ConfigError(f"{name}: must be a list of strings, got {v!r}")
        if at_least_one and not v:
            raise ConfigError(f"{name}: must name at least one ({at_least_one})")
        return list(v)
    return _field(default, help, check)


def mapping(default: dict, help: str):
    def check(v, name):
        if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
            raise ConfigError(f"{name}: must be a mapping of names to values, got {v!r}")
        return dict(v)
    return _field(default, help, check)


def section(factory, help: str):
    """A nested Section; `factory` gives its defaults (a class, or a function returning an instance)."""
    return dataclasses.field(default_factory=factory, metadata={"help": help, "section": True})


class Section:
    """Base of every config section (a dataclass built with the field functions above)."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            check = f.metadata.get("check")
            if check is not None:
                setattr(self, f.name, check(getattr(self, f.name), f.name))
        self.check()

    def check(self) -> None:
        """Rules across fields of this section; raise ConfigError naming the field and the fix."""

    @classmethod
    def from_dict(cls, raw, where: str = ""):
        """Build from plain data (YAML): unknown keys refused with a suggestion, unset keys keep their
        defaults (a nested section's defaults included), every error prefixed with `where`."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{where or 'config'}: must be a mapping of settings, got {type(raw).__name__}")
        try:
            return cls._from_dict(raw)
        except ConfigError as e:
            raise e.within(where) from None

    @classmethod
    def _from_dict(cls, raw: dict):
        known = {f.name: f for f in dataclasses.fields(cls)}
        for key in raw:
            if key not in known:
                close = difflib.get_close_matches(str(key), list(known), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
                raise ConfigError(f"{key}: unknown key ({hint})")
        values = {}
        for name, value in raw.items():
            f = known[name]
            if f.metadata.get("section"):
                default = f.default_factory()  # e.g. data.train's own defaults, not SplitSample()'s
                value = {} if value is None else value
                if isinstance(value, dict):
                    value = {**dataclasses.asdict(default), **value}
                value = type(default).from_dict(value, name)
            values[name] = value
        return cls(**values)
