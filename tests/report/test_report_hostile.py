"""A run whose every text field (manifest and tables) carries hostile content, rendered through the fallback
(nbclient + pandoc + typst) into HTML and PDF: script must not become a live element, a local file named in
content must not be embedded (read), a URL in content must not be requested (a local HTTP server counts
requests during the render and while chromium shows the page), and each payload must reach the reader as the
literal text it is; long words are cut with a marker, bidirectional controls dropped."""
import base64
import html as htmlmod
import itertools
import re
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, HTTPServer

import pandas as pd
import pytest

from analysis import render
from analysis.sections.cases import CASE_FILE
from tests.report.helpers import html_text, pdf_text
from tests.report.test_report_browser import chromium
from tests.report_fixture import edit_manifest, rewrite_table, write_run

pytestmark = pytest.mark.slow
RUN = "<img src=x onerror=alert(1)>"  # the run's folder name is content too
SECRET = "CANARY-local-file-4f9a2c"
MATH = "$\\frac{1}{$ and $\\notacommand$"  # malformed mathtext: it must not fail a figure that draws the name
BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class Requests(BaseHTTPRequestHandler):
    seen: list = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        Requests.seen.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


def payloads(canary, port) -> list[str]:
    """One of each kind of hostile text; the fields below take them in turn, so each kind lands in many."""
    return [
        '<script>alert("xss")</script>',
        RUN,
        f'<img src="{canary}">',
        f"![leak]({canary})",
        f'<link rel="stylesheet" href="{canary}">',
        f'<img src="http://127.0.0.1:{port}/html-img.png">',
        f"![remote](http://127.0.0.1:{port}/md-img.png)",
        f'<iframe src="http://127.0.0.1:{port}/frame"></iframe>',
        "`x`{=html} <b>bold</b> $x^2$ @cite [link](javascript:alert(1)) *em* | cell",
        "```{=typst}\n#read(\"/etc/passwd\")\n``` and #image(\"secret.png\")",
        "right\u202eto\u2066left\u200f end",
        "A" * 5000,
        MATH,
    ]


def plant(folder, texts) -> None:
    """Every text field the report shows: the manifest's and the tables'."""
    t = itertools.cycle(texts)

    def manifest(m):
        m.description = next(t)
        m.config.update(description=next(t))
        m.config["model"].update(name=next(t), revision=next(t), trust_remote_code=True)
        m.config["data"].update(path=next(t), name=next(t), note=next(t))
        m.config["lora"]["target_modules"] = [next(t), next(t)]
        m.config["prompt"]["template"] = next(t)
        m.config["train"][next(t)] = next(t)            # a setting this version does not know, name and value
        m.data.update(note=next(t), source=next(t), fingerprint=next(t))
        m.data["splits"]["test"]["source_split"] = next(t)
        m.config_path, m.config_fingerprint, m.compute_dtype = next(t), next(t), next(t)
        m.code_version.update(git_commit=next(t))
        m.commands = [next(t), next(t)]
        env = m.environment
        env.update(python=next(t), platform=next(t), cuda=next(t), libraries={next(t): next(t), "torch": next(t)})
        env["gpu"].update(name=next(t), driver=next(t))
        env["cpu"].update(model=next(t))
        for st in m.stages.values():
            st.fingerprint = next(t)
        m.stages["evaluate"].update(status="failed", error=next(t))
        m.tuning.update(grid=next(t), rule=next(t), source=next(t), chosen={next(t): next(t), "lora.r": 16},
                        chosen_overrides=[next(t)])
        m.tuned = {"from_run": next(t), "grid": next(t), "chosen_trial": 2, "trials": 3, "rule": next(t),
                   "overrides": [next(t)]}
        m.test_evaluations = [{"finished": next(t), "fingerprint": next(t), "config_fingerprint": next(t),
                               "git_commit": next(t), "command": next(t), "settings": {"train.learning_rate": next(t)},
                               "tuned_trial": None, "test_rows": 100, "test_accuracy": 0.5, "source": next(t)}]
    edit_manifest(folder, manifest)

    samples = pd.read_parquet(folder / "samples.parquet")
    test = samples["split"] == "test"
    samples.loc[test, "premise"] = [next(t) for _ in range(test.sum())]
    samples.loc[test, "hypothesis"] = [next(t) for _ in range(test.sum())]
    rewrite_table(folder, "samples", samples)
    pred = pd.read_parquet(folder / "predictions.parquet")
    extra = pred[(pred["model"] == "baseline_zeroshot")].assign(model=MATH)  # drawn in the accuracy figure
    rewrite_table(folder, "predictions", pd.concat([pred, extra], ignore_index=True))
    res = pd.read_parquet(folder / "resources.parquet")
    res.loc[res["stage"] == "data", "stage"] = MATH  # drawn in the resources figure's legend
    rewrite_table(folder, "resources", res)
    params = pd.read_parquet(folder / "params.parquet")
    params["component"] = [next(t) for _ in range(len(params))]
    params["dtype"] = [next(t) for _ in range(len(params))]
    rewrite_table(folder, "params", params)
    tuning = pd.read_parquet(folder / "tuning.parquet")
    tuning["target_modules"] = [next(t) for _ in range(len(tuning))]
    rewrite_table(folder, "tuning", tuning)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    canary = base / "canary.txt"
    canary.write_text(SECRET)
    server = HTTPServer(("127.0.0.1", 0), Requests)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    texts = payloads(canary, server.server_port)
    folder = write_run(base / "results", RUN, kind="gpu", seed=11)
    plant(folder, texts)
    Requests.seen.clear()
    produced = render.render(results=base / "results", out=base / "site", runs=RUN, engine="nbclient",
                             build_dir=base / "build")
    during_render = list(Requests.seen)
    yield {"texts": texts, "canary": canary, "server": server, "during_render": during_render, **produced}
    server.shutdown()


class Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def test_no_live_element_comes_from_content(hostile):
    p = Elements()
    p.feed(hostile["html"].read_text())
    tags = {tag for tag, _ in p.found}
    assert not tags & {"script", "iframe", "object", "embed", "link", "base", "form", "input", "svg", "math"}, tags
    for tag, attrs in p.found:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        if tag == "img":
            assert attrs["src"].startswith("data:image/png;base64,"), attrs["src"][:80]  # our figures only
        if tag == "a":
            # links within the document, and the one to the case list the render writes beside it
            assert attrs.get("href", "#").startswith("#") or attrs["href"] == CASE_FILE, attrs
        if tag == "meta":
            assert "http-equiv" not in attrs, attrs
    assert "javascript:" not in "".join(str(a) for _, a in p.found)


def test_no_local_file_is_embedded_and_no_request_is_sent(hostile):
    raw = hostile["html"].read_text()
    assert SECRET not in raw and base64.b64encode(SECRET.encode()).decode()[:16] not in raw
    assert hostile["during_render"] == [], hostile["during_render"]


def literal(value: str) -> str:
    """A payload as the reader should see it: one line, bidirectional controls dropped, long words cut."""
    s = " ".join(BIDI.sub("", value).split())
    return re.sub(r"A{65,}", "A" * 64 + "…(+4,936 characters)", s)


def test_html_shows_every_payload_as_literal_text(hostile):
    shown = html_text(hostile["html"])
    for value in hostile["texts"]:
        assert literal(value) in shown, literal(value)[:80]
    assert not BIDI.search(htmlmod.unescape(hostile["html"].read_text()))
    assert "A" * 65 not in shown


def test_pdf_shows_every_payload_as_literal_text(hostile):
    words = pdf_text(hostile["typst"])
    if words is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    squashed = words.replace(" ", "")
    for value in hostile["texts"]:
        assert literal(value).replace(" ", "") in squashed, literal(value)[:80]
    assert not BIDI.search(words) and "A" * 65 not in words


def test_pdf_text_of_hostile_content_stays_on_the_page(hostile):
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    out = subprocess.run(["pdftotext", "-bbox", str(hostile["typst"]), "-"], capture_output=True, text=True,
                         check=True).stdout
    for n, page in enumerate(re.split(r"<page ", out)[1:], 1):
        width = float(re.search(r'width="([\d.]+)"', page).group(1))
        for xmax, word in re.findall(r'xMax="([\d.]+)"[^>]*>([^<]*)<', page):
            assert float(xmax) <= width + 0.5, f"page {n}: '{word[:40]}' runs off the page"


def test_the_warning_for_code_from_the_model_repository(hostile):
    shown = html_text(hostile["html"])
    assert "Code from the model repository ran." in shown and "model.trust_remote_code: true" in shown
    assert "ran (model.trust_remote_code)" in shown


def test_chromium_sends_no_request_for_the_hostile_page(hostile, tmp_path):
    Requests.seen.clear()
    _, page_requests = chromium(hostile["html"].as_uri(), tmp_path, "hostile")
    assert page_requests == [] and Requests.seen == [], (page_requests, Requests.seen)
