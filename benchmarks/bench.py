"""Training throughput: the plain peft-docs loop against the pipeline's own trainer, in one process.

    python benchmarks/bench.py configs/phi2-shape-h200.yaml [--micro-batches 8,32] [--epochs 3]
                               [--fp16-cap-gib 15] [--set KEY=VALUE ...] [--out benchmarks/results]

Same model weights, rows, data order, seed, learning rate and schedule for every loop:
- `plain`: benchmarks/plain_loop.py (the docs' recipe), run for --plain-steps steps;
- `pipeline`: `pipeline.engine.loop.train` itself (the function `pipeline run` calls), for --epochs epochs, once
  per setting of the ladder below; each line adds one change to the line above, so the record shows
  what each change bought.
Warm-up is excluded and said so: the plain loop's first 10 steps, and the pipeline's first epoch (which
includes the CUDA-graph captures) are reported separately as `first_epoch_seconds`; tokens/s and
s/epoch are the mean of the later epochs, with every epoch's figure listed to show the spread.
Per-step losses of both loops over the first 50 steps are compared with dropout off in both (dropout
draws different masks in different code paths), at the first micro-batch size.
A JSON record goes to --out (commit the H200's); a table is printed at the end.

(Over the project's ~300-line guide: the ladder, the pipeline side of the measurement, the targets and the
printed table all read one record's fields and are checked against each other when one changes; the plain
loop and the profiler helpers live in plain_loop.py and measure.py.)
"""
from __future__ import annotations

import argparse
import atexit
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The ladder: each line adds one change to the line above. (name, train-config changes, other switches);
# `full` lines run --epochs epochs (the first is warm-up), eager lines one epoch (nothing to warm up but
# kernel selection in the first steps). `key` names a line for --ladder; `group` says what it is: history
# (the changes that made the default), default, opt-in (changes numerics), lever (issue 19's candidates).
BUCKETS = 4  # train.length_buckets of the default configs: few shapes to capture and compile, little extra padding
# The train settings before issue 19's levers: the history lines set them, so a config's own (the default below)
# never leaks into the lines that show how the default was reached.
_BEFORE = {"attention": "dense", "length_buckets": None, "compile": "off"}
# The default configs' train settings (configs/phi2-snli.yaml, smollm2-snli-offline.yaml; a test holds them equal).
_DEFAULT = {"packing": True, "cuda_graphs": True, "attention": "dense", "length_buckets": BUCKETS, "compile": "off"}
_WARM = {"half_norms": False, "host_read_every": 16, "full": True}
LADDER = [
    ("eager, padded to a multiple of 32", {**_BEFORE, "packing": False, "cuda_graphs": False},
     {"half_norms": False, "host_read_every": 1, "full": False, "key": "eager", "group": "history"}),
    ("+ packed rows (block-diagonal mask)", {**_BEFORE, "packing": True, "cuda_graphs": False},
     {"half_norms": False, "host_read_every": 1, "full": False, "key": "packed", "group": "history"}),
    ("+ CUDA graphs", {**_BEFORE, "packing": True, "cuda_graphs": True},
     {"half_norms": False, "host_read_every": 1, "full": True, "key": "graphs", "group": "history"}),
    ("+ loss read on the host every 16 steps", {**_BEFORE, "packing": True, "cuda_graphs": True},
     {**_WARM, "key": "host-read", "group": "history"}),
    (f"+ {BUCKETS} length buckets (train.length_buckets: {BUCKETS}): the default", _DEFAULT,
     {**_WARM, "key": "default", "group": "default"}),
    # Issue 19's other levers, each alone on the default, then stacked. Ordered by what a cut-short device call
    # should have measured first (the bench writes its record after every line).
    ("default + compiled decoder layers (train.compile: layers)", {**_DEFAULT, "compile": "layers"},
     {**_WARM, "key": "compile", "group": "lever"}),
    ("default + padded rows (SDPA is_causal, no mask)", {**_DEFAULT, "packing": False},
     {**_WARM, "key": "padded", "group": "lever"}),
    ("default + FlexAttention document mask (train.attention: flex)", {**_DEFAULT, "attention": "flex"},
     {**_WARM, "key": "flex", "group": "lever"}),
    ("default + flex + compiled decoder layers", {**_DEFAULT, "attention": "flex", "compile": "layers"},
     {**_WARM, "key": "stacked", "group": "lever"}),
    ("default + compiled decoder layers + bfloat16 LayerNorm", {**_DEFAULT, "compile": "layers"},
     {**_WARM, "half_norms": True, "key": "compile-bf16-norms", "group": "lever"}),
    ("+ bfloat16 LayerNorm: a bfloat16 residual stream (opt-in: model.half_precision_norms)", _DEFAULT,
     {**_WARM, "half_norms": True, "key": "bf16-norms", "group": "opt-in"}),
]
LINES = {line[2]["key"]: line for line in LADDER}
DEFAULT_LINE = LINES["default"]
# Loss agreement with the plain loop is measured for these, where the ladder run includes them (the default,
# the opt-in that changes numerics, and the compiled layers).
AGREEMENT_LINES = (DEFAULT_LINE, LINES["bf16-norms"], LINES["compile"])
# --ladder: a group of lines by name, or keys separated by commas (e.g. default,flex,stacked)
LADDERS = {"all": [line for line in LADDER if line[2]["group"] != "lever"] + [line for line in LADDER
                                                                             if line[2]["group"] == "lever"],
           "default": [DEFAULT_LINE, LINES["bf16-norms"]],
           "levers": [DEFAULT_LINE] + [line for line in LADDER if line[2]["group"] == "lever"]}


