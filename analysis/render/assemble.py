"""An executed notebook as one pandoc markdown document, following Quarto's Jupyter rules:

- an inline expression becomes its value: text/markdown as is, text/plain as Quarto writes it (a quoted
  string unquoted and escaped, anything else as is); an empty value leaves the expression's code in place,
  as Quarto does. An inline value that only has an HTML form is refused: Quarto would show it differently
  in HTML and in the PDF.
- a cell with `output: asis` contributes its printed text as markdown; otherwise text is a code block.
- an image output becomes a figure: its caption from `fig-cap`, its alt text from `fig-alt`.
Options come from the cell, then from _quarto.yml's `execute:` block."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import yaml

from analysis.render.qmd import INLINE, OPTION

# Quarto's asEscapedMarkdown (jupyter-inline.ts): `+-.` in its JavaScript class is a range, so `,` is escaped too.
_QUARTO_ESCAPE = re.compile(r"([\\`*_{}\[\]()>#+,\-.!])")


class AssembleError(Exception):
    """An output Quarto would render differently, or not at all; str(err) names the expression or cell."""


def plain_text_value(s: str) -> str:
    """A text/plain inline value as Quarto writes it into the markdown."""
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        return _QUARTO_ESCAPE.sub(r"\\\1", s[1:-1].replace("\\", "\\\\"))
    return s


def inline_value(expr: str, data: dict, name: str) -> str:
    if "text/markdown" in data:
        return str(data["text/markdown"])
    if "text/html" in data or not {"text/plain"} >= set(data):
        raise AssembleError(f"{name}: inline expression `{expr}` gives {', '.join(sorted(data))}: return text "
                            "(analysis.markdown.Markdown) or a number, which render the same in HTML and PDF")
    return plain_text_value(str(data["text/plain"]))


def resolve_inline(source: str, results: list[dict], name: str) -> str:
    """Quarto's resolveUserExpressions: each `{python} expr` replaced by its value."""
    values = {r["expression"].strip(): inline_value(r["expression"].strip(), r["result"].get("data", {}), name)
              for r in results}

    def replace(m: re.Match) -> str:
        value = values.get(m.group(2).strip())
        return m.group(1) + value if value else m.group(0)
    return INLINE.sub(replace, source)


def _attribute(text: str) -> str:
    return '"' + " ".join(str(text).split()).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _merged_streams(outputs: list) -> list[tuple[int, dict]]:
    """Consecutive stream outputs of one name as one: the kernel cuts a cell's stdout into chunks wherever a
    flush fell (on a busy machine, say, between a table and its last newline), and each chunk would otherwise
    become a paragraph of its own, so the same results gave markdown that differed in blank lines."""
    merged: list[tuple[int, dict]] = []  # (the output's number in the cell, as figure files are named, output)
    for n, out in enumerate(outputs, 1):
        prev = merged[-1][1] if merged else None
        if (out.get("output_type") == "stream" and prev is not None and prev.get("output_type") == "stream"
                and prev.get("name") == out.get("name")):
            merged[-1] = (merged[-1][0], {**prev, "text": prev["text"] + out["text"]})
        else:
            merged.append((n, out))
    return merged


def _outputs(cell, opts: dict, fig_dir: Path, doc_dir: Path) -> list[str]:
    parts, asis, label = [], opts.get("output") == "asis", opts.get("label", "cell")
    for n, out in _merged_streams(cell.get("outputs", [])):
        kind = out.get("output_type")
        if kind == "stream":
            if out.get("name") == "stderr":
                continue  # _quarto.yml: warning: false
            parts.append(out["text"] if asis else f"```\n{out['text'].rstrip()}\n```")
        elif kind in ("display_data", "execute_result"):
            data = out.get("data", {})
            if "image/png" in data:
                path = fig_dir / f"{label}-{n}.png"
                path.write_bytes(base64.b64decode(data["image/png"]))
                attrs = ([f"#{label}"] if label.startswith("fig-") and n == 1 else []) + \
                    ([f"fig-alt={_attribute(opts['fig-alt'])}"] if opts.get("fig-alt") else [])
                attr = "{" + " ".join(attrs) + "}" if attrs else ""
                parts.append(f"![{opts.get('fig-cap', '')}]({path.relative_to(doc_dir).as_posix()}){attr}")
            elif "text/markdown" in data:
                parts.append(data["text/markdown"])
            elif "text/plain" in data:
                parts.append(data["text/plain"] if asis else f"```\n{data['text/plain']}\n```")
    return parts


def _table_caption(parts: list[str], opts: dict) -> list[str]:
    """A cell labelled `tbl-...` with `tbl-cap`: its table gets the caption and the label (pandoc's
    `: caption {#tbl-x}` after the table), so @tbl-x can refer to it, as Quarto does. No output, no caption."""
    label, cap = str(opts.get("label", "")), opts.get("tbl-cap")
    text = "\n\n".join(p.strip("\n") for p in parts).strip()
    if not (label.startswith("tbl-") and cap and text):
        return parts
    return [f"{text}\n\n: {' '.join(str(cap).split())} {{#{label}}}"]


def assemble(meta: dict, nb, defaults: dict, fig_dir: Path, doc_dir: Path, name: str = "report.qmd") -> str:
    """The document as pandoc markdown; figures are written into fig_dir (inside doc_dir)."""
    parts = ["---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"] if meta else []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            parts.append(resolve_inline(cell.source, cell.metadata.get("user_expressions", []), name))
            continue
        opts = {**defaults, **cell.metadata.get("quarto_options", {})}
        if opts.get("include") is False:
            continue
        if opts.get("echo", True):
            code = "\n".join(ln for ln in cell.source.splitlines() if not OPTION.match(ln))
            parts.append(f"```python\n{code.strip()}\n```")
        if opts.get("output") is not False:
            parts += _table_caption(_outputs(cell, opts, fig_dir, doc_dir), opts)
    return "\n\n".join(p.strip("\n") for p in parts) + "\n"
