"""The fixture results rendered once for all report tests (fallback path: nbclient + pandoc + typst)."""
import pytest

from analysis import render
from tests.report_fixture import make_results


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """{"results", "html", "typst" (the PDF), "index", "build", "out"} of the fixture, as `make report` renders it."""
    import os
    os.environ.pop("REPORT_RUNS", None)  # the fixture's results/report.yaml decides, as in `make report`
    base = tmp_path_factory.mktemp("render")
    results = make_results(base / "results")
    out, build = base / "site", base / "build"
    produced = render.render(results=results, out=out, engine="nbclient", build_dir=build)
    return {"results": results, "out": out, "build": build, **produced}
