"""Training prompts tokenized once into a flat on-disk cache, read through memory maps.

Why: at 550k rows, tokenizing every prompt into Python lists took 57 s and +4.5 GB of host memory (issue 20): a
Python int costs 28 bytes plus an 8-byte list slot, for a token id that fits in 4. Here the ids of all prompts
are one int32 file (`tokens.i32`) and each prompt's start one int64 file (`offsets.i64`, n + 1 entries). Both are
memory-mapped: only the pages the current batches touch are resident, and the OS can drop them again.

The folder's name is a fingerprint of everything the ids depend on: the caller's key (which rows and how their
prompt is rendered: the data stage's fingerprint, the template's bytes, the label words), `max_length`, and the
tokenizer itself (`tokenizer_fingerprint`: its whole serialised model, normaliser, pre- and post-processor). So a
re-run with the same data and tokenizer opens the cache without tokenizing anything, and a change to either
builds a new one. It lives under the model cache (.cache/tokens/, or $NLI_CACHE), never in results/.

A cache is written into a fresh temporary folder and renamed into place: a kill leaves no half cache under the
real name. `meta.json` records the sizes and sha256 of both files and is checked on every open (about 0.2 s at
550k rows): a damaged cache is rebuilt, never read.
"""
from __future__ import annotations

import contextlib
import gc
import itertools
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from records.errors import refuse_link
from records.hashing import file_sha256, fingerprint

FORMAT = 1            # bump when the layout changes: old caches are then simply not found
CHUNK_ROWS = 4096     # prompts rendered and tokenized at a time: bounds the host memory of a build


def tokenizer_fingerprint(tokenizer) -> str:
    """What decides the ids a tokenizer gives: for a fast tokenizer its whole serialised pipeline, else its
    vocabulary; and the special tokens. Not its name or path (the same tokenizer from two folders is one)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    model = backend.to_str() if backend is not None else sorted(tokenizer.get_vocab().items())
    return fingerprint({"class": type(tokenizer).__name__, "model": model,
                        "special": {k: str(v) for k, v in tokenizer.special_tokens_map.items()}})


class TokenCache:
    """Read-only sequences of token ids: `cache[i]` is row i's ids as a list (what batching takes)."""

    def __init__(self, folder: Path):
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        self.folder, self.rows, self.total = folder, int(meta["rows"]), int(meta["tokens"])
        self.offsets = np.memmap(folder / "offsets.i64", dtype=np.int64, mode="r", shape=(self.rows + 1,))
        self.tokens = np.memmap(folder / "tokens.i32", dtype=np.int32, mode="r", shape=(self.total,)) \
            if self.total else np.zeros(0, dtype=np.int32)  # numpy cannot map an empty file
        self.lengths = np.diff(self.offsets)  # 8 bytes a row: read for every step's token count

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, i) -> list[int]:
        return self.tokens[self.offsets[i]:self.offsets[i + 1]].tolist()


def _intact(folder: Path) -> bool:
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        return all((folder / name).stat().st_size == rec["bytes"] and file_sha256(folder / name) == rec["sha256"]
                   for name, rec in meta["files"].items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


@contextlib.contextmanager
def _no_gc():
    """The cyclic garbage collector paused: a build makes and drops millions of lists and encodings, none in a
    cycle (refcounting frees them), and each collection walks every object of torch and transformers as well
    (3.6 s at 550k rows, issue 20)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def plain_backend(tokenizer):
    """The Rust tokenizer behind `tokenizer` when calling it directly gives the ids that calling `tokenizer` gives:
    a plain PreTrainedTokenizerFast (as `built` makes; a subclass may change how text is encoded) whose backend
    neither truncates nor pads and splits special tokens as the wrapper asks. Else None.
    Why: the wrapper turns each encoding into a dict of lists (about 15 us a prompt, 8 s at 550k rows; issue 20),
    and the backend's encode_batch_fast skips the character offsets nobody here reads."""
    from transformers import PreTrainedTokenizerFast
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if type(tokenizer) is not PreTrainedTokenizerFast or backend is None or not hasattr(backend, "encode_batch_fast"):
        return None
    if backend.truncation is not None or backend.padding is not None or \
            backend.encode_special_tokens != bool(tokenizer.split_special_tokens):
        return None
    return backend


def _ids(tokenizer, texts: list[str]) -> list[list[int]]:
    """Each text's ids with the tokenizer's special tokens, as `tokenizer(texts)["input_ids"]` gives them."""
    backend = plain_backend(tokenizer)
    if backend is None:
        return tokenizer(texts, add_special_tokens=True, return_attention_mask=False,
                         return_token_type_ids=False)["input_ids"]
    return [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=True)]


def _first_ids(ids: list[list[int]], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """(each sequence's first max_length ids, concatenated as int32; their lengths). Flattened by C-level
    iteration and cut with array indexing: a Python loop over every token cost seconds at 550k rows (issue 20)."""
    full = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
    flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int32, count=int(full.sum()))
    lengths = np.minimum(full, max_length)
    if (lengths == full).all():
        return flat, lengths
    position = np.arange(len(flat)) - np.repeat(np.cumsum(full) - full, full)  # index within its sequence
    return flat[position < np.repeat(lengths, full)], lengths


def _build(tmp: Path, tokenizer, max_length: int, n: int, prompts) -> None:
    """Tokenize rows 0..n-1 chunk by chunk, appending to the two files; `prompts(start, stop)` renders a chunk."""
    offsets = np.zeros(n + 1, dtype=np.int64)
    with _no_gc(), open(tmp / "tokens.i32", "wb") as out:
        for start in range(0, n, CHUNK_ROWS):
            stop = min(n, start + CHUNK_ROWS)
            ids = _ids(tokenizer, prompts(start, stop))
            flat, lengths = _first_ids(ids, max_length)
            offsets[start + 1:stop + 1] = offsets[start] + np.cumsum(lengths)
            flat.tofile(out)
    offsets.tofile(tmp / "offsets.i64")
    files = {name: {"bytes": (tmp / name).stat().st_size, "sha256": file_sha256(tmp / name)}
             for name in ("tokens.i32", "offsets.i64")}
    (tmp / "meta.json").write_text(json.dumps({"format": FORMAT, "rows": n, "tokens": int(offsets[-1]),
                                               "max_length": max_length, "files": files}), encoding="utf-8")


def load_or_build(root: Path, key: dict, tokenizer, max_length: int, n: int, prompts) -> TokenCache:
    """The cache of these n prompts under `root` (built first if absent or damaged)."""
    name = fingerprint({"format": FORMAT, "key": key, "max_length": max_length, "n": n,
                        "tokenizer": tokenizer_fingerprint(tokenizer)})
    root = Path(root)
    final = root / name
    refuse_link(root)
    refuse_link(final)
    if final.is_dir() and _intact(final):
        return TokenCache(final)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{name}.", suffix=".tmp", dir=root))
    try:
        _build(tmp, tokenizer, max_length, n, prompts)
        shutil.rmtree(final, ignore_errors=True)  # a damaged one
        try:
            tmp.rename(final)
        except OSError:  # another process renamed its identical cache into place first: use that one
            if not (final.is_dir() and _intact(final)):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return TokenCache(final)
