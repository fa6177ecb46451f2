"""A run's configuration as table rows, each setting explained by its own field's help text in
records/config.py (one source: a new config field shows up here without touching the report).

records.config imports only yaml and the standard library, so the report environment can read it."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

from analysis.markdown import Markdown, code, spaced, text
from analysis.processes import ABSENT
from analysis.runs import Run
from records import config

NOT_A_FIELD = "(not a field of this version's config)"
MODEL_SECTIONS = ("model", "tokenizer", "quantization", "lora", "prompt")   # the report's model table
SHOWN_ELSEWHERE = ("run", "description", "data", "output")  # the title, the data sample, where files go


@dataclass(frozen=True)
class Setting:
    section: str      # "model", "train", ... ("" for top-level fields such as seed)
    name: str         # field name within the section
    value: object     # from the run's resolved config; ABSENT when the manifest does not record it
    help: str         # the field's help text

    @property
    def key(self) -> str:
        return f"{self.section}.{self.name}" if self.section else self.name



def section_class(section: str):
    """The dataclass of a config section (ModelConfig for "model"); ExperimentConfig itself for ""."""
    if not section:
        return config.ExperimentConfig
    return typing.get_type_hints(config.ExperimentConfig)[section]


def field_help(section: str) -> dict[str, str]:
    """{field name: help text} of a config section, in declaration order."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(section_class(section))}


def section_help(section: str) -> str:
    return field_help("")[section]


def section_names() -> list[str]:
    """The config's sections (its fields that are dataclasses), in declaration order."""
    hints = typing.get_type_hints(config.ExperimentConfig)
    return [f.name for f in dataclasses.fields(config.ExperimentConfig) if dataclasses.is_dataclass(hints[f.name])]


def top_level_names() -> list[str]:
    """The config's top-level settings (seed, ...), not its sections."""
    return [name for name in field_help("") if name not in section_names()]


def training_sections() -> list[str]:
    """Every section that is neither the model's nor shown elsewhere (a new section appears by itself)."""
    return [s for s in section_names() if s not in MODEL_SECTIONS + SHOWN_ELSEWHERE]


def top_level_settings() -> tuple[str, ...]:
    return tuple(n for n in top_level_names() if n not in SHOWN_ELSEWHERE)


def settings(run: Run, section: str, only: tuple[str, ...] | None = None) -> list[Setting]:
    """Every field of a config section with the run's value, plus keys the run recorded that the current
    config no longer has. `only` picks fields (for top-level ones such as seed)."""
    helps = field_help(section)
    recorded = run.cfg(section, {}) if section else run.manifest.config
    recorded = recorded if isinstance(recorded, dict) else {}
    names = list(helps) + [k for k in recorded if k not in helps]
    if only is not None:
        names = [n for n in names if n in only]
    return [Setting(section, n, recorded.get(n, ABSENT), helps.get(n, NOT_A_FIELD)) for n in names]


def help_markdown(help: str) -> Markdown:
    """A field's help text as markdown: `quoted` names become code spans, everything else is escaped."""
    parts = help.split("`")
    if len(parts) % 2 == 0:  # an unmatched backtick: no code spans at all
        return text(help)
    return Markdown("".join(code(p) if i % 2 else spaced(p) for i, p in enumerate(parts)))


def value_text(v) -> str:
    """A setting's value in words: yes/no, comma lists, "—" for null, "not recorded" when absent."""
    if v is ABSENT:
        return "not recorded"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, list):
        return ", ".join(map(str, v)) or "—"
    if isinstance(v, dict):
        return ", ".join(f"{k}={x}" for k, x in v.items()) or "—"
    return "—" if v is None else str(v)
