"""The memory-mapped token cache of the training rows (pipeline/model/token_cache.py, issue 20): the ids and the
batches built from them are those of the in-memory path it replaced; it is reused without tokenizing again, and
rebuilt when the rows, the prompt or the tokenizer change, or when it is damaged."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from pipeline.engine import loop
from pipeline.engine.distributed import Dist
from pipeline.engine.predict import encode
from pipeline.model import token_cache
from pipeline.model.prompts import Prompter
from pipeline.model.tokenizer import build_word_tokenizer
from records.config_reading import load_config
from tests.conftest import ROOT

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


class Counting:
    """A tokenizer that counts the prompts it is asked to tokenize."""

    def __init__(self, tok):
        self.tok, self.prompts = tok, 0

    def __call__(self, texts, **kw):
        self.prompts += len(texts)
        return self.tok(texts, **kw)

    def __getattr__(self, name):
        return getattr(self.tok, name)


@pytest.fixture(scope="module")
def rows():
    frame = pd.read_parquet(ROOT / "data/tiny-nli/full_train.parquet")
    prompter = Prompter(ROOT / "templates/nli_prompt.j2", ["entailment", "neutral", "contradiction"])
    prompts = prompter.many(frame["premise"], frame["hypothesis"])
    return prompts, frame["label"].fillna(0).astype("int64").to_numpy()


def _cache(root, prompts, tok, key=None, max_length=64):
    return token_cache.load_or_build(root, key or {"data": "d1"}, tok, max_length, len(prompts),
                                     lambda a, b: prompts[a:b])


def test_ids_and_batches_are_those_of_the_in_memory_path(rows, tmp_path, monkeypatch):
    prompts, labels = rows
    tok = build_word_tokenizer(prompts)
    monkeypatch.setattr(token_cache, "CHUNK_ROWS", 37)  # several chunks, the last one short
    cache = _cache(tmp_path, prompts, tok, max_length=20)  # some prompts are cut
    listed = encode(tok, prompts, 20)
    assert len(cache) == len(listed) and [cache[i] for i in range(len(cache))] == listed
    assert any(len(s) == 20 for s in listed)
    cfg = load_config(ROOT / "configs/tiny-cpu.yaml", ["train.micro_batch_size=8"], check_files=False)
    order = loop.epoch_order(len(listed), cfg.seed, 2)
    old = loop._plan(cfg, listed, labels, order, micro=8, dist=Dist(), pad_id=0, pin=False)
    new = list(loop._steps(cfg, cache, labels, order, micro=8, dist=Dist(), pad_id=0, pin=False))
    assert len(old) == len(new) == 20
    for (tokens_a, a), (tokens_b, b) in zip(old, new, strict=True):
        assert tokens_a == tokens_b
        for (batch_a, y_a, w_a), (batch_b, y_b, w_b) in zip(a, b, strict=True):
            assert w_a == w_b and torch.equal(y_a, y_b)
            assert batch_a.tensors().keys() == batch_b.tensors().keys()
            assert all(torch.equal(batch_a.tensors()[k], batch_b.tensors()[k]) for k in batch_a.tensors())
    resumed = list(loop._steps(cfg, cache, labels, order, micro=8, dist=Dist(), pad_id=0, pin=False, skip=13))
    assert [t for t, _ in resumed] == [t for t, _ in new[13:]]


def test_reused_without_tokenizing_and_rebuilt_when_an_input_changes(rows, tmp_path):
    prompts, _ = rows
    tok = Counting(build_word_tokenizer(prompts))
    first = _cache(tmp_path, prompts, tok)
    assert tok.prompts == len(prompts)
    again = _cache(tmp_path, prompts, tok)
    assert tok.prompts == len(prompts)  # opened, not tokenized
    assert again.folder == first.folder and again[5] == first[5]
    _cache(tmp_path, prompts, tok, key={"data": "d2"})  # other rows
    assert tok.prompts == 2 * len(prompts)
    _cache(tmp_path, prompts, tok, max_length=16)
    assert tok.prompts == 3 * len(prompts)
    other = Counting(build_word_tokenizer(prompts + ["zebra"]))  # one more word: other ids
    assert token_cache.tokenizer_fingerprint(other) != token_cache.tokenizer_fingerprint(tok)
    _cache(tmp_path, prompts, other)
    assert other.prompts == len(prompts)
    same = Counting(build_word_tokenizer(list(reversed(prompts))))  # built alike: the same tokenizer
    _cache(tmp_path, prompts, same)
    assert same.prompts == 0
    assert len([p for p in tmp_path.iterdir()]) == 4 and not list(tmp_path.glob("*.tmp"))


def test_a_damaged_cache_is_rebuilt(rows, tmp_path):
    prompts, _ = rows
    tok = Counting(build_word_tokenizer(prompts))
    cache = _cache(tmp_path, prompts, tok)
    want = cache[3]
    data = bytearray((cache.folder / "tokens.i32").read_bytes())
    data[40] ^= 0xFF
    (cache.folder / "tokens.i32").write_bytes(bytes(data))
    again = _cache(tmp_path, prompts, tok)
    assert tok.prompts == 2 * len(prompts) and again[3] == want
