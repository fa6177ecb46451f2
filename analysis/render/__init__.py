"""Render the report: report.qmd into _site/report.html (self-contained) and _site/report.pdf, with the
site's front page index.qmd into _site/index.html.

    python -m analysis.render [--results DIR] [--out DIR] [--runs a,b] [--engine auto|quarto|nbclient]
                              [--formats html,typst] [--build-dir DIR] [--strict]

With Quarto on PATH this is `quarto render` (the PDF is Quarto's typst format). Without it the fallback
renders the same documents (fallback.py): cells and inline expressions in a Jupyter kernel, conditional
content and figures as Quarto treats them, then pandoc (HTML) and typst (PDF).
Exit codes: 0 done, 2 bad input (one line on stderr naming the file or option, the same code as the
pipeline CLI), 1 rendering failed.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from analysis.markdown import one_line
from analysis.render import fallback, quarto
from analysis.render.assemble import AssembleError
from analysis.render.kernel import ExecutionError
from analysis.render.pandoc import PandocError
from analysis.render.qmd import QmdError
from analysis.render.quarto import QuartoError
from analysis.runs import DEFAULT_RESULTS, ReportError, select

ROOT = Path(__file__).resolve().parent.parent.parent
QMD = ROOT / "report.qmd"
FRONT_PAGE = ROOT / "index.qmd"
FORMATS = ("html", "typst")
BAD_INPUT, FAILED = 2, 1


def step(msg: str) -> None:
    print(f"[render] {msg}", flush=True)


def check_runs(results: Path, listed: str | None, strict: bool) -> None:
    """Select the runs as the report will (a malformed manifest or report.yaml raises ReportError here)."""
    sel = select(results, listed)
    for note in sel.notes:
        print(f"  note: {one_line(note, 300)}")
    if sel.runs:
        names = one_line(", ".join(r.name for r in sel.runs), 300)
        print(f"  runs: {names} (headline {one_line(sel.runs[0].name, 100)}; from {one_line(sel.source, 200)})")
    elif strict:
        raise ReportError(f"no runs in {results} (no folder with a manifest.json)")
    else:
        print(f"  warning: no runs in {results} (no folder with a manifest.json): rendering a report that says so")


def check_environment() -> None:
    """SOURCE_DATE_EPOCH (reproducible builds: the date matplotlib, pandoc and typst stamp) must be a whole number
    of seconds; anything else fails deep inside the kernel's figure code. One line instead."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is not None and not value.strip().isdigit():
        raise ReportError(f"SOURCE_DATE_EPOCH={one_line(repr(value))[:80]}: must be a whole number of seconds since "
                          f"1970 (fix: e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct), or unset it)")


def render(results: Path | None = None, out: Path | None = None, runs: str | None = None,
           engine: str = "auto", formats: tuple[str, ...] = FORMATS, build_dir: Path | None = None,
           strict: bool = False, qmd: Path = QMD) -> dict[str, Path]:
    """Render `qmd` (and the front page) into `out`; returns {"html": path, "typst": path, "index": path}.
    `runs`: comma-separated run names (the first is the headline), else REPORT_RUNS / results/report.yaml."""
    t0 = time.perf_counter()
    check_environment()
    results = Path(results or os.environ.get("REPORT_RESULTS") or DEFAULT_RESULTS).resolve()
    out = Path(out or ROOT / "_site").resolve()
    step(f"checking runs in {results}")
    check_runs(results, runs, strict)
    # The kernel selects again, from the same inputs, so its notes (e.g. "listed but not found") match these.
    env = {"REPORT_RESULTS": str(results), "REPORT_RUNS": runs or os.environ.get("REPORT_RUNS", ""),
           "MPLBACKEND": "Agg", "REPORT_SITE": str(out),
           "PYTHONUTF8": "1",  # our files are UTF-8 whatever the locale (LC_ALL=C)
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    out.mkdir(parents=True, exist_ok=True)
    if engine == "quarto" or (engine == "auto" and quarto.available()):
        step("quarto render (report.qmd and index.qmd)")
        quarto.render(out, env, list(formats))
        produced = {f: out / f"report{fallback.OUTPUT[f]}" for f in formats}
        if "html" in formats:
            produced["index"] = out / "index.html"
    else:
        step("rendering without Quarto: nbclient, pandoc and typst")
        with tempfile.TemporaryDirectory(prefix="report-build-") as tmp:
            build = Path(build_dir).resolve() if build_dir else Path(tmp)
            produced = fallback.render_document(qmd, out, build, list(formats), env, step)
            if "html" in formats and qmd == QMD:
                produced["index"] = fallback.render_document(FRONT_PAGE, out, build, ["html"], env, step)["html"]
    for path in produced.values():
        print(f"  wrote {path} ({path.stat().st_size / 1024:,.0f} KiB)")
    step(f"done in {time.perf_counter() - t0:.1f} s")
    return produced


def parse_formats(text: str) -> tuple[str, ...]:
    formats = tuple(f.strip() for f in text.split(",") if f.strip())
    if not formats or any(f not in FORMATS for f in formats):
        raise ReportError(f"--formats: takes html and/or typst (typst writes the PDF), got {text!r}")
    return formats


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.render", description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", type=Path, help="results folder (default: results/, or $REPORT_RESULTS)")
    ap.add_argument("--out", type=Path, help="output folder (default: _site/)")
    ap.add_argument("--runs", help="comma-separated run names, the first is the headline run "
                                   "(default: $REPORT_RUNS, else results/report.yaml, else every run)")
    ap.add_argument("--engine", choices=("auto", "quarto", "nbclient"), default="auto",
                    help="auto: quarto when it is on PATH, else nbclient + pandoc + typst")
    ap.add_argument("--formats", default="html,typst", help="html, typst (the PDF) or both (default html,typst)")
    ap.add_argument("--build-dir", type=Path, help="keep the intermediate files (markdown, typst, figures) here")
    ap.add_argument("--strict", action="store_true", help="fail when there are no runs instead of rendering a "
                                                          "report that says so")
    a = ap.parse_args(argv)
    try:
        render(a.results, a.out, a.runs, a.engine, parse_formats(a.formats), a.build_dir, a.strict)
    except (ReportError, QmdError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)  # one line, whatever a file name or a value holds
        return BAD_INPUT
    except (ExecutionError, AssembleError, PandocError, QuartoError) as e:
        print(f"error: {one_line(e)}", file=sys.stderr)
        return FAILED
    return 0
