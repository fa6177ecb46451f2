"""The report environment runs `python -m pipeline verify|export|data-doc|manifest-doc` (issue 18: they failed on a
missing tqdm there). Here each runs with torch, its libraries and tqdm made unimportable, as in .venv-report."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.report.test_report_torch_free import HEAVY, blocker

# The report environment has none of these (pyproject's base dependencies and [report] extra).
BLOCKER = blocker((*HEAVY, "tqdm", "datasets", "safetensors"))


@pytest.mark.parametrize("argv", [["verify", "smollm2-snli-offline"], ["data-doc"], ["manifest-doc"],
                                  ["export", "smollm2-snli-offline", "--out", "{out}"]])
def test_torch_free_commands_need_neither_torch_nor_tqdm(tmp_path, argv):
    (tmp_path / "block").mkdir()
    (tmp_path / "block" / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "block"), str(ROOT)])}
    r = subprocess.run([sys.executable, "-m", "pipeline", *(a.format(out=tmp_path / "out") for a in argv)], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "is blocked" not in r.stderr and r.stdout.strip()