def micro_batch_sizes(text: str) -> list[int]:
    """--micro-batches: positive whole numbers separated by commas, each once."""
    try:
        sizes = [int(x) for x in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1 or len(set(sizes)) != len(sizes):
        raise SystemExit(f"--micro-batches: {text!r} is not a list of sizes (fix: positive whole numbers separated "
                         f"by commas, each once, e.g. 8,32)")
    return sizes


def pick_ladder(name: str) -> list:
    """The ladder lines --ladder names: all, default (the default and its opt-in), levers (the default and
    issue 19's levers), or line keys separated by commas."""
    if name in LADDERS:
        return LADDERS[name]
    keys = [k.strip() for k in name.split(",") if k.strip()]
    unknown = [k for k in keys if k not in LINES]
    if unknown or not keys:
        raise SystemExit(f"--ladder: unknown line {', '.join(unknown) or name!r} (fix: one of {', '.join(LADDERS)}, "
                         f"or keys from {', '.join(LINES)} separated by commas)")
    return [LINES[k] for k in keys]


PLAIN_WARMUP = 10
AGREEMENT_STEPS = 50


def _set_dropout(model, p: float | dict) -> dict:
    """Set every dropout's probability (a number, or the dict this returned before); -> the old values."""
    import torch
    old = {}
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Dropout):
            old[name] = m.p
            m.p = p[name] if isinstance(p, dict) else p
    return old


def _switches(model, half_norms: bool, host_read_every: int) -> None:
    """Flip the switches that are not train-config fields, in place (no reload)."""
    import torch

    import pipeline.engine.loop
    from pipeline.model.loading import LayerNormInInputDtype
    pipeline.engine.loop.HOST_READ_EVERY = host_read_every
    for m in model.modules():
        if isinstance(m, torch.nn.LayerNorm) and m.weight is not None and m.weight.dtype == torch.bfloat16:
            m.__class__ = LayerNormInInputDtype if half_norms else torch.nn.LayerNorm


def _with_train(cfg, **changes):
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **changes))


def _eval_seconds(fn, repeats: int = 3) -> dict:
    import torch
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return {"eval_seconds_200_rows": min(times[1:]), "eval_seconds_each": times,
            "eval_note": "first call is warm-up; the figure is the best of the later calls"}


def _peaks() -> dict:
    import torch
    if not torch.cuda.is_available():
        return {"peak_allocated_bytes": None, "peak_reserved_bytes": None}
    return {"peak_allocated_bytes": float(torch.cuda.max_memory_allocated()),
            "peak_reserved_bytes": float(torch.cuda.max_memory_reserved())}


