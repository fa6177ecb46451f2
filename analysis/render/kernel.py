"""Run a document's cells in a Jupyter kernel with nbclient, in order, the way Quarto's Jupyter engine
does: each code cell is executed, and each markdown cell's inline expressions are evaluated where the
cell stands (an empty execute request carrying them as `user_expressions`), so an expression sees the
variables of the cells above it and no others."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from analysis.render.qmd import Cell, inline_expressions

ROOT = Path(__file__).resolve().parent.parent.parent


class ExecutionError(Exception):
    """A cell or an inline expression raised; str(err) is the one line shown to the user."""


def to_notebook(cells: list[Cell]):
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for c in cells:
        if c.kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(c.source))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(c.source, metadata={"quarto_options": c.options}))
    return nb


def _kernel_manager(sock_dir: str | None):
    """A kernel that runs with this very interpreter (sys.executable), whatever `python3` kernelspecs a user
    has installed elsewhere: the report's environment is the one that has pandas, matplotlib, ...
    On POSIX it talks over local sockets: no TCP port is opened."""
    from ipykernel.kernelspec import get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(resource_dir=str(ROOT), **get_kernel_dict())

    kw = {"transport": "ipc", "ip": str(Path(sock_dir) / "k")} if sock_dir else {"transport": "tcp"}
    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=ThisPython(), **kw)


@contextmanager
def _environment(env: dict):
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _last_error_line(text: str) -> str:
    lines = [ln for ln in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines() if ln.strip()]
    return next((ln for ln in reversed(lines) if re.match(r"^\w*(Error|Exception)\b", ln)), lines[-1] if lines else "")


async def _evaluate_inline(client, cell, name: str) -> None:
    exprs = inline_expressions(cell.source)
    if not exprs:
        return
    msg_id = client.kc.execute("", user_expressions={str(i): e for i, e in enumerate(exprs)})
    reply = await client.async_wait_for_reply(msg_id)
    content = reply["content"]
    results = []
    for i, expr in enumerate(exprs):
        result = (content.get("user_expressions") or {}).get(str(i)) or content
        if result.get("status") != "ok":
            raise ExecutionError(f"{name}: inline expression `{expr.strip()}` failed: "
                                 f"{result.get('ename')}: {result.get('evalue')}")
        results.append({"expression": expr, "result": result})
    cell.metadata["user_expressions"] = results


async def _run(client, nb, name: str) -> None:
    from nbclient.exceptions import CellExecutionError
    async with client.async_setup_kernel(cleanup_kc=True):  # shut the kernel down afterwards
        count = 0
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                await _evaluate_inline(client, cell, name)
                continue
            count += 1
            try:
                await client.async_execute_cell(cell, index, execution_count=count)
            except CellExecutionError as e:
                label = cell.metadata.get("quarto_options", {}).get("label", "?")
                raise ExecutionError(f"{name} cell {label} failed: {_last_error_line(str(e)).strip()}") from None


def execute(nb, env: dict, name: str = "report.qmd", timeout: int = 600):
    """Execute `nb` in place (cwd: the project root, `env` added to the environment); returns it."""
    from nbclient import NotebookClient
    from nbclient.util import run_sync
    sock_dir = tempfile.mkdtemp(prefix="report-kernel-") if os.name == "posix" else None
    try:
        with _environment(env):
            client = NotebookClient(nb, km=_kernel_manager(sock_dir), kernel_name="python3", timeout=timeout,
                                    allow_errors=False, resources={"metadata": {"path": str(ROOT)}})
            run_sync(_run)(client, nb, name)
    finally:
        if sock_dir:
            shutil.rmtree(sock_dir, ignore_errors=True)
    return nb
