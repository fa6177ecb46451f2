"""The report rendered from the fixture (the fallback path) and read back: its sections and numbers in the
HTML and the PDF, the PDF's pages, the site's front page, and the renderer's errors (one line, exit 2)."""
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis import render
from analysis.render.kernel import ExecutionError
from tests.report.helpers import ROOT, html_text, pdf_text, section_headings
from tests.report_fixture import ABSENT, rewrite_table, write_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pdf_words(rendered):
    text = pdf_text(rendered["typst"])
    if text is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    return text


def expected_numbers(results: Path) -> dict:
    """Figures computed here from the parquet tables, independently of analysis/."""
    run = results / "fixture-gpu"
    p, s = pd.read_parquet(run / "predictions.parquet"), pd.read_parquet(run / "samples.parquet")
    t = p[p.split == "test"].merge(s[s.split == "test"][["idx", "label"]], on="idx")
    acc = {m: (g.pred == g.label).mean() for m, g in t.groupby("model")}
    h, f = (t[t.model == m].set_index("idx") for m in ("baseline_head", "finetuned"))
    head_right, ft_right = h.pred == h.label, f.pred == f.label
    b, c = int((head_right & ~ft_right).sum()), int((~head_right & ft_right).sum())
    pval = min(1.0, 2 * sum(math.comb(b + c, i) for i in range(min(b, c) + 1)) / 2 ** (b + c))
    secs = pd.read_parquet(run / "epochs.parquet")["seconds"].sum()
    return {"acc_ft": f"{100 * acc['finetuned']:.1f} %", "acc_head": f"{100 * acc['baseline_head']:.1f} %",
            "acc_zs": f"{100 * acc['baseline_zeroshot']:.1f} %", "p": f"{pval:.1e}" if pval < 1e-4 else f"{pval:.4f}",
            "corrected": c, "regressed": b, "finetune_s": f"{secs:,.0f} s"}


def test_outputs_and_nothing_else_in_the_site(rendered):
    assert rendered["html"].stat().st_size > 50_000
    assert rendered["typst"].read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in rendered["out"].iterdir()) == ["index.html", "report-cases.csv", "report.html",
                                                                 "report.pdf"]


def test_the_full_case_list_is_a_csv_beside_the_report_and_linked(rendered):
    """The body shows a few chosen rows of each kind; every compared test row is in the CSV it links to."""
    import pandas as pd

    from analysis.facts import report_facts
    cases = pd.read_csv(rendered["out"] / "report-cases.csv")
    H = report_facts(rendered["results"]).headline
    mine = cases[cases["run"] == H.name]
    assert len(mine) == len(H.cases) and set(mine["category"]) <= {"corrected", "regressed", "unresolved", "kept"}
    assert (mine["category"].value_counts().get("corrected", 0)) == H.counts()["corrected"]
    assert 'href="report-cases.csv"' in rendered["html"].read_text()


def test_front_page_links_both_forms(rendered):
    raw = rendered["index"].read_text()
    assert 'href="report.html"' in raw and 'href="report.pdf"' in raw
    assert "self-contained" in html_text(rendered["index"])


def test_html_has_sections_and_numbers(rendered):
    text = html_text(rendered["html"])
    for heading in section_headings().values():
        assert heading in text, heading
    e = expected_numbers(rendered["results"])
    for key in ("acc_ft", "acc_head", "acc_zs", "p", "finetune_s"):
        assert e[key] in text, (key, e[key])
    assert f"{e['corrected']} corrected" in text and f"{e['regressed']} regressed" in text
    assert f"run {ABSENT} listed but not found" in text
    assert "original study" in text and "741 s" in text and "1,408,634,880" in text
    assert "CC BY-SA 4.0" in text and "Bowman" in text
    assert not re.search(r"\{python\}|\bNone\b|np\.(int|float)|\bnan\b", text)


def test_figures_are_embedded_with_captions_and_alt_text(rendered):
    raw = rendered["html"].read_text()
    images = re.findall(r"<img\b[^>]*>", raw)
    assert len(images) >= 5
    for img in images:
        assert 'src="data:image/png;base64,' in img
        alt = re.search(r'alt="([^"]*)"', img).group(1)
        assert len(alt) > 40, img[:200]  # the fig-alt of report.qmd, not the caption or nothing
    assert raw.count("<figcaption") >= 5


def test_pdf_has_sections_and_numbers(rendered, pdf_words):
    for heading in section_headings().values():
        assert heading in pdf_words, heading
    e = expected_numbers(rendered["results"])
    for key in ("acc_ft", "acc_head", "p", "finetune_s"):
        assert e[key] in pdf_words, (key, e[key])
    assert "not measured" in pdf_words and "original study" in pdf_words


