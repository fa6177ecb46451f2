"""Read a .qmd file as Quarto does: YAML front matter, then markdown and ```{python} cells in order; a
cell's leading `#| key: value` lines are its options, and `{python} expr` in markdown is an inline
expression (the pattern is Quarto's own, from its Jupyter engine)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

FENCE_OPEN = re.compile(r"^```+\s*\{python([^}]*)\}\s*$")
FENCE_CLOSE = re.compile(r"^```+\s*$")
OPTION = re.compile(r"^#\|\s?(.*)$")
# Quarto's include shortcode on a line of its own: {{< include _file.qmd >}}
INCLUDE = re.compile(r"^\{\{<[ \t]*include[ \t]+(\S+)[ \t]*>\}\}[ \t]*$", re.MULTILINE)
# An inline expression: one backtick (not two), `{python}`, a space or tab, then anything but a backtick.
INLINE = re.compile(r"(^|[^`])`\{python\}[ \t]([^`]+)`", re.MULTILINE)


class QmdError(Exception):
    """The .qmd itself is malformed; str(err) names the file and the place."""


@dataclass
class Cell:
    kind: str                 # "markdown" | "code"
    source: str               # code without its option lines; markdown as written
    options: dict = field(default_factory=dict)


def inline_expressions(markdown: str) -> list[str]:
    """The expressions of a markdown cell, in order (repeats included, as Quarto sends them)."""
    return [m.group(2) for m in INLINE.finditer(markdown)]


def read(path: Path) -> str:
    """A .qmd's text with its includes resolved, as Quarto resolves them before running anything: each
    `{{< include _part.qmd >}}` line becomes that file's text. Only a file beside the document, named as
    Quarto's project leaves unrendered (a leading `_`), and not included from an included file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")

    def part(m: re.Match) -> str:
        name = m.group(1)
        target = path.parent / name
        if "/" in name or "\\" in name or not name.startswith("_") or not target.is_file():
            raise QmdError(f"{path.name}: include {name!r} must name a `_...` file beside it (fix the shortcode)")
        inner = target.read_text(encoding="utf-8")
        if INCLUDE.search(inner):
            raise QmdError(f"{name}: an included file may not include another")
        return inner.rstrip("\n")
    return INCLUDE.sub(part, text)


def split_front_matter(text: str, name: str) -> tuple[dict, str]:
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end != -1:
            try:
                meta = yaml.safe_load(text[4:end]) or {}
            except yaml.YAMLError as e:
                raise QmdError(f"{name}: front matter is not valid YAML ({getattr(e, 'problem', e)})") from None
            return meta, text[end + 5:]
    return {}, text


def _code_cell(lines: list[str], name: str, lineno: int) -> Cell:
    option_lines = []
    while lines and OPTION.match(lines[0]):
        option_lines.append(OPTION.match(lines.pop(0)).group(1))
    try:
        options = yaml.safe_load("\n".join(option_lines)) if option_lines else {}
    except yaml.YAMLError as e:
        raise QmdError(f"{name}: bad cell options before line {lineno} ({getattr(e, 'problem', e)})") from None
    return Cell("code", "\n".join(lines), options if isinstance(options, dict) else {})


def parse(text: str, name: str = "report.qmd") -> tuple[dict, list[Cell]]:
    """Front matter and cells. Markdown between cells is kept as written, so divs may span cells."""
    meta, body = split_front_matter(text, name)
    cells: list[Cell] = []
    buf: list[str] = []
    in_code = False
    for lineno, line in enumerate(body.splitlines(), 1):
        if not in_code and FENCE_OPEN.match(line):
            if "".join(buf).strip():
                cells.append(Cell("markdown", "\n".join(buf).strip("\n")))
            buf, in_code = [], True
        elif in_code and FENCE_CLOSE.match(line):
            cells.append(_code_cell(buf, name, lineno))
            buf, in_code = [], False
        else:
            buf.append(line)
    if in_code:
        raise QmdError(f"{name}: a ```{{python}} cell is never closed")
    if "".join(buf).strip():
        cells.append(Cell("markdown", "\n".join(buf).strip("\n")))
    return meta, cells
