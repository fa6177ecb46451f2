"""The recipe: one module per stage, its body and the helpers only it uses, in the order a run takes them.

Each stage module has
    prepare(ctx) -> None    optional: checks that read but write nothing, run for every stage about to run
                            before the first write (bad input is refused with nothing changed)
    run(ctx) -> dict        the work; returns facts for the stage's manifest record
What each stage reads and writes is declared once, in the stage graph (records/graph.py); `BODIES` maps the
graph's names to these modules, in code, so a reader (or a tool) can follow a stage from the graph to its body.

The stage modules import the model and engine modules inside their bodies: those pull in transformers, peft
and bitsandbytes (seconds of start-up), which an unchanged re-run, running no stage, must not pay.
"""
from __future__ import annotations

from types import ModuleType

from pipeline.recipe import baseline, data, evaluate, params, train
from records.graph import NAMES

BODIES: dict[str, ModuleType] = {"data": data, "params": params, "baseline": baseline, "train": train,
                                 "evaluate": evaluate}
assert tuple(BODIES) == NAMES, "records/graph.py and pipeline/recipe/BODIES must name the same stages, in order"


def body(name: str) -> ModuleType:
    """The module holding stage `name`'s body."""
    return BODIES[name]
