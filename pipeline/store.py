"""The results store: the only code that writes into results/<run>/.

Every file is written to a temporary name in the same folder, flushed, fsynced and renamed over the
old one, so a crash (or SIGKILL) leaves either the old table or the new one, never half of either.
Tables are checked against `pipeline.schema` on the way in; tables shared by stages (predictions,
resources) are partitioned by an owner column so each stage replaces only its own rows.
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.schema import OWNER_KEY, SCHEMA_VERSION, TABLES


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
    """results/<run>/: manifest.json plus one parquet file per table."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    # --- tables ---
    def table_path(self, name: str) -> Path:
        return self.folder / f"{name}.parquet"

    def has(self, name: str) -> bool:
        return self.table_path(name).is_file()

    def read(self, name: str) -> pd.DataFrame:
        if not self.has(name):
            return TABLES[name].empty_table().to_pandas()
        return pq.read_table(self.table_path(name)).to_pandas()

    def write(self, name: str, df: pd.DataFrame) -> None:
        table = to_table(name, df)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        atomic_write_bytes(self.table_path(name), sink.getvalue().to_pybytes())

    def replace_rows(self, name: str, df: pd.DataFrame, owners: list[str] | set[str]) -> None:
        """Replace the rows whose owner column (model / stage) is in `owners`, keep everyone else's."""
        key = OWNER_KEY[name]
        old = self.read(name)
        keep = old[~old[key].isin(set(owners))]
        parts = [p for p in (keep, df) if len(p)]
        merged = pd.concat(parts, ignore_index=True) if parts else df
        self.write(name, merged)

    # --- manifest ---
    @property
    def manifest_path(self) -> Path:
        return self.folder / "manifest.json"

    def manifest(self) -> dict:
        if not self.manifest_path.is_file():
            return {}
        return json.loads(self.manifest_path.read_text())

    def write_manifest(self, manifest: dict) -> None:
        manifest = {"schema_version": SCHEMA_VERSION, **manifest}
        atomic_write_json(self.manifest_path, manifest)

    def update_manifest(self, **fields) -> dict:
        m = self.manifest()
        m.update(fields)
        self.write_manifest(m)
        return m

    def stage(self, name: str) -> dict:
        return self.manifest().get("stages", {}).get(name, {})

    def set_stage(self, name: str, **fields) -> dict:
        m = self.manifest()
        stages = m.setdefault("stages", {})
        stages[name] = {**stages.get(name, {}), **fields}
        self.write_manifest(m)
        return stages[name]

    def is_interrupted(self, name: str) -> bool:
        """A `running` record whose process is gone (killed, crashed, machine rebooted)."""
        st = self.stage(name)
        if st.get("status") != "running":
            return False
        if st.get("host") != socket.gethostname():
            return True
        try:
            os.kill(int(st.get("pid", -1)), 0)
        except (OSError, ValueError):
            return True
        return False

    def is_done(self, name: str, fingerprint: str) -> bool:
        st = self.stage(name)
        return st.get("status") == "done" and st.get("fingerprint") == fingerprint


class StageTimer:
    """Records start/end/seconds of a stage in the manifest; status running -> done | failed."""

    def __init__(self, store: RunStore, name: str, fingerprint: str):
        self.store, self.name, self.fingerprint = store, name, fingerprint

    def __enter__(self):
        self.t0 = time.perf_counter()
        # A fresh record: stale extra fields of an earlier attempt (errors, epoch counts) must not linger.
        m = self.store.manifest()
        m.setdefault("stages", {})[self.name] = {"status": "running", "start": utc_now(), "end": None,
                                                 "seconds": None, "fingerprint": self.fingerprint,
                                                 "pid": os.getpid(), "host": socket.gethostname()}
        self.store.write_manifest(m)
        return self

    def __exit__(self, exc_type, exc, tb):
        seconds = round(time.perf_counter() - self.t0, 3)
        if exc_type is None:
            self.store.set_stage(self.name, status="done", end=utc_now(), seconds=seconds, error=None)
        else:
            reason = "interrupted" if exc_type is KeyboardInterrupt else str(exc).splitlines()[0][:500] if str(exc) else exc_type.__name__
            self.store.set_stage(self.name, status="failed", end=utc_now(), seconds=seconds, error=reason)
        return False
