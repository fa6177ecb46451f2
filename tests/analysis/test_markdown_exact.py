"""analysis.markdown, the one escaping path: the exact markdown each function returns for hostile text, so a
character that stops being escaped (a quote, an ampersand) or a cut moved by one shows as a difference."""
import pytest

from analysis import markdown as md


@pytest.mark.parametrize("ch", list("\\`*_[]<>$@#|~^{}&'\""))
def test_every_special_character_is_backslash_escaped(ch):
    assert md.text(f"a{ch}b") == f"a\\{ch}b"


def test_text_leaves_plain_punctuation_and_says_none():
    assert md.text("a.b-c!(d)+e") == "a.b-c!(d)+e"
    assert md.text(None) == "not recorded"
    already = md.Markdown("**kept**")
    assert md.text(already) is already
    assert md.text(3) == "3"


def test_one_line_collapses_white_space_and_limits():
    assert md.one_line("  a \n\t b  ") == "a b"
    assert md.one_line("abcdef", limit=3) == "abc…"
    assert md.one_line("abc", limit=3) == "abc"
    assert md.one_line("a\x00b\u202ec") == "abc"


def test_words_are_cut_at_max_word_with_a_marker():
    word = "x" * (md.MAX_WORD + 1)
    assert md.bounded(word) == "x" * md.MAX_WORD + "…(+1 characters)"
    assert md.bounded("x" * md.MAX_WORD) == "x" * md.MAX_WORD
    assert md.bounded("abcdef", max_word=4) == "abcd…(+2 characters)"
    long = "ab " * 2000  # 6000 characters of short words: cut at MAX_TEXT
    assert md.bounded(long) == long[:md.MAX_TEXT] + "…(+1,000 characters)"
    assert md.bounded("ab " * 1666) == "ab " * 1666  # 4998: kept
    assert md.bounded("ab " * 1666 + "ab") == "ab " * 1666 + "ab"  # exactly MAX_TEXT: kept whole


def test_plain_is_bounded_and_limited():
    assert md.plain("a\nb", limit=200) == "a b"
    assert md.plain("abcdef", limit=4) == "abcd…"
    assert len(md.plain("a " * 300)) == 201


def test_code_fence_outgrows_backticks():
    assert md.code("a") == "`a`"
    assert md.code("a`b") == "``a`b``"
    assert md.code("``x") == "``` ``x ```"
    assert md.code("x`") == "`` x` ``"
    assert md.code(None) == "`not recorded`"
    assert md.code("") == "`  `"


def test_fenced_block():
    assert md.fenced("a: 1\nb: 2\n") == "```\na: 1\nb: 2\n```"
    assert md.fenced("x", language="yaml") == "```yaml\nx\n```"
    assert md.fenced("````\n") == "`````\n````\n`````"
    assert md.fenced("abcdef", max_word=3) == "```\nabc…(+3 characters)\n```"
    assert md.fenced("a\u202eb") == "```\nab\n```"
    assert md.fenced("\n  x: 1\n\n\n") == "```\n\n  x: 1\n```"  # indentation kept, trailing blank lines not


def test_markup_helpers():
    assert md.show_if(True) == ".content-visible" and md.show_if(0) == ".content-hidden"
    assert md.bullets(["a", "b"]) == "- a\n- b"
    assert md.link("A & B", "sec-x") == "[A \\& B](#sec-x)"
    assert md.Markdown("x")._repr_markdown_() == "x"
    assert md.displayable("a\x07\n\u200eb") == "a\nb"
