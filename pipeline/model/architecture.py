"""`model.architecture` and `model.shape` checked against transformers' own config class, before anything
loads.

transformers (5.x) config classes are strict dataclasses: constructing one checks the types of the fields
it declares. What that lets through, we refuse here: a key the class neither declares nor consumes (a typo
such as `hidden_sise` would be stored silently and change nothing), a value of the wrong kind for a key
the class sets without declaring it (Phi's `partial_rotary_factor`), NaN or inf, a size or count that is
not positive, a dropout outside [0, 1), a hidden size its attention heads cannot split.

transformers is imported here only, and lazily: `records.config` stays importable without it (the report
environment reads the fields' help text). Where transformers is not installed no model can load either,
so there is nothing to protect and the check is skipped.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re

from records.errors import ConfigError


def _positive_count(key: str) -> bool:
    return key.endswith("_size") or key.startswith("num_") or key == "max_position_embeddings"


def _dropout(key: str) -> bool:
    return key.endswith("dropout") or key.endswith("pdrop")


def _check_value(key: str, value) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"shape.{key}: must be a finite number, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if _positive_count(key) and isinstance(value, int) and value < 1:
        raise ConfigError(f"shape.{key}: must be >= 1, got {value!r}")
    if _dropout(key) and not 0 <= value < 1:
        raise ConfigError(f"shape.{key}: a dropout probability must be in [0, 1), got {value!r}")


def _same_kind(key: str, value, default) -> None:
    """For keys the class sets without declaring a type: the kind of its default value."""
    if default is None:
        return
    ok = (isinstance(value, bool) if isinstance(default, bool) else
          isinstance(value, (int, float)) and not isinstance(value, bool) if isinstance(default, float) else
          isinstance(value, int) and not isinstance(value, bool) if isinstance(default, int) else
          isinstance(value, type(default)))
    if not ok:
        raise ConfigError(f"shape.{key}: expected {type(default).__name__} like its default {default!r}, "
                         f"got {value!r}")


def check_shape(architecture: str, shape: dict) -> None:
    """Raise ConfigError (one line, naming `architecture` or `shape.<key>`) unless transformers would build
    exactly the asked-for config from `architecture` and `shape`."""
    try:
        from huggingface_hub.errors import StrictDataclassError
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    except ImportError:
        return
    if architecture not in CONFIG_MAPPING:
        close = difflib.get_close_matches(architecture, list(CONFIG_MAPPING.keys()), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else " (fix: a transformers model_type such as phi or llama)"
        raise ConfigError(f"architecture: {architecture!r} is not a transformers model type{hint}")
    cls = CONFIG_MAPPING[architecture]
    for key, value in shape.items():
        _check_value(key, value)
    try:
        built = cls(**shape)
    except StrictDataclassError as e:
        # "Validation error for field 'x':\n    TypeError: Field 'x' expected int, got str (value: 'a')"
        field = re.search(r"field '([^']+)'", str(e))
        last = str(e).strip().splitlines()[-1].strip()
        last = re.sub(r"^\w+: (Field '[^']+' )?", "", last)
        raise ConfigError(f"shape.{field.group(1) if field else '?'}: {last}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"shape: {cls.__name__} refused it ({str(e).strip().splitlines()[0][:200]})") from None
    default = cls()
    declared = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    settings = sorted((declared | set(vars(default))) - {k for k in vars(default) if k.startswith("_")})
    for key, value in shape.items():
        if key in vars(built) and key not in vars(default) and key not in declared:
            close = difflib.get_close_matches(key, settings, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"see {cls.__name__}'s documentation"
            raise ConfigError(f"shape.{key}: not a setting of {cls.__name__} ({hint})")
        if key not in declared and key in vars(default):
            _same_kind(key, value, vars(default)[key])
    hidden, heads = getattr(built, "hidden_size", None), getattr(built, "num_attention_heads", None)
    if (isinstance(hidden, int) and isinstance(heads, int) and getattr(built, "head_dim", None) is None
            and hidden % heads):
        raise ConfigError(f"shape.hidden_size: {hidden} does not split into {heads} attention heads "
                         f"(fix: a multiple of num_attention_heads)")