def test_pdf_text_stays_on_the_page(rendered):
    """Wide tables must fit: every word's box lies within its page."""
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    out = subprocess.run(["pdftotext", "-bbox", str(rendered["typst"]), "-"], capture_output=True, text=True,
                         check=True).stdout
    pages = re.split(r"<page ", out)[1:]
    assert len(pages) >= 5
    for n, page in enumerate(pages, 1):
        width = float(re.search(r'width="([\d.]+)"', page).group(1))
        for xmax, word in re.findall(r'xMax="([\d.]+)"[^>]*>([^<]*)<', page):
            assert float(xmax) <= width + 0.5, f"page {n}: '{word}' runs off the page"


@pytest.fixture(scope="module")
def page_images(rendered, tmp_path_factory):
    if not shutil.which("pdftoppm"):
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    from PIL import Image
    tmp = tmp_path_factory.mktemp("pages")
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(rendered["typst"]), str(tmp / "p")], check=True)
    return [Image.open(p).convert("L") for p in sorted(tmp.glob("p-*.png"))]


def test_pdf_pages_are_not_blank(page_images):
    from PIL import ImageStat
    assert len(page_images) >= 5
    for n, img in enumerate(page_images, 1):
        assert ImageStat.Stat(img).stddev[0] > 3, f"page {n} is blank"


def test_no_pdf_page_leaves_a_large_gap(page_images, rendered):
    """Figures float to the top or bottom of a page instead of leaving ~40 % of one blank (all pages but the last,
    and the main body's last page: the appendix starts on a page of its own)."""
    import numpy as np

    from tests.report.test_report_layout import APPENDIX, pages
    text = pages(rendered["typst"])  # page_images needs poppler-utils, which has pdftotext too
    body_ends = next(i for i, p in enumerate(text, 1) if i > 1 and re.search(rf"^{re.escape(APPENDIX)}\s*$", p, re.M)) - 1
    for n, img in enumerate(page_images[:-1], 1):
        if n == body_ends:
            continue
        rows = list((np.asarray(img) < 200).any(axis=1))
        inked = [y for y, dark in enumerate(rows) if dark]
        top, bottom = inked[0], inked[-1]
        longest, run = 0, 0
        for dark in rows[top:bottom + 1]:
            run = 0 if dark else run + 1
            longest = max(longest, run)
        assert longest < 0.25 * img.height, f"page {n}: a blank band of {longest / img.height:.0%} of the page"


FAKE_QUARTO = """#!{python}
# Stands in for Quarto: records how it was called, writes the files `quarto render` would.
import json, os, sys
from pathlib import Path
out = Path(sys.argv[sys.argv.index("--output-dir") + 1])
json.dump({{"args": sys.argv[1:], "cwd": os.getcwd(), "python": os.environ.get("QUARTO_PYTHON"),
           "results": os.environ.get("REPORT_RESULTS")}}, open({log!r}, "w"))
for name in ("report.html", "report.pdf", "index.html"):
    (out / name).write_text("rendered")
"""


def test_quarto_path_runs_the_documented_command_with_the_report_python(tmp_path, monkeypatch):
    """With `quarto` on PATH, rendering is `quarto render` in the project root, its cells run by this Python."""
    import json
    import os
    fake = tmp_path / "bin" / "quarto"
    fake.parent.mkdir()
    fake.write_text(FAKE_QUARTO.format(python=sys.executable, log=str(tmp_path / "call.json")))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("QUARTO_PYTHON", raising=False)
    monkeypatch.delenv("REPORT_RUNS", raising=False)
    write_run(tmp_path / "results", "r", kind="gpu", seed=1)
    for formats, args in ((("html", "typst"), ["render"]), (("typst",), ["render", "report.qmd", "--to", "typst"])):
        produced = render.render(results=tmp_path / "results", out=tmp_path / "site", formats=formats)
        call = json.loads((tmp_path / "call.json").read_text())
        assert call["args"] == [*args, "--output-dir", str(tmp_path / "site")]
        assert call["cwd"] == str(ROOT) and call["python"] == sys.executable
        assert call["results"] == str(tmp_path / "results")
        assert ("index" in produced) == ("html" in formats)


def test_failing_cell_is_a_one_line_error(tmp_path):
    qmd = tmp_path / "bad.qmd"
    qmd.write_text('---\ntitle: t\n---\n\n# A\n\n```{python}\n#| label: boom\nraise ValueError("boom")\n```\n')
    with pytest.raises(ExecutionError, match=r"bad.qmd cell boom failed: ValueError: boom"):
        render.render(results=tmp_path, out=tmp_path / "site", engine="nbclient", formats=("html",), qmd=qmd)


