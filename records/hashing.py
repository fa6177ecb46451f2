"""Every hash the project takes, in one place: of bytes, of a file, and of plain data (fingerprints, seals).

sha256 throughout. A fingerprint is the first 16 hex digits of the hash of canonical JSON (sorted keys, no
spaces), so the same settings give the same fingerprint whatever the order they were written in.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """A file's sha256, read in 1 MiB blocks (model files are gigabytes)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def canonical_json(obj: Any) -> bytes:
    """The one serialisation that hashes are taken over: key order and spacing never change a hash."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


def fingerprint(obj: Any) -> str:
    """sha256 (16 hex) of plain data, independent of key order."""
    return bytes_sha256(canonical_json(obj))[:16]
