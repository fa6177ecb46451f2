"""Whether the process that wrote a record still runs: the one rule that a `running` stage record
(records/manifest.py) and a results folder's lock (records/lock.py) are judged by, so `pipeline status`, the
lock and the report never disagree about whether a run is alive.
"""
from __future__ import annotations

import os
import socket
from datetime import datetime
from pathlib import Path


def process_state(pid, host, start=None) -> str:
    """Whether the process that wrote a `running` record still runs: alive | gone | elsewhere | unknown.

    Another host's process cannot be seen from here ("elsewhere"). On this host a live pid only counts
    when, on Linux, that process is a Python process running the pipeline and started no later than the
    record (results copied from a machine of the same host name, or a pid handed to a newer process,
    would otherwise look alive)."""
    if pid is None or host is None:
        return "unknown"
    if host != socket.gethostname():
        return "elsewhere"
    try:
        pid = int(pid)
        os.kill(pid, 0)
    except PermissionError:
        pass  # exists, owned by someone else
    except (OSError, ValueError, OverflowError):
        return "gone"
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return "gone"
        if "pipeline" not in cmdline and "pytest" not in cmdline:
            return "gone"
        started, since = _proc_start_time(proc), _iso_time(start)
        if started is not None and since is not None and started > since + 5:
            return "gone"  # a newer process that was given the same pid
    return "alive"


def _proc_start_time(proc: Path) -> float | None:
    try:
        fields_ = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields_[19])  # field 22 of proc_pid_stat(5): starttime, in clock ticks after boot
        btime = next(int(ln.split()[1]) for ln in Path("/proc/stat").read_text().splitlines()
                     if ln.startswith("btime"))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _iso_time(s) -> float | None:
    try:
        return datetime.fromisoformat(str(s)).timestamp()
    except (TypeError, ValueError):
        return None
