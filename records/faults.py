"""Kill points: every write the pipeline makes, named, so a test can kill the process at any one of them.

Each write into results/<run>/ and checkpoints/<run>/ calls `point(path)` after its bytes are on disk under a
temporary name and before the rename that makes them visible. The point is named "<stage>:<file>:<n>": the
n-th write of that file while that stage runs ("-" outside a stage), e.g. "train:epochs.parquet:2" or
"evaluate:manifest.json:1". A kill there leaves what a power cut or SIGKILL would: the earlier writes done,
this one's temporary file behind, nothing after it.

    PIPELINE_KILL_AT=train:epochs.parquet:2   SIGKILL this process at that point (no handlers run)
    PIPELINE_WRITE_LOG=/tmp/points.txt        append every point's name to that file
    PIPELINE_HOLD_AT=data:samples.parquet:1   at that point, create PIPELINE_HOLD_FILE + ".held" and wait until
    PIPELINE_HOLD_FILE=/tmp/hold              PIPELINE_HOLD_FILE exists (a test holds a run mid-way, e.g. so
                                              that a second one meets its lock whatever the machine's speed)

`history` lists this process's points in order (how an in-process test finds them all). Unset variables
cost one dictionary lookup per write.
"""
from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

KILL_AT = "PIPELINE_KILL_AT"
WRITE_LOG = "PIPELINE_WRITE_LOG"
HOLD_AT, HOLD_FILE = "PIPELINE_HOLD_AT", "PIPELINE_HOLD_FILE"

history: list[str] = []
_stage = "-"
_counts: dict[tuple[str, str], int] = {}
_dead = False  # once killed, every later write dies too (a real kill has no "later")


@contextlib.contextmanager
def stage(name: str):
    """Name the stage whose writes follow (the runner wraps each stage's bookkeeping and body in this)."""
    global _stage
    outer, _stage = _stage, name
    try:
        yield
    finally:
        _stage = outer


def point(path: Path | str) -> None:
    """Called just before a write becomes visible; dies here if this is the chosen point."""
    file = Path(path).name
    n = _counts[(_stage, file)] = _counts.get((_stage, file), 0) + 1
    name = f"{_stage}:{file}:{n}"
    history.append(name)
    log = os.environ.get(WRITE_LOG)
    if log:
        with open(log, "a") as f:
            f.write(name + "\n")
    if _dead or os.environ.get(KILL_AT) == name:
        die()
    if os.environ.get(HOLD_AT) == name and os.environ.get(HOLD_FILE):
        hold(Path(os.environ[HOLD_FILE]))


def hold(release: Path, timeout_s: float = 600.0) -> None:
    """Say we are held (release + ".held"), then wait for `release` to exist."""
    Path(f"{release}.held").touch()
    deadline = time.monotonic() + timeout_s
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def die() -> None:
    """SIGKILL: no exception handler, no `finally`, no flush runs. (In-process tests replace this.)"""
    os.kill(os.getpid(), signal.SIGKILL)


def new_run() -> None:
    """Count from 1 again: each `pipeline run` names its points alike (tune runs several in one process)."""
    _counts.clear()


def reset() -> None:
    """Forget everything, a kill included (a test starting over in the same process)."""
    global _dead
    history.clear()
    _counts.clear()
    _dead = False
