"""The data dictionary of results/<run>/ (docs/DATA.md), printed by `python -m pipeline data-doc` from the one
declaration of every table in records/schema.py; a test keeps the committed file equal to this output and
runs its example. Torch-free.
"""
from __future__ import annotations

from records.graph import writers
from records.schema import DOCS

EXAMPLE_RUN = "results/smollm2-snli-offline"

# Runs as written (tests/pipeline/test_docs.py executes it from the project root).
EXAMPLE = f'''import pandas as pd

run = "{EXAMPLE_RUN}"
samples = pd.read_parquet(f"{{run}}/samples.parquet")
predictions = pd.read_parquet(f"{{run}}/predictions.parquet")

# Every prediction with its row's text and gold label: predictions join samples on (split, idx).
scored = predictions.merge(samples, on=["split", "idx"], how="inner", validate="many_to_one")
test = scored[scored["split"] == "test"]
accuracy = (test["pred"] == test["label"]).groupby(test["model"]).mean()
print(accuracy.round(3).to_string())

# The test rows fine-tuning corrected: wrong with the untrained head, right after fine-tuning.
wide = test.pivot(index="idx", columns="model", values="pred").join(
    samples[samples["split"] == "test"].set_index("idx")[["premise", "hypothesis", "label"]])
corrected = wide[(wide["baseline_head"] != wide["label"]) & (wide["finetuned"] == wide["label"])]
print(len(corrected), "corrected rows")
'''


def _key(columns: tuple[str, ...]) -> str:
    return f"`{columns[0]}` (unique)" if len(columns) == 1 else \
        "(" + ", ".join(f"`{c}`" for c in columns) + "), unique together"


def _writers(table: str) -> str:
    """e.g. "the `baseline` and `evaluate` stages"."""
    by = [f"`{s}`" for s in writers(table)]
    if not by:
        return "`pipeline tune`"
    return "the " + (by[0] if len(by) == 1 else ", ".join(by[:-1]) + " and " + by[-1]) + \
        (" stage" if len(by) == 1 else " stages")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def documentation() -> str:
    lines = ["# The results tables: a data dictionary", "",
             "Generated from `records/schema.py` by `python -m pipeline data-doc`; do not edit by hand.", "",
             "Each run is one folder, `results/<run>/`: `manifest.json` (what ran, with what, and how it went: "
             "see [records/MANIFEST.md](../pipeline/MANIFEST.md)) and one parquet file per table below. "
             "A table a run has not produced (a stage not run) is absent, never empty. Missing measurements are "
             "nulls (GPU columns on a CPU run), never zeros. Labels are indices into "
             "(entailment, neutral, contradiction).", ""]
    for t in DOCS.values():
        lines += [f"## {t.name}.parquet", "", t.doc, "",
                  f"Key: {_key(t.key)}. Written by {_writers(t.name)}.", "",
                  "| column | type (arrow) | unit | meaning |", "|---|---|---|---|"]
        lines += [f"| `{c.name}` | {c.type} | {c.unit or '—'} | {_cell(c.doc_for_users)} |" for c in t.columns]
        lines.append("")
    lines += ["## Example: predictions joined to samples (pandas)", "",
              "From the project root; it prints each model's test accuracy and counts the corrected rows:", "",
              "```python", EXAMPLE.rstrip(), "```", ""]
    return "\n".join(lines)
