"""Markdown pipe tables that pandoc turns into HTML and typst tables alike.

Pandoc wraps cell text when a table line is longer than its column limit, with relative column widths
taken from the dashes of the separator line; we size those dashes from the content (or from explicit
`widths`) so wide tables fit a PDF page."""
from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_\[\]<>$@#|~^{}])")


def esc(text) -> str:
    """Escape a value for use inside a markdown table cell (one line, markdown specials escaped)."""
    s = " ".join(str(text).split())
    return _SPECIAL.sub(r"\\\1", s)


def md_table(header: list[str], rows: list[list], align: str | None = None, widths: list[int] | None = None,
             raw: bool = False, caption: str | None = None) -> str:
    """header: column titles; rows: cell values (already formatted strings are kept as they are);
    align: one of l/r/c per column; widths: relative widths (forces wrapping); raw: do not escape cells."""
    n = len(header)
    align = align or "l" * n
    cells = [[str(c) if raw else esc(c) for c in row] for row in rows]
    head = [esc(h) for h in header]
    if widths is None:
        widths = []
        for j in range(n):
            longest = max([len(head[j])] + [len(r[j]) for r in cells])
            widths.append(min(max(longest, 3), 40))
        total = sum(widths)
        if total + 3 * n > 72:  # pandoc will wrap: keep the proportions of the content
            pass
    else:
        scale = max(1.0, 80 / max(sum(widths), 1))  # long separator: pandoc takes these as relative widths
        widths = [max(3, int(round(w * scale))) for w in widths]
    seps = []
    for j in range(n):
        d = "-" * widths[j]
        a = align[j]
        seps.append(":" + d[1:] if a == "l" else d[:-1] + ":" if a == "r" else ":" + d[2:] + ":" if a == "c" else d)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(seps) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    out = "\n".join(lines)
    if caption:
        out += f"\n\n: {caption}"
    return "\n" + out + "\n"


def key_value(rows: list[tuple[str, str]], header=("setting", "value"), widths=None, raw=False) -> str:
    return md_table(list(header), [list(r) for r in rows], align="ll", widths=widths, raw=raw)
