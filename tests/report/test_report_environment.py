"""The render in any environment (issue 18): a malformed SOURCE_DATE_EPOCH is one line and exit 2, not a kernel
traceback; the C locale (ASCII as Python's default encoding) renders the committed results, our files read as
UTF-8."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize("value", ["yesterday", "1.5e9", "-1", "\x1b[2J"])
def test_a_malformed_source_date_epoch_is_one_line(tmp_path, value):
    r = subprocess.run([sys.executable, "-m", "analysis.render", "--out", str(tmp_path / "site"), "--formats", "html"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "SOURCE_DATE_EPOCH": value})
    assert r.returncode == 2, r.stderr[-2000:]
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("error: SOURCE_DATE_EPOCH=") and "whole number of seconds" in line and "\x1b" not in line
    assert not (tmp_path / "site").exists()


@pytest.mark.slow
def test_the_render_runs_in_the_c_locale(tmp_path):
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "SOURCE_DATE_EPOCH": "1700000000"}
    r = subprocess.run([sys.executable, "-m", "analysis.render", "--out", str(tmp_path / "site"), "--formats", "html",
                        "--engine", "nbclient"], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
                       encoding="utf-8")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "UnicodeDecodeError" not in r.stderr
    assert "smollm2-snli-offline" in (tmp_path / "site" / "report.html").read_text(encoding="utf-8")
