"""The rendered HTML in headless Debian chromium: it draws something, and it makes no network request.

Chromium's own background traffic (update checks) is told apart from the page's by the request initiator:
browser-internal requests have none ("not an origin"); a request made by the page has the page's origin.
A control page with one remote image proves the check can see a page's request."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LOADING = re.compile(r"<(script|link|img|iframe|source|video|audio|embed|object)\b[^>]*?\b(src|href|data)\s*=\s*[\"']?\s*(https?:)?//",
                     re.I)


@pytest.fixture(scope="module")
def html(rendered):
    return rendered["html"]


def chromium(url: str, tmp: Path, name: str) -> tuple[Path, list[dict]]:
    if not CHROMIUM:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    shot, netlog = tmp / f"{name}.png", tmp / f"{name}-net.json"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={tmp / (name + '-profile')}",
           f"--log-net-log={netlog}", f"--screenshot={shot}", "--window-size=1280,2000", url]
    subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), "chromium wrote no screenshot"
    log = json.loads(netlog.read_text() or "{}")
    types = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    starts = [e.get("params", {}) for e in log.get("events", []) if types.get(e["type"]) == "URL_REQUEST_START_JOB"]
    page = [p for p in starts if re.match(r"https?://", p.get("url", "")) and p.get("initiator") != "not an origin"]
    return shot, page


def test_static_html_loads_nothing_remote(html):
    raw = html.read_text()
    assert not LOADING.search(raw), LOADING.search(raw).group(0)
    assert not re.search(r"url\(\s*[\"']?(https?:)?//", raw, re.I)
    assert "@import" not in raw


def test_screenshot_is_not_blank_and_no_request_leaves(html, tmp_path):
    from PIL import Image, ImageStat
    shot, page_requests = chromium(html.as_uri(), tmp_path, "report")
    img = Image.open(shot).convert("L")
    assert img.size == (1280, 2000)
    assert ImageStat.Stat(img).stddev[0] > 10           # not a blank page
    dark = sum(img.histogram()[:128]) / (img.width * img.height)
    assert dark > 0.005                                  # text was drawn
    assert page_requests == [], page_requests


def test_control_page_request_is_detected(tmp_path):
    control = tmp_path / "control.html"
    control.write_text('<html><body><h1>control</h1><img src="http://report-test.invalid/x.png"></body></html>')
    _, page_requests = chromium(control.as_uri(), tmp_path, "control")
    assert any("report-test.invalid" in p["url"] for p in page_requests)


def test_the_first_screen_shows_the_verdict_and_the_substitutions(rendered, tmp_path):
    """At 1400 x 1000 the first screen of the report and of the front page shows the verdict box and the
    box of substitutions (their tints, templates/report/report.css), before any contents."""
    from PIL import Image
    for name in ("html", "index"):
        shot = tmp_path / f"{name}-first.png"
        if not CHROMIUM:
            pytest.skip("chromium is not installed (apt-get install chromium)")
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={tmp_path / (name + '-profile')}", f"--screenshot={shot}",
                        "--window-size=1400,1000", rendered[name].as_uri()], capture_output=True, timeout=120)
        colours = {c for _, c in Image.open(shot).convert("RGB").getcolors(1400 * 1000)}
        assert (0xfb, 0xf3, 0xf3) in colours, f"{name}: no verdict box on the first screen"
        assert (0xee, 0xf3, 0xfa) in colours, f"{name}: no substitutions box on the first screen"
