"""The text the model reads, from a jinja2 template in templates/ (one place to change the prompt). Which templates
are accepted, and how they are checked and sandboxed, is records/templates.py."""
from __future__ import annotations

from pathlib import Path

from records.templates import read_template


class Prompter:
    def __init__(self, template_path: Path, label_words: list[str]):
        self.template = read_template(template_path)[1]
        self.label_words = list(label_words)

    def __call__(self, premise: str, hypothesis: str) -> str:
        return self.template.render(premise=premise.strip(), hypothesis=hypothesis.strip(),
                                    labels=self.label_words).rstrip()

    def many(self, premises, hypotheses) -> list[str]:
        return [self(p, h) for p, h in zip(premises, hypotheses, strict=True)]
