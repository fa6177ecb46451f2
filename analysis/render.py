"""Render report.qmd into _site/report.html (self-contained) and _site/report.pdf.

    python -m analysis.render [--results DIR] [--out DIR] [--runs a,b] [--engine auto|quarto|nbclient]
                              [--formats html,pdf] [--build-dir DIR] [--strict]

With Quarto on PATH this is `quarto render`. Without it, the .qmd's python cells run in a Jupyter kernel
(nbclient), their markdown output and the markdown between them become one pandoc document, pandoc writes
the self-contained HTML and typst (pandoc -t typst, then the `typst` package) writes the PDF.
Exit codes: 0 done, 1 bad input (one line on stderr naming the file), 2 rendering failed.
"""
from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from analysis import load

ROOT = Path(__file__).resolve().parent.parent
QMD = ROOT / "report.qmd"
QUARTO_YML = ROOT / "_quarto.yml"
FENCE_OPEN = re.compile(r"^```+\s*\{python([^}]*)\}\s*$")
FENCE_CLOSE = re.compile(r"^```+\s*$")
OPTION = re.compile(r"^#\|\s?(.*)$")


class RenderError(Exception):
    """Rendering failed; str(err) is the one line shown to the user."""


def step(i: int, n: int, msg: str) -> None:
    print(f"[render {i}/{n}] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------- qmd
@dataclass
class Cell:
    kind: str                 # "markdown" | "code"
    source: str
    options: dict = field(default_factory=dict)


def split_front_matter(text: str) -> tuple[dict, str]:
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end != -1:
            meta = yaml.safe_load(text[4:end]) or {}
            return meta, text[end + 5:]
    return {}, text


def parse_qmd(text: str) -> tuple[dict, list[Cell]]:
    """Front matter, then markdown and ```{python} cells in order; `#| key: value` lines become options."""
    meta, body = split_front_matter(text)
    cells: list[Cell] = []
    buf: list[str] = []
    in_code = False
    for lineno, line in enumerate(body.splitlines(), 1):
        if not in_code and FENCE_OPEN.match(line):
            if "".join(buf).strip():
                cells.append(Cell("markdown", "\n".join(buf).strip("\n")))
            buf, in_code = [], True
        elif in_code and FENCE_CLOSE.match(line):
            opts_lines, code = [], []
            for cl in buf:
                m = OPTION.match(cl)
                if m and not code:
                    opts_lines.append(m.group(1))
                else:
                    code.append(cl)
            try:
                opts = yaml.safe_load("\n".join(opts_lines)) or {} if opts_lines else {}
            except yaml.YAMLError as e:
                raise RenderError(f"report.qmd: bad cell options before line {lineno} ({e})") from None
            cells.append(Cell("code", "\n".join(buf), opts if isinstance(opts, dict) else {}))
            buf, in_code = [], False
        else:
            buf.append(line)
    if in_code:
        raise RenderError("report.qmd: a ```{python} cell is never closed")
    if "".join(buf).strip():
        cells.append(Cell("markdown", "\n".join(buf).strip("\n")))
    return meta, cells


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


def quarto_config() -> dict:
    if not QUARTO_YML.is_file():
        return {}
    return yaml.safe_load(QUARTO_YML.read_text()) or {}


# -------------------------------------------------------------------------------------------- execute
def kernel_manager(transport: str, ip: str | None):
    """A kernel that runs with this very interpreter (sys.executable), whatever `python3` kernelspecs a user
    has installed elsewhere: the report's environment is the one that has pandas, matplotlib, ..."""
    from ipykernel.kernelspec import get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import KernelManager

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(resource_dir=str(ROOT), **get_kernel_dict())

    kw = {"transport": transport}
    if ip:
        kw["ip"] = ip
    return KernelManager(kernel_name="python3", kernel_spec_manager=ThisPython(), **kw)


def execute(nb, env: dict, timeout: int = 600):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    old = {k: os.environ.get(k) for k in env}
    km = sock_dir = None
    os.environ.update(env)
    try:
        if os.name == "posix":  # local sockets: no TCP port is opened for the kernel
            sock_dir = tempfile.mkdtemp(prefix="report-kernel-")
            km = kernel_manager("ipc", str(Path(sock_dir) / "k"))
        else:
            km = kernel_manager("tcp", None)
        client = NotebookClient(nb, km=km, kernel_name="python3", timeout=timeout, allow_errors=False,
                                resources={"metadata": {"path": str(ROOT)}})
        client.execute()
    except CellExecutionError as e:
        lines = [ln for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(e)).splitlines() if ln.strip()]
        last = next((ln for ln in reversed(lines) if re.match(r"^\w*(Error|Exception)\b", ln)), lines[-1] if lines else "")
        label = ""
        for c in nb.cells:
            for out in c.get("outputs", []):
                if out.get("output_type") == "error":
                    label = c.metadata.get("quarto_options", {}).get("label", "")
        raise RenderError(f"report.qmd cell {label or '?'} failed: {last.strip()}") from None
    finally:
        if km is not None:
            if km.has_kernel:
                km.shutdown_kernel(now=False)
            if sock_dir:
                shutil.rmtree(sock_dir, ignore_errors=True)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def assemble(meta: dict, nb, defaults: dict, fig_dir: Path, doc_dir: Path) -> str:
    """The executed notebook as one pandoc markdown document (figures as PNG files next to it)."""
    parts = ["---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"] if meta else []
    n_img = 0
    for c in nb.cells:
        if c.cell_type == "markdown":
            parts.append(c.source)
            continue
        opts = {**defaults, **c.metadata.get("quarto_options", {})}
        if opts.get("include") is False:
            continue
        if opts.get("echo", True):
            code = "\n".join(ln for ln in c.source.splitlines() if not OPTION.match(ln))
            parts.append(f"```python\n{code.strip()}\n```")
        if opts.get("output") is False:
            continue
        asis = opts.get("output") == "asis"
        for out in c.get("outputs", []):
            t = out.get("output_type")
            if t == "stream":
                if out.get("name") == "stderr":
                    if opts.get("warning", True) is not False:
                        print(f"  (cell {opts.get('label', '?')} wrote to stderr: {out['text'].strip()[:300]})")
                    continue
                parts.append(out["text"] if asis else f"```\n{out['text'].rstrip()}\n```")
            elif t in ("display_data", "execute_result"):
                data = out.get("data", {})
                if "image/png" in data:
                    n_img += 1
                    path = fig_dir / f"cell-{opts.get('label', 'fig')}-{n_img}.png"
                    path.write_bytes(base64.b64decode(data["image/png"]))
                    parts.append(f"![]({Path(os.path.relpath(path, doc_dir)).as_posix()})")
                elif "text/markdown" in data:
                    parts.append(data["text/markdown"])
                elif "text/plain" in data and not asis:
                    parts.append(f"```\n{data['text/plain']}\n```")
    return "\n\n".join(p.strip("\n") for p in parts) + "\n"


