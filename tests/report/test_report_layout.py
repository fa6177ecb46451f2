"""The report a reader trusts at a glance (issue 22), checked on the rendered fixture report:
- the verdict and the substitutions come before the contents, in the HTML (and on the site's front page)
  and on the PDF's first page;
- the main body is short: the appendix starts by page 9 of the PDF;
- clean pages: no heading is the last line of a PDF page, no zero-width (or soft-hyphen, word-joiner)
  character is in the PDF's text, and code spans keep the spaces around them.
PDF checks need pdftotext (poppler-utils) and skip without it."""
import re
import shutil
import subprocess

import pytest

from analysis.settings import MODEL_SECTIONS, field_help
from tests.report.helpers import html_text, squash

INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
APPENDIX = "Appendix A: Settings and data"
needs_pdftotext = pytest.mark.skipif(not shutil.which("pdftotext"), reason="pdftotext (poppler-utils) not installed")


def pages(pdf) -> list[str]:
    """The PDF's text page by page (pdftotext -layout; pages split at form feeds)."""
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return out.split("\f")[:-1] if out.endswith("\f") else out.split("\f")


def test_verdict_and_substitutions_come_before_the_contents_in_the_html(rendered):
    for page in (rendered["html"], rendered["index"]):
        html = page.read_text()
        verdict, subs = html.find('class="unnumbered unlisted callout-important verdict"'), html.find("substitutions\"")
        assert 0 < verdict < subs, page.name
        nav = html.find("<nav")
        assert nav == -1 and page.name == "index.html" or subs < nav, page.name  # the front page has no contents
        body = html_text(page)
        assert body.index("Verdict at a glance") < body.index("What stands in for what, and why")


@needs_pdftotext
def test_verdict_and_substitutions_are_on_the_first_pdf_page_before_the_contents(rendered):
    first = squash(pages(rendered["typst"])[0])
    assert first.index("Verdict at a glance") < first.index("What stands in for what, and why") < first.index("Contents")
    assert "within noise of the original" in first or "not comparable here" in first or "not measured here" in first
    assert "Appendix G: Reproducibility" in first  # the contents end on page 1 too


@needs_pdftotext
def test_the_appendix_starts_by_page_nine(rendered):
    text = pages(rendered["typst"])
    start = next(i for i, p in enumerate(text, 1) if i > 1 and re.search(rf"^{re.escape(APPENDIX)}\s*$", p, re.M))
    assert start <= 9, start


def headings(markdown: str) -> list[str]:
    """The text of every heading of the assembled document (attributes dropped)."""
    found = re.findall(r"^#{1,6} (.+?)(?:\s*\{[^}]*\})?\s*$", markdown, re.M)
    return [squash(re.sub(r"[*`\\]", "", h)) for h in found]


@needs_pdftotext
def test_no_heading_is_the_last_line_of_a_pdf_page(rendered):
    titles = headings((rendered["build"] / "report.md").read_text())
    assert "Accuracy" in titles
    for n, page in enumerate(pages(rendered["typst"]), 1):
        lines = [ln.strip() for ln in page.splitlines() if ln.strip()]
        lines = lines[:-1] if lines and lines[-1].isdigit() else lines  # the page number
        last = re.sub(r"^[\d.]+\s+", "", lines[-1]) if lines else ""  # "3 Time" -> "Time"
        assert last not in titles, (n, last)


@needs_pdftotext
def test_no_zero_width_character_in_the_pdf_text(rendered):
    text = "".join(pages(rendered["typst"]))
    assert not INVISIBLE.findall(text), sorted({hex(ord(c)) for c in INVISIBLE.findall(text)})
    assert "fixture-gpu" in text  # run names stay whole and searchable


def test_fixture_text_keeps_its_spaces_around_inline_code(rendered):
    """Each config field's help text with `code` in it reads, in the rendered HTML and PDF, as written: no
    space lost before or after a code span ("Run gelu_new (Phi's ...", not "Rungelu_new(")."""
    helps = [h for s in MODEL_SECTIONS for h in field_help(s).values() if "`" in h and h.count("`") % 2 == 0]
    assert helps
    def tight(text: str) -> str:  # html_text puts a space where each tag was: none before ) . , or after (
        return re.sub(r"\(\s+", "(", re.sub(r"\s+([.,;:)])", r"\1", squash(text.replace("’", "'").replace("…", "..."))))
    html = tight(html_text(rendered["html"]))
    pdf = squash("".join(pages(rendered["typst"]))) if shutil.which("pdftotext") else None
    for h in helps:
        words = squash(h.replace("`", ""))
        assert tight(words) in html, words
        if pdf is not None:  # table cells interleave in the PDF's text: no word may be glued to a code span
            for m in re.finditer(r"(\w+) `([^`]+)`|`([^`]+)` (\w+)", h):
                glued = m.group(1) + m.group(2) if m.group(1) else m.group(3) + m.group(4)
                assert glued not in pdf, glued


def test_cross_references_resolve_in_both_formats(rendered):
    """@fig-, @tbl- and @sec- become "Figure 2", "Table 3", "Section 2", linked in the HTML, typst's own
    references in the PDF; none is left unresolved ("?@...") or as written ("@tbl-...")."""
    html = rendered["html"].read_text()
    for kind, target in (("Table", "tbl-runs"), ("Figure", "fig-runs"), ("Section", "sec-accuracy")):
        assert re.search(rf'<a href="#{target}"[^>]*>{kind} [\d.]+</a>', html), target
        assert f'id="{target}"' in html, target
    assert re.search(r'<figcaption>Figure \d+: ', html) and re.search(r"<caption>Table \d+: ", html)
    text = html_text(rendered["html"])
    assert "?@" not in text and not re.search(r"@(fig|tbl|sec)-", text)
    if shutil.which("pdftotext"):
        pdf = squash("".join(pages(rendered["typst"])))
        assert re.search(r"\(Table \d+\)", pdf) and re.search(r"in Section 2 ", pdf)
        assert "?@" not in pdf and not re.search(r"@(fig|tbl|sec)-", pdf)
