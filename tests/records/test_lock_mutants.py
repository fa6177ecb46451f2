"""records.lock against a live holder: another process (a script named like the pipeline, so the liveness rule
counts it) holds the lock, and a taker must refuse naming it, never take it over as stale. Then the cases
without a holder (a dead pid, another host, a filesystem without flock) and what release leaves."""
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from records import lock as lockmod
from records.lock import LOCK_NAME, LockHeld, RunLock, held, holder
from tests.conftest import ROOT

HOLDER = """
import sys, time
from pathlib import Path
from records.lock import RunLock
folder, ready, stop = sys.argv[1:4]
lock = RunLock(Path(folder), "pipeline run first") if folder != "-" else None
if lock:
    lock.acquire()
Path(ready).write_text("held")
while not Path(stop).exists():
    time.sleep(0.02)
if lock:
    lock.release()
"""


class _BoundedTime:
    """records.lock's clock with a wall-clock bound on its waits: a wait that never ends fails the test in
    seconds instead of hanging it (a sleeping loop uses no CPU, so a CPU-time limit would never stop it)."""

    def __init__(self, limit_s: float = 10.0):
        self.deadline = time.monotonic() + limit_s

    def sleep(self, s: float) -> None:
        assert time.monotonic() < self.deadline, "the lock waited far longer than its holder held it"
        time.sleep(s)


@pytest.fixture(autouse=True)
def bounded_waits(monkeypatch):
    monkeypatch.setattr(lockmod, "time", _BoundedTime())


@pytest.fixture
def live(tmp_path):
    """start(folder or None) -> pid of a live process named like the pipeline, holding `folder`'s lock."""
    script = tmp_path / "pipeline_holder.py"
    script.write_text(HOLDER)
    procs = []

    def start(folder=None):
        ready, stop = tmp_path / f"ready{len(procs)}", tmp_path / f"stop{len(procs)}"
        p = subprocess.Popen([sys.executable, str(script), str(folder or "-"), str(ready), str(stop)], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                 [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])})
        procs.append((p, stop))
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert p.poll() is None and time.monotonic() < deadline, "the holder did not start"
            time.sleep(0.02)
        return p.pid

    yield start
    for p, stop in procs:
        stop.write_text("")
        p.wait(timeout=60)


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _record(folder, pid, host=None, command="pipeline run x"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                                "start": lockmod._now(), "command": command}) + "\n")


def test_a_live_holder_is_refused_by_name_and_its_lock_kept(tmp_path, live, capsys):
    folder = tmp_path / "run"
    pid = live(folder)
    content = (folder / LOCK_NAME).read_text()
    with pytest.raises(LockHeld) as e:
        RunLock(folder, "pipeline run second").acquire()
    assert e.value.waitable
    msg = str(e.value)
    assert msg.startswith(f"{folder} is in use by pid {pid} on {socket.gethostname()} since ")
    assert msg.endswith("(pipeline run first) (fix: wait for it to finish, or pass --wait)")
    assert "took over" not in capsys.readouterr().out
    assert (folder / LOCK_NAME).read_text() == content  # not rewritten by the refused taker
    assert json.loads(content)["pid"] == pid
    assert holder(folder).startswith(f"pid {pid} on {socket.gethostname()} since ")
    assert holder(folder).endswith("(pipeline run first)")


def test_a_live_holder_without_flock_is_refused_on_its_liveness(tmp_path, live, monkeypatch, capsys):
    """On a filesystem without flock the holder's liveness alone decides: a live pid is not stale."""
    folder = tmp_path / "run"
    pid = live()
    _record(folder, pid)

    def no_flock(fd, op):
        raise OSError("flock not supported")
    monkeypatch.setattr(lockmod.fcntl, "flock", no_flock)
    with pytest.raises(LockHeld) as e:
        RunLock(folder, "second").acquire()
    assert e.value.waitable and f"in use by pid {pid} on " in str(e.value)
    assert json.loads((folder / LOCK_NAME).read_text())["command"] == "pipeline run x"
    assert "took over" not in capsys.readouterr().out


