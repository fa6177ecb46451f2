"""How the report scales with the test split: a synthetic run with N test rows (tests/report_fixture.py),
rendered by the fallback (nbclient + pandoc + typst) in a child process; prints the wall time, the largest
resident memory of any process of the render, the PDF's pages and the page where the appendix starts.

    python -m benchmarks.report_scale [--rows 10000] [--keep DIR]

The issue's bound (issue 22): 10,000 test rows render in at most 60 s and 2 GB of RAM, with the main body
still at most 8 pages. tests/report/test_report_scale.py checks the same figures (marked slow)."""
from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPENDIX = "Appendix A: Settings and data"


def make_results(folder: Path, rows: int) -> Path:
    from tests.report_fixture import write_run
    write_run(folder, "scale-run", kind="gpu", seed=11, test_rows=rows)
    (folder / "report.yaml").write_text("runs: [scale-run]\n")
    return folder


def pdf_pages(pdf: Path) -> list[str] | None:
    try:
        out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.split("\f")[:-1]


def measure(rows: int, work: Path) -> dict:
    """Render a report of one run with `rows` test rows into work/site; the figures of that render."""
    results = make_results(work / "results", rows)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "analysis.render", "--results", str(results), "--out", str(work / "site"),
                    "--engine", "nbclient", "--build-dir", str(work / "build")], cwd=ROOT, check=True,
                   capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    # ru_maxrss of the children waited for (kiB on Linux): the largest single process of the render
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) * 1024
    pages = pdf_pages(work / "site" / "report.pdf")
    start = None if pages is None else next(
        (i for i, p in enumerate(pages, 1) if i > 1 and re.search(rf"^{re.escape(APPENDIX)}\s*$", p, re.M)), None)
    return {"test_rows": rows, "seconds": round(seconds, 1), "peak_rss_bytes": peak,
            "pdf_bytes": (work / "site" / "report.pdf").stat().st_size, "pages": None if pages is None else len(pages),
            "appendix_page": start}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--keep", type=Path, help="render here and keep the files")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        print(json.dumps(measure(a.rows, a.keep or Path(tmp))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
