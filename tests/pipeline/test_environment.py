"""capture_environment() and code_version(): the manifest's environment and code blocks."""
import json
import platform
import shutil
import subprocess
import sys

import pandas as pd
import pytest

import pipeline.telemetry.environment as environment
from pipeline.telemetry.environment import LIBRARIES, capture_environment, library_versions
from records import code_version as versions
from records.code_version import code_version
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def env():
    return capture_environment()


def test_keys_and_python_version(env):
    assert {"python", "platform", "libraries", "cuda", "torch_cuda", "gpu", "cpu", "ram_total_bytes"} <= set(env)
    v = sys.version_info
    assert env["python"] == f"{v.major}.{v.minor}.{v.micro}" == platform.python_version()
    assert env["platform"] == platform.platform()
    assert set(env["libraries"]) == set(LIBRARIES)
    assert {"torch", "transformers", "peft", "bitsandbytes", "accelerate", "datasets", "tokenizers",
            "pandas", "pyarrow", "numpy", "jinja2"} <= set(env["libraries"])
    assert env["libraries"]["pandas"] == pd.__version__
    assert env["cpu"]["logical_cores"] >= 1
    assert env["cpu"]["model"]
    assert env["ram_total_bytes"] > 2**28
    json.dumps(env)  # goes into manifest.json as it is


def test_gpu_fields(env):
    if environment.nvml_module() is None:  # this CPU machine
        assert env["gpu"] is None
        assert env["cuda"] is None
    else:
        environment.nvml_module().nvmlShutdown()
        gpu = env["gpu"]
        assert gpu["count"] >= 1 and gpu["name"] and gpu["driver"] and gpu["memory_total_bytes"] > 0
        assert len(gpu["devices"]) == gpu["count"]
    if "torch" not in sys.modules:
        assert env["torch_cuda"] is None


def test_missing_library_is_none():
    assert library_versions(["surely-not-an-installed-dist-xyz"]) == {"surely-not-an-installed-dist-xyz": None}


def test_imports_nothing_heavy():
    code = (
        "import sys, json\n"
        "from pathlib import Path\n"
        "from pipeline.telemetry.environment import capture_environment\nfrom records.code_version import code_version\n"
        "env = capture_environment(); code_version(Path('.'))\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'bitsandbytes', 'accelerate', 'datasets',\n"
        "                     'tokenizers', 'pandas', 'pyarrow', 'numpy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert env['torch_cuda'] is None\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_code_version_outside_git(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert code_version(tmp_path) == {"git_commit": None, "dirty": None, "untracked": None}
    assert code_version(tmp_path / "missing")["git_commit"] is None


def test_code_version_without_git_installed(monkeypatch):
    monkeypatch.setattr(versions.shutil, "which", lambda name: None)
    assert code_version(ROOT)["git_commit"] is None


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_code_version_of_a_checkout(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false",
                        *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    assert code_version(tmp_path)["git_commit"] is None  # no commit yet
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("commit", "-q", "-m", "one")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    assert code_version(tmp_path) == {"git_commit": head, "dirty": False, "untracked": 0}
    (tmp_path / "new.txt").write_text("results\n")
    assert code_version(tmp_path) == {"git_commit": head, "dirty": False, "untracked": 1}
    (tmp_path / "a.py").write_text("x = 2\n")
    assert code_version(tmp_path)["dirty"] is True
    sub = tmp_path / "pkg"
    sub.mkdir()
    assert code_version(sub)["git_commit"] == head  # any folder inside the checkout


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_launchers_commit_wins_over_a_stale_git_copy(tmp_path, monkeypatch):
    """A lent GPU machine runs a copy of the working tree whose .git may be stale (an older commit, the tree
    then 'dirty'): the commit the launcher names in PIPELINE_GIT_COMMIT is the code that ran; git's view is kept."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "a.py"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "old"], cwd=tmp_path, check=True)
    (tmp_path / "a.py").write_text("x = 2\n")  # the newer code the launcher copied in
    monkeypatch.delenv("PIPELINE_GIT_COMMIT", raising=False)
    assert versions.run_code_version(tmp_path)["dirty"] is True  # git alone: the old commit, dirty
    monkeypatch.setenv("PIPELINE_GIT_COMMIT", "f" * 40)
    v = versions.run_code_version(tmp_path)
    assert v["git_commit"] == "f" * 40 and v["source"].startswith("PIPELINE_GIT_COMMIT")
    assert v["checkout_git"]["dirty"] is True and v["checkout_git"]["git_commit"] != "f" * 40
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    outside = tmp_path / "copy"
    outside.mkdir()
    assert "checkout_git" not in versions.run_code_version(outside / "missing")
