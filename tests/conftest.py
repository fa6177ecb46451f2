"""Shared test helpers. Everything runs offline on CPU."""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_SNLI = ROOT.parent / "shared" / "data" / "snli"

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Base weights the tests make (random, dequantized GGUF) go to a cache of this session, not the project's
# .cache/: a test sees what a fresh clone makes, never files an older version of the code left.
if "NLI_CACHE" not in os.environ:
    os.environ["NLI_CACHE"] = tempfile.mkdtemp(prefix="nli-test-cache-")
    atexit.register(shutil.rmtree, os.environ["NLI_CACHE"], ignore_errors=True)


def cli(*args, cwd=ROOT, timeout=900, env=None):
    """Run `python -m pipeline ...` in a subprocess; returns CompletedProcess with text output."""
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture
def shared_snli():
    if not (SHARED_SNLI / "full_test.parquet").is_file():
        pytest.skip("../shared/data/snli is not present")
    return SHARED_SNLI


def tiny_overrides(tmp_path: Path, run: str = "tiny-test") -> list[str]:
    """--set arguments that send a tiny run's output into tmp_path."""
    return [f"run={run}", f"output.results_dir={tmp_path / 'results'}",
            f"output.checkpoint_dir={tmp_path / 'checkpoints'}"]


def sets(overrides: list[str]) -> list[str]:
    out = []
    for o in overrides:
        out += ["--set", o]
    return out
