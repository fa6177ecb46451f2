"""report.qmd is the document: its prose, headings and captions live in it, numbers enter through inline
expressions and short cells, and what it says reaches the rendered HTML and PDF word for word (the
fallback's text compared with the document's, block by block, hidden blocks included)."""
import re

import pytest

from analysis.render import qmd
from tests.report.helpers import QMD, html_text, pdf_text, section_headings, squash

SECTIONS = ["Setup", "Accuracy", "Time", "Parameters", "Resources", "Corrected, regressed and unresolved cases",
            "Conclusions and limits"]


@pytest.fixture(scope="module")
def document():
    return qmd.parse(qmd.read(QMD))


def test_headings_and_anchors(document):
    assert list(section_headings().values()) == SECTIONS


def test_cells_are_short_and_figures_are_described(document):
    _, cells = document
    code = [c for c in cells if c.kind == "code"]
    labels = [c.options.get("label") for c in code]
    assert all(labels) and len(set(labels)) == len(labels)
    for c in code:
        lines = [ln for ln in c.source.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        limit = 12 if c.options["label"] == "facts" else 3  # the imports, then a few lines each
        assert len(lines) <= limit, (c.options["label"], lines)
        if c.source.strip().startswith("figures."):
            assert c.options.get("fig-cap") and c.options.get("fig-alt"), c.options["label"]
            # a `fig-` label: Quarto numbers the figure ("Figure 1:") and @fig- refers to it; so does the fallback
            assert c.options["label"].startswith("fig-")


def test_numbers_enter_through_inline_expressions(document):
    _, cells = document
    prose = "\n".join(c.source for c in cells if c.kind == "markdown")
    assert len(qmd.inline_expressions(prose)) >= 100
    typed = re.sub(r"`[^`]*`|\{#sec-[\w-]+\}|\[[^\]]*\]\(#[\w-]+\)", "", prose)
    # digits typed into the prose: methods (95 %, p = 1/2, 4-bit), sections and the SNLI citation only
    numbers = {n.rstrip(".,") for n in re.findall(r"\d[\d.,]*", typed)}
    assert numbers <= {"95", "1/2", "1", "2", "4", "8", "16", "32", "0", "3", "4.0", "2015", "5"}, numbers


def blocks(markdown: str):
    """(text, shown) per paragraph of the assembled document: hidden when inside a `.content-hidden` div."""
    out, stack, buf, code = [], [], [], False

    def flush():
        if buf:
            out.append((" ".join(buf), all(stack)))
            buf.clear()
    for line in markdown.splitlines():
        if line.startswith("```"):  # a code or raw block (```{=typst}): not prose
            code = not code
        if code:
            continue
        fence = re.match(r"^(:{3,})\s*(\{.*\})?\s*$", line)
        if fence:
            flush()
            if fence.group(2):
                stack.append(".content-hidden" not in fence.group(2))
            elif stack:
                stack.pop()
        elif not line.strip() or line.lstrip(" ").startswith(("|", "```", "#", "![", "- ", "1. ", "2. ", ": ")):  # nested too; ": " a table's caption
            flush()
        else:
            buf.append(line)
    flush()
    return out


def spans(s: str) -> str:
    """Conditional spans resolved: `[text]{.content-hidden}` dropped, `[text]{.content-visible}` kept as text."""
    m = re.search(r"\]\{\.content-(hidden|visible)\}", s)
    while m:
        depth, i = 0, m.start()
        while i > 0:
            i -= 1
            if s[i] in "[]" and s[i - 1] != "\\":
                depth += 1 if s[i] == "]" else -1
                if depth < 0:
                    break
        inner = s[i + 1:m.start()] if m.group(1) == "visible" else ""
        s = s[:i] + inner + s[m.end():]
        m = re.search(r"\]\{\.content-(hidden|visible)\}", s)
    return s


REFERENCE = re.compile(r"@(?:fig|tbl|sec)-[\w-]+")  # a cross-reference: "Figure 2" once rendered


def words(markdown: str) -> str:
    """The words a reader sees in a paragraph of markdown (hidden spans dropped, markup removed); a
    cross-reference stays as written (html_pattern reads it as "Figure 2", in_pdf skips it)."""
    s = spans(markdown)
    s = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", s)
    s = re.sub(r"(?<!\\)[*`]", "", s)  # emphasis and code markers
    s = re.sub(r"\\(.)", r"\1", s)
    return normalise(s)


def normalise(text: str) -> str:
    text = text.translate(str.maketrans("‘’“”ﬁﬂ", "''\"\"\x00\x01")).replace("\x00", "fi").replace("\x01", "fl")
    text = re.sub(r"([(/])\s+", r"\1", text)  # a PDF line may break after a slash ...
    text = re.sub(r"(\w-)\s+(\w)", r"\1\2", text)  # ... or a hyphen
    return squash(re.sub(r"\s+([.,;:)])", r"\1", text))


def html_pattern(paragraph: str) -> re.Pattern:
    """The paragraph as it reads in HTML, each cross-reference its kind and number ("Table 3", "Section 2.1")."""
    parts = REFERENCE.split(paragraph)
    return re.compile(r"(?:Figure|Table|Section) [\d.]+".join(re.escape(p) for p in parts))


def in_pdf(paragraph: str, pdf_words: list[str], slack: int = 60) -> bool:
    """The paragraph's words in order in the PDF's, allowing a page break (page number, a floated figure's
    caption: at most `slack` other words) in between."""
    want = [w for w in paragraph.split() if not REFERENCE.search(w)]  # "(Table 3)" in the PDF: the slack allows it
    for start in (i for i, w in enumerate(pdf_words) if w == want[0]):
        i, extra = start, 0
        for w in want:
            while i < len(pdf_words) and pdf_words[i] != w and extra <= slack:
                i, extra = i + 1, extra + 1
            if i >= len(pdf_words) or extra > slack:
                break
            i += 1
        else:
            return True
    return False


def test_the_rendered_report_says_what_the_document_says(rendered):
    md = (rendered["build"] / "report.md").read_text().split("\n---\n", 1)[1]  # after the front matter
    html = normalise(html_text(rendered["html"]))
    pdf = pdf_text(rendered["typst"])
    pdf = normalise(pdf).split() if pdf is not None else None
    paragraphs = [(words(t), shown) for t, shown in blocks(md) if len(words(t).split()) >= 6]
    assert sum(shown for _, shown in paragraphs) >= 25 and sum(not shown for _, shown in paragraphs) >= 10
    for text, shown in paragraphs:
        assert bool(html_pattern(text).search(html)) == shown, ("shown" if shown else "hidden", text)
        if pdf is not None and shown:
            assert in_pdf(text, pdf), text


def test_the_assembled_document_keeps_report_qmd_prose(rendered, document):
    """Between its inline expressions, every line of report.qmd's prose reaches the assembled markdown as is."""
    md = (rendered["build"] / "report.md").read_text()
    _, cells = document
    for cell in (c for c in cells if c.kind == "markdown"):
        for line in cell.source.splitlines():
            for piece in qmd.INLINE.sub(lambda m: m.group(1) + "\x00", line).split("\x00"):
                if len(piece.split()) >= 4:
                    assert piece in md, piece
