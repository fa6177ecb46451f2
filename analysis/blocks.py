"""Blocks repeated once per run, written as jinja2 templates under templates/report/ (the notes on each run
at the top of the report). Every value a template prints passes through analysis.markdown.text unless it
already is Markdown, so a run's name or a manifest's text cannot inject markup."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from analysis.markdown import Markdown, text

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "report"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    # Sandboxed like every template of the project (records/templates.py): the values are from manifests.
    return ImmutableSandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,  # a missing value is a bug, not an empty string
        finalize=text,                     # the one escape: Markdown passes as is, anything else is escaped
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context) -> Markdown:
    """templates/report/<template>.md.j2 filled with `context`."""
    return Markdown(environment().get_template(f"{template}.md.j2").render(**context).strip() + "\n")
