"""analysis.fmt: the exact string the report prints for each kind of number, at the thresholds where the form
changes (a p-value's digits, seconds, MiB vs GiB)."""
import math

import pytest

from analysis import fmt


@pytest.mark.parametrize("x, out", [(1e-5, "1.0e-05"), (9.99e-5, "1.0e-04"), (1e-4, "0.0001"),
                                    (0.0386, "0.0386"), (0.05, "0.0500"), (0.12345, "0.1235"), (1.0, "1.0000")])
def test_pvalue_digits(x, out):
    assert fmt.pvalue(x) == out


def test_pvalue_missing_says_not_computed():
    assert fmt.pvalue(None) == "not computed" and fmt.pvalue(math.nan) == "not computed"
    assert fmt.pvalue(None, none="–") == "–"


@pytest.mark.parametrize("x, out", [(0.5, "0.50 s"), (9.994, "9.99 s"), (10, "10.0 s"), (119.94, "119.9 s"),
                                    (120, "120 s"), (3600.4, "3,600 s")])
def test_seconds_forms(x, out):
    assert fmt.seconds(x) == out


def test_sizes():
    assert fmt.size(2 ** 30) == "1.00 GiB"
    assert fmt.size(2 ** 30 - 2 ** 20) == "1,023.00 MiB"
    assert fmt.size(512 * 1024) == "0.50 MiB"
    assert fmt.size(None) == "not measured" and fmt.size(math.nan, none="–") == "–"
    assert fmt.mem(3 * 2 ** 30) == "3.00 GiB (3.22 GB)"
    assert fmt.gib(1.5 * 2 ** 30, digits=1) == "1.5 GiB"
    assert fmt.gb(2_500_000_000, digits=1) == "2.5 GB"


def test_numbers():
    assert fmt.num(1234.5678) == "1,234.57"
    assert fmt.num(2.5, digits=0) == "2"
    assert fmt.integer(2.5) == "2" and fmt.integer(3.5) == "4" and fmt.integer(1234) == "1,234"
    assert fmt.general(0.001) == "0.001" and fmt.general(2e-5) == "2e-05"
    assert fmt.general(None) == "not measured"
    assert fmt.pct(0.12345) == "12.3 %" and fmt.pct(0.12345, digits=2) == "12.35 %"
    assert fmt.pct_value(12.345) == "12 %" and fmt.pct_value(12.345, digits=1) == "12.3 %"
    assert fmt.num(None, none="n/a") == "n/a" and fmt.integer(None, none="n/a") == "n/a"


def test_missing():
    assert fmt.missing(None) and fmt.missing(math.nan)
    assert not fmt.missing(0) and not fmt.missing(0.0) and not fmt.missing("text")


def test_and_list():
    assert fmt.and_list([]) == ""
    assert fmt.and_list(["a"]) == "a"
    assert fmt.and_list(["a", "b"]) == "a and b"
    assert fmt.and_list([1, 2, 3]) == "1, 2 and 3"


def test_compact_ids_runs():
    assert fmt.compact_ids([3, 1, 2]) == "1–3"
    assert fmt.compact_ids([1, 2]) == "1; 2"                     # two ids are no run
    assert fmt.compact_ids([0, 2, 4, 5]) == "0, 2, …, 4 (step 2); 5"
    assert fmt.compact_ids([1, 5, 6, 7]) == "1; 5–7"
    assert fmt.compact_ids(["4", "8", "12"]) == "4, 8, …, 12 (step 4)"
    assert fmt.compact_ids([1, 2, 3, 10, 20, 30]) == "1–3; 10, 20, …, 30 (step 10)"
