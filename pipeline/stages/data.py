"""Stage `data`: sample the splits by stride (pipeline/data.py) and write the samples table, plus the
manifest's `data` block (source, fingerprint, note, per-split counts)."""
from __future__ import annotations

from pipeline.data import load_samples, samples_fingerprint


def prepare(ctx) -> None:
    """Bad data is bad input: read and check the source before anything is written."""
    ctx.sampled = load_samples(ctx.cfg)


def run(ctx) -> dict:
    samples, summary = ctx.sampled
    ctx.store.write("samples", samples)
    ctx.samples = samples  # later stages of this process read these rows, not the file again
    data = ctx.cfg.data
    source = f"hub:{data.name}" if data.source == "hub" else f"local:{data.path}"
    ctx.store.update_manifest(data={"source": source, "fingerprint": samples_fingerprint(samples),
                                    "note": data.note, "splits": summary})
    dropped = sum(v["rows_dropped_no_label"] for v in summary.values())
    print("  " + ", ".join(f"{k}: {v['rows']} rows" for k, v in summary.items()) +
          f"; {dropped} without a gold label dropped")
    return {}
