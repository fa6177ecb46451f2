"""Reading rendered reports back: the visible text of the HTML and of the PDF, and report.qmd's sections."""
from __future__ import annotations

import html as htmlmod
import re
import shutil
import subprocess
from pathlib import Path

from analysis.render.qmd import read

ROOT = Path(__file__).resolve().parent.parent.parent
QMD = ROOT / "report.qmd"


def squash(text: str) -> str:
    return " ".join(text.split())


def html_text(path: Path) -> str:
    """The visible text of an HTML file, white space squashed (tags removed, entities decoded)."""
    raw = Path(path).read_text()
    raw = re.sub(r"<(script|style)\b.*?</\1>", " ", raw, flags=re.S)
    return squash(htmlmod.unescape(re.sub(r"<[^>]+>", " ", raw)))


def pdf_text(path: Path) -> str | None:
    """The text of a PDF (pdftotext), or None when poppler-utils is not installed."""
    if not shutil.which("pdftotext"):
        return None
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True)
    return squash(out.stdout)


def section_headings(qmd: Path = QMD) -> dict[str, str]:
    """{anchor: heading} of report.qmd's top-level sections, e.g. {"sec-time": "Time"}."""
    return {m.group(2): m.group(1) for m in re.finditer(r"^# (.+?) \{#(sec-[\w-]+)\}$", read(qmd), re.M)}
