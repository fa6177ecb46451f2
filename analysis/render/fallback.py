"""Render a .qmd without Quarto: its cells and inline expressions run in a Jupyter kernel (kernel.py), the
results become one pandoc markdown document (assemble.py), and pandoc and typst write HTML and PDF
(pandoc.py). Format options come from _quarto.yml, overridden by the document's front matter, as in Quarto."""
from __future__ import annotations

from pathlib import Path

import yaml

from analysis.render import assemble, kernel, pandoc, qmd

ROOT = Path(__file__).resolve().parent.parent.parent
QUARTO_YML = ROOT / "_quarto.yml"
DOCUMENT_OPTIONS = ("toc", "toc-depth", "number-sections")   # front-matter keys that apply to every format
OUTPUT = {"html": ".html", "typst": ".pdf"}


def project_config() -> dict:
    return yaml.safe_load(QUARTO_YML.read_text(encoding="utf-8")) or {} if QUARTO_YML.is_file() else {}


def document_formats(meta: dict, project: dict, wanted: list[str]) -> dict[str, dict]:
    """{format: options} this document renders to: its own `format:` (a name or a mapping) or the project's,
    limited to `wanted`; options from the project, then the front matter's, as Quarto merges them."""
    project_formats = project.get("format") or {}
    own = meta.get("format")
    names = [own] if isinstance(own, str) else list(own or project_formats)
    out = {}
    for name in (n for n in names if n in wanted):
        options = dict(project_formats.get(name) or {})
        options.update({k: meta[k] for k in DOCUMENT_OPTIONS if k in meta})
        options.update((own or {}).get(name) or {} if isinstance(own, dict) else {})
        out[name] = options
    return out


def render_document(path: Path, out: Path, build: Path, formats: list[str], env: dict, step) -> dict[str, Path]:
    """Render one .qmd into `out` (`build` keeps the markdown, typst source and figures)."""
    meta, cells = qmd.parse(qmd.read(path), path.name)
    project = project_config()
    targets = document_formats(meta, project, formats)
    if not targets:
        return {}
    nb = kernel.to_notebook(cells)
    if any(c.kind == "code" or qmd.inline_expressions(c.source) for c in cells):
        step(f"{path.name}: executing {sum(c.kind == 'code' for c in cells)} cells and their inline expressions")
        kernel.execute(nb, env, path.name)
    fig_dir = build / f"{path.stem}_files"
    fig_dir.mkdir(parents=True, exist_ok=True)
    defaults = {k: v for k, v in (project.get("execute") or {}).items() if k in ("echo", "output", "warning", "include")}
    document = {k: v for k, v in meta.items() if k != "format"}
    md = build / f"{path.stem}.md"
    md.write_text(assemble.assemble(document, nb, defaults, fig_dir, build, path.name), encoding="utf-8")
    produced = {}
    for name, options in targets.items():
        target = out / f"{path.stem}{OUTPUT[name]}"
        step(f"{path.name}: pandoc{' and typst' if name == 'typst' else ''} -> {target.name}")
        (pandoc.write_html if name == "html" else pandoc.write_pdf)(md, target, options)
        produced[name] = target
    return produced