def cli(*args, env=None):
    import os
    return subprocess.run([sys.executable, "-m", "analysis.render", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "REPORT_RUNS": "", **(env or {})})


def one_line_error(p) -> str:
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    return lines[0]


def test_cli_malformed_manifest_is_bad_input(tmp_path):
    write_run(tmp_path, "r", kind="gpu", seed=3)
    (tmp_path / "r" / "manifest.json").write_text('{"run": "r", ')
    p = cli("--results", tmp_path, "--out", tmp_path / "site")
    assert p.returncode == 2 and str(tmp_path / "r" / "manifest.json") in one_line_error(p)
    assert not (tmp_path / "site" / "report.html").exists()


def test_cli_bad_formats_and_strict_without_runs_are_bad_input(tmp_path):
    p = cli("--results", tmp_path, "--out", tmp_path / "site", "--formats", "html,pdf")
    assert p.returncode == 2 and "--formats" in one_line_error(p) and "typst" in one_line_error(p)
    p = cli("--results", tmp_path, "--out", tmp_path / "site", "--strict")
    assert p.returncode == 2 and "no runs" in one_line_error(p)


def test_cli_no_runs_renders_a_report_that_says_so(tmp_path):
    p = cli("--results", tmp_path, "--out", tmp_path / "site", "--formats", "html", "--engine", "nbclient")
    assert p.returncode == 0, p.stderr
    text = html_text(tmp_path / "site" / "report.html")
    assert "No runs are available" in text
    assert "741 s" in text and "1,408,634,880" in text  # the original study, shown alone
    assert not re.search(r"\{python\}|\bNone\b|\bnan\b", text)


def damage_truncate(folder):
    path = folder / "predictions.parquet"
    path.write_bytes(path.read_bytes()[:1000])
    return path, "damaged: 1,000 bytes where the manifest records"


def damage_probability(folder):
    df = pd.read_parquet(folder / "predictions.parquet")
    df.loc[17, "p_neutral"] = 1.7
    rewrite_table(folder, "predictions", df)
    return folder / "predictions.parquet", (f"row 17 (split test, idx {df.loc[17, 'idx']}, model baseline_head): "
                                            "p_neutral = 1.7 is outside [0, 1]")


def damage_deleted(folder):
    (folder / "epochs.parquet").unlink()
    return folder / "epochs.parquet", "missing, but the manifest records it"


@pytest.mark.parametrize("damage", [damage_truncate, damage_probability, damage_deleted])
def test_cli_damaged_or_invalid_table_stops_the_render_and_keeps_the_last_report(tmp_path, damage):
    """One line naming the file (and row) and the fix, exit 2, and the previous report left as it was."""
    folder = write_run(tmp_path / "results", "r", kind="gpu", seed=3)
    site = tmp_path / "site"
    site.mkdir()
    before = {name: f"previous {name}" for name in ("report.html", "report.pdf", "index.html")}
    for name, content in before.items():
        (site / name).write_text(content)
    path, words = damage(folder)
    p = cli("--results", tmp_path / "results", "--out", site, "--engine", "nbclient")
    line = one_line_error(p)
    assert p.returncode == 2 and f"{path}" in line and words in line, line
    assert "(fix: `python -m pipeline run configs/r.yaml` re-runs " in line
    assert {f.name: f.read_text() for f in site.iterdir()} == before


def test_cli_error_is_one_line_whatever_the_run_folder_is_called(tmp_path):
    name = "r\n\x1b[2Jerror: fake second line"
    folder = write_run(tmp_path / "results", name, kind="gpu", seed=3)
    (folder / "steps.parquet").write_bytes(b"")
    p = cli("--results", tmp_path / "results", "--out", tmp_path / "site", "--runs", name)
    line = one_line_error(p)
    assert p.returncode == 2 and "\x1b" not in p.stderr and "steps.parquet: empty file (0 bytes)" in line


def test_provenance_says_whether_checksums_were_recorded(rendered, tmp_path):
    def prose(path):  # html_text puts a space where a tag was: "fixture-gpu :" becomes "fixture-gpu:" again
        return re.sub(r" ([:,])", r"\1", html_text(path))
    text = prose(rendered["html"])  # headline fixture-gpu: its manifest records its tables
    assert "Table checksums of fixture-gpu: each table was checked against the sha256, row count" in text
    assert "verified (7 tables)" in text and "not recorded (an older manifest)" in text  # fixture-cpu's column
    p = cli("--results", rendered["results"], "--out", tmp_path / "site", "--runs", "fixture-cpu", "--formats", "html",
            "--engine", "nbclient")
    assert p.returncode == 0, p.stderr
    text = prose(tmp_path / "site" / "report.html")
    assert "Table checksums of fixture-cpu: checksums not recorded: the run" in text and "manifest predates them" in text
