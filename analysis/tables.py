"""Markdown pipe tables that pandoc turns into HTML and typst tables alike.

Every cell goes through analysis.markdown.text unless it already is Markdown (a link, bold total, code
span built on purpose), so no value from a run can break a table or inject markup.

Pandoc wraps cell text when a table line is longer than its column limit, with relative column widths
taken from the dashes of the separator line; we size those dashes from the content (or from explicit
`widths`) so wide tables fit a PDF page."""
from __future__ import annotations

from analysis.markdown import Markdown, text

_ALIGN = {"l": ":{}-", "r": "-{}:", "c": ":{}:"}


def table(header: list[str], rows: list[list], align: str | None = None, widths: list[int] | None = None) -> Markdown:
    """header: column titles; rows: cell values; align: one of l/r/c per column; widths: relative widths."""
    n = len(header)
    align = align or "l" * n
    cells = [[text(c) for c in row] for row in rows]
    head = [text(h) for h in header]
    if widths is None:
        widths = [min(max([len(head[j]), *(len(r[j]) for r in cells), 3]), 40) for j in range(n)]
    else:
        scale = max(1.0, 80 / max(sum(widths), 1))  # long separators: pandoc takes these as relative widths
        widths = [max(3, int(round(w * scale))) for w in widths]
    seps = [_ALIGN[align[j]].format("-" * (widths[j] - 2)) for j in range(n)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(seps) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return Markdown("\n" + "\n".join(lines) + "\n")


def key_value(rows: list[tuple], header=("setting", "value")) -> Markdown:
    return table(list(header), [list(r) for r in rows], align="ll")


def bold(value) -> Markdown:
    """A cell in bold (totals)."""
    return Markdown(f"**{text(value)}**")
