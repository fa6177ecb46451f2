"""Tokenizers: the model's own, one from the hub / a folder / a GGUF file, or one built here.

`built` makes a small word-level tokenizer from the training rows and the prompt, so the tiny CPU
run needs no download and no vocabulary file in the repo. It is deterministic: the same rows give
the same ids, which resume and the re-run tests rely on.
"""
from __future__ import annotations

import re

from pipeline.model.loading import remote_code
from records.config import ExperimentConfig, from_hub
from records.locate import resolve_file

SPECIALS = ["[PAD]", "[UNK]", "[BOS]", "[EOS]"]
_WORD = re.compile(r"\w+|[^\w\s]")


def vocabulary_words(texts: list[str], chunk: int = 4096) -> list[str]:
    """The sorted distinct words of the lowercased texts. Texts are joined by a newline a chunk at a time: one
    regex call per chunk, not per text (at 550k prompts the per-text calls cost seconds; issue 20). The words are
    the same: no word or symbol match spans a newline, and a newline ends a final sigma's context in str.lower
    as a text's end does."""
    words: set[str] = set()
    for start in range(0, len(texts), chunk):
        words.update(_WORD.findall("\n".join(texts[start:start + chunk]).lower()))
    return sorted(words)


def build_word_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = vocabulary_words(texts)
    vocab = {tok: i for i, tok in enumerate(SPECIALS + words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                   bos_token="[BOS]", eos_token="[EOS]")


def load_tokenizer(cfg: ExperimentConfig, model_dir: str | None, texts_for_built: list[str] | None = None):
    from transformers import AutoTokenizer

    t = cfg.tokenizer
    if t.source == "built":
        tok = build_word_tokenizer(texts_for_built or [])
    elif t.source == "gguf":
        path = resolve_file(t.name, "tokenizer.name", cfg.path("."))
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name, **remote_code(cfg))
    elif t.source in ("hub", "local"):
        name = t.name if t.source == "hub" else str(cfg.path(t.name))
        with from_hub("tokenizer.name", name):
            tok = AutoTokenizer.from_pretrained(name, **remote_code(cfg))
    else:  # the model's own
        with from_hub("model.name", model_dir):
            tok = AutoTokenizer.from_pretrained(model_dir, revision=cfg.model.revision if cfg.model.source == "hub" else None,
                                                **remote_code(cfg))
    # Decoder-only models rarely define padding; reuse EOS so batches can be padded.
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    # The classification head reads the last non-padding token: pad on the right and let the model
    # find the last real token from pad_token_id. The zero-shot scorer handles its own padding.
    tok.padding_side = "right"
    tok.model_max_length = t.max_length
    return tok
