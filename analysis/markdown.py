"""The one way text from a config, a manifest or a data table enters the report's markdown.

`text(value)` escapes it; `code(value)` shows it verbatim in a code span. Both return `Markdown`, a str
that IPython (and so Quarto's inline expressions and our fallback renderer) displays as markdown, as is.
A plain str in an inline expression is escaped by Quarto itself, but only partly (not `<`, `|`, `$`, `@`),
so anything that did not come from our own code goes through `text` or `code` first.

Escaping here: markdown and HTML metacharacters are backslash-escaped (pandoc's markdown escapes every
ASCII punctuation mark), line breaks and runs of white space become one space (a value cannot start a
block), and bidirectional control characters are dropped (they could reorder what the reader sees).
"""
from __future__ import annotations

import re

# Markdown / HTML syntax characters; `!` `.` `-` `(` `)` `+` need no escaping once `[` `<` and line starts can't
# form syntax. `&` stops entity references; `'` `"` stop smart quotes from changing the text.
_SPECIAL = re.compile(r"([\\`*_\[\]<>$@#|~^{}&'\"])")
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class Markdown(str):
    """Text that is already markdown: shown as is in a cell's output and in an inline expression."""

    def _repr_markdown_(self) -> str:
        return str(self)


def _one_line(value) -> str:
    """One line: every run of white space (line breaks included) becomes one space."""
    return re.sub(r"\s+", " ", _BIDI.sub("", str(value)))


def text(value) -> Markdown:
    """Untrusted text as markdown that reads exactly as the text (None reads as "not recorded")."""
    if isinstance(value, Markdown):
        return value
    if value is None:
        return Markdown("not recorded")
    return Markdown(_SPECIAL.sub(r"\\\1", _one_line(value)))


def code(value) -> Markdown:
    """Untrusted text in a code span, verbatim: the fence is longer than any run of backticks inside."""
    s = "not recorded" if value is None else _one_line(value)
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s else ""
    return Markdown(f"{fence}{pad}{s}{pad}{fence}")


def fenced(body: str, language: str = "") -> Markdown:
    """A fenced code block around multi-line untrusted text (e.g. a YAML dump): the fence outgrows it."""
    longest = max((len(m) for m in re.findall(r"`{3,}", body)), default=2)
    fence = "`" * (longest + 1)
    return Markdown(f"{fence}{language}\n{_BIDI.sub('', body).rstrip()}\n{fence}")


def show_if(condition) -> Markdown:
    """The class of a div or span that Quarto's conditional content shows (or hides) for this result:

        ::: {`{python} show_if(H.shape_only)`}
        Text only for a shape-only run.
        :::

    Conditional content keys on format and metadata, not on Python values; its bare `.content-visible` /
    `.content-hidden` classes, picked here, make a block depend on a result in both render paths."""
    return Markdown(".content-visible" if condition else ".content-hidden")


def bullets(items) -> Markdown:
    """A bullet list, one item per entry (entries are markdown; escape untrusted parts with text())."""
    return Markdown("\n".join(f"- {item}" for item in items))


def link(title: str, anchor: str) -> Markdown:
    """A link to a section of this document (`anchor` as in `{#sec-time}`)."""
    return Markdown(f"[{text(title)}](#{anchor})")
