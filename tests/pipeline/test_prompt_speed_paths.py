"""The fast paths of the 550k-row route to step 1 (issue 20) give what the per-row paths they replaced gave:
the same prompts as jinja2's render, the same vocabulary as a regex call per prompt, the same token ids as
tokenizing each prompt alone and cutting it."""
from __future__ import annotations

import pandas as pd
import pytest

from pipeline.model import token_cache
from pipeline.model.prompts import Prompter, row_format
from pipeline.model.tokenizer import _WORD, build_word_tokenizer, vocabulary_words
from records.templates import checked
from tests.conftest import ROOT

LABELS = ["entailment", "neutral", "contradiction"]
# Text that a format pattern or a join could mistake for its own: braces, format fields, the marks, newlines,
# sigmas whose lowercase depends on what follows, combining marks, tabs and spaces at both ends.
ODD = [" A {x} }{ man\n ", "{0} {1} {} %s", "\x00premise\x00 and \x00hypothesis\x00", "ΟΔΟΣ", "ΣA", "\u0301Σ",
       "", "\t tail  ", "İstanbul straße", "a.b,c-d_e"]


@pytest.fixture(scope="module")
def frame():
    return pd.read_parquet(ROOT / "data/tiny-nli/full_train.parquet")


def test_prompts_are_jinja2s_render_row_by_row(frame):
    prompter = Prompter(ROOT / "templates/nli_prompt.j2", LABELS)
    assert prompter.pattern is not None  # the project's template takes the fast path
    premises = list(frame["premise"]) + ODD
    hypotheses = list(frame["hypothesis"]) + ODD[::-1]
    assert prompter.many(premises, hypotheses) == [prompter(p, h) for p, h in zip(premises, hypotheses, strict=True)]


@pytest.mark.parametrize("text", ["{{ premise | upper }} / {{ hypothesis }}",   # a filter on a row's text
                                  "{{ labels | join(premise) }} {{ hypothesis }}",  # a row's text as an argument
                                  "has \x00premise\x00 itself: {{ premise }} {{ hypothesis }}"])
def test_templates_that_transform_the_rows_render_row_by_row(text):
    assert row_format(text, checked(text, "test"), LABELS) is None


def test_a_pattern_renders_like_jinja2_whatever_the_order_and_repeats():
    text = "{{ hypothesis }} {x} {{ premise }}|{{ labels | join('}{') }}|{{ premise }}\n\n"
    template = checked(text, "test")
    pattern = row_format(text, template, LABELS)
    assert pattern is not None
    for p, h in zip(ODD, ODD[::-1], strict=True):
        assert pattern.format(p, h) == template.render(premise=p, hypothesis=h, labels=LABELS)


def test_vocabulary_is_that_of_one_regex_call_per_text(frame):
    texts = Prompter(ROOT / "templates/nli_prompt.j2", LABELS).many(frame["premise"], frame["hypothesis"]) + ODD
    per_text = sorted({w for t in texts for w in _WORD.findall(t.lower())})
    assert vocabulary_words(texts) == per_text
    assert vocabulary_words(texts, chunk=3) == per_text  # chunk edges anywhere
    assert {"ς", "οδος"} & set(per_text) == {"οδος"}  # the final sigma case is in the fixture


@pytest.mark.parametrize("specials", [False, True])
def test_cached_ids_are_each_prompt_tokenized_alone_and_cut(frame, tmp_path, monkeypatch, specials):
    """The cache reads the Rust tokenizer directly (token_cache.plain_backend): the ids are still the wrapper's,
    with special tokens added by a post-processor and cut with them, and with special tokens' text in a prompt."""
    from tokenizers.processors import TemplateProcessing
    prompts = Prompter(ROOT / "templates/nli_prompt.j2", LABELS).many(frame["premise"], frame["hypothesis"]) + ODD
    prompts += ["[EOS] inside [PAD]", "[UNK]"]
    tok = build_word_tokenizer(prompts)
    if specials:
        tok.backend_tokenizer.post_processor = TemplateProcessing(
            single="[BOS] $A [EOS]", special_tokens=[("[BOS]", tok.bos_token_id), ("[EOS]", tok.eos_token_id)])
    assert token_cache.plain_backend(tok) is not None  # the direct path is the one tested
    monkeypatch.setattr(token_cache, "CHUNK_ROWS", 29)
    for max_length in (20, 1000):  # some prompts cut (their EOS too); none cut
        cache = token_cache.load_or_build(tmp_path, {"data": "d"}, tok, max_length, len(prompts),
                                          lambda a, b: prompts[a:b])
        alone = [tok(p, add_special_tokens=True)["input_ids"][:max_length] for p in prompts]
        assert [cache[i] for i in range(len(cache))] == alone
        assert specials == (alone[0][0] == tok.bos_token_id)


def test_a_tokenizer_the_wrapper_changes_is_called_through_the_wrapper(frame):
    tok = build_word_tokenizer(["a b"])
    tok.backend_tokenizer.enable_truncation(8)  # the wrapper would switch this off for its call
    assert token_cache.plain_backend(tok) is None
    ids = token_cache._ids(tok, ["a b " * 10])
    assert len(ids[0]) == 20  # not cut at 8: what tok(...) gives