# ----------------------------------------------------------------------------------------------- pandoc
def pandoc_path() -> str:
    import pypandoc
    return pypandoc.get_pandoc_path()


def run_pandoc(args: list[str], cwd: Path) -> None:
    proc = subprocess.run([pandoc_path(), *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RenderError(f"pandoc failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    for line in proc.stderr.strip().splitlines():
        print(f"  pandoc: {line}")


def common_args(fmt_cfg: dict) -> list[str]:
    args = []
    if fmt_cfg.get("toc"):
        args += ["--toc", f"--toc-depth={fmt_cfg.get('toc-depth', 2)}"]
    if fmt_cfg.get("number-sections"):
        args.append("--number-sections")
    return args


def write_html(md: Path, out: Path, cfg: dict) -> None:
    html = (cfg.get("format") or {}).get("html") or {}
    args = [md.name, "-f", "markdown", "-t", "html5", "--standalone", "--embed-resources", "-o", str(out),
            *common_args(html)]
    css = html.get("css")
    for c in ([css] if isinstance(css, str) else css or []):
        args += ["--css", str(ROOT / c)]
    run_pandoc(args, md.parent)


def write_pdf(md: Path, out: Path, cfg: dict) -> None:
    import typst
    ty = (cfg.get("format") or {}).get("typst") or {}
    meta = {k: ty[k] for k in ("papersize", "margin", "fontsize") if k in ty}
    if ty.get("number-sections"):
        meta["section-numbering"] = "1.1"
    meta["page-numbering"] = "1"
    meta_file = md.parent / "typst-meta.yaml"
    meta_file.write_text(yaml.safe_dump(meta))
    typ = md.with_suffix(".typ")
    args = [md.name, "-f", "markdown", "-t", "typst", "--standalone", "--metadata-file", meta_file.name,
            "-o", typ.name, *[a for a in common_args(ty) if a != "--number-sections"]]
    header = ty.get("include-in-header")
    for h in ([header] if isinstance(header, str) else header or []):
        args += ["--include-in-header", str(ROOT / h)]
    run_pandoc(args, md.parent)
    try:
        if hasattr(typst, "compile_with_warnings"):
            _, warnings = typst.compile_with_warnings(str(typ), output=str(out), root=str(md.parent))
            for w in warnings:
                print(f"  typst warning: {getattr(w, 'message', w)}")
        else:
            typst.compile(str(typ), output=str(out), root=str(md.parent))
    except Exception as e:  # typst.TypstError
        raise RenderError(f"typst failed on {typ}: {getattr(e, 'message', str(e)).splitlines()[0]}") from None


# ----------------------------------------------------------------------------------------------- main
def render_quarto(out: Path, env: dict, formats: list[str]) -> None:
    cmd = ["quarto", "render", str(QMD), "--output-dir", str(out)]
    if len(formats) == 1:
        cmd += ["--to", {"html": "html", "pdf": "typst"}[formats[0]]]
    # Quarto runs the cells with this interpreter (the report environment), not whatever python is on PATH.
    proc = subprocess.run(cmd, cwd=ROOT, env={"QUARTO_PYTHON": sys.executable, **os.environ, **env})
    if proc.returncode != 0:
        raise RenderError(f"quarto render failed with exit code {proc.returncode}")


def render(results: Path | None = None, out: Path | None = None, runs: str | None = None, engine: str = "auto",
           formats: tuple[str, ...] = ("html", "pdf"), build_dir: Path | None = None, strict: bool = False,
           qmd: Path = QMD) -> dict[str, Path]:
    t0 = time.perf_counter()
    results = Path(results or os.environ.get("REPORT_RESULTS") or load.DEFAULT_RESULTS).resolve()
    out = Path(out or ROOT / "_site").resolve()
    use_quarto = engine == "quarto" or (engine == "auto" and shutil.which("quarto"))
    n = 3 if use_quarto else 6
    step(1, n, f"checking runs in {results}")
    sel = load.select(results, runs)  # raises ReportError naming a malformed file
    for note in sel.notes:
        print(f"  note: {note}")
    if not sel.runs:
        msg = f"no runs in {results} (no folder with a manifest.json)"
        if strict:
            raise load.ReportError(msg)
        print(f"  warning: {msg}: rendering a report that says so")
    else:
        print(f"  runs: {', '.join(r.name for r in sel.runs)} (headline {sel.runs[0].name}; from {sel.source})")
    # The kernel selects again, from the same inputs, so its notes (e.g. "listed but not found") match these.
    listed = runs if isinstance(runs, str) else ",".join(runs) if runs else os.environ.get("REPORT_RUNS", "")
    env = {"REPORT_RESULTS": str(results), "REPORT_RUNS": listed,
           "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    out.mkdir(parents=True, exist_ok=True)
    produced = {}
    if use_quarto:
        step(2, n, "quarto render report.qmd")
        render_quarto(out, env, list(formats))
        produced = {f: out / f"report.{f}" for f in formats}
    else:
        tmp = None
        if build_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="report-build-")
            build = Path(tmp.name)
        else:
            build = Path(build_dir).resolve()
            build.mkdir(parents=True, exist_ok=True)
        try:
            fig_dir = build / "figures"
            fig_dir.mkdir(exist_ok=True)
            step(2, n, f"converting {qmd.name} to a notebook (quarto not found on PATH)")
            meta, cells = parse_qmd(qmd.read_text())
            nb = to_notebook(cells)
            cfg = quarto_config()
            step(3, n, f"executing {sum(c.kind == 'code' for c in cells)} python cells with nbclient")
            env.update(REPORT_FIG_DIR=str(fig_dir), REPORT_DOC_DIR=str(build))
            execute(nb, env)
            step(4, n, "assembling the markdown document")
            defaults = {k: v for k, v in (cfg.get("execute") or {}).items() if k in ("echo", "output", "warning", "include")}
            md = build / "report.md"
            md.write_text(assemble(meta, nb, defaults, fig_dir, build))
            if "html" in formats:
                step(5, n, "pandoc: self-contained HTML")
                write_html(md, out / "report.html", cfg)
                produced["html"] = out / "report.html"
            if "pdf" in formats:
                step(6, n, "pandoc -t typst, then typst: PDF")
                write_pdf(md, out / "report.pdf", cfg)
                produced["pdf"] = out / "report.pdf"
        finally:
            if tmp is not None:
                tmp.cleanup()
    for _f, p in produced.items():
        print(f"  wrote {p} ({p.stat().st_size / 1024:,.0f} KiB)")
    print(f"[render] done in {time.perf_counter() - t0:.1f} s")
    return produced


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.render", description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, help="results folder (default: results/, or $REPORT_RESULTS)")
    ap.add_argument("--out", type=Path, help="output folder (default: _site/)")
    ap.add_argument("--runs", help="comma-separated run names, the first is the headline run "
                                   "(default: $REPORT_RUNS, else results/report.yaml, else every run)")
    ap.add_argument("--engine", choices=("auto", "quarto", "nbclient"), default="auto",
                    help="auto: quarto when it is on PATH, else nbclient + pandoc + typst")
    ap.add_argument("--formats", default="html,pdf", help="html, pdf or both (default html,pdf)")
    ap.add_argument("--build-dir", type=Path, help="keep the intermediate files (markdown, typst, figures) here")
    ap.add_argument("--strict", action="store_true", help="fail when there are no runs instead of rendering a "
                                                          "report that says so")
    a = ap.parse_args(argv)
    formats = tuple(f.strip() for f in a.formats.split(",") if f.strip())
    bad = [f for f in formats if f not in ("html", "pdf")]
    if bad or not formats:
        print(f"error: --formats takes html and/or pdf, got {a.formats!r}", file=sys.stderr)
        return 1
    try:
        render(a.results, a.out, a.runs, a.engine, formats, a.build_dir, a.strict)
    except load.ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except RenderError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
