"""One writer per results folder: `pipeline run` and `pipeline tune` hold results/<run>/.lock while they work.

Two runs of one config at once would interleave their manifest writes (each reads, changes and rewrites it)
and mix their tables. The second one refuses with one line naming the holder (pid, host, start time), or
with --wait waits for it to finish.

How: the lock file is held with flock(2) for the life of the holder, so the kernel releases it however the
holder ends (a crash, SIGKILL, a lost Colab runtime); the file's content says who holds it. A lock file
found without a holder is stale: its process is gone (records.liveness.process_state, the one liveness
rule), and it is taken over with a note. A holder on another host (a shared disk) cannot be seen from here:
that lock is refused, with how to remove it if that process is gone too.

Under `accelerate launch` only rank 0 takes the lock: the other ranks never write (pipeline/engine/distributed.py).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from records import faults
from records.errors import BadInput, output_error, refuse_link
from records.liveness import process_state

LOCK_NAME = ".lock"
WAIT_POLL_S = 1.0


class LockHeld(BadInput):
    """Another process holds this results folder. `waitable`: it is on this host, so --wait can wait for it."""

    def __init__(self, message: str, waitable: bool = True):
        super().__init__(message)
        self.waitable = waitable


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _holder_words(h: dict) -> str:
    return f"pid {h.get('pid')} on {h.get('host')} since {h.get('start')} ({h.get('command') or 'command unknown'})"


class RunLock:
    def __init__(self, folder: Path, command: str = ""):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.command = command
        self._fd: int | None = None
        self._made: list[Path] = []  # folders this lock created, removed again if left empty

    def acquire(self, wait: bool = False) -> None:
        """Take the lock, or raise LockHeld (one line naming the holder); with `wait`, wait for it instead."""
        said = False
        while True:
            try:
                self._try()
                return
            except LockHeld as e:
                if not wait or not e.waitable:
                    raise
                if not said:
                    print(f"waiting: {e}", file=sys.stderr, flush=True)
                    said = True
                time.sleep(WAIT_POLL_S)

    def _try(self) -> None:
        self._made = [p for p in (self.folder, *self.folder.parents) if not p.exists()]
        refuse_link(self.folder)  # a received folder's planted link must not aim the lock's write elsewhere
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as e:
            if e.errno == errno.ELOOP:  # the lock file is a link: O_NOFOLLOW refused to open it
                refuse_link(self.path)
            raise output_error(e, self.path) or e from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            flocked = True
        except BlockingIOError:
            self._refuse(fd, f"{self.folder} is in use by {_holder_words(_read(fd))} (fix: wait for it to finish, "
                             f"or pass --wait)")
        except OSError:  # a filesystem without flock: the holder's liveness alone decides
            flocked = False
        # We hold the flock. The file may be a new one, a stale one, or one its holder just unlinked on release.
        if flocked and os.fstat(fd).st_ino != _inode(self.path):
            os.close(fd)
            return self._try()
        old = _read(fd)
        if old:
            state = process_state(old.get("pid"), old.get("host"), old.get("start"))
            if state == "elsewhere":
                self._refuse(fd, f"{self.folder} is locked by {_holder_words(old)}, another host, which cannot be "
                                 f"checked from here (fix: if that process has ended, delete {self.path})", waitable=False)
            if state == "alive" and not flocked:
                self._refuse(fd, f"{self.folder} is in use by {_holder_words(old)} (fix: wait for it to finish, "
                                 f"or pass --wait)")
            why = "that process is gone" if state == "gone" else "that process no longer holds it"
            print(f"note: took over the stale lock of {_holder_words(old)}: {why}", flush=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "start": _now(), "command": self.command}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        except OSError as e:  # a full disk: leave no empty lock file behind
            self._fd = fd
            self.release()
            raise output_error(e, self.path) or e from None
        self._fd = fd

    def _refuse(self, fd: int, message: str, waitable: bool = True):
        os.close(fd)  # closing lets go of our flock, if we had taken it
        self._made = []
        raise LockHeld(message, waitable)

    def release(self) -> None:
        """Remove the lock file, then let go of it; folders the lock alone created go too."""
        if self._fd is None:
            return
        try:
            faults.point(self.path)  # a kill here leaves the lock file, as a real one would
            self.path.unlink(missing_ok=True)
            for p in self._made:  # deepest first: results/<run>, then results/ if the lock made it
                try:
                    p.rmdir()
                except OSError:
                    break
        finally:
            os.close(self._fd)
            self._fd = None


class FolderLock:
    """flock(2) on a folder itself, no file written: the checkpoint folder checkpoints/<run>/, shared by every run
    of that name whatever its results folder. Released by the kernel however the holder ends."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._fd: int | None = None
        self._made: list[Path] = []

    def acquire(self, wait: bool = False) -> None:
        refuse_link(self.folder)
        self._made = [p for p in (self.folder, *self.folder.parents) if not p.exists()]
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError as e:
            raise output_error(e, self.folder) or e from None
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return
            except BlockingIOError:
                message = (f"{self.folder} is in use by another run of the same name (another results folder) "
                           f"(fix: wait for it to finish or pass --wait, or give this run another `run` name or "
                           f"output.checkpoint_dir)")
                if not wait:
                    os.close(fd)
                    self._remove_made()
                    raise LockHeld(message) from None
                if not said:
                    print(f"waiting: {message}", file=sys.stderr, flush=True)
                    said = True
                time.sleep(WAIT_POLL_S)
            except OSError:  # a filesystem without flock: the results folder's lock is all there is
                self._fd = fd
                return

    def release(self) -> None:
        if self._fd is None:
            return
        os.close(self._fd)
        self._fd = None
        self._remove_made()

    def _remove_made(self) -> None:
        for p in self._made:  # deepest first, only while empty
            try:
                p.rmdir()
            except OSError:
                break
        self._made = []


@contextlib.contextmanager
def held(folder: Path, command: str, wait: bool = False):
    """`with held(folder, command):` the body runs holding `folder`'s lock (LockHeld if another does)."""
    lock = RunLock(folder, command)
    lock.acquire(wait)
    try:
        yield lock
    finally:
        lock.release()


def holder(folder: Path) -> str | None:
    """Who holds `folder`'s lock, in words, for `pipeline status` (None when nobody does). Read without
    locking: status must never make a starting run see the folder as taken."""
    path = Path(folder) / LOCK_NAME
    try:
        old = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return None
    if not isinstance(old, dict) or not old:
        return None
    state = process_state(old.get("pid"), old.get("host"), old.get("start"))
    if state == "gone":
        return None  # stale: the next run takes it over
    return _holder_words(old) + (", another host" if state == "elsewhere" else "")


def _read(fd: int) -> dict:
    try:
        data = os.pread(fd, 4096, 0)
        out = json.loads(data.decode()) if data.strip() else {}
        return out if isinstance(out, dict) else {}
    except (OSError, ValueError):
        return {}


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None