def test_a_dead_holder_is_taken_over_with_a_note(tmp_path, capsys):
    folder = tmp_path / "run"
    dead = _dead_pid()
    _record(folder, dead)
    lock = RunLock(folder, "mine")
    lock.acquire()
    out = capsys.readouterr().out
    assert out.startswith(f"note: took over the stale lock of pid {dead} on ")
    assert out.rstrip().endswith("(pipeline run x): that process is gone")
    now = json.loads((folder / LOCK_NAME).read_text())
    assert (now["pid"], now["host"], now["command"]) == (os.getpid(), socket.gethostname(), "mine")
    assert (folder / LOCK_NAME).read_text().endswith("}\n")
    lock.release()
    assert not (folder / LOCK_NAME).exists() and folder.is_dir()  # the folder was there before: kept


def test_a_live_pid_whose_flock_is_free_no_longer_holds_it(tmp_path, live, capsys):
    """A live pid in a lock file nobody flocks: the flock decides, it is taken over (the process let go)."""
    folder = tmp_path / "run"
    _record(folder, live())
    with held(folder, "mine"):
        assert capsys.readouterr().out.rstrip().endswith("(pipeline run x): that process no longer holds it")


def test_another_hosts_lock_is_refused_and_cannot_be_waited_for(tmp_path):
    folder = tmp_path / "run"
    _record(folder, 1, host="some-other-host")
    with pytest.raises(LockHeld) as e:
        RunLock(folder, "x").acquire(wait=True)
    assert not e.value.waitable
    assert str(e.value) == (f"{folder} is locked by pid 1 on some-other-host since "
                            f"{json.loads((folder / LOCK_NAME).read_text())['start']} (pipeline run x), another "
                            f"host, which cannot be checked from here (fix: if that process has ended, delete "
                            f"{folder / LOCK_NAME})")
    assert holder(folder).endswith("(pipeline run x), another host")


def test_wait_waits_for_a_live_holder_to_let_go(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(lockmod, "WAIT_POLL_S", 0.01)
    folder = tmp_path / "run"
    first = RunLock(folder, "first")
    first.acquire()
    timer = threading.Timer(0.3, first.release)
    timer.start()
    second = RunLock(folder, "second")
    second.acquire(wait=True)
    timer.join()
    err = capsys.readouterr().err
    assert err.count("waiting: ") == 1 and f"in use by pid {os.getpid()}" in err
    assert json.loads((folder / LOCK_NAME).read_text())["command"] == "second"
    second.release()


def test_release_removes_only_the_folders_the_lock_made(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "keep").write_text("x")
    lock = RunLock(tmp_path / "results" / "a" / "b", "x")
    lock.acquire()
    assert lock._made == [tmp_path / "results" / "a" / "b", tmp_path / "results" / "a"]
    lock.release()
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["keep"]
    lock.release()  # a second release does nothing
    assert lock._fd is None


def test_a_refused_lock_makes_no_folders_vanish(tmp_path):
    folder = tmp_path / "run"
    with held(folder, "first"):
        taker = RunLock(folder, "second")
        with pytest.raises(LockHeld):
            taker.acquire()
        assert taker._made == [] and taker._fd is None
    assert not folder.exists()


def test_holder_reads_nothing_from_an_empty_or_broken_file(tmp_path, live):
    assert holder(tmp_path) is None
    (tmp_path / LOCK_NAME).write_text("")
    assert holder(tmp_path) is None
    (tmp_path / LOCK_NAME).write_text("[1, 2]")
    assert holder(tmp_path) is None
    (tmp_path / LOCK_NAME).write_text("{not json")
    assert holder(tmp_path) is None
    _record(tmp_path, _dead_pid())
    assert holder(tmp_path) is None  # stale: the next run takes it over
    _record(tmp_path, live(), command="")
    assert holder(tmp_path).endswith("(command unknown)")


def test_holder_judges_a_reused_pid_by_the_records_start_time(tmp_path, live):
    """A live pipeline-named pid whose process started long after the record was written is not the holder."""
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": live(), "host": socket.gethostname(),
                                                  "start": "2000-01-01T00:00:00+00:00", "command": "old"}))
    assert holder(tmp_path) is None


def test_a_lock_without_a_command_says_so(tmp_path, live):
    folder = tmp_path / "run"
    lock = RunLock(folder)
    lock.acquire()
    assert json.loads((folder / LOCK_NAME).read_text())["command"] == ""
    (folder / LOCK_NAME).unlink()  # someone removed it: release still lets go cleanly
    lock.release()
    assert lock._fd is None and not folder.exists()


