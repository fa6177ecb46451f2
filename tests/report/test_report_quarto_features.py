"""The fallback renders Quarto's features as Quarto documents them: inline `{python}` expressions (values
resolved as Quarto's Jupyter engine resolves them), conditional content (format, metadata, bare classes
keyed on a result) and figures with fig-cap / fig-alt. One probe document, rendered to HTML and PDF."""
import re

import pytest

from analysis.render import assemble, fallback
from analysis.render.kernel import ExecutionError
from tests.report.helpers import html_text, pdf_text

pytestmark = pytest.mark.slow

PROBE = '''---
title: "Probe"
flags:
  shown: true
  gone: false
---

```{python}
#| label: setup
from analysis.markdown import Markdown, show_if, text
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
n, word, fraction = 1234567, "a.b-c,d", 0.5
```

Number `{python} n`, plain string `{python} word`, markdown `{python} Markdown("**bold**")`, escaped `{python} text("<b>x</b>")`, empty `{python} Markdown("")` end.

::: {.content-visible when-format="html"}
Only in HTML.
:::

::: {.content-visible when-format="typst"}
Only in typst.
:::

::: {.content-hidden unless-format="html"}
Hidden unless HTML.
:::

::: {.content-visible when-meta="flags.shown"}
Meta on shows.
:::

::: {.content-visible when-meta="flags.gone"}
Meta off hides.
:::

::: {.content-hidden when-meta="flags.gone"}
Hidden when off shows.
:::

::: {`{python} show_if(fraction > 0.4)`}
Result true shows.
:::

::: {`{python} show_if(fraction > 0.6)`}
Result false hides.
:::

A span [kept]{`{python} show_if(True)`} and [dropped]{`{python} show_if(False)`} and [html span]{.content-visible when-format="html"} here.

```{python}
#| label: plot
#| fig-cap: "The probe's caption."
#| fig-alt: "The probe's alt text, which is not the caption."
class PNG:
    def _repr_png_(self):
        import io
        fig, ax = plt.subplots(figsize=(2, 1)); ax.plot([0, 1]); buf = io.BytesIO(); fig.savefig(buf, format="png")
        return buf.getvalue()
PNG()
```
'''


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    base = tmp_path_factory.mktemp("probe")
    (base / "probe.qmd").write_text(PROBE)
    produced = fallback.render_document(base / "probe.qmd", base / "out", base / "build", ["html", "typst"], {},
                                        lambda msg: None)
    return {"html": html_text(produced["html"]), "raw": produced["html"].read_text(),
            "pdf": pdf_text(produced["typst"]), "md": (base / "build" / "probe.md").read_text()}


def test_inline_values_as_quarto_writes_them(probe):
    md = probe["md"]
    # a number as is; a plain string unquoted and escaped the way Quarto's asEscapedMarkdown escapes it
    assert "Number 1234567," in md and "plain string a\\.b\\-c\\,d," in md
    assert "markdown **bold**," in md and "escaped \\<b\\>x\\</b\\>," in md
    # an empty value leaves the expression's code in place, as Quarto does
    assert 'empty `{python} Markdown("")` end' in md
    text = probe["html"]
    assert "plain string a.b-c,d" in text and "escaped <b>x</b>" in text and "<strong>bold</strong>" in probe["raw"]


def test_conditional_content_by_format_metadata_and_result(probe):
    text, pdf = probe["html"], probe["pdf"]
    for shown in ("Only in HTML.", "Hidden unless HTML.", "Meta on shows.", "Hidden when off shows.",
                  "Result true shows.", "A span kept and here", "html span"):
        assert shown.replace(" and here", "") in text, shown
    for hidden in ("Only in typst.", "Meta off hides.", "Result false hides.", "dropped"):
        assert hidden not in text, hidden
    assert "content-visible" not in probe["raw"] and "content-hidden" not in probe["raw"]
    if pdf is not None:
        assert "Only in typst." in pdf and "Only in HTML." not in pdf and "Hidden unless HTML." not in pdf
        assert "Meta on shows." in pdf and "Result false hides." not in pdf and "html span" not in pdf


def test_figure_caption_and_alt_text_from_the_cell_options(probe):
    img = re.search(r"<img\b[^>]*>", probe["raw"]).group(0)
    assert "alt=\"The probe's alt text, which is not the caption.\"" in img.replace("&#39;", "'")
    assert re.search(r"<figcaption[^>]*>The probe.s caption.</figcaption>", probe["raw"])


def test_an_inline_expression_that_fails_names_itself(tmp_path):
    (tmp_path / "bad.qmd").write_text("---\ntitle: t\n---\n\nValue `{python} undefined_name + 1` here.\n")
    with pytest.raises(ExecutionError, match=r"^bad.qmd: inline expression `undefined_name \+ 1` failed: NameError"):
        fallback.render_document(tmp_path / "bad.qmd", tmp_path / "out", tmp_path / "b", ["html"], {}, lambda m: None)


def test_inline_expressions_see_only_the_cells_above_them(tmp_path):
    (tmp_path / "order.qmd").write_text("---\ntitle: t\n---\n\nToo early: `{python} later`.\n\n"
                                        "```{python}\nlater = 1\n```\n")
    with pytest.raises(ExecutionError, match="NameError"):
        fallback.render_document(tmp_path / "order.qmd", tmp_path / "out", tmp_path / "b", ["html"], {}, lambda m: None)


def test_a_value_with_only_an_html_form_is_refused():
    with pytest.raises(assemble.AssembleError, match="text/html"):
        assemble.inline_value("df", {"text/html": "<table/>", "text/plain": "df"}, "report.qmd")
    assert assemble.plain_text_value("'1,000 (x)'") == "1\\,000 \\(x\\)"
    assert assemble.plain_text_value("0.75") == "0.75"


def test_include_shortcode_inserts_a_part_beside_the_document_and_refuses_anything_else(tmp_path):
    """{{< include _part.qmd >}} as Quarto resolves it; a path elsewhere, a file not named `_...`, a missing
    one or a nested include is one line naming the document and the fix (bad input: exit code 2)."""
    from analysis.render.qmd import QmdError, read
    (tmp_path / "_part.qmd").write_text("Included *text*.\n")
    doc = tmp_path / "doc.qmd"
    doc.write_text("Before.\n\n{{< include _part.qmd >}}\n\nAfter.\n")
    assert read(doc) == "Before.\n\nIncluded *text*.\n\nAfter.\n"
    (tmp_path / "part.qmd").write_text("x")
    (tmp_path / "_nested.qmd").write_text("{{< include _part.qmd >}}\n")
    for name, words in (("../secret.qmd", "must name a `_...` file beside it"), ("part.qmd", "beside it"),
                        ("_missing.qmd", "beside it"), ("_nested.qmd", "may not include another")):
        doc.write_text(f"{{{{< include {name} >}}}}\n")
        with pytest.raises(QmdError) as e:
            read(doc)
        assert words in str(e.value) and "\n" not in str(e.value), str(e.value)
