"""The report renders without torch: the whole fallback render (this process and the kernel it starts) runs
with torch, transformers, peft and bitsandbytes made unimportable, and analysis/ imports none of them."""
import os
import pkgutil
import subprocess
import sys

import pytest

import analysis
from tests.report.helpers import ROOT, html_text
from tests.report_fixture import make_results

pytestmark = pytest.mark.slow
HEAVY = ("torch", "transformers", "peft", "bitsandbytes", "accelerate")


def blocker(names: tuple) -> str:
    """A sitecustomize.py that makes every import of `names` fail, as on a machine without them."""
    return f'''
import sys
class _NoHeavyImports:
    """Any import of {names} fails, as on a machine without them."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {names!r}:
            raise ImportError(f"{{name}} is blocked: the report must render without it")
        return None
sys.meta_path.insert(0, _NoHeavyImports())
'''


BLOCKER = blocker(HEAVY)


def test_every_analysis_module_imports_without_torch():
    modules = [m.name for m in pkgutil.walk_packages(analysis.__path__, "analysis.")]
    assert {"analysis.facts", "analysis.render.kernel", "analysis.sections.setup"} <= set(modules)
    code = BLOCKER + "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules) + \
        f"assert not [m for m in sys.modules if m.split('.')[0] in {HEAVY!r}]\n"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_the_report_renders_with_torch_unimportable(tmp_path):
    (tmp_path / "block").mkdir()
    (tmp_path / "block" / "sitecustomize.py").write_text(BLOCKER)  # this process and the kernel both load it
    results = make_results(tmp_path / "results")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "block"), str(ROOT)]), "REPORT_RUNS": ""}
    p = subprocess.run([sys.executable, "-m", "analysis.render", "--results", results, "--out", tmp_path / "site",
                        "--formats", "html", "--engine", "nbclient"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "Accuracy" in html_text(tmp_path / "site" / "report.html")
