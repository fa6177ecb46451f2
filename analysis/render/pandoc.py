"""The fallback's last steps: pandoc writes the self-contained HTML, and pandoc -t typst plus the typst
package write the PDF. Both read the format options of _quarto.yml and apply Quarto's conditional content
and fig-alt (the Lua filters beside this file)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FILTERS = [HERE / "conditional.lua", HERE / "fig_alt.lua", HERE / "crossref.lua", HERE / "callout.lua",
           HERE / "keep_together.lua"]
# Page width, fonts and spacing of a bare pandoc page; Quarto's HTML has its own (Bootstrap) layout.
FALLBACK_CSS = ROOT / "templates" / "report" / "fallback.css"


class PandocError(Exception):
    """pandoc or typst failed; str(err) is the one line shown to the user."""


def pandoc_path() -> str:
    import pypandoc
    return pypandoc.get_pandoc_path()


def run_pandoc(args: list[str], cwd: Path) -> None:
    filters = [a for f in FILTERS for a in ("--lua-filter", str(f))]
    proc = subprocess.run([pandoc_path(), *args, *filters], cwd=cwd, capture_output=True, text=True,
                          encoding="utf-8", errors="replace")
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit code {proc.returncode}"
        raise PandocError(f"pandoc failed: {last}")
    for line in proc.stderr.strip().splitlines():
        print(f"  pandoc: {line}")


def _list(value) -> list:
    return [value] if isinstance(value, str) else list(value or [])


def common_args(options: dict) -> list[str]:
    args = ["--toc", f"--toc-depth={options.get('toc-depth', 3)}"] if options.get("toc") else []
    return args + (["--number-sections"] if options.get("number-sections") else [])


# pandoc writes the contents before the body; a document that has a `::: {#contents}` placeholder (report.qmd:
# after the verdict, so that the first screen shows it) gets them there instead. Quarto's HTML puts them in
# a side bar, so the placeholder stays empty there.
_NAV = re.compile(r'<nav id="TOC" role="doc-toc">.*?</nav>\n?', re.S)
_PLACEHOLDER = re.compile(r'<div id="contents">\s*</div>')


def place_contents(html: str) -> str:
    """Move pandoc's <nav id="TOC"> to the document's contents placeholder, where there is one."""
    nav = _NAV.search(html)
    if not nav or not _PLACEHOLDER.search(html):
        return html
    html = html[:nav.start()] + html[nav.end():]
    return _PLACEHOLDER.sub(lambda _: nav.group(0).replace("<nav ", '<nav class="contents" ', 1), html, count=1)


def write_html(md: Path, out: Path, options: dict) -> None:
    """options: _quarto.yml's format.html."""
    args = [md.name, "-f", "markdown", "-t", "html", "--standalone", "--embed-resources", "-o", str(out),
            *common_args(options), "--css", str(FALLBACK_CSS)]
    for css in _list(options.get("css")):
        args += ["--css", str(ROOT / css)]
    run_pandoc(args, md.parent)
    out.write_text(place_contents(out.read_text(encoding="utf-8")), encoding="utf-8")


def write_pdf(md: Path, out: Path, options: dict) -> None:
    """options: _quarto.yml's format.typst."""
    import typst
    meta = {k: options[k] for k in ("papersize", "margin", "fontsize") if k in options}
    if options.get("number-sections"):
        meta["section-numbering"] = "1.1"
    meta["page-numbering"] = "1"
    meta_file = md.parent / "typst-meta.yaml"
    meta_file.write_text(yaml.safe_dump(meta), encoding="utf-8")
    typ = md.with_suffix(".typ")
    # typst-smart: pandoc writes quotes and apostrophes as the characters they are and turns typst's smart
    # quotes off, where typst would read the apostrophe after a digit ("T4's") as a prime.
    args = [md.name, "-f", "markdown", "-t", "typst-smart", "--standalone", "--metadata-file", meta_file.name,
            "-o", typ.name, *[a for a in common_args(options) if a != "--number-sections"]]
    for header in _list(options.get("include-in-header")):
        args += ["--include-in-header", str(ROOT / header)]
    run_pandoc(args, md.parent)
    try:
        _, warnings = typst.compile_with_warnings(str(typ), output=str(out), root=str(md.parent))
        for w in warnings:
            print(f"  typst warning: {getattr(w, 'message', w)}")
    except Exception as e:  # typst.TypstError
        raise PandocError(f"typst failed on {typ}: {getattr(e, 'message', str(e)).splitlines()[0]}") from None
