"""The one kind of error that means "your input is wrong": the CLI prints it as one line and exits 2.

Bad configs (ConfigError), unreadable manifests (ManifestError) and impossible stage orders (StageError)
are all BadInput, so every command answers bad input the same way, and a new kind (a held lock, a damaged
table) only has to subclass it.
"""
from __future__ import annotations

import errno
from pathlib import Path


def shown(value, limit: int = 120) -> str:
    """`value` as text safe to echo in a one-line message: control characters (terminal escapes, newlines) shown
    escaped, cut to `limit` characters. A received file's or a command line's text must not drive the terminal."""
    text = str(value)
    out = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return out if len(out) <= limit else out[:limit] + "..."


class BadInput(ValueError):
    """str(err) is the one line shown to the user: what is wrong, where, and the fix."""


class ConfigError(BadInput):
    """A bad config (or a source it names). str(err) names the field: "data.test.stride: must be >= 1"."""

    def within(self, section: str) -> ConfigError:
        """The same error seen from the enclosing section: "test.stride: ..." -> "data.test.stride: ..."."""
        return ConfigError(f"{section}.{self}") if section else self


class from_hub:
    """Turn a failed download (no network, unknown id, gated repo) into one ConfigError line naming the
    field, instead of a 40-line traceback from deep inside huggingface_hub."""

    def __init__(self, field: str, name: str):
        self.field, self.name = field, name

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None or not issubclass(exc_type, (OSError, ConnectionError, ValueError)) \
                or issubclass(exc_type, BadInput):
            return False
        first = (str(exc).strip().splitlines() or [exc_type.__name__])[0][:200]
        raise ConfigError(f"{self.field}: could not load {self.name!r} from the Hugging Face hub or its cache "
                          f"({exc_type.__name__}: {first}) (fix: connect to the hub once, or point the config "
                          f"at local files: source: local / gguf)") from None


class OutputError(BadInput):
    """The results or checkpoint folder cannot take a write: the disk is full, or it is read-only."""


_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def output_error(e: OSError, path: Path | str) -> OutputError | None:
    """The one line for a write that the filesystem refused (None: some other OSError, left as it is).
    Writes are atomic (a temporary file renamed over the old one), so whatever was there is kept."""
    if e.errno in _FULL:
        return OutputError(f"no space left on device: {path} (the previous results are kept; fix: free space "
                           f"there, or set output.results_dir / output.checkpoint_dir to a disk with room)")
    if e.errno in _READ_ONLY:
        return OutputError(f"cannot write {path}: {e.strerror or 'read-only'} (the previous results are kept; "
                           f"fix: make that folder writable, or set output.results_dir / output.checkpoint_dir "
                           f"elsewhere)")
    return None


class LinkRefused(BadInput):
    """A symbolic link where the pipeline writes (a run's folder, its lock, a table, a checkpoint, an export): a
    received folder could aim it at any file (git commits links), and writing through it would overwrite that."""


def refuse_link(path: Path | str) -> None:
    """LinkRefused naming `path` when it is a symbolic link (checked with lstat: the link itself, never its
    target); nothing when it is anything else or absent."""
    import os
    if os.path.islink(path):
        raise LinkRefused(f"{shown(path)} is a symbolic link (to {shown(os.readlink(path))}), refused: the pipeline "
                          f"never writes through a link (fix: remove the link; a real folder or file goes there)")


class StageError(BadInput):
    """A stage cannot run: a stage it needs has not run, or left no usable output."""
