"""Readers never see a half-written run (issue 18: 6 of 810 reads of the report, made while a run wrote, called a
sound epochs.parquet damaged). The report's reader (analysis.runs.load_run) reads again when the manifest changed
under it, or when a live writer holds the folder; a problem that stays while nothing writes is still reported."""
from __future__ import annotations

import threading

import pytest

from analysis.errors import ReportError
from analysis.runs import load_run
from records.lock import RunLock
from records.store import RunStore
from tests.pipeline.reliability import copy_run, folder


def test_reads_during_writes_see_one_state_or_the_other(small_reference, tmp_path):
    work = copy_run(small_reference.complete, tmp_path / "work")
    store = RunStore(folder(work))
    epochs = store.read("epochs")
    lock = RunLock(folder(work), "python -m pipeline run (this test's writer)")
    lock.acquire()
    stop, written = threading.Event(), [0]

    def writer():  # what a run does after every epoch (the table, then its record in the manifest), ~20 a second
        while not stop.wait(0.05):
            written[0] += 1
            store.write("epochs", epochs.assign(train_loss=epochs["train_loss"] + written[0] * 1e-3))

    thread = threading.Thread(target=writer)
    thread.start()
    failures, losses = [], set()
    try:
        for _ in range(100):
            try:
                run = load_run(folder(work))
                losses.add(round(float(run.tables["epochs"]["train_loss"].iloc[0] - epochs["train_loss"].iloc[0]), 6))
            except ReportError as e:
                failures.append(str(e))
    finally:
        stop.set()
        thread.join()
        lock.release()
    assert written[0] > 20 and len(losses) > 5  # the reads did overlap many writes
    assert failures == []


def test_a_damaged_table_is_still_reported_when_nothing_writes(small_reference, tmp_path):
    work = copy_run(small_reference.complete, tmp_path / "work")
    path = folder(work) / "epochs.parquet"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ReportError, match="epochs.parquet"):
        load_run(folder(work))
