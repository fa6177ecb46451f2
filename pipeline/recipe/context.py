"""What the stage bodies of one `pipeline run` share: the config, the results store, the fingerprints, and
the heavy things built only when a stage first asks for them (samples, device, tokenizer, the base model's
location). An unchanged re-run builds none of them, so it loads no model: the model and engine modules are
imported where they are first needed (they pull in transformers, peft and bitsandbytes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd

from pipeline.model.prompts import Prompter
from records.config import ExperimentConfig
from records.config_reading import deep_merge
from records.store import RunStore


@dataclass
class RunContext:
    cfg: ExperimentConfig
    store: RunStore
    fingerprints: dict[str, str]
    restart: bool = False      # ignore checkpoints of an earlier attempt
    todo: tuple[str, ...] = ()  # the stages this call runs, in order
    sampled: tuple[pd.DataFrame, dict] | None = None  # (rows, summary) the data stage read in prepare()
    effective: dict = field(default_factory=dict)  # what the loaded models actually are (pipeline/telemetry/effective.py)

    def built(self, name: str):
        """A lazily built value (`location`, `tokenizer`, ...) if a stage has built it, else None; never builds."""
        return self.__dict__.get(name)

    def note_model(self, model) -> None:
        """Record what a loaded model actually is (attention, dtypes, activation) for the manifest."""
        from pipeline.model.provenance import loaded_model
        self.effective = deep_merge(self.effective, loaded_model(model))

    @cached_property
    def samples(self) -> pd.DataFrame:
        """The samples table as the data stage wrote it, or as its prepare() read it when it runs in this call
        (so the other stages' checks, which run before any write, see the rows the run will use)."""
        if self.sampled is not None:
            return self.sampled[0]
        return self.store.read("samples")

    @cached_property
    def device(self):
        from pipeline.engine.devices import pick_device
        return pick_device(self.cfg)

    @cached_property
    def dtype(self):
        from pipeline.model.loading import pick_dtype
        return pick_dtype(self.cfg, self.device)

    @cached_property
    def prompter(self):
        return Prompter(self.cfg.path(self.cfg.prompt.template), self.cfg.prompt.label_words)

    @cached_property
    def tokenizer(self):
        from pipeline.model.tokenizer import load_tokenizer
        tr = self.samples[self.samples["split"] == "train"]
        texts = self.prompter.many(tr["premise"], tr["hypothesis"]) + list(self.cfg.prompt.label_words)
        return load_tokenizer(self.cfg, self.pretrained_location, texts)

    @cached_property
    def pretrained_location(self) -> str | None:
        """Hub id or folder of pretrained weights; None for random weights (built after the tokenizer,
        whose size they must cover)."""
        from pipeline.engine import distributed
        from pipeline.model.loading import base_location
        if self.cfg.model.source == "random":
            return None
        return distributed.main_first(lambda: base_location(self.cfg))  # rank 0 fills the model cache

    @cached_property
    def location(self) -> str:
        """Where the base model's weights are, whatever their source."""
        from pipeline.engine import distributed
        from pipeline.model.loading import base_location
        return self.pretrained_location or distributed.main_first(lambda: base_location(self.cfg, self.tokenizer))
