"""The results store: the only code that writes into results/<run>/.

Every file is written to a temporary name in the same folder, flushed, fsynced and renamed over the
old one, so a crash (or SIGKILL) leaves either the old table or the new one, never half of either.
Tables are checked against `records.schema` on the way in; tables shared by stages (predictions,
resources) are partitioned by an owner column (records.graph.OWNER_KEY) so each stage replaces only
its own rows. The manifest is read and written as a `records.manifest.Manifest`, through here only.

Every table write is followed by the manifest's record of it (`tables`: sha256, rows, bytes; `row_sets` for
shared tables), so `records.integrity.check` can tell a table as written from a damaged one. The order is
file first, record second: a kill between the two leaves a file its record does not vouch for, which only
matters for a stage that is not done yet (its done mark comes last), and that stage runs again anyway.
A write the filesystem refuses (disk full, read-only) is one line naming the file (errors.OutputError);
files are created with the user's umask, like any other program's.
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
import pyarrow.compute as pc
import pyarrow.parquet as pq

from records import faults, parts
from records.errors import StageError, output_error, refuse_link
from records.graph import OWNER_KEY, owner_of, writers
from records.integrity import parse, record_of, row_digests
from records.manifest import Manifest, StageRecord, finite, seal_of
from records.schema import TABLES

TMP_SUFFIX = ".tmp"

MANIFEST_FIELDS = {f.name for f in dataclasses.fields(Manifest)} - {"stages", "extra", "schema_version"}
# Kept by the store itself with every write; never set from outside (records.integrity reads them).
RECORDS = ("tables", "row_sets", "seal")  # written by the store itself


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a crash at any moment leaves the old file or the new one, whole."""
    path = Path(path)
    refuse_link(path.parent)  # the folder and the file itself: a planted link would aim the write elsewhere
    refuse_link(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as e:
        raise output_error(e, path) or e from None
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes 0600 files; results are shared like any other file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and output_error(e, path):
            raise output_error(e, path) from None
        raise
    faults.point(path)  # a kill here leaves the temporary file behind, as a real one would
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _sync_dir(path.parent)


def _sync_dir(folder: Path) -> None:
    """Make the rename durable before anything that depends on it (the manifest's record) is written."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def umask() -> int:
    """This process's umask, read without changing it (os.umask can only set it, racing other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_json(path: Path, obj: Any) -> None:
    """JSON without NaN or Infinity (not JSON; a missing measurement is null)."""
    text = json.dumps(finite(obj), indent=2, sort_keys=False, default=str, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


def stray_files(folder: Path) -> list[Path]:
    """Temporary files a killed write left in `folder` (never a file a reader would open)."""
    return sorted(p for p in Path(folder).glob(f".*{TMP_SUFFIX}") if p.is_file())


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
    folder and run the same stage code, but rank 0 alone writes (pipeline/engine/distributed.py)."""

    def __init__(self, folder: Path, writer: bool = True):
        self.folder = Path(folder)
        self.writer = writer

    # --- tables ---
    def table_path(self, name: str) -> Path:
        return self.folder / f"{name}.parquet"

    def has(self, name: str) -> bool:
        return self.table_path(name).is_file()

    def read(self, name: str) -> pd.DataFrame:
        """The table as written; empty when absent. A damaged file is one line naming it (StageError)."""
        if not self.has(name):
            return TABLES[name].empty_table().to_pandas()
        table, problem = parse(name, self.table_path(name).read_bytes())
        if problem is not None:
            stages = ", ".join(writers(name)) or "`pipeline tune`"
            raise StageError(f"{self.table_path(name)} is damaged: {problem} (fix: run again; {stages} "
                             f"rewrite{'s' if ',' not in stages else ''} it)")
        return table.to_pandas()

    def write(self, name: str, df: pd.DataFrame) -> None:
        table = to_table(name, df)  # checked on every rank: a schema bug shows wherever it happens
        if not self.writer:
            return
        self._write(name, table)

    def _write(self, name: str, table: pa.Table, row_sets: dict | None = None) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        data = sink.getvalue().to_pybytes()
        atomic_write_bytes(self.table_path(name), data)
        # Then its record: after the file, so the record never vouches for a file that is not there.
        m = self.manifest()
        m.tables = {**(m.tables or {}), name: record_of(data, table.num_rows)}
        if name in OWNER_KEY:
            m.row_sets = {**(m.row_sets or {}), name: row_sets if row_sets is not None
                          else row_digests(table, OWNER_KEY[name])}
        self.write_manifest(m)

    def replace_rows(self, name: str, df: pd.DataFrame, owners: list[str] | set[str]) -> None:
        """Replace one stage's rows of a shared table (those whose owner column, model or stage, is in
        `owners` or belongs to the same stage), keep every other stage's rows that are as recorded.

        Rows the manifest does not vouch for are dropped rather than carried into a file that it then
        would: a damaged owner's rows (its stage shows as damaged and runs again) and rows no stage owns."""
        new = to_table(name, df)
        if not self.writer:
            return
        key = OWNER_KEY[name]
        replaced = {owner_of(name, o) or o for o in owners}
        old = self._readable(name)
        recorded = (self.manifest().row_sets or {}).get(name)
        sets = row_digests(new, key)
        keep = []
        if old is not None:
            have = row_digests(old, key)
            for owner, digest in have.items():
                stage = owner_of(name, owner)
                if owner in owners or stage is None or stage in replaced:
                    continue
                if recorded is not None and recorded.get(owner, {}).get("sha256") != digest["sha256"]:
                    if owner in recorded:  # its record stays: the rows it describes are missing now
                        sets[owner] = recorded[owner]
                    continue
                keep.append(owner)
                sets[owner] = digest
        parts = ([old.filter(pc.is_in(old.column(key), pa.array(keep)))] if keep else []) + [new]
        self._write(name, pa.concat_tables(parts), {o: sets[o] for o in sorted(sets)})

    def _readable(self, name: str) -> pa.Table | None:
        """The table on disk, or None when it is absent or damaged (its rows cannot be kept)."""
        try:
            return parse(name, self.table_path(name).read_bytes())[0]
        except FileNotFoundError:
            return None

    # --- part files: a stage's rows of a shared table, appended as they are taken, sealed at the stage's end ---
    def part_path(self, name: str, owner: str) -> Path:
        return self.folder / f"{name}.{owner}.part"

    def open_part(self, name: str, owner: str) -> parts.PartFile | None:
        """An appender to `owner`'s part file of table `name` (None in a process that does not write)."""
        if not self.writer:
            return None
        return parts.PartFile(self.part_path(name, owner), TABLES[name].names, 0o666 & ~umask())

    def read_part(self, name: str, owner: str) -> pd.DataFrame:
        """The rows of a part file a killed attempt left (empty when none; records/parts.py)."""
        return parts.read(self.part_path(name, owner), name, owner)

    def seal_rows(self, name: str, df: pd.DataFrame, owner: str) -> None:
        """`owner`'s rows of `name` into the table (replace_rows), then its part file goes: its rows are in `df`."""
        self.replace_rows(name, df, [owner])
        if self.writer:
            refuse_link(self.part_path(name, owner))
            self.part_path(name, owner).unlink(missing_ok=True)

    # --- manifest: read and written as one typed object (records/manifest.py) ---
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
        d = manifest.to_dict()
        d["seal"] = seal_of(d)  # last: it covers every other key
        atomic_write_json(self.manifest_path, d)

    def update_manifest(self, **fields) -> Manifest:
        """Set top-level manifest fields by name (a name the manifest does not declare is a bug)."""
        m = self.manifest()
        _set_fields(m, fields)
        self.write_manifest(m)
        return m

    def stage(self, name: str) -> StageRecord | None:
        return self.manifest().stage(name)

    # --- a stage's record: running -> done | failed ---
    def begin_stage(self, name: str, fingerprint: str, **fields) -> None:
        """A fresh `running` record: an earlier attempt's facts (errors, epoch counts) must not linger.
        `fields`: top-level manifest fields written in the same write (the run's header, with its first stage)."""
        m = self.manifest()
        _set_fields(m, fields)
        m.stages[name] = StageRecord(status="running", start=utc_now(), fingerprint=fingerprint,
                                     pid=os.getpid(), host=socket.gethostname())
        self.write_manifest(m)

    def update_stage(self, name: str, fields: dict | None = None, **facts) -> StageRecord:
        """Add facts to a stage's record while it runs (e.g. epochs_done after every epoch). `fields`: top-level
        manifest fields written in the same write."""
        m = self.manifest()
        _set_fields(m, fields or {})
        rec = m.stages.setdefault(name, StageRecord())
        rec.update(**facts)
        self.write_manifest(m)
        return rec

    def finish_stage(self, name: str, seconds: float, fields: dict | None = None, **facts) -> None:
        """Mark the stage done, with its last facts (and `fields`, top-level manifest fields that belong to its
        being done, in the same write). Callers make this the stage's last write."""
        self.update_stage(name, fields, **facts, status="done", end=utc_now(), seconds=seconds, error=None)

    def fail_stage(self, name: str, seconds: float, error: BaseException) -> None:
        reason = ("interrupted" if isinstance(error, KeyboardInterrupt)
                  else str(error).splitlines()[0][:500] if str(error) else type(error).__name__)
        self.update_stage(name, status="failed", end=utc_now(), seconds=seconds, error=reason)


def _set_fields(m: Manifest, fields: dict) -> None:
    for key, value in fields.items():
        if key not in MANIFEST_FIELDS or key in RECORDS:  # a name the manifest does not declare is a bug
            raise TypeError(f"manifest has no field {key!r}" if key not in MANIFEST_FIELDS
                            else f"manifest field {key!r} is written by the store itself")
        setattr(m, key, value)
