"""Prompt templates are data, never code (the model reads their rendered text: pipeline/model/prompts.py).

A template is data, never code: configs, results folders and adapters travel between people, and jinja2's
expressions can reach Python objects (`{{ cycler.__init__.__globals__.os }}`). So a prompt template
- comes only from the project's templates/ folder (a config's `prompt.template`) or from an adapter's own
  recorded text (tools/predict_with_adapter.py);
- may use only the three variables below, literal text and a few text filters (`checked` walks its syntax
  tree and refuses anything else: attribute access, calls, loops, includes...);
- renders in jinja2's ImmutableSandboxedEnvironment all the same, a second wall behind the first.
"""
from __future__ import annotations

from pathlib import Path

import jinja2
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from records.errors import ConfigError

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
VARIABLES = frozenset({"premise", "hypothesis", "labels"})
FILTERS = frozenset({"join", "lower", "upper", "trim", "title", "capitalize", "replace", "default", "first",
                     "last", "string", "truncate", "wordwrap", "indent", "center"})
# The syntax a prompt needs: text, variables, filters with literal arguments. Nothing that reaches an object.
NODES = (jinja2.nodes.Template, jinja2.nodes.Output, jinja2.nodes.TemplateData, jinja2.nodes.Name,
         jinja2.nodes.Filter, jinja2.nodes.Const, jinja2.nodes.Keyword)


def environment() -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False,
                                         autoescape=False)


def checked(text: str, where: str) -> jinja2.Template:
    """The template `text` compiled in the sandbox, or ConfigError (one line, `where` names the source) when it
    is not valid jinja2 or uses anything beyond the allowed variables, filters and literals."""
    env = environment()
    try:
        tree = env.parse(text)
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(f"{where}: not a valid jinja2 template (line {e.lineno}: {e.message})") from None
    for node in tree.find_all(jinja2.nodes.Node):
        bad = None
        if not isinstance(node, NODES):
            bad = {"Getattr": "attribute access", "Getitem": "item access", "Call": "a call"}.get(
                type(node).__name__, f"a {type(node).__name__} node")
        elif isinstance(node, jinja2.nodes.Name) and node.name not in VARIABLES:
            bad = f"variable {node.name!r} (the variables are {', '.join(sorted(VARIABLES))})"
        elif isinstance(node, jinja2.nodes.Filter) and (node.name not in FILTERS or node.dyn_args or node.dyn_kwargs):
            bad = f"filter {node.name!r} (allowed: {', '.join(sorted(FILTERS))})"
        if bad:
            raise ConfigError(f"{where}: the template uses {bad}, refused: a prompt template is data, not code "
                              f"(fix: use only {{{{ premise }}}}, {{{{ hypothesis }}}}, {{{{ labels | join(', ') }}}})")
    return env.from_string(text)


def template_file(path: Path | str, where: str = "prompt.template") -> Path:
    """`path` when it is a file inside templates/ (links resolved first), else ConfigError naming `where`."""
    path = Path(path)
    real = path.resolve()
    if not real.is_relative_to(TEMPLATE_DIR):
        raise ConfigError(f"{where}: {path} is outside the project's templates/ folder, refused (fix: put the "
                          f"template in templates/, e.g. templates/nli_prompt.j2)")
    if not real.is_file():
        raise ConfigError(f"{where}: {path} not found (fix: e.g. templates/nli_prompt.j2)")
    return real


def read_template(path: Path | str, where: str = "prompt.template") -> tuple[str, jinja2.Template]:
    """(text, compiled template) of a prompt template file in templates/, checked; UTF-8 whatever the locale."""
    real = template_file(path, where)
    try:
        text = real.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{where}: {path} cannot be read ({e})") from None
    return text, checked(text, f"{where}: {path}")
