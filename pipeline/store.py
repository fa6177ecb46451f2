"""The results store: the only code that writes into results/<run>/.

Every file is written to a temporary name in the same folder, flushed, fsynced and renamed over the
old one, so a crash (or SIGKILL) leaves either the old table or the new one, never half of either.
Tables are checked against `pipeline.schema` on the way in; tables shared by stages (predictions,
resources) are partitioned by an owner column (pipeline.stages.OWNER_KEY) so each stage replaces only
its own rows. The manifest is read and written as a `pipeline.manifest.Manifest`, through here only.
"""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.manifest import Manifest, StageRecord
from pipeline.schema import TABLES, with_later_columns
from pipeline.stages import OWNER_KEY

MANIFEST_FIELDS = {f.name for f in dataclasses.fields(Manifest)} - {"stages", "extra", "schema_version"}


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode())


def to_table(name: str, df: pd.DataFrame) -> pa.Table:
    """DataFrame -> arrow table with exactly the declared columns and types (extra or missing = bug)."""
    schema = TABLES[name]
    missing = [c for c in schema.names if c not in df.columns]
    extra = [c for c in df.columns if c not in schema.names]
    if missing or extra:
        raise ValueError(f"table {name}: missing columns {missing}, unexpected columns {extra}")
    return pa.Table.from_pandas(df[schema.names], schema=schema, preserve_index=False)


class RunStore:
    """results/<run>/: manifest.json plus one parquet file per table.

    `writer=False` makes every write a no-op: the other ranks of a multi-process run read the same
    folder and run the same stage code, but rank 0 alone writes (pipeline/distributed.py)."""

    def __init__(self, folder: Path, writer: bool = True):
        self.folder = Path(folder)
        self.writer = writer

    # --- tables ---
    def table_path(self, name: str) -> Path:
        return self.folder / f"{name}.parquet"

    def has(self, name: str) -> bool:
        return self.table_path(name).is_file()

    def read(self, name: str) -> pd.DataFrame:
        if not self.has(name):
            return TABLES[name].empty_table().to_pandas()
        return with_later_columns(name, pq.read_table(self.table_path(name))).to_pandas()

    def write(self, name: str, df: pd.DataFrame) -> None:
        table = to_table(name, df)  # checked on every rank: a schema bug shows wherever it happens
        if not self.writer:
            return
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        atomic_write_bytes(self.table_path(name), sink.getvalue().to_pybytes())

    def replace_rows(self, name: str, df: pd.DataFrame, owners: list[str] | set[str]) -> None:
        """Replace the rows whose owner column (model / stage) is in `owners`, keep everyone else's."""
        if not self.writer:
            return
        key = OWNER_KEY[name]
        old = self.read(name)
        keep = old[~old[key].isin(set(owners))]
        parts = [p for p in (keep, df) if len(p)]
        merged = pd.concat(parts, ignore_index=True) if parts else df
        self.write(name, merged)

    # --- manifest: read and written as one typed object (pipeline/manifest.py) ---
    @property
    def manifest_path(self) -> Path:
        return self.folder / "manifest.json"

    def manifest(self) -> Manifest:
        """The run's manifest; empty when nothing has run. ManifestError (one line) when it is damaged."""
        return Manifest.read(self.manifest_path)

    def write_manifest(self, manifest: Manifest | dict) -> None:
        """Write the whole manifest. Plain data goes through Manifest first: one schema for every writer."""
        if not isinstance(manifest, Manifest):
            manifest = Manifest.from_dict(manifest, str(self.manifest_path))
        if not self.writer:
            return
        atomic_write_json(self.manifest_path, manifest.to_dict())

    def update_manifest(self, **fields) -> Manifest:
        """Set top-level manifest fields by name (a name the manifest does not declare is a bug)."""
        m = self.manifest()
        for key, value in fields.items():
            if key not in MANIFEST_FIELDS:
                raise TypeError(f"manifest has no field {key!r}")
            setattr(m, key, value)
        self.write_manifest(m)
        return m

    def stage(self, name: str) -> StageRecord | None:
        return self.manifest().stage(name)

    # --- a stage's record: running -> done | failed ---
    def begin_stage(self, name: str, fingerprint: str) -> None:
        """A fresh `running` record: an earlier attempt's facts (errors, epoch counts) must not linger."""
        m = self.manifest()
        m.stages[name] = StageRecord(status="running", start=utc_now(), fingerprint=fingerprint,
                                     pid=os.getpid(), host=socket.gethostname())
        self.write_manifest(m)

    def update_stage(self, name: str, **facts) -> StageRecord:
        """Add facts to a stage's record while it runs (e.g. epochs_done after every epoch)."""
        m = self.manifest()
        rec = m.stages.setdefault(name, StageRecord())
        rec.update(**facts)
        self.write_manifest(m)
        return rec

    def finish_stage(self, name: str, seconds: float, **facts) -> None:
        """Mark the stage done, with its last facts. Callers make this the stage's last write."""
        self.update_stage(name, **facts, status="done", end=utc_now(), seconds=seconds, error=None)

    def fail_stage(self, name: str, seconds: float, error: BaseException) -> None:
        reason = ("interrupted" if isinstance(error, KeyboardInterrupt)
                  else str(error).splitlines()[0][:500] if str(error) else type(error).__name__)
        self.update_stage(name, status="failed", end=utc_now(), seconds=seconds, error=reason)