def test_read_gives_an_empty_record_for_non_objects(tmp_path):
    p = tmp_path / "f"
    p.write_text("[1]")
    fd = os.open(p, os.O_RDONLY)
    try:
        assert lockmod._read(fd) == {}
    finally:
        os.close(fd)
    assert lockmod._inode(tmp_path / "missing") is None


def test_a_reused_pid_is_judged_by_the_records_start_time_when_taking_over(tmp_path, live, monkeypatch, capsys):
    """Without flock, a live pipeline-named pid whose process started long after the record is not the holder:
    the lock is taken over (a pid handed to a newer process must not keep a folder locked forever)."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / LOCK_NAME).write_text(json.dumps({"pid": live(), "host": socket.gethostname(),
                                                "start": "2000-01-01T00:00:00+00:00", "command": "old"}))

    def no_flock(fd, op):
        raise OSError("flock not supported")
    monkeypatch.setattr(lockmod.fcntl, "flock", no_flock)
    with held(folder, "mine"):
        assert capsys.readouterr().out.rstrip().endswith("(old): that process is gone")


def test_the_record_names_this_process_in_utc_and_the_file_is_shared_like_results(tmp_path):
    folder = tmp_path / "run"
    with held(folder, "mine"):
        rec = json.loads((folder / LOCK_NAME).read_text())
        assert sorted(rec) == ["command", "host", "pid", "start"]
        assert rec["start"].endswith("+00:00")
        from records.store import umask
        assert (folder / LOCK_NAME).stat().st_mode & 0o777 == 0o666 & ~umask()


def test_a_lock_file_replaced_while_flocking_is_opened_again(tmp_path, monkeypatch):
    """The holder unlinked its file between our open and our flock: we hold a dead inode, so we open again."""
    real, calls = lockmod._inode, []

    def moved_once(path):
        calls.append(path)
        return -1 if len(calls) == 1 else real(path)
    monkeypatch.setattr(lockmod, "_inode", moved_once)
    with held(tmp_path / "run", "mine"):
        assert len(calls) == 2
        assert json.loads((tmp_path / "run" / LOCK_NAME).read_text())["command"] == "mine"


def _enospc(*args):
    import errno
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_writing_the_record_leaves_no_lock_file(tmp_path, monkeypatch):
    from records.errors import OutputError
    folder = tmp_path / "run"
    folder.mkdir()
    monkeypatch.setattr(lockmod.os, "pwrite", _enospc)
    with pytest.raises(OutputError, match=r"^no space left on device: .*run/\.lock \(the previous results"):
        RunLock(folder, "x").acquire()
    assert list(folder.iterdir()) == []


def test_a_full_disk_when_creating_the_lock_file_is_one_line(tmp_path, monkeypatch):
    from records.errors import OutputError
    real = os.open

    def refuse_lock(path, *a, **k):
        return _enospc() if str(path).endswith(LOCK_NAME) else real(path, *a, **k)
    monkeypatch.setattr(lockmod.os, "open", refuse_lock)
    with pytest.raises(OutputError, match=r"^no space left on device: .*run/\.lock \(the previous results"):
        RunLock(tmp_path / "run", "x").acquire()


def test_the_take_over_note_is_flushed_before_anything_else_happens(tmp_path):
    """The note is flushed when it is printed: a process killed right after taking over still said so."""
    folder = tmp_path / "run"
    _record(folder, _dead_pid())
    with held(folder, "here"):  # in this process too (so a mutation tool sees this test run the take-over)
        pass
    _record(folder, _dead_pid())
    script = tmp_path / "pipeline_taker.py"
    script.write_text("import os, signal, sys\nfrom pathlib import Path\nfrom records.lock import RunLock\n"
                      "RunLock(Path(sys.argv[1]), 'taker').acquire()\nos.kill(os.getpid(), signal.SIGKILL)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # a pipe is block-buffered, as in use
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    r = subprocess.run([sys.executable, str(script), str(folder)], cwd=ROOT, capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == -9 and r.stdout.startswith("note: took over the stale lock of pid "), r.stdout
