"""The code a run used: git's view of the checkout (commit, dirty, untracked), or the commit a launcher names.

Torch-free and here, in the results contract, because both sides need it: the runner records it in the
manifest, and `pipeline verify` checks that the recorded commit is one of this repository's.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any


def git(root: Path, *args: str) -> str | None:
    """git's output in `root`; None when git is missing, fails or exits non-zero (`pipeline verify` uses it too)."""
    exe = shutil.which("git")
    if exe is None:
        return None
    try:
        r = subprocess.run([exe, *args], cwd=root, capture_output=True, text=True, timeout=20,
                           env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"})
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


def code_version(root: Path) -> dict:
    """{"git_commit": sha or None, "dirty": bool or None} for the checkout holding `root`.

    dirty: tracked files differ from the commit (staged or not). Untracked files do not count (results and
    caches appear during a run); `untracked` gives their number (a new folder counts once). All None when
    `root` is not in a git checkout, has no commit yet, or git is not installed.
    """
    out: dict[str, Any] = {"git_commit": None, "dirty": None, "untracked": None}
    root = Path(root)
    if not root.is_dir():
        return out
    head = git(root, "rev-parse", "--verify", "HEAD")
    if head is None:
        return out
    out["git_commit"] = head.strip() or None
    status = git(root, "status", "--porcelain", "--untracked-files=normal")
    if status is not None:
        lines = [line for line in status.splitlines() if line.strip()]
        untracked = sum(1 for line in lines if line.startswith("??"))
        out["dirty"] = len(lines) > untracked
        out["untracked"] = untracked
    return out


def run_code_version(root: Path) -> dict:
    """The code a run used, for its manifest: git's view of the checkout, unless the launcher names the commit
    in PIPELINE_GIT_COMMIT (a lent GPU machine runs a copy of the working tree, with no .git or with a stale
    one that would name the wrong commit and call the tree dirty); git's view is then kept beside it."""
    v = code_version(root)
    named = os.environ.get("PIPELINE_GIT_COMMIT", "").strip()
    if not named:
        return v
    out = {"git_commit": named, "dirty": None, "untracked": None, "source": "PIPELINE_GIT_COMMIT (set by the launcher)"}
    if v.get("git_commit") is not None:
        out["checkout_git"] = v  # what the copy's own .git said
    return out
