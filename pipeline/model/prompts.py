"""The text the model reads, from a jinja2 template in templates/ (one place to change the prompt)."""
from __future__ import annotations

from pathlib import Path

import jinja2


class Prompter:
    def __init__(self, template_path: Path, label_words: list[str]):
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False,
                                 autoescape=False)
        self.template = env.from_string(Path(template_path).read_text())
        self.label_words = list(label_words)

    def __call__(self, premise: str, hypothesis: str) -> str:
        return self.template.render(premise=premise.strip(), hypothesis=hypothesis.strip(),
                                    labels=self.label_words).rstrip()

    def many(self, premises, hypotheses) -> list[str]:
        return [self(p, h) for p, h in zip(premises, hypotheses, strict=True)]
