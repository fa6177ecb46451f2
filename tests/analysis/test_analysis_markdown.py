"""The one entrance for untrusted text: what text() / code() / tables / jinja blocks make of hostile values,
checked in the HTML pandoc writes from them (no tag, link, image, math or citation may appear)."""
import re
import subprocess

import pytest

from analysis import blocks
from analysis.markdown import MAX_TEXT, MAX_WORD, Markdown, bullets, code, fenced, plain, show_if, text
from analysis.tables import table

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "![secret](/etc/passwd)",
    "[click](https://evil.example)",
    "`x`{=html} and ```raw```",
    "$x^2$ and @doe2020 and ~~strike~~ and ^sup^",
    "*bold* _it_ **b** \\*",
    "a | b | c",
    "line one\n\n# Heading\n- item",
    "&lt;script&gt; &amp;",
    "right\u202eto\u2066left",
]


def pandoc_html(md: str) -> str:
    import pypandoc
    proc = subprocess.run([pypandoc.get_pandoc_path(), "-f", "markdown", "-t", "html"], input=md, text=True,
                          capture_output=True, check=True)
    return proc.stdout


def visible(html: str) -> str:
    import html as h
    return h.unescape(re.sub(r"<[^>]+>", "", html)).strip()


@pytest.mark.parametrize("value", HOSTILE)
def test_text_reads_exactly_as_the_value_and_makes_no_markup(value):
    html = pandoc_html(f"Before {text(value)} after.")
    assert not re.search(r"<(script|img|a |h1|li|code|em|strong|span|math|del|sup)\b", html), html
    expected = " ".join(re.sub("[\u202a-\u202e\u2066-\u2069]", "", value).split())
    assert visible(html) == f"Before {expected} after."


@pytest.mark.parametrize("value", HOSTILE)
def test_code_is_verbatim(value):
    html = pandoc_html(f"Run {code(value)} now.")
    assert html.count("<code>") == 1 and "<script" not in html and "<img" not in html
    shown = visible(html)
    assert shown.startswith("Run ") and shown.endswith(" now.")


def test_table_cells_escape_unless_markdown():
    md = table(["a", "b"], [["x | y <b>", Markdown("**kept**")]])
    html = pandoc_html(md)
    assert html.count("<td") == 2 and "<b>" not in html and "<strong>kept</strong>" in html


def test_fenced_block_cannot_be_closed_from_inside():
    body = "key: value\n```\n<script>x</script>\n````"
    html = pandoc_html(f"{fenced(body, 'yaml')}\n\nafter")
    assert html.count("<pre") == 1 and "<script>" not in html and "<p>after</p>" in html


def test_jinja_blocks_escape_every_value_that_is_not_markdown(tmp_path, monkeypatch):
    (tmp_path / "probe.md.j2").write_text("- {{ name }} ran {{ option }}\n")
    monkeypatch.setattr(blocks, "TEMPLATE_DIR", tmp_path)
    blocks.environment.cache_clear()
    try:
        md = blocks.render("probe", name="<b>evil</b> *x*", option=code("--stages a,b"))
    finally:
        blocks.environment.cache_clear()
    assert md.strip() == "- \\<b\\>evil\\</b\\> \\*x\\* ran `--stages a,b`"


def test_show_if_and_bullets():
    assert show_if([]) == ".content-hidden" and show_if(["x"]) == ".content-visible"
    assert bullets(["a", "b"]) == "- a\n- b"
    assert text(None) == "not recorded" and text(Markdown("**x**")) == "**x**"
    assert isinstance(text("x"), Markdown) and Markdown("*a*")._repr_markdown_() == "*a*"


def test_long_words_are_cut_with_a_marker_everywhere():
    long, fits = "A" * 5000, "B" * MAX_WORD
    for shown in (visible(pandoc_html(f"x {text(long + ' ' + fits)} y")), visible(pandoc_html(f"x {code(long)} y")),
                  visible(pandoc_html(fenced(f"key: {long}\nother: {fits}"))), plain(long, 10_000)):
        shown = " ".join(shown.split())  # pandoc wraps its HTML lines
        assert "A" * MAX_WORD + "…(+4,936 characters)" in shown and "A" * (MAX_WORD + 1) not in shown, shown[:200]
    assert fits in visible(pandoc_html(text(fits))) and fits in fenced(fits)
    many = " ".join(["word"] * 3000)
    assert text(many).endswith("characters)") and len(text(many)) < MAX_TEXT + 40


def test_control_and_bidirectional_characters_are_dropped():
    value = "red\x1b[31m\x00 text\u202e reversed\u2066 \u200fend"
    for shown in (text(value), code(value), fenced(value), plain(value)):
        assert not re.search("[\x00-\x08\x0e-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]", shown), repr(shown)
    assert plain(value) == "red[31m text reversed end"


def test_plain_is_one_bounded_line_for_labels_and_messages():
    assert plain("a\n\nb\tc") == "a b c" and plain(None) == "None"
    assert plain("x" * 30 + " " + "y" * 30, limit=20) == "x" * 20 + "…"


def test_a_cells_stdout_cut_into_chunks_assembles_as_one_output(tmp_path):
    """The kernel cuts stdout wherever a flush fell; the markdown must not depend on where (it did: a busy
    machine gave the same report with extra blank lines)."""
    import nbformat

    from analysis.render.assemble import assemble
    table = "| a | b |\n|---|---|\n| 1 | 2 |\n"

    def doc(chunks):
        cell = nbformat.v4.new_code_cell("print(t)", metadata={"quarto_options": {"output": "asis", "echo": False}})
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=c) for c in chunks]
        nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_markdown_cell("After.")])
        return assemble({}, nb, {}, tmp_path, tmp_path)

    whole = doc([table])
    assert whole == "| a | b |\n|---|---|\n| 1 | 2 |\n\nAfter.\n"
    assert doc([table[:-1], "\n"]) == whole
    assert doc(["| a | b |\n", "|---|---|\n| 1 | 2 |\n"]) == whole
