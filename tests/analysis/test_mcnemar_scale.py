"""McNemar at any test-set size (issue 20): the linear-time binomial tail agrees with the exact fractions it
replaced, and a render computes each pair's p once. Timings are printed by benchmarks/mcnemar_scale.py, not
asserted here."""
import sys
from pathlib import Path

import pytest

from analysis import stats
from analysis.render import qmd
from tests.mcnemar_reference import exact_fractions

ROOT = Path(__file__).resolve().parents[2]


def _agrees(b: int, c: int) -> None:
    ref, new = exact_fractions(b, c), stats.mcnemar_exact(b, c)
    assert abs(new - ref) <= 1e-12, (b, c, new, ref)
    if ref >= sys.float_info.min:  # also relatively, wherever p is a normal float (subnormals hold fewer digits)
        assert abs(new - ref) <= 1e-12 * ref, (b, c, new, ref)


def test_agrees_with_exact_fractions_on_every_small_table():
    # every (b, c) with b + c < 120: zero discordant rows, ties, one apart, one side empty, everything between
    for n in range(120):
        for b in range(n + 1):
            _agrees(b, n - b)


@pytest.mark.parametrize("b,c", [
    (0, 1000), (1, 999), (10, 990), (200, 800), (450, 550), (490, 510), (499, 501), (500, 500),  # n = 1,000
    (1350, 1650), (1470, 1530), (1499, 1501), (600, 2400), (1, 2999),                             # n = 3,000
    (0, 1022), (0, 1075),  # 2 * 2**-n: the smallest normal float, and the subnormal edge
])
def test_agrees_with_exact_fractions_at_larger_n(b, c):
    _agrees(b, c)
    assert stats.mcnemar_exact(c, b) == stats.mcnemar_exact(b, c)  # two-sided: symmetric


def test_tails_far_out_stay_positive_until_the_floats_end():
    # log10 p about -7,200 is below any float: 0.0, as the exact fraction rounds; a tail of 1e-54 is not lost
    assert stats.mcnemar_exact(0, 24_000) == 0.0
    p = stats.mcnemar_exact(10_800, 13_200)
    assert 0 < p < 1e-50


def _run_document(name: str) -> dict:
    """Execute a document's cells and inline expressions in order in one namespace, as the kernel does."""
    _, cells = qmd.parse(qmd.read(ROOT / name), name)
    ns: dict = {}
    for cell in cells:
        if cell.kind == "code":
            exec(cell.source, ns)  # noqa: S102 - our own document, the way Quarto's engine runs it
        else:
            for expr in qmd.inline_expressions(cell.source):
                eval(expr, ns)  # noqa: S307
    return ns


def test_a_render_computes_each_pairs_p_once(results, monkeypatch, tmp_path):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("REPORT_RESULTS", str(results))
    monkeypatch.setenv("REPORT_SITE", str(tmp_path))
    monkeypatch.delenv("REPORT_RUNS", raising=False)
    calls = []
    real = stats.mcnemar_exact

    def counted(b, c):
        calls.append((b, c))
        return real(b, c)
    monkeypatch.setattr(stats, "mcnemar_exact", counted)
    R = _run_document("report.qmd")["R"]
    # the report shows p for every pair of every run with real weights (the paired tables, the verdict, the
    # runs side by side, the conclusions): once each, though it is read in several places
    shown = [(p.a_only, p.b_only) for f in R.runs if f.accuracy_meaningful for p in f.paired.values()]
    assert len(shown) >= 2
    assert sorted(calls) == sorted(shown)
