"""Readable at any size (issue 22): a run with 10,000 test rows renders in at most 60 s and 2 GB of RAM,
with the main body still at most 8 PDF pages; its full case list goes to the CSV beside the report, not into
the PDF. A synthetic fixture of that size, rendered by the fallback in a child process
(benchmarks/report_scale.py prints the same figures)."""
import pandas as pd
import pytest

from benchmarks.report_scale import measure

ROWS = 10_000


@pytest.mark.slow
def test_a_report_of_ten_thousand_test_rows_stays_short_fast_and_small(tmp_path):
    m = measure(ROWS, tmp_path)
    print(m)  # the figures, for the log
    assert m["seconds"] <= 60, m
    assert m["peak_rss_bytes"] <= 2 * 2 ** 30, m
    if m["pages"] is not None:  # pdftotext present
        assert m["appendix_page"] is not None and m["appendix_page"] <= 9, m
    cases = pd.read_csv(tmp_path / "site" / "report-cases.csv")
    assert len(cases) == ROWS  # every scored row, in the CSV only
