"""Each table file checked against the manifest's record of it before the report reads a number from it.

The store records every table it writes in manifest.json's `tables` (records/manifest.py): the sha256 of
the file's bytes, its rows and its size. A file that differs was damaged after the pipeline wrote it (a
truncated copy, a disk error, a hand edit, a file swapped in from another run), and so is a file the record
names that is gone: the report refuses either, with one line naming the file and the command that rewrites
it. The file is read once; the bytes that were checked are the bytes that are parsed.

A run whose manifest has no `tables` (written before checksums were recorded) is read unchecked, and the
report says "checksums not recorded" where it lists provenance. A damaged file, recorded or not, is still
caught when it is parsed (garbage, zero bytes, a dropped column) and by the checks of its content
(analysis/validate.py).

Decision: a damaged table stops the whole render (exit 2, nothing written), rather than leaving that run
out with a notice. A report that quietly drops a run compares fewer runs than it was asked to, and may
change its headline run; the fix is one command, and the message names it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from analysis.errors import ReportError
from analysis.fmt import and_list
from analysis.markdown import one_line
from records.graph import owner_of, writers
from records.integrity import differs
from records.manifest import Manifest
from records.schema import TABLES


def rewrite_fix(manifest: Manifest, table: str, owner: str | None = None) -> str:
    """"(fix: ...)": the command that rewrites `table` (its rows of `owner`, a model or stage name, when given)."""
    config = one_line(manifest.config_path or "CONFIG", 200)
    if not writers(table):  # the tuning table: written by `pipeline tune`, not by a stage
        tuning = manifest.tuning if isinstance(manifest.tuning, dict) else {}
        return f"(fix: re-run `python -m pipeline tune {config} {one_line(tuning.get('grid') or 'GRID', 200)}`, which writes it)"
    stages = [owner_of(table, owner)] if owner is not None and owner_of(table, owner) else list(writers(table))
    which = f"{stages[0]}, the stage" if len(stages) == 1 else f"{and_list(stages)}, the stages"
    return f"(fix: `python -m pipeline run {config}` re-runs {which} that write{'s' if len(stages) == 1 else ''} it)"


@dataclass
class Checksums:
    """What the run's manifest lets the report check: `recorded` is False for a manifest without `tables`."""
    recorded: bool = False
    records: dict = field(default_factory=dict)   # table name -> {"sha256", "rows", "bytes"} (known tables only)
    verified: list = field(default_factory=list)  # the tables whose files matched their record, in TABLES order

    @property
    def state(self) -> str:
        """"verified" | "not recorded" (the wording where the report lists provenance)."""
        return "verified" if self.recorded else "not recorded"


def records(manifest: Manifest, where: Path) -> Checksums:
    """The manifest's `tables` (their shape was checked when the manifest was read, records/manifest.py). Names
    that are not tables of records/schema.py are ignored: the report never builds a path from a name found in
    content."""
    if manifest.tables is None:
        return Checksums()
    return Checksums(recorded=True, records={name: rec for name, rec in manifest.tables.items() if name in TABLES})


def read_checked(path: Path, name: str, checks: Checksums, manifest: Manifest) -> bytes | None:
    """The bytes of table `name`'s file, after checking them against the manifest's record; None when the file
    is absent and nothing says it should exist."""
    rec = checks.records.get(name)
    fix = rewrite_fix(manifest, name)
    if not path.is_file():
        if rec is not None:
            raise ReportError(f"{path}: missing, but the manifest records it ({rec['rows']:,} rows) {fix}")
        return None
    data = path.read_bytes()
    if not data:
        raise ReportError(f"{path}: empty file (0 bytes){' where the manifest records ' + format(rec['bytes'], ',') if rec else ''} {fix}")
    if checks.recorded and rec is None:
        raise ReportError(f"{path}: not recorded in the manifest's tables, so it was not written by this run's "
                          f"pipeline (or it was killed before recording it) {fix}")
    if rec is None:
        return data
    problem = differs(data, rec)
    if problem is not None:
        raise ReportError(f"{path}: {problem} {fix}")
    return data


def check_rows(path: Path, name: str, rows: int, checks: Checksums, manifest: Manifest) -> None:
    """The parsed table has the rows the manifest records (a record that disagrees with its own file)."""
    rec = checks.records.get(name)
    if rec is not None and rec["rows"] != rows:
        raise ReportError(f"{path}: {rows:,} rows where the manifest records {rec['rows']:,} "
                          f"{rewrite_fix(manifest, name)}")
    if rec is not None:
        checks.verified.append(name)