def run_plain(ctx, cfg, mb: int, steps: int, epochs: int) -> tuple[dict, list[float]]:
    """`epochs` sets the learning-rate schedule's length (the pipeline run compared with it uses the same)."""
    import torch

    from benchmarks.measure import StepProfiler, flops_per_token
    from benchmarks.plain_loop import pad_longest, reference_config, train_plain
    from pipeline.model.loading import add_lora, free, load_classifier
    ref = reference_config(_with_train(cfg, batch_size=mb, epochs=epochs))
    model = add_lora(ref, load_classifier(ref, ctx.location, ctx.tokenizer, ctx.device, ctx.dtype))
    _set_dropout(model, 0.0)
    flops = flops_per_token(model)
    prof = StepProfiler(first=min(steps - 10, 40) if steps > 20 else 2, count=min(10, max(1, steps // 4)))
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    recs = train_plain(ref, model, ctx.seqs, ctx.labels, pad_id=ctx.pad_id, device=ctx.device, dtype=ctx.dtype,
                       epochs=ref.train.epochs, max_steps=steps, on_step=lambda r: prof.step())
    peaks = _peaks()
    warm = [r for r in recs if r["step"] > PLAIN_WARMUP] or recs
    t0 = next((r["seconds"] for r in recs if r["step"] == warm[0]["step"] - 1), 0.0)
    seconds = warm[-1]["seconds"] - t0
    tokens = sum(r["tokens"] for r in warm)
    steps_per_epoch = -(-len(ctx.seqs) // mb)
    model.eval()

    @torch.no_grad()
    def evaluate(model=model):  # the docs' way: batches of 16 in row order, padded to the longest
        for s in range(0, len(ctx.eval_seqs), 16):
            ids, mask = pad_longest(ctx.eval_seqs[s:s + 16], ctx.pad_id, ctx.device)
            with torch.autocast(ctx.device.type, dtype=ctx.dtype, enabled=ctx.dtype != torch.float32):
                model(input_ids=ids, attention_mask=mask).logits.float().cpu()

    row = {"loop": "plain", "setting": "peft docs: prepare_model_for_kbit_training, pad to longest, eager "
           "attention, gelu_new, AdamW", "micro_batch": mb, "dtype": str(ctx.dtype).removeprefix("torch."),
           "tokens_per_s": tokens / seconds, "seconds_per_epoch": seconds / len(warm) * steps_per_epoch,
           "seconds_per_epoch_note": f"mean step time of steps {warm[0]['step']}-{warm[-1]['step']} x "
                                     f"{steps_per_epoch} steps (the first {PLAIN_WARMUP} steps are warm-up)",
           "steps_timed": len(warm), "padding_fraction": 1 - tokens / sum(r["padded_tokens"] for r in warm),
           "dropout": "off", **peaks, **prof.summary(), **flops, **_eval_seconds(evaluate)}
    losses = [r["loss"] for r in recs[:AGREEMENT_STEPS]]
    # A peft model is held in reference cycles, and `evaluate` holds it too: drop both, then collect, or its
    # 4-bit weights stay allocated through the next line and into that line's peak (measured on an H200: 2.87 GiB
    # allocated when the default line started after the plain loop; the levers, run without one, peaked at 2.1-2.4)
    del model, evaluate
    free()
    return row, losses


def run_pipeline(ctx, cfg, model, init, mb: int, epochs: int, line: tuple,
                 dropout: bool = True, suffix: str = "") -> tuple[dict, list[float]]:
    import torch

    from benchmarks.measure import StepProfiler, flops_per_token
    from pipeline.engine.loop import train
    from pipeline.engine.predict import predict_head
    name, changes, switches = line
    name += suffix
    epochs = epochs if switches["full"] else 1
    _switches(model, switches["half_norms"], switches["host_read_every"])
    with torch.no_grad():
        for p, v in zip([p for p in model.parameters() if p.requires_grad], init, strict=True):
            p.copy_(v)
            p.grad = None
    torch.manual_seed(cfg.seed)
    steps_per_epoch = -(-len(ctx.seqs) // mb)
    run_cfg = _with_train(cfg, batch_size=mb, epochs=epochs, **changes)
    run_cfg = dataclasses.replace(run_cfg, output=dataclasses.replace(run_cfg.output, checkpoint_dir=ctx.scratch))
    prof = StepProfiler(first=steps_per_epoch * (epochs - 1) + min(10, steps_per_epoch // 3) + 1,
                        count=min(10, max(1, steps_per_epoch // 3)))
    reserved, seen = [], {}
    # what is already allocated when the line starts (the model, and anything an earlier line or the plain loop
    # left behind): each epoch's peak includes it, so lines compare only where this is alike
    at_start = float(torch.cuda.memory_allocated()) if torch.cuda.is_available() else None

    def on_epoch(epochs_df, steps_df, info):
        seen["epochs"], seen["steps"] = epochs_df, steps_df
        reserved.append(float(torch.cuda.max_memory_reserved()) if torch.cuda.is_available() else None)

    summary = train(run_cfg, model, ctx.tokenizer, ctx.prompter, ctx.samples, device=ctx.device, dtype=ctx.dtype,
                    fingerprint=f"bench-{mb}-{name}", restart=True, on_epoch=on_epoch,
                    on_step=lambda epoch, step: prof.step())
    ep = seen["epochs"]
    warm = ep.iloc[1:] if len(ep) > 1 else ep
    model.eval()
    ev = _eval_seconds(lambda: predict_head(model, ctx.tokenizer, ctx.eval_prompts, None,
                                            batch_size=cfg.eval.batch_size, max_length=cfg.tokenizer.max_length,
                                            multiple=cfg.train.pad_to_multiple_of, device=ctx.device, desc="eval"))
    row = {"loop": "pipeline", "setting": name, "micro_batch": mb, "dtype": str(ctx.dtype).removeprefix("torch."),
           "tokens_per_s": float(warm["tokens"].sum() / warm["seconds"].sum()),
           "tokens_per_s_each_epoch": [round(float(x), 1) for x in ep["tokens_per_s"]],
           "seconds_per_epoch": float(warm["seconds"].mean()),
           "seconds_each_epoch": [round(float(x), 3) for x in ep["seconds"]],
           "first_epoch_seconds": float(ep["seconds"].iloc[0]),
           "seconds_per_epoch_note": "mean of epochs 2.. (epoch 1 is warm-up: graph captures, kernel selection)"
                                     if len(ep) > 1 else "one epoch (eager: only kernel selection to warm up)",
           "padding_fraction": float(1 - ep["tokens"].sum() / ep["padded_tokens"].sum()),
           "peak_allocated_bytes": float(warm["peak_allocated_bytes"].max()) if torch.cuda.is_available() else None,
           "peak_reserved_bytes": max(reserved[1:] or reserved) if torch.cuda.is_available() else None,
           "allocated_at_start_bytes": at_start,
           "peak_note": "per epoch, training steps (allocated) and training + validation (reserved); with CUDA "
                        "graphs the graphs' private pool is reserved, so reserved is the honest figure",
           "dropout": "config" if dropout else "off", "step": summary.get("step"), "switches": switches,
           **prof.summary(), **flops_per_token(model), **ev}
    return row, [float(x) for x in seen["steps"]["loss"].iloc[:AGREEMENT_STEPS]]


@dataclasses.dataclass
class Context:
    cfg: object
    runner: object
    scratch: str

    def __post_init__(self):
        from pipeline.engine.predict import encode
        r = self.runner
        self.device, self.dtype, self.tokenizer, self.prompter = r.device, r.dtype, r.tokenizer, r.prompter
        self.location, self.samples, self.pad_id = r.location, r.samples, r.tokenizer.pad_token_id
        tr = self.samples[self.samples["split"] == "train"].reset_index(drop=True)
        ev = self.samples[self.samples["split"].isin(["validation", "test"])]
        self.seqs = encode(self.tokenizer, self.prompter.many(tr["premise"], tr["hypothesis"]), self.cfg.tokenizer.max_length)
        self.labels = tr["label"].to_numpy()
        self.eval_prompts = self.prompter.many(ev["premise"], ev["hypothesis"])
        self.eval_seqs = encode(self.tokenizer, self.eval_prompts, self.cfg.tokenizer.max_length)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--micro-batches", default="8,32")
    ap.add_argument("--epochs", type=int, default=3, help="pipeline epochs per setting (the first is warm-up)")
    ap.add_argument("--plain-steps", type=int, default=60)
    ap.add_argument("--ladder", default="all", help="all; default (the default setting and its opt-in); levers "
                                                    "(the default and issue 19's levers); or line keys separated "
                                                    f"by commas, from: {', '.join(LINES)}")
    ap.add_argument("--no-agreement", action="store_true",
                    help="skip the loss-agreement runs (dropout off) at the first micro-batch")
    ap.add_argument("--fp16-cap-gib", type=float, default=None,
                    help="also run the default setting in float16 under this GPU memory cap (the T4 path)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--append", default=None, metavar="RECORD",
                    help="add this call's lines to an earlier record of the same config, overrides, GPU and "
                         "measured code (a ladder too long for one device call, split by line or micro-batch); "
                         "each (line, micro-batch) once, the plain loop reused; written to --out under the earlier "
                         "record's name")
    args = ap.parse_args()
    # what the arguments ask is checked before a model loads: a typo costs a second, not a minute of device time
    ladder = pick_ladder(args.ladder)
    micro_batches = micro_batch_sizes(args.micro_batches)

    import torch

    from benchmarks.measure import matmul_peak_tflops
    from pipeline.engine.devices import apply_gpu_cap
    from pipeline.model.loading import add_lora, free, load_classifier
    from pipeline.run import Runner
    from pipeline.telemetry.environment import capture_environment
    from records.code_version import run_code_version
    from records.config_reading import load_config
    from records.store import atomic_write_json

    started = time.perf_counter()
    scratch = tempfile.mkdtemp(prefix="bench-")
    atexit.register(shutil.rmtree, scratch, True)  # its data, checkpoints and results are this call's alone
    sets = list(args.overrides) + [f"output.results_dir={scratch}/results", f"output.checkpoint_dir={scratch}/ckpt"]
    cfg = load_config(args.config, sets)
    runner = Runner(cfg, args.config, tuple(sets))
    runner.run(["data"])
    ctx = Context(cfg, runner.ctx, f"{scratch}/ckpt")
    env = capture_environment()
    peak = matmul_peak_tflops(ctx.dtype if ctx.dtype != torch.float32 else torch.bfloat16)
    record = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "python benchmarks/bench.py " + " ".join(sys.argv[1:]),
              "gpu": (env.get("gpu") or {}).get("name"), "driver": (env.get("gpu") or {}).get("driver"),
              "cuda": env.get("cuda"), "libraries": env.get("libraries"),
              "git_commit": run_code_version(ROOT).get("git_commit"),
              "code_fingerprint": measured_code_fingerprint(), "bench_fingerprint": bench_fingerprint(),
              "config": args.config, "overrides": args.overrides, "train_rows": len(ctx.seqs),
              "matmul_peak_tflops_measured": peak,
              "mfu_note": "model FLOPs utilisation = real (non-padding) tokens/s x FLOPs per token / the dense "
                          "matmul rate measured here on 8192^3 products in the compute dtype",
              "results": [], "loss_agreement": [], "failed": []}
    if args.append:
        record = _continued(Path(args.append), record)
    again = already_measured(record, ladder, micro_batches, bool(args.fp16_cap_gib))
    if again:
        raise SystemExit(f"--append {args.append}: it already holds {', '.join(again)} (fix: --ladder and "
                         f"--micro-batches with what it lacks; --fp16-cap-gib only once)")
    agreement = [] if args.no_agreement else [line for line in AGREEMENT_LINES if line in ladder]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / (Path(args.append).name if args.append else
                  f"{Path(args.config).stem}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}.json")

    def add(row):
        if row.get("tokens_per_s") and peak and row.get("flops_per_token"):
            row["tflops"] = row["tokens_per_s"] * row["flops_per_token"] / 1e12
            row["mfu"] = row["tflops"] / peak
        record["results"].append(row)
        record["wall_seconds"] = record.get("wall_seconds_before", 0) + time.perf_counter() - started
        atomic_write_json(path, record)  # whole after every line: a crash or a cut call keeps the lines so far
        print(f"== {row['loop']:<8} mb {row['micro_batch']:>3} {row['setting'][:48]:<48} "
              f"{row['tokens_per_s']:>9,.0f} tok/s  {row['seconds_per_epoch']:6.2f} s/epoch  "
              f"busy {row.get('gpu_busy_fraction')}  peak {row.get('peak_allocated_bytes')}  "
              f"allocated at start {row.get('allocated_at_start_bytes')}", flush=True)

    model = add_lora(cfg, load_classifier(cfg, ctx.location, ctx.tokenizer, ctx.device, ctx.dtype))
    init = [p.detach().clone() for p in model.parameters() if p.requires_grad]
    for mb in micro_batches:
        plain_epochs = -(-args.plain_steps // -(-len(ctx.seqs) // mb))  # epochs the plain steps reach into
        earlier = next((r for r in record["results"] if r["loop"] == "plain" and r["micro_batch"] == mb), None)
        if earlier is not None and (earlier.get("losses") or not (agreement and mb == micro_batches[0])):
            plain_losses = earlier.get("losses") or []  # a continued record's plain loop, measured once
        else:
            row, plain_losses = run_plain(ctx, cfg, mb, args.plain_steps, plain_epochs)
            add({**row, "losses": plain_losses})
        for line in ladder:
            row = _guarded(line, mb, lambda line=line, mb=mb: run_pipeline(ctx, cfg, model, init, mb, args.epochs, line)[0])
            if row.get("error"):
                record["failed"].append(row)
                atomic_write_json(path, record)
            else:
                add(row)
        for line in agreement if mb == micro_batches[0] else ():
            saved = _set_dropout(model, 0.0)
            got = _guarded(line, mb, lambda line=line, mb=mb, plain_epochs=plain_epochs: run_pipeline(ctx, cfg, model, init, mb, plain_epochs, line,
                                                                    dropout=False, suffix=", dropout off"))
            if isinstance(got, dict):  # failed: recorded, the next line still runs
                record["failed"].append({**got, "dropout": "off"})
                _set_dropout(model, saved)
                continue
            row, losses = got
            n = min(len(losses), len(plain_losses))
            rel = [abs(a - b) / abs(b) for a, b in zip(losses[:n], plain_losses[:n], strict=True)]
            record["loss_agreement"].append({"setting": line[0], "micro_batch": mb, "steps": n,
                                             "max_relative_difference": max(rel),
                                             "mean_relative_difference": sum(rel) / n,
                                             "plain": plain_losses[:n], "pipeline": losses[:n],
                                             "note": "dropout off in both loops; same weights, rows, order, "
                                                     "seed, learning rate and schedule"})
            atomic_write_json(path, record)
            print(f"== loss agreement ({line[0][:40]}) over {n} steps: max relative difference {max(rel):.2e}",
                  flush=True)
            _set_dropout(model, saved)
    if args.fp16_cap_gib and ctx.device.type == "cuda":
        del model
        free()
        fp16 = dataclasses.replace(cfg, quantization=dataclasses.replace(cfg.quantization, compute_dtype="float16"),
                                   runtime=dataclasses.replace(cfg.runtime, gpu_memory_cap_gib=args.fp16_cap_gib))
        apply_gpu_cap(fp16, ctx.device)
        ctx.dtype = torch.float16
        model = add_lora(fp16, load_classifier(fp16, ctx.location, ctx.tokenizer, ctx.device, ctx.dtype))
        init16 = [p.detach().clone() for p in model.parameters() if p.requires_grad]
        row, _ = run_pipeline(ctx, fp16, model, init16, micro_batches[0], args.epochs, DEFAULT_LINE,
                              suffix=f", float16 under a {args.fp16_cap_gib:g} GiB cap")
        add(row)
    record["targets"] = targets(record)
    record["wall_seconds"] = record.get("wall_seconds_before", 0) + time.perf_counter() - started
    atomic_write_json(path, record)
    print(f"wrote {path}")
    print(table(record))
    return 0


# What a split record's calls must share so that their lines compare: the code that trains and measures (the
# pipeline, the results contract, the plain loop, the profiler helpers) and the configs. bench.py's own argument
# handling is not in it: each row carries its ladder line's switches. A commit that changes none of these files
# (the README, the report, a test) may continue a record an earlier commit began.
MEASURED_CODE = ("pipeline/**/*.py", "records/**/*.py", "benchmarks/measure.py", "benchmarks/plain_loop.py",
                 "configs/*.yaml")


def measured_code_fingerprint(root: Path = ROOT) -> str:
    """sha256 over the MEASURED_CODE files' paths and bytes, in path order."""
    from records.hashing import bytes_sha256
    files = sorted({p for pattern in MEASURED_CODE for p in root.glob(pattern) if p.is_file()})
    return bytes_sha256(b"".join(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0"
                                 for p in files))


def bench_fingerprint() -> str:
    """sha256 of what bench.py itself decides about a measurement: the ladder's lines and the functions that run
    and time them (its argument handling and printing are left out, so they may change under a split record)."""
    import inspect

    from records.hashing import bytes_sha256
    parts = [repr(LADDER), repr(_WARM), str(PLAIN_WARMUP), str(AGREEMENT_STEPS)]
    parts += [inspect.getsource(f) for f in (run_plain, run_pipeline, _switches, _set_dropout, _eval_seconds,
                                              _with_train, _peaks, Context)]
    return bytes_sha256("\n".join(parts).encode())


def _continued(path: Path, fresh: dict) -> dict:
    """The earlier record at `path`, to be continued by this call: refused (one line) unless it was made of the
    same config, overrides, GPU model, rows and measured code (MEASURED_CODE; the commit where either record
    lacks that fingerprint)."""
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"--append {path}: cannot read it as a bench record ({e}) (fix: the path of a record "
                         f"benchmarks/bench.py wrote)") from None
    code = "code_fingerprint" if earlier.get("code_fingerprint") and fresh.get("code_fingerprint") else "git_commit"
    # bench.py's own measuring code: compared where both records carry its fingerprint (older ones do not)
    measuring = ["bench_fingerprint"] if earlier.get("bench_fingerprint") and fresh.get("bench_fingerprint") else []
    for key in ("config", "overrides", "gpu", "train_rows", "libraries", "cuda", code, *measuring):
        if earlier.get(key) != fresh.get(key):
            raise SystemExit(f"--append {path}: its {key} is {earlier.get(key)!r}, this call's is {fresh.get(key)!r} "
                             f"(fix: continue a record only with the same config, overrides, GPU, libraries and "
                             f"measured code)")
    earlier["appended"] = earlier.get("appended", []) + [
        {"created": fresh["created"], "command": fresh["command"], "git_commit": fresh.get("git_commit"),
         "driver": fresh.get("driver")}]
    earlier["wall_seconds_before"] = earlier.get("wall_seconds", 0)
    return earlier


def already_measured(record: dict, ladder: list, micro_batches: list[int], fp16: bool) -> list[str]:
    """What of this call's ladder, micro-batches and float16 line the record holds already (a continued record
    takes each (line, micro-batch) once; the plain loop is reused, not re-run)."""
    have = {(r["setting"], r["micro_batch"]) for r in record["results"] if r["loop"] == "pipeline"}
    again = [f"{line[2]['key']} at micro-batch {mb}" for mb in micro_batches for line in ladder
             if (line[0], mb) in have]
    if fp16 and any(r["dtype"] == "float16" for r in record["results"]):
        again.append("the float16 line")
    return again


def _guarded(line: tuple, mb: int, measure) -> dict:
    """What `measure()` returns, or, if it fails (a lever a library version cannot run), a row naming the error
    for the record's `failed` list: the lines after it are still measured."""
    try:
        return measure()
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        print(f"== line {line[2].get('key')} at micro-batch {mb} failed: {type(e).__name__}: {e}", flush=True)
        return {"loop": "pipeline", "setting": line[0], "micro_batch": mb, "switches": line[2],
                "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"}


GIB = 2 ** 30
DEFAULT = DEFAULT_LINE[0]


def training_seconds(row: dict, epochs: int) -> float:
    """A pipeline row's training time for a run of `epochs` epochs of the record's rows: its first epoch (graph
    captures, compiles, kernel selection) plus the rest at its warm pace."""
    return row["first_epoch_seconds"] + (epochs - 1) * row["seconds_per_epoch"]


def targets(record: dict) -> list[dict]:
    """Issue 19's targets against this record's default-setting rows: met, or missed by how much, with the
    profiler's evidence of where the time goes."""
    rows = {(r["micro_batch"], r["dtype"]): r for r in record["results"]
            if r["loop"] == "pipeline" and r["setting"].startswith(DEFAULT) and r.get("dropout") == "config"}
    out = []

    def check(name, row, key, goal, better="higher", scale=1.0, unit=""):
        if row is None or row.get(key) is None:
            out.append({"target": name, "goal": goal, "better": better, "measured": None, "met": None,
                        "note": "not measured"})
            return
        v = row[key] / scale
        met = v >= goal if better == "higher" else v <= goal
        gap = (goal / v if better == "higher" else v / goal) if v else None
        top = ", ".join(f"{k['name'][:40]} {k['share']:.0%}" for k in (row.get("top_kernels") or [])[:3] if k.get("share"))
        out.append({"target": name, "goal": goal, "better": better, "measured": round(v, 3), "unit": unit, "met": met,
                    "missed_by": None if met else f"{(gap - 1):.0%} ({'need' if better == 'higher' else 'over'} "
                                                  f"{goal}{unit}, have {v:,.2f}{unit})",
                    "evidence": f"GPU busy {row.get('gpu_busy_fraction') or 0:.0%} of the step; top kernels: {top}"})

    bf16 = [r for (mb, dt), r in rows.items() if dt == "bfloat16"]
    by_mb = {r["micro_batch"]: r for r in bf16}
    fp16 = next((r for (mb, dt), r in rows.items() if dt == "float16"), None)
    r8, r32 = by_mb.get(8), by_mb.get(32)
    check("tokens/s at micro-batch 8 (bfloat16)", r8, "tokens_per_s", 18000, unit=" tokens/s")
    check("tokens/s at micro-batch 32 (bfloat16)", r32, "tokens_per_s", 30000, unit=" tokens/s")
    both = None if r8 is None or r32 is None else {**r32, "gain": r32["tokens_per_s"] / r8["tokens_per_s"]}
    check("micro-batch 32 tokens/s over micro-batch 8's", both, "gain", 1.5, unit="x")
    check("MFU at micro-batch 32 (bfloat16)", r32, "mfu", 0.25)
    if r8 is not None:  # the study's workload: 5 epochs at micro-batch 8 = the warm-up epoch + 4 warm ones
        r8 = {**r8, "five_epochs": training_seconds(r8, 5),
              "warm_up": r8["first_epoch_seconds"] / r8["seconds_per_epoch"]}
    check("5 epochs x 988 rows at micro-batch 8: training seconds (first epoch + 4 x warm)", r8, "five_epochs", 25,
          "lower", unit=" s")
    check("first epoch over a warm one at micro-batch 8", r8, "warm_up", 1.5, "lower", unit="x")
    check("peak allocated at micro-batch 8 (bfloat16)", r8, "peak_allocated_bytes", 4, "lower", GIB, " GiB")
    check("peak allocated at micro-batch 8 (float16, capped)", fp16, "peak_allocated_bytes", 4, "lower", GIB, " GiB")
    check("evaluation of 199 rows: seconds", r8, "eval_seconds_200_rows", 0.3, "lower", unit=" s")
    agree = next((a for a in record.get("loss_agreement", []) if a.get("setting") == DEFAULT), None)
    check("loss agreement with the plain loop: max relative difference", agree, "max_relative_difference", 1e-2,
          "lower")
    return out


def _higher_is_better(target: dict) -> bool:
    """The direction of a target: named since this was written; in older records, read from how its miss was
    written ('need' more, or 'over' the goal), and for one met or not measured, from its name."""
    if "better" in target:
        return target["better"] == "higher"
    if target.get("missed_by"):
        return "(need " in target["missed_by"]
    return "tokens/s" in target["target"] or target["target"].startswith("MFU")


def table(record: dict) -> str:
    lines = ["| loop | setting | micro-batch | dtype | tokens/s | s/epoch | peak alloc GiB | peak reserved GiB | "
             "GPU busy | MFU | eval 199 rows s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    g = lambda v: "–" if v is None else f"{v / 2**30:.2f}"  # noqa: E731
    f = lambda v, fmt: "–" if v is None else format(v, fmt)  # noqa: E731
    for r in record["results"]:
        lines.append(f"| {r['loop']} | {r['setting']} | {r['micro_batch']} | {r['dtype']} | {r['tokens_per_s']:,.0f} | "
                     f"{r['seconds_per_epoch']:.2f} | {g(r.get('peak_allocated_bytes'))} | {g(r.get('peak_reserved_bytes'))} | "
                     f"{f(r.get('gpu_busy_fraction'), '.0%')} | {f(r.get('mfu'), '.1%')} | "
                     f"{f(r.get('eval_seconds_200_rows'), '.2f')} |")
    for t in record.get("targets", []):
        verdict = "met" if t["met"] else ("not measured" if t["met"] is None else f"missed by {t['missed_by']}")
        lines.append(f"\nTarget: {t['target']} {'>=' if _higher_is_better(t) else '<='} {t['goal']}: "
                     f"{t['measured']} -> {verdict}")
    for a in record.get("loss_agreement", []):
        lines.append(f"\nLoss agreement ({a.get('setting', 'the default of this record')}), micro-batch "
                     f"{a['micro_batch']}, first {a['steps']} steps: max relative difference "
                     f"{a['max_relative_difference']:.2e} (mean {a['mean_relative_difference']:.2e}).")
    return "\n".join(lines)


if __name__ == "__main__":
    from records.errors import BadInput
    try:
        sys.exit(main())
    except BadInput as e:  # a config, override or record that cannot be used: one line, as the pipeline says it
        sys.exit(f"error: {e}")
