"""A stage's declared reads (records/graph.py `Stage.reads`) cannot drift from what its body reads.

The tiny run is traced: while a stage's `prepare` and `run` execute, every config field read through the
config object is recorded against that stage. Each field read must be covered by a declared read of the stage
or of a stage upstream of it (whose fingerprint feeds this one's), so a changed field always re-runs every
stage whose outputs it can change. A stage that padded with `train.pad_to_multiple_of` while declaring no
`train` read (the baseline, until this test) would read as up to date after that field changed.
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager

import pytest

from pipeline import recipe
from records.config import ExperimentConfig
from records.fields import Section
from records.graph import NAMES, stage
from tests.conftest import ROOT, tiny_overrides

# Fields that decide where or how a run works, never what it computes: they are no stage's input.
NOT_INPUTS = {
    "run": "the folder's name",
    "description": "prose for the report",
    "output.results_dir": "where results go",
    "output.checkpoint_dir": "where checkpoints go",
    "runtime.sample_interval_s": "how often resources are sampled (the resources table is telemetry)",
    "runtime.gpu_memory_cap_gib": "a memory cap: a run that fits computes the same",
    "model.trust_remote_code": "a permission, checked before anything loads",
}


def _prefixes(cfg: ExperimentConfig) -> dict[int, str]:
    """id(section object) -> its dotted path in the config ("" for the root)."""
    out = {id(cfg): ""}

    def walk(obj, prefix):
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if isinstance(v, Section):
                out[id(v)] = f"{prefix}{f.name}."
                walk(v, f"{prefix}{f.name}.")
    walk(cfg, "")
    return out


@contextmanager
def traced(cfg: ExperimentConfig, monkeypatch):
    """Yields (reads, set_stage): reads[stage] collects the dotted leaf fields read while set_stage(stage) holds.
    `to_dict()` is not traced: it serialises the whole config for records (provenance), which is not a read of
    every field's value into a computation."""
    prefixes = _prefixes(cfg)
    reads: dict[str, set[str]] = {}
    current: list[str | None] = [None]
    quiet = [0]
    real_getattribute = object.__getattribute__

    def getattribute(self, name):
        value = real_getattribute(self, name)
        if current[0] and not quiet[0] and not name.startswith("_"):
            prefix = prefixes.get(id(self))
            names = {f.name for f in dataclasses.fields(type(self))}
            if prefix is not None and name in names and not isinstance(value, Section):
                reads.setdefault(current[0], set()).add(prefix + name)
        return value

    real_to_dict = ExperimentConfig.to_dict

    def to_dict(self):
        quiet[0] += 1
        try:
            return real_to_dict(self)
        finally:
            quiet[0] -= 1

    def set_stage(name):
        current[0] = name

    monkeypatch.setattr(Section, "__getattribute__", getattribute)
    monkeypatch.setattr(ExperimentConfig, "to_dict", to_dict)
    yield reads, set_stage


# Fields a stage reads that are deliberately not its inputs, with the reason (records/graph.py says it too).
NOT_INPUTS_OF = {
    ("train", "eval.batch_size"): "it sizes the batches of each epoch's validation predictions, which score rows "
                                  "independently (padding masked): float rounding at most, and retraining for it "
                                  "would cost the whole run",
}


def covered(field: str, stage_name: str) -> bool:
    if field in NOT_INPUTS or (stage_name, field) in NOT_INPUTS_OF:
        return True
    todo, seen = [stage_name], set()
    while todo:
        s = stage(todo.pop())
        if any(field == r or field.startswith(r + ".") for r in s.reads):
            return True
        seen.add(s.name)
        todo += [u for u in s.upstream if u not in seen]
    return False


@pytest.mark.slow
def test_every_config_field_a_stage_reads_is_declared(tmp_path, monkeypatch):
    from pipeline.configs import load_config
    from pipeline.run import Runner
    path = ROOT / "configs/tiny-cpu.yaml"
    overrides = tiny_overrides(tmp_path, "tiny-reads")
    cfg = load_config(path, overrides)
    with traced(cfg, monkeypatch) as (reads, set_stage):
        for name in NAMES:
            body = recipe.BODIES[name]

            def wrap(fn, name=name):
                def call(ctx):
                    set_stage(name)
                    try:
                        return fn(ctx)
                    finally:
                        set_stage(None)
                return call
            for hook in ("prepare", "run"):
                if hasattr(body, hook):
                    monkeypatch.setattr(body, hook, wrap(getattr(body, hook)))
        Runner(cfg, str(path), tuple(overrides)).run(None)
    assert set(reads) == set(NAMES), "every stage ran and read its config"
    undeclared = {name: sorted(f for f in fields if not covered(f, name)) for name, fields in reads.items()}
    assert {k: v for k, v in undeclared.items() if v} == {}
    # the trace sees what it should: the baseline pads with the train stage's multiple, evaluate batches by eval
    assert "train.pad_to_multiple_of" in reads["baseline"]
    assert "eval.batch_size" in reads["evaluate"]


def test_coverage_follows_upstream_stages_and_prefixes():
    assert covered("train.learning_rate", "train")              # declared: "train"
    assert covered("train.learning_rate", "evaluate")           # upstream: evaluate <- train
    assert covered("data.test.stride", "baseline")              # upstream: baseline <- data
    assert not covered("lora.r", "baseline")                    # nothing of the baseline's reads lora
    assert covered("train.pad_to_multiple_of", "baseline")      # declared since this test found it
    assert not covered("train.epochs", "baseline")
    assert covered("eval.batch_size", "train") and not covered("eval.batch_size", "params")  # the one exception


def test_tracing_records_leaf_fields_per_stage(monkeypatch):
    from records.config_reading import load_config
    cfg = load_config(ROOT / "configs/tiny-cpu.yaml", check_files=False)
    with traced(cfg, monkeypatch) as (reads, set_stage):
        set_stage("train")
        _ = cfg.train.learning_rate, cfg.lora.r
        cfg.to_dict()  # not a read
        set_stage(None)
        _ = cfg.eval.batch_size  # outside any stage
    assert reads == {"train": {"train.learning_rate", "lora.r"}}
