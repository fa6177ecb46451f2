"""Narrative blocks: jinja2 templates under templates/report/, filled with the run's numbers."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

from analysis import fmt

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "report"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,  # a missing number is a bug, not an empty string
        trim_blocks=False,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        integer=fmt.integer, num=fmt.num, pct=fmt.pct, pct_value=fmt.pct_value, gib=fmt.gib, gb=fmt.gb,
        mem=fmt.mem, seconds=fmt.seconds, pvalue=fmt.pvalue,
    )
    return env


def render(name: str, **context) -> str:
    """Render templates/report/<name>.md.j2."""
    return environment().get_template(f"{name}.md.j2").render(**context).strip() + "\n"
