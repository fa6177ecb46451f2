"""A results folder that is full or read-only: one line naming the file ("no space left on device: <path>"),
exit code 2, the previous results kept (every write is a temporary file renamed over the old one), and a run
that finishes once there is room. Files are created with the user's umask.

The full and read-only disks are real where the machine lets an unprivileged user make them (a tiny tmpfs, a
read-only bind mount, in a user namespace: `unshare --user --map-root-user --mount`); the same failures are
also injected at the OS level (os.fsync / os.open raising the kernel's error), which works anywhere.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from pipeline.cli import main
from records.integrity import check
from records.schema import TABLES
from records.store import RunStore, atomic_write_bytes
from tests.conftest import ROOT, sets
from tests.pipeline.reliability import (
    CONFIG,
    assert_intact,
    assert_same_results,
    copy_run,
    folder,
    overrides,
    tree_state,
)


def _namespaces_work() -> bool:
    if not shutil.which("unshare"):
        return False
    r = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                        "mount -t tmpfs -o size=64k tmpfs /mnt && mount -o remount,ro /mnt"], capture_output=True)
    return r.returncode == 0


needs_namespaces = pytest.mark.skipif(not _namespaces_work(), reason="no unprivileged user+mount namespaces here")


def _in_namespace(script: str, tmp_path) -> subprocess.CompletedProcess:
    sh = tmp_path / "inside.sh"
    sh.write_text(script)
    return subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "bash", "-e", str(sh)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


@needs_namespaces
def test_a_full_disk_keeps_the_previous_results_and_the_run_finishes_after(small_reference, tmp_path):
    """The results live on a 1 MiB tmpfs, filled up; a run that must rewrite predictions stops with one line, the
    old files intact; with room again, the same command finishes with the undamaged run's results."""
    copy_run(small_reference.complete, tmp_path / "ref")
    disk = tmp_path / "disk"
    disk.mkdir()
    py, args = sys.executable, " ".join(sets(overrides(disk))) + " --stages baseline --restart"
    script = textwrap.dedent(f"""\
        mount -t tmpfs -o size=1m tmpfs {disk}
        cp -a {tmp_path}/ref/results {disk}/results
        cp -a {tmp_path}/ref/checkpoints {tmp_path}/checkpoints
        dd if=/dev/zero of={disk}/filler bs=4k 2>/dev/null || true
        {py} -c "import json,sys; from tests.pipeline.reliability import tree_state; json.dump(tree_state(sys.argv[1]), open(sys.argv[2], 'w'))" {disk}/results {tmp_path}/before.json
        set +e
        {py} -m pipeline run {CONFIG} {args} --set output.checkpoint_dir={tmp_path}/checkpoints > {tmp_path}/out1 2> {tmp_path}/err1
        echo $? > {tmp_path}/rc1
        {py} -c "import json,sys; from tests.pipeline.reliability import tree_state; json.dump(tree_state(sys.argv[1]), open(sys.argv[2], 'w'))" {disk}/results {tmp_path}/after.json
        cp -a {disk}/results {tmp_path}/at-full-disk
        rm {disk}/filler
        {py} -m pipeline run {CONFIG} {args} --set output.checkpoint_dir={tmp_path}/checkpoints > {tmp_path}/out2 2> {tmp_path}/err2
        echo $? > {tmp_path}/rc2
        cp -a {disk}/results {tmp_path}/final-results
        """)
    r = _in_namespace(script, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    err1 = (tmp_path / "err1").read_text()
    assert (tmp_path / "rc1").read_text().strip() == "2", err1[-2000:]
    line = err1.strip().splitlines()[-1]
    assert line.startswith(f"error: no space left on device: {disk}/results/small/"), line
    assert "(the previous results are kept; fix: free space there" in line
    before, after = (json.loads((tmp_path / f).read_text()) for f in ("before.json", "after.json"))
    tables = [k for k in before if k.endswith(".parquet")]
    assert tables and {k: after.get(k) for k in tables} == {k: before[k] for k in tables}  # every table as it was
    assert_intact(tmp_path / "at-full-disk" / "small")  # as the failed run left it (checked here, in this process)
    assert (tmp_path / "rc2").read_text().strip() == "0", (tmp_path / "err2").read_text()[-2000:]
    done = tmp_path / "done"
    shutil.copytree(tmp_path / "final-results", done / "results")
    assert_same_results(small_reference.complete, done)


@needs_namespaces
def test_a_read_only_results_folder_is_one_line_and_nothing_changes(small_reference, tmp_path):
    copy_run(small_reference.complete, tmp_path)
    results = tmp_path / "results"
    before = tree_state(tmp_path)
    args = " ".join(sets(overrides(tmp_path, "eval.batch_size=5")))
    script = textwrap.dedent(f"""\
        mount --bind {results} {results}
        mount -o remount,bind,ro {results}
        set +e
        {sys.executable} -m pipeline run {CONFIG} {args} > {tmp_path}/out 2> {tmp_path}/err
        echo $? > {tmp_path}/rc
        """)
    r = _in_namespace(script, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    err = (tmp_path / "err").read_text()
    assert (tmp_path / "rc").read_text().strip() == "2", err[-2000:]
    assert err.strip().splitlines() == [
        f"error: cannot write {folder(tmp_path)}/.lock: Read-only file system (the previous results are kept; fix: make "
        f"that folder writable, or set output.results_dir / output.checkpoint_dir elsewhere)"]
    after = tree_state(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith(("inside.sh", "out", "err", "rc"))} == before


def test_a_failing_write_is_one_line_and_keeps_the_previous_results(small_reference, tmp_path, monkeypatch, capsys):
    """The kernel refuses a write (ENOSPC from fsync, as a full disk does): the table being written keeps its old
    bytes, no temporary file is left, the message names the file; with room again the run finishes."""
    work = copy_run(small_reference.complete, tmp_path)
    before = tree_state(folder(work))
    real = os.fsync
    calls = []

    def fsync(fd):
        calls.append(fd)
        if len(calls) > 1:  # the first write of the call (the running record) gets through, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    argv = ["run", CONFIG, *sets(overrides(work)), "--stages", "baseline", "--restart"]  # predictions rewritten
    assert main(argv) == 2
    monkeypatch.setattr(os, "fsync", real)
    line = capsys.readouterr().err.strip().splitlines()[-1]  # after the model's loading bar, one line
    assert line.startswith(f"error: no space left on device: {folder(work)}/predictions.parquet (the previous results "
                           f"are kept; fix: free space there"), line
    after = tree_state(folder(work))
    assert {k: after[k] for k in before if k != "manifest.json"} == {k: v for k, v in before.items()
                                                                      if k != "manifest.json"}
    assert_intact(folder(work))
    assert main(argv) == 0
    assert_same_results(small_reference.complete, work)
    assert not check(folder(work), RunStore(folder(work)).manifest())


def test_a_read_only_folder_injected_at_the_os_level(small_reference, tmp_path, monkeypatch, capsys):
    work = copy_run(small_reference.complete, tmp_path)
    before = tree_state(tmp_path)
    real = os.open

    def refusing_open(path, flags, *a, **k):
        if str(path).startswith(str(folder(work))) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", refusing_open)
    assert main(["run", CONFIG, *sets(overrides(work, "eval.batch_size=5"))]) == 2
    monkeypatch.setattr(os, "open", real)
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: cannot write {folder(work)}/.lock: Permission denied (the previous results are kept; fix: make that "
        f"folder writable, or set output.results_dir / output.checkpoint_dir elsewhere)"]
    assert tree_state(tmp_path) == before


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_results_are_written_with_the_users_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        atomic_write_bytes(tmp_path / "t.bin", b"x")
        store = RunStore(tmp_path / "run")
        store.write("params", pd.DataFrame({c: [] for c in TABLES["params"].names}))
    finally:
        os.umask(old)
    for path in (tmp_path / "t.bin", store.table_path("params"), store.manifest_path):
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, (path, oct(path.stat().st_mode))


def test_a_whole_run_leaves_its_files_readable_as_the_umask_says(small_reference):
    """Every file of the small run (results and checkpoints), written under this process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    for root, _, files in os.walk(small_reference.complete):
        for f in files:
            mode = os.stat(os.path.join(root, f)).st_mode & 0o777
            assert mode == 0o666 & ~mask, (os.path.join(root, f), oct(mode))
