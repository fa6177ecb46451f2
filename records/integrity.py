"""Are a run's outputs what the pipeline wrote? Checks of results/<run>/ against its manifest's records.

The store records every table it writes in the manifest (`tables`: the file's sha256, rows and bytes), and
for the tables shared by stages (predictions, resources) each owner's rows (`row_sets`: rows and a sha256 of
their values), always after the file itself. So:
- a table whose bytes match its record is exactly as written;
- one that differs, or is gone, was damaged afterwards (a truncated copy, a disk error, a hand edit), unless
  a stage that writes it is not done: then a kill between the file and its record explains it, and that
  stage runs again anyway;
- in a shared table the row sets say which stage's rows changed, so only that stage runs again.
Tables of runs made before records existed are still parsed: garbage, zero bytes and a dropped column are
caught, and each done stage must have its rows.

`check()` answers "which done stages lost outputs, and what exactly is wrong". Torch-free.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from records.graph import NAMES, OWNER_KEY, owner_of, writers
from records.hashing import bytes_sha256, file_sha256
from records.manifest import Manifest
from records.schema import DIGEST_OMITS, TABLES, with_later_columns


def record_of(data: bytes, rows: int | None = None) -> dict:
    """The manifest's record of one table file ({"sha256", "rows", "bytes"}); rows from the parquet footer when
    not given."""
    if rows is None:
        rows = pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
    return {"sha256": bytes_sha256(data), "rows": rows, "bytes": len(data)}


def differs(data: bytes, rec: dict) -> str | None:
    """How a table file's bytes differ from the manifest's record of them (None: they match). The one comparison
    the runner, `pipeline verify` and the report make."""
    if len(data) != rec.get("bytes"):
        return (f"damaged: {len(data):,} bytes where the manifest records {rec.get('bytes'):,} (truncated or changed "
                f"after it was written)")
    if bytes_sha256(data) != rec.get("sha256"):
        return "damaged: its sha256 differs from the manifest's record (changed after it was written)"
    return None


def row_digests(table: pa.Table, key: str) -> dict[str, dict]:
    """Owner -> {rows, sha256 of its rows' values}. JSON of Python values (floats by their shortest repr),
    so the digest depends on the values only, not on pyarrow's or pandas' version."""
    groups: dict[str, list] = {}
    for row in table.to_pylist():
        values = [v for c, v in row.items() if c not in DIGEST_OMITS or v != DIGEST_OMITS[c]]
        groups.setdefault(str(row[key]), []).append(values)
    return {o: {"rows": len(rows), "sha256": bytes_sha256(
        json.dumps(rows, separators=(",", ":"), default=str).encode())} for o, rows in groups.items()}


def parse(name: str, data: bytes) -> tuple[pa.Table | None, str | None]:
    """(table, None) when `data` is a parquet file of table `name`'s schema, else (None, what is wrong).

    A column the schema gained after the file was written (records.schema: Column.older_tables) is filled in
    with what it means there, not refused: a file written before it existed, recorded in its manifest or not."""
    if not data:
        return None, "empty file (0 bytes)"
    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as e:  # pyarrow raises several types for a damaged file
        return None, f"not a readable parquet file ({(str(e).splitlines() or [type(e).__name__])[0][:120]})"
    schema = TABLES[name]
    table = with_later_columns(name, table)
    missing = [c for c in schema.names if c not in table.column_names]
    if missing:
        return None, f"column {missing[0]!r} is missing"
    table = table.select(schema.names)  # extra columns (a pandas index) are not the table's; its rows decide
    for f in schema:
        have = table.schema.field(f.name).type
        if not have.equals(f.type):
            try:  # the same values in a wider or equivalent type (large_string from pandas) are still the table
                table = table.set_column(schema.get_field_index(f.name), f, table.column(f.name).cast(f.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return None, f"column {f.name!r} is {have}, expected {f.type}"
    return table, None


@dataclass
class Findings:
    """What is wrong with a run's outputs: `stages` maps each done stage that must run again to its
    problems; `other` lists problems no stage can fix (the tuning table, written by `pipeline tune`)."""
    stages: dict[str, list[str]] = field(default_factory=dict)
    other: list[str] = field(default_factory=list)

    def blame(self, stages, problem: str) -> None:
        for s in stages:
            if problem not in self.stages.setdefault(s, []):
                self.stages[s].append(problem)

    def __bool__(self) -> bool:
        return bool(self.stages or self.other)


def check(folder: Path, manifest: Manifest) -> Findings:
    found = Findings()
    done = {s for s in NAMES if (r := manifest.stage(s)) is not None and r.status == "done"}
    for name in TABLES:
        done_writers = [s for s in writers(name) if s in done]
        if not done_writers and name != "tuning":
            continue  # no done stage vouches for this table: whatever is there gets rewritten
        if name == "tuning" and manifest.tuning is None:
            continue
        _check_table(Path(folder), manifest, name, done_writers, found)
    return found


def _check_table(folder: Path, manifest: Manifest, name: str, done_writers: list[str], found: Findings) -> None:
    path = folder / f"{name}.parquet"
    rec = (manifest.tables or {}).get(name)
    sets = (manifest.row_sets or {}).get(name)
    file = path.name

    def blame(stages, what: str):
        if name == "tuning":
            found.other.append(f"{file} {what} (fix: run `python -m pipeline tune` again, which rewrites it)")
        else:
            found.blame(stages, f"{file} {what}")

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        blame(_owners_stages(name, sets, done_writers), "is missing")
        return
    except OSError as e:
        blame(done_writers, f"cannot be read ({e.strerror})")
        return
    table, problem = parse(name, data)
    if rec is not None and differs(data, rec) is None:
        if name in OWNER_KEY and sets:  # as written; but rows the store could not keep (damaged) are missing
            _check_rows(name, table, sets, done_writers, blame)
        return
    if problem is not None:
        if rec is not None and problem.startswith("not a readable") and len(data) != rec.get("bytes"):
            problem = f"not a readable parquet file ({len(data):,} bytes, {rec['bytes']:,} when written)"
        blame(_owners_stages(name, sets, done_writers), f"is damaged: {problem}")
        return
    if rec is None:
        if name in OWNER_KEY:
            _check_rows(name, table, sets, done_writers, blame)
        return  # an older run's table that parses: nothing to compare it with
    if name not in OWNER_KEY:
        blame(done_writers, "is damaged: its checksum differs from the manifest's record")
        return
    if _check_rows(name, table, sets, done_writers, blame):
        return
    # The done stages' rows are all there as recorded, yet the file differs. A stage that began but is not done
    # may have written it and been killed before its record (it runs again anyway); rows that no stage owns,
    # or a difference with no such stage, are damage: rewriting the table once (its last done writer) mends it.
    key = OWNER_KEY[name]
    pending = [s for s in writers(name) if s not in done_writers and manifest.stage(s) is not None]
    strangers = sorted(o for o in row_digests(table, key) if owner_of(name, o) is None)
    if strangers:
        blame(done_writers[-1:], f"is damaged: it holds rows of {key} {strangers[0]!r}, which no stage writes")
    elif not pending:
        blame(done_writers[-1:], "is damaged: its checksum differs from the manifest's record")


def _check_rows(name: str, table: pa.Table, sets: dict | None, done_writers: list[str], blame) -> bool:
    """Blame each done stage whose rows of shared table `name` are missing or differ from their record.
    True when some stage was blamed."""
    key = OWNER_KEY[name]
    have = row_digests(table, key)
    blamed = False
    for s in done_writers:
        mine = {o: r for o, r in (sets or {}).items() if owner_of(name, o) == s}
        if not mine:  # nothing recorded for this stage (an older run): its rows must at least be there
            if not any(owner_of(name, o) == s for o in have):
                blame([s], f"has no rows of stage {s}")
                blamed = True
            continue
        for owner, r in mine.items():
            if owner not in have:
                blame([s], f"is missing the rows of {key} {owner!r}")
                blamed = True
            elif have[owner]["sha256"] != r.get("sha256"):
                blame([s], f"is damaged: the rows of {key} {owner!r} differ from the manifest's record")
                blamed = True
    return blamed


def _owners_stages(name: str, sets: dict | None, done_writers: list[str]) -> list[str]:
    """The done stages that lose rows when a shared table is lost whole: those with recorded rows in it (all
    its done writers when nothing is recorded)."""
    if name not in OWNER_KEY or not sets:
        return done_writers
    owning = {owner_of(name, o) for o in sets}
    return [s for s in done_writers if s in owning] or done_writers


# ------------------------------------------------------------------------------------------- checkpoints
def read_meta(folder: Path) -> dict:
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return meta if isinstance(meta, dict) else {}


def checkpoint_files(folder: Path) -> dict[str, dict]:
    """Every file of a checkpoint folder but meta.json: name -> {sha256, bytes}."""
    return {p.name: {"sha256": file_sha256(p), "bytes": p.stat().st_size}
            for p in sorted(folder.iterdir()) if p.is_file() and p.name != "meta.json"}


def verify_checkpoint(folder: Path) -> str | None:
    """None when the folder holds exactly the files its meta.json lists, as listed; else what is wrong,
    naming the file."""
    meta = read_meta(folder)
    if not meta:
        return f"{folder / 'meta.json'} is missing or unreadable"
    listed = meta.get("files")
    if listed is None:
        return None  # written before checkpoints listed their files: nothing to compare with (like older tables)
    if not isinstance(listed, dict) or not listed:
        return f"{folder / 'meta.json'} lists no files"
    present = {p.name for p in folder.iterdir() if p.name != "meta.json"}
    for name in sorted(present - set(listed)):
        return f"{folder / name} is not one of the files written there"
    for name, rec in listed.items():
        path = folder / str(name)
        if "/" in str(name) or not path.is_file():
            return f"{path} is missing"
        size = path.stat().st_size
        if not isinstance(rec, dict) or size != rec.get("bytes"):
            written = rec.get("bytes") if isinstance(rec, dict) else "?"
            return f"{path} has {size:,} bytes, {written} when written"
        if file_sha256(path) != rec.get("sha256"):
            return f"{path} differs from its checksum in meta.json"
    return None


def foreign_checkpoints(ckpt: Path, fingerprint: str, epochs: int) -> list[str]:
    """One line per checkpoint folder of a run (epoch_1..epoch_<epochs>, final) that is there but was written by
    another training setup (meta.json's fingerprint is not `fingerprint`): another config's run of the same name
    trained into the folder since. Such a checkpoint is never resumed from or scored; its train stage runs again."""
    out = []
    for name in [*(f"epoch_{k}" for k in range(1, epochs + 1)), "final"]:
        d = Path(ckpt) / name
        if d.is_dir() and not d.is_symlink():
            written = read_meta(d).get("fingerprint")
            if written is not None and written != fingerprint:  # no meta.json: damaged, said as such elsewhere
                out.append(f"checkpoint {name} was written by another config (train fingerprint {written}, this "
                           f"run's is {fingerprint})")
    return out


def checkpoint_records(ckpt: Path, fingerprint: str) -> dict[str, dict]:
    """Folder name -> its meta.json's file list, for the checkpoint folders of this training setup: epoch_<k> and
    final (mid_epoch/, a passing state that is only ever resumed from, is not one of the run's checkpoints)."""
    out = {}
    for d in sorted(Path(ckpt).iterdir()) if Path(ckpt).is_dir() else ():
        kept = d.name == "final" or (d.name.startswith("epoch_") and d.name[6:].isdigit())
        meta = read_meta(d) if kept and d.is_dir() else {}
        if meta.get("fingerprint") == fingerprint and isinstance(meta.get("files"), dict):
            out[d.name] = meta["files"]
    return out


def links(folder: Path) -> list[Path]:
    """Every symbolic link at or under `folder` (the folder itself included), never followed: a run folder or a
    checkpoint folder holds none, so one there was planted (pipeline verify reports it, a run refuses it)."""
    import os
    folder = Path(folder)
    if folder.is_symlink():
        return [folder]
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):  # os.walk does not descend into linked folders
        found += [Path(dirpath) / n for n in sorted(dirnames + filenames) if os.path.islink(os.path.join(dirpath, n))]
    return found


def stray_dirs(ckpt: Path) -> list[Path]:
    """Checkpoint folders a kill left half-written (`<name>.tmp`)."""
    return sorted(p for p in Path(ckpt).glob("*.tmp") if p.is_dir())
