"""The stage graph, declared once: each stage's upstream stages, the config fields its outputs depend
on, and the tables (or row sets of shared tables) it writes.

The runner orders and fingerprints stages from this (records/fingerprints.py), `pipeline status` lists
them, the report decides which missing table is a gap, and the test fixtures write the same tables.

Each stage's body is the recipe module of the same name (pipeline/recipe/, mapped by its `BODIES`). This
file imports none of them and stays torch-free: `analysis/` imports it.
"""
from __future__ import annotations

from dataclasses import dataclass

# Tables shared by several writers are partitioned by a key column, so each writer replaces exactly
# its own rows: predictions by model name, resources by stage name.
OWNER_KEY = {"predictions": "model", "resources": "stage"}


@dataclass(frozen=True)
class Stage:
    name: str
    upstream: tuple[str, ...]      # stages whose outputs this one reads (their fingerprints feed this one's)
    reads: tuple[str, ...]         # config fields (dotted) whose values this stage's outputs depend on
    writes: tuple[str, ...]        # tables it writes whole (besides its rows of `resources`)
    owns_rows: tuple[str, ...]     # its rows of shared tables, as "table:owner" ("predictions:finetuned")
    does: str                      # one line for `status` and the report


STAGES: tuple[Stage, ...] = (
    Stage("data", (), ("data",), ("samples",), (),
          "sample the splits by stride, drop rows without a gold label"),
    # train.prepare_kbit: it upcasts the weights that are not 4-bit, so their bytes change
    Stage("params", (), ("model", "quantization", "lora", "train.prepare_kbit"), ("params",), (),
          "count stored, logical and trainable parameters on the meta device"),
    Stage("baseline", ("data",),
          # train.pad_to_multiple_of: it pads its batches as training does (tests/pipeline/test_stage_reads.py)
          ("seed", "model", "tokenizer", "quantization", "prompt", "eval", "runtime.device",
           "train.pad_to_multiple_of"), (),
          ("predictions:baseline_head", "predictions:baseline_zeroshot"),
          "predict validation and test rows with the pretrained model (untrained head; zero-shot)"),
    Stage("train", ("data",),
          # Not eval.batch_size, though each epoch's validation rows are predicted in batches of that size: rows
          # are scored independently (padding is masked), so it changes no prediction beyond float rounding, and
          # changing it must not retrain (tests/pipeline/test_stage_reads.py names this exception).
          ("seed", "model", "tokenizer", "quantization", "lora", "prompt", "train", "runtime.device"),
          ("epochs", "steps"), (),
          "fine-tune the LoRA adapters and the head; checkpoint every epoch"),
    Stage("evaluate", ("train",), ("eval",), (), ("predictions:finetuned", "predictions:epoch_*"),
          "predict validation and test rows with every epoch's adapter and the final one"),
)

NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
BY_NAME: dict[str, Stage] = {s.name: s for s in STAGES}


def stage(name: str) -> Stage:
    return BY_NAME[name]


def writers(table: str) -> tuple[str, ...]:
    """The stages that write (some rows of) `table`, in pipeline order. Every stage writes `resources`."""
    if table == "resources":
        return NAMES
    return tuple(s.name for s in STAGES
                 if table in s.writes or any(r.split(":", 1)[0] == table for r in s.owns_rows))


def owner_of(table: str, owner: str) -> str | None:
    """Which stage owns the rows of a shared table whose key column is `owner` (e.g. a model name)."""
    if table == "resources":
        return owner if owner in BY_NAME else None
    for s in STAGES:
        for r in s.owns_rows:
            t, pattern = r.split(":", 1)
            if t == table and (pattern == owner or (pattern.endswith("*") and owner.startswith(pattern[:-1]))):
                return s.name
    return None


def owned_rows(name: str, table: str) -> list[str]:
    """The owner keys (model names) of stage `name`'s rows in shared `table`, as the graph declares them."""
    return [r.split(":", 1)[1] for r in BY_NAME[name].owns_rows if r.split(":", 1)[0] == table]


def downstream(name: str) -> tuple[str, ...]:
    """Stages that (transitively) read `name`'s outputs, in pipeline order."""
    out: list[str] = []
    for s in STAGES:
        if any(u == name or u in out for u in s.upstream):
            out.append(s.name)
    return tuple(out)


def order(names) -> list[str]:
    """`names` in pipeline order (unknown names dropped; the caller validates them)."""
    wanted = set(names)
    return [n for n in NAMES if n in wanted]
