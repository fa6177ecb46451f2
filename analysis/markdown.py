"""The one way text from a config, a manifest or a data table enters the report (its markdown, its figures,
the renderer's messages).

`text(value)` escapes it; `code(value)` shows it verbatim in a code span; `fenced(body)` in a code block.
All return `Markdown`, a str that IPython (and so Quarto's inline expressions and our fallback renderer)
displays as markdown, as is. A plain str in an inline expression is escaped by Quarto itself, but only
partly (not `<`, `|`, `$`, `@`), so anything that did not come from our own code goes through these first.
`plain(value)` is the same text for a figure label; `one_line(value)` for a message on the terminal (whole
words: a path in an error must stay whole).

What every one of them does to displayed text:
- markdown and HTML metacharacters are backslash-escaped (pandoc's markdown escapes every ASCII punctuation
  mark), so no tag, link, image, raw block, math or citation can form: nothing in content runs in the
  browser, and nothing makes pandoc embed (read) a local file or fetch a URL;
- line breaks and runs of white space become one space (a value cannot start a block), and control
  characters are dropped;
- bidirectional control characters (U+200E/F, U+202A-E, U+2066-9) are dropped: they could reorder what the
  reader sees;
- a word longer than MAX_WORD characters is cut there, with a marker saying how much was left out, so it
  cannot push a table or a PDF line off the page; a value longer than MAX_TEXT is cut the same way.
"""
from __future__ import annotations

import re

# Markdown / HTML syntax characters; `!` `.` `-` `(` `)` `+` need no escaping once `[` `<` and line starts can't
# form syntax. `&` stops entity references; `'` `"` stop smart quotes from changing the text.
_SPECIAL = re.compile(r"([\\`*_\[\]<>$@#|~^{}&'\"])")
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # C0 / C1 controls other than white space
MAX_WORD = 64     # a sha256 in hex still fits; anything longer is no word a reader needs whole on the page
MAX_TEXT = 5000   # a premise or a description is far shorter


def _cut(s: str, keep: int) -> str:
    return f"{s[:keep]}…(+{len(s) - keep:,} characters)"


def bounded(s: str, max_word: int = MAX_WORD) -> str:
    """`s` with its long words (and itself, when very long) cut, each cut marked."""
    s = re.sub(r"\S{%d,}" % (max_word + 1), lambda m: _cut(m.group(0), max_word), s)
    return _cut(s, MAX_TEXT) if len(s) > MAX_TEXT else s


def displayable(value) -> str:
    """Untrusted text as it may be displayed (still multi-line): no control or bidirectional characters."""
    return _CONTROL.sub("", _BIDI.sub("", str(value)))


class Markdown(str):
    """Text that is already markdown: shown as is in a cell's output and in an inline expression."""

    def _repr_markdown_(self) -> str:
        return str(self)


def one_line(value, limit: int | None = None) -> str:
    """One line: every run of white space (line breaks included) becomes one space; no control characters;
    with `limit`, at most that many characters (then "…")."""
    s = re.sub(r"\s+", " ", displayable(value)).strip()
    return s if limit is None or len(s) <= limit else s[:limit] + "…"


def _one_line(value) -> str:
    return bounded(one_line(value))


def plain(value, limit: int = 200) -> str:
    """Untrusted text for a figure label: one bounded line of at most `limit` characters."""
    return one_line(_one_line(value), limit)


def text(value) -> Markdown:
    """Untrusted text as markdown that reads exactly as the text (None reads as "not recorded")."""
    if isinstance(value, Markdown):
        return value
    if value is None:
        return Markdown("not recorded")
    return Markdown(_SPECIAL.sub(r"\\\1", _one_line(value)))


def spaced(value) -> Markdown:
    """text(value), keeping one space where the value starts or ends with white space: for a piece of a
    sentence that is joined to a code span ("Run " + `gelu_new` + " as ..."), whose spaces text() would drop."""
    s = str(value)
    lead = " " if s[:1].isspace() else ""
    trail = " " if s[-1:].isspace() and s.strip() else ""
    return Markdown(lead + text(s) + trail)


def code(value) -> Markdown:
    """Untrusted text in a code span, verbatim: the fence is longer than any run of backticks inside."""
    s = "not recorded" if value is None else _one_line(value)
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s else ""
    return Markdown(f"{fence}{pad}{s}{pad}{fence}")


def fenced(body: str, language: str = "", max_word: int = MAX_WORD) -> Markdown:
    """A fenced code block around multi-line untrusted text (e.g. a YAML dump): the fence outgrows it."""
    lines = [bounded(ln, max_word) for ln in displayable(body).rstrip().splitlines()]
    longest = max((len(m) for ln in lines for m in re.findall(r"`{3,}", ln)), default=2)
    fence = "`" * (longest + 1)
    return Markdown(fence + language + "\n" + "\n".join(lines) + "\n" + fence)


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
