"""Training throughput of a config: one epoch through the real pipeline, figures printed.

Run: python benchmarks/train_throughput.py configs/tiny-cpu.yaml [--set train.batch_size=32 ...]
     python benchmarks/train_throughput.py configs/phi2-shape-h200.yaml   (on a GPU)
Prints seconds per epoch, tokens/s (real and padded), peak torch-allocated memory and the stage peaks
of the resource sampler. Results and checkpoints go to a temporary folder and are thrown away; this is
a measurement, not a result for the report.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args()

    from pipeline.run import Runner
    from records.config_reading import load_config
    with tempfile.TemporaryDirectory() as tmp:
        sets = args.overrides + [f"train.epochs={args.epochs}", f"output.results_dir={tmp}/r",
                                 f"output.checkpoint_dir={tmp}/c"]
        cfg = load_config(args.config, sets)
        runner = Runner(cfg, args.config, tuple(sets))
        runner.run(["data", "train"])
        ep = runner.store.read("epochs")
        peaks = runner.store.stage("train").get("peaks", {})
        manifest = runner.store.manifest()
        out = {"config": args.config, "overrides": args.overrides, "device": manifest.device,
               "compute_dtype": manifest.compute_dtype,
               "batch_size": cfg.train.batch_size,
               "seconds_per_epoch": ep["seconds"].round(2).tolist(),
               "tokens_per_s": ep["tokens_per_s"].round(1).tolist(),
               "padded_tokens_per_s": (ep["padded_tokens"] / ep["seconds"]).round(1).tolist(),
               "peak_allocated_gib": [None if v != v or v is None else round(v / 2**30, 2)
                                      for v in ep["peak_allocated_bytes"]],
               "train_stage_peaks": {k: v for k, v in peaks.items() if v is not None}}
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
