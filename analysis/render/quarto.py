"""The Quarto path: `quarto render` of the project (report.qmd and its front page index.qmd), with the
cells run by this interpreter, the report environment (QUARTO_PYTHON), so Jupyter is found."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


class QuartoError(Exception):
    """`quarto render` failed; str(err) is the one line shown to the user."""


def available() -> bool:
    return shutil.which("quarto") is not None


def command(out: Path, formats: list[str]) -> list[str]:
    """The documented command: `quarto render` of the project (both formats, and the front page), or
    `quarto render report.qmd --to typst` for the PDF alone (the front page is HTML only)."""
    cmd = ["quarto", "render"]
    if formats == ["typst"]:
        cmd += ["report.qmd", "--to", "typst"]
    elif formats == ["html"]:
        cmd += ["--to", "html"]
    return cmd + ["--output-dir", str(out)]


def render(out: Path, env: dict, formats: list[str]) -> None:
    proc = subprocess.run(command(out, formats), cwd=ROOT, env={"QUARTO_PYTHON": sys.executable, **os.environ, **env})
    if proc.returncode != 0:
        raise QuartoError(f"quarto render failed with exit code {proc.returncode}")
