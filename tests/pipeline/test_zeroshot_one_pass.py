"""The zero-shot baseline scores all label words of a prompt in one forward pass (issue 20). Its scores equal
those of one pass per (prompt, word), the code it replaced (kept here as the reference), within 1e-5, with
label words of one and of several tokens, on a tiny random causal LM, eager and SDPA attention."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.engine import predict
from pipeline.model import batching, forward
from pipeline.model.prompts import Prompter
from pipeline.model.tokenizer import build_word_tokenizer
from tests.conftest import ROOT


def multi_pass(model, tokenizer, prompts, label_words, *, batch_size, max_length, multiple, device):
    """The scorer before issue 20: one padded row per (prompt, word)."""
    word_ids = [tokenizer(" " + w, add_special_tokens=False)["input_ids"] for w in label_words]
    prompt_ids = predict.encode(tokenizer, prompts, max_length)
    items = [(r, k) for r in range(len(prompts)) for k in range(len(label_words))]
    seqs = [prompt_ids[r] + word_ids[k] for r, k in items]
    order = np.argsort([len(s) for s in seqs], kind="stable")
    scores = np.zeros(len(items))
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        batch = batching.padded([seqs[i] for i in chunk], tokenizer.pad_token_id, multiple)
        rows, positions, targets, owner = [], [], [], []
        for row, i in enumerate(chunk):
            r, k = items[i]
            for t, token in enumerate(word_ids[k]):
                rows.append(row)
                positions.append(len(prompt_ids[r]) + t - 1)
                targets.append(token)
                owner.append(i)
        logp = forward.token_logprobs(model, batch, torch.tensor(rows), torch.tensor(positions), torch.tensor(targets))
        np.add.at(scores, np.array(owner), logp.numpy())
    return predict.softmax_rows(scores.reshape(len(prompts), len(label_words)))


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("words", [["entailment", "neutral", "contradiction"],
                                   ["yes it follows", "maybe", "no it contradicts"]])
def test_one_pass_scores_equal_one_pass_per_word(attention, words):
    from transformers import PhiConfig, PhiForCausalLM
    frame = pd.read_parquet(ROOT / "data/tiny-nli/full_validation.parquet").head(40)
    prompts = Prompter(ROOT / "templates/nli_prompt.j2", words).many(frame["premise"], frame["hypothesis"])
    tok = build_word_tokenizer(prompts + words)
    torch.manual_seed(0)
    model = PhiForCausalLM(PhiConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                     num_attention_heads=4, max_position_embeddings=256, partial_rotary_factor=0.5,
                                     attn_implementation=attention)).eval()
    kw = dict(batch_size=7, max_length=64, multiple=8, device=torch.device("cpu"))
    with torch.no_grad():
        want = multi_pass(model, tok, prompts, words, **kw)
    got = predict.predict_zeroshot(model, tok, prompts, words, desc="zero-shot", **kw)
    assert got.shape == (40, 3)
    assert np.abs(got - want).max() < 1e-5
    assert np.abs(want - 1 / 3).max() > 1e-3  # the scores differ between words: the comparison means something


def test_each_word_sees_the_prompt_and_itself_only():
    ids, positions, groups = predict.label_rows([5, 6, 7], [[1], [2, 3]])
    assert ids == [5, 6, 7, 1, 2, 3] and positions == [0, 1, 2, 3, 3, 4] and groups == [0, 0, 0, 1, 2, 2]
    allowed = predict.word_attention(torch.tensor([groups + [-1]]))[0]
    assert allowed[4].tolist() == [True, True, True, False, True, False, False]   # word 2's first token
    assert allowed[3].tolist() == [True, True, True, True, False, False, False]   # word 1
    assert allowed[6].tolist() == [False] * 6 + [True]                           # padding: itself
