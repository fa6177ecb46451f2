"""Part files: a stage's rows of a shared table (its resource samples), appended one line per row as they are
taken, so that a kill keeps what was measured up to it. The store seals a part file into the table at the
stage's end (RunStore.seal_rows) and removes it; an attempt that resumes a killed stage reads it back first
(`earlier_attempts`) and keeps those rows, numbered by attempt. Torch-free.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa

from records.errors import StageError, output_error, refuse_link
from records.schema import TABLES


class PartFile:
    """Appends rows as JSON lines, one write(2) each, to a file opened without following links. A SIGKILL keeps
    every row written before it (the kernel has them); no fsync per row: a power cut may lose the last ones."""

    def __init__(self, path: Path, columns: list[str], mode: int):
        refuse_link(path.parent)
        self.columns = len(columns)
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, mode)
        except OSError as e:
            raise output_error(e, path) or e from None

    def append(self, row: tuple) -> None:
        assert len(row) == self.columns, row
        os.write(self.fd, (json.dumps(list(row), default=float) + "\n").encode())

    def close(self) -> None:
        os.close(self.fd)


def read(path: Path, name: str, owner: str) -> pd.DataFrame:
    """Every whole line of a part file as a row of table `name` (empty when there is no file); a line a kill cut
    short, or one that is not a row of `owner` in this table, is dropped."""
    schema = TABLES[name]
    refuse_link(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
            if isinstance(row, list) and len(row) == len(schema) and row[0] == owner:
                rows.append(pa.table(dict(zip(schema.names, [[v] for v in row], strict=True)), schema=schema))
        except (ValueError, TypeError, pa.ArrowInvalid, pa.ArrowTypeError):
            continue
    return (pa.concat_tables(rows) if rows else schema.empty_table()).to_pandas()


def earlier_attempts(store, stage: str, fingerprint: str, restart: bool, main: bool) -> pd.DataFrame:
    """`stage`'s resource rows from earlier attempts that did not finish, when this attempt goes on from them
    (same fingerprint, no --restart): a killed one's from its part file, a failed one's from the table. A done
    stage's rows, or rows of other settings, are not kept: this attempt replaces them (and a stale part file
    goes, so that this attempt's file holds this attempt's rows only)."""
    prev = store.stage(stage)
    if restart or prev is None or prev.status == "done" or prev.fingerprint != fingerprint:
        if main:
            store.part_path("resources", stage).unlink(missing_ok=True)
        return resource_rows([])
    try:
        table = store.read("resources")
    except StageError:  # damaged: its rows cannot be kept (the integrity check says so)
        table = resource_rows([])
    rows = resource_rows([table[table["stage"] == stage], store.read_part("resources", stage)])
    # a kill between sealing the table and removing the part file leaves rows in both
    return rows.drop_duplicates(subset=["attempt", "rank", "time"], ignore_index=True)


def resource_rows(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames of resources rows as one (the empty table's columns when there are none)."""
    frames = [f for f in frames if len(f)]
    if not frames:
        return TABLES["resources"].empty_table().to_pandas()
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
