"""The text the model reads, from a jinja2 template in templates/ (one place to change the prompt). Which templates
are accepted, and how they are checked and sandboxed, is records/templates.py."""
from __future__ import annotations

import re
from pathlib import Path

import jinja2.nodes

from records.templates import environment, read_template

ROW_FIELDS = ("premise", "hypothesis")
_MARKS = {"premise": "\x00premise\x00", "hypothesis": "\x00hypothesis\x00"}


def row_format(text: str, template: jinja2.Template, labels: list[str]) -> str | None:
    """The template as a `str.format` pattern with `{0}` for the premise and `{1}` for the hypothesis, when it uses
    them only as bare `{{ premise }}` / `{{ hypothesis }}` (no filter, no argument): then every row renders to the
    same text as jinja2 gives, at a fraction of the cost (jinja2 builds a new context per call: at 550k rows,
    about 13 s a pass on this machine; issue 20). None for any other template, which renders row by row.
    The pattern comes from one sandboxed render with marks in place of the row's text, so the labels, filters
    and whitespace handling are jinja2's own."""
    tree = environment().parse(text)
    uses = [n for n in tree.find_all(jinja2.nodes.Name) if n.name in ROW_FIELDS]
    bare = [c for out in tree.find_all(jinja2.nodes.Output) for c in out.nodes
            if isinstance(c, jinja2.nodes.Name) and c.name in ROW_FIELDS]
    if len(bare) != len(uses):
        return None
    rendered = template.render(labels=labels, **_MARKS)
    pieces = re.split("(" + "|".join(map(re.escape, _MARKS.values())) + ")", rendered)
    if len(pieces) != 2 * len(bare) + 1 or any("\x00" in p for p in pieces[::2]):
        return None  # the template's own text holds a mark: render row by row
    slots = {mark: "{%d}" % i for i, mark in enumerate(_MARKS.values())}
    return "".join(slots[p] if i % 2 else p.replace("{", "{{").replace("}", "}}") for i, p in enumerate(pieces))


class Prompter:
    def __init__(self, template_path: Path, label_words: list[str]):
        text, self.template = read_template(template_path)
        self.label_words = list(label_words)
        self.pattern = row_format(text, self.template, self.label_words)

    def __call__(self, premise: str, hypothesis: str) -> str:
        return self.template.render(premise=premise.strip(), hypothesis=hypothesis.strip(),
                                    labels=self.label_words).rstrip()

    def many(self, premises, hypotheses) -> list[str]:
        if self.pattern is None:
            return [self(p, h) for p, h in zip(premises, hypotheses, strict=True)]
        fill = self.pattern.format
        return [fill(p.strip(), h.strip()).rstrip() for p, h in zip(premises, hypotheses, strict=True)]
