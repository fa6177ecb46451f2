"""Render the report from the fixture (nbclient + pandoc + typst) and read the HTML and the PDF back."""
import html as htmlmod
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis import render
from analysis.sections import SECTIONS

try:
    from tests.report_fixture import ABSENT, make_results, write_run
except ImportError:
    from report_fixture import ABSENT, make_results, write_run

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def squash(text: str) -> str:
    return " ".join(text.split())


def html_text(path: Path) -> str:
    raw = path.read_text()
    raw = re.sub(r"<(script|style)\b.*?</\1>", " ", raw, flags=re.S)
    return squash(htmlmod.unescape(re.sub(r"<[^>]+>", " ", raw)))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    import os
    os.environ.pop("REPORT_RUNS", None)  # the fixture's results/report.yaml decides, as in `make report`
    base = tmp_path_factory.mktemp("render")
    results = make_results(base / "results")
    out, build = base / "site", base / "build"
    produced = render.render(results=results, out=out, engine="nbclient", build_dir=build)
    return {"results": results, "html": produced["html"], "pdf": produced["pdf"], "build": build}


@pytest.fixture(scope="module")
def pdf_text(rendered):
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    out = subprocess.run(["pdftotext", "-layout", str(rendered["pdf"]), "-"], capture_output=True, text=True, check=True)
    return squash(out.stdout)


def expected_numbers(results: Path) -> dict:
    """Figures computed here from the parquet tables, independently of analysis/."""
    run = results / "fixture-gpu"
    p, s = pd.read_parquet(run / "predictions.parquet"), pd.read_parquet(run / "samples.parquet")
    t = p[p.split == "test"].merge(s[s.split == "test"][["idx", "label"]], on="idx")
    acc = {m: (g.pred == g.label).mean() for m, g in t.groupby("model")}
    h = t[t.model == "baseline_head"].set_index("idx")
    f = t[t.model == "finetuned"].set_index("idx")
    head_right, ft_right = h.pred == h.label, f.pred == f.label
    b, c = int((head_right & ~ft_right).sum()), int((~head_right & ft_right).sum())
    k = min(b, c)
    pval = min(1.0, 2 * sum(math.comb(b + c, i) for i in range(k + 1)) / 2 ** (b + c))
    secs = pd.read_parquet(run / "epochs.parquet")["seconds"].sum()
    return {"acc_ft": f"{100 * acc['finetuned']:.1f} %", "acc_head": f"{100 * acc['baseline_head']:.1f} %",
            "acc_zs": f"{100 * acc['baseline_zeroshot']:.1f} %", "p": f"{pval:.1e}" if pval < 1e-4 else f"{pval:.4f}",
            "corrected": c, "regressed": b, "finetune_s": f"{secs:,.0f} s"}


def test_outputs_exist(rendered):
    assert rendered["html"].stat().st_size > 50_000
    assert rendered["pdf"].read_bytes()[:5] == b"%PDF-"


def test_html_has_sections_and_numbers(rendered):
    text = html_text(rendered["html"])
    for heading in SECTIONS.values():
        assert heading in text, heading
    e = expected_numbers(rendered["results"])
    for key in ("acc_ft", "acc_head", "acc_zs", "p", "finetune_s"):
        assert e[key] in text, (key, e[key])
    assert f"{e['corrected']} corrected" in text and f"{e['regressed']} regressed" in text
    assert f"run `{ABSENT}` listed but not found".replace("`", "") in text.replace("`", "")
    assert "original study" in text and "741 s" in text and "1,408,634,880" in text
    assert "CC BY-SA 4.0" in text and "Bowman" in text
    # figures are embedded, not linked
    raw = rendered["html"].read_text()
    assert raw.count('src="data:image/png;base64,') >= 5


def test_pdf_has_sections_and_numbers(rendered, pdf_text):
    for heading in SECTIONS.values():
        assert heading in pdf_text, heading
    e = expected_numbers(rendered["results"])
    for key in ("acc_ft", "acc_head", "p", "finetune_s"):
        assert e[key] in pdf_text, (key, e[key])
    assert "not measured" in pdf_text and "original study" in pdf_text


def test_pdf_text_stays_on_the_page(rendered):
    """Wide tables must fit: every word's box lies within its page."""
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    out = subprocess.run(["pdftotext", "-bbox", str(rendered["pdf"]), "-"], capture_output=True, text=True,
                         check=True).stdout
    pages = re.split(r"<page ", out)[1:]
    assert len(pages) >= 5
    for n, page in enumerate(pages, 1):
        width = float(re.search(r'width="([\d.]+)"', page).group(1))
        for xmax, word in re.findall(r'xMax="([\d.]+)"[^>]*>([^<]*)<', page):
            assert float(xmax) <= width + 0.5, f"page {n}: '{word}' runs off the page"


def test_pdf_pages_are_not_blank(rendered, tmp_path):
    if not shutil.which("pdftoppm"):
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    from PIL import Image, ImageStat
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(rendered["pdf"]), str(tmp_path / "p")], check=True)
    pngs = sorted(tmp_path.glob("p-*.png"))
    assert len(pngs) >= 5
    for png in pngs:
        assert ImageStat.Stat(Image.open(png).convert("L")).stddev[0] > 3, png.name


def test_qmd_conversion_keeps_options_and_markdown():
    meta, cells = render.parse_qmd((ROOT / "report.qmd").read_text())
    assert meta["title"]
    code = [c for c in cells if c.kind == "code"]
    assert code and all(c.options.get("label") for c in code)
    assert sum(c.options.get("output") == "asis" for c in code) >= 10
    md = "\n".join(c.source for c in cells if c.kind == "markdown")
    for sec, heading in SECTIONS.items():
        assert f"# {heading} {{#{sec}}}" in md


def cli(*args, env=None):
    import os
    return subprocess.run([sys.executable, "-m", "analysis.render", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "REPORT_RUNS": "", **(env or {})})


def test_cli_malformed_manifest_is_one_line_error(tmp_path):
    write_run(tmp_path, "r", kind="gpu", seed=3)
    (tmp_path / "r" / "manifest.json").write_text('{"run": "r", ')
    p = cli("--results", tmp_path, "--out", tmp_path / "site")
    assert p.returncode == 1
    err = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: ") and str(tmp_path / "r" / "manifest.json") in err[0]


def test_cli_no_runs(tmp_path):
    p = cli("--results", tmp_path, "--out", tmp_path / "site", "--strict")
    assert p.returncode == 1 and "no runs" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = cli("--results", tmp_path, "--out", tmp_path / "site", "--formats", "html", "--engine", "nbclient")
    assert p.returncode == 0, p.stderr
    text = html_text(tmp_path / "site" / "report.html")
    assert "No runs are available" in text
    assert "741 s" in text and "1,408,634,880" in text  # the original study, shown alone
    assert "[render 1/6]" in p.stdout


def test_failing_cell_is_a_one_line_render_error(tmp_path):
    qmd = tmp_path / "bad.qmd"
    qmd.write_text('---\ntitle: t\n---\n\n# A\n\n```{python}\n#| label: boom\nraise ValueError("boom")\n```\n')
    with pytest.raises(render.RenderError, match=r"cell boom failed: ValueError: boom"):
        render.render(results=tmp_path, out=tmp_path / "site", engine="nbclient", formats=("html",), qmd=qmd)
