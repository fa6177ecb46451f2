"""The architecture, checked rather than described (docs/ARCHITECTURE.md explains it).

- import-linter's contracts in pyproject.toml: analysis/ never imports pipeline/; records/ imports neither;
  records/ and analysis/ import no model library; the layers inside pipeline/; no circles between packages.
- No import circle between any two modules of the project (import-linter checks packages; this checks modules).
- records/ and analysis/ import, and the torch-free commands run, with torch and friends made unimportable.
- No module over ~300 lines without a reason at its top.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("records", "pipeline", "analysis")
MODEL_LIBRARIES = ("torch", "transformers", "peft", "bitsandbytes", "accelerate", "tqdm", "psutil", "pynvml")


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.skip("import-linter is not installed (it comes with the dev extra: make env)")
    return subprocess.run([str(exe), "--config", "pyproject.toml"], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_import_contracts_are_kept():
    r = _lint_imports(ROOT)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "5 kept, 0 broken" in r.stdout


def test_a_forbidden_import_breaks_the_contracts(tmp_path):
    """The contracts can fail: a copy of the tree where analysis/ imports the pipeline, and records/ torch."""
    import shutil
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "analysis" / "sneaky.py").write_text("from pipeline.engine import step\n")
    (tmp_path / "records" / "sneaky.py").write_text("def f():\n    import torch  # even lazily\n")
    env_path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.skip("import-linter is not installed")
    r = subprocess.run([str(exe)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": env_path})
    assert r.returncode != 0
    assert "analysis.sneaky -> pipeline.engine.step" in r.stdout
    assert "records.sneaky -> torch" in r.stdout


def _module_imports() -> dict[str, set[str]]:
    """Every project module -> the project modules it imports (at the top or inside a function)."""
    files = {p: ".".join(p.relative_to(ROOT).with_suffix("").parts) for pkg in PACKAGES
             for p in (ROOT / pkg).rglob("*.py")}
    names = {m.removesuffix(".__init__") for m in files.values()}
    graph: dict[str, set[str]] = {}
    for path, mod in files.items():
        is_pkg = path.name == "__init__.py"
        mod = mod.removesuffix(".__init__")
        out: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in names else base for a in node.names]
            else:
                continue
            out |= {t for t in targets if t in names and t != mod}
        graph[mod] = out
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles_between_modules():
    graph = _module_imports()
    # a package's __init__ importing its own submodules (pipeline.recipe's BODIES) is not a circle of modules
    graph = {m: {t for t in ts if not (m.startswith(t + ".") and t in graph)} for m, ts in graph.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


_BLOCKER = """
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r}:
            raise ImportError(f'{{name}} is made unimportable by this test')
sys.meta_path.insert(0, _Block())
"""


def _without_model_libraries(code: str, *args: str, blocked=MODEL_LIBRARIES) -> subprocess.CompletedProcess:
    script = _BLOCKER.format(blocked=blocked) + code
    return subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_records_and_analysis_import_without_torch():
    mods = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                  for pkg in ("records", "analysis") for p in (ROOT / pkg).rglob("*.py")
                  if p.name != "__main__.py")
    r = _without_model_libraries("import importlib\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
                                 "print('imported', len(sys.argv) - 1)", *mods)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == f"imported {len(mods)}"


def test_the_blocker_blocks():
    r = _without_model_libraries("import torch")
    assert r.returncode != 0 and "made unimportable by this test" in r.stderr


def test_torch_free_commands_run_without_torch():
    """verify, data-doc and manifest-doc run in the report environment, which has no torch (README)."""
    for argv in (["data-doc"], ["manifest-doc"], ["verify", "--help"]):
        r = _without_model_libraries("import runpy\nsys.argv = ['pipeline', *sys.argv[1:]]\n"
                                     "runpy.run_module('pipeline', run_name='__main__')", *argv,
                                     blocked=MODEL_LIBRARIES[:5])
        assert r.returncode == 0, (argv, r.stderr[-3000:])
        assert r.stdout.strip(), argv


LONG = 300


def test_long_modules_say_why_at_their_top():
    """A module over ~300 lines says why in its docstring, naming the ~300-line guide."""
    unexplained = []
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*.py"):
            text = p.read_text(encoding="utf-8")
            if text.count("\n") <= LONG:
                continue
            doc = ast.get_docstring(ast.parse(text)) or ""
            if "300-line" not in doc:  # "(Over the project's ~300-line guide: <why>)"
                unexplained.append(f"{p.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert unexplained == []
