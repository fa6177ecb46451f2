"""How the exact McNemar test scales with the number of discordant rows (issue 20): analysis.stats.mcnemar_exact
(the linear-time binomial tail) against the exact fractions it replaced (kept in tests/mcnemar_reference.py as the
reference). Prints one JSON line per size: milliseconds per call (the median of repeats) for each
implementation and the relative difference of their p-values.

    python -m benchmarks.mcnemar_scale [--sizes 1000,3000,6000,12000,24000] [--share 0.45] [--old-max 6000]

--share is min(b, c) / (b + c): 0.45 gives p from 2e-3 at 1,000 rows to 4e-54 at 24,000, the sum's slow case
(the old sum costs about k big-integer binomials). The old implementation takes tens of seconds per call at
24,000 rows: it runs only up to --old-max rows unless that is raised."""
from __future__ import annotations

import argparse
import json
import statistics
import time

from analysis.stats import mcnemar_exact
from tests.mcnemar_reference import exact_fractions


def per_call_ms(fn, b: int, c: int, budget_s: float = 0.5) -> tuple[float, float]:
    """(median milliseconds per call, p) over as many calls as fit in about budget_s (at least one)."""
    times, p = [], None
    start = time.perf_counter()
    while not times or (time.perf_counter() - start < budget_s and len(times) < 1000):
        t0 = time.perf_counter()
        p = fn(b, c)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), p


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,3000,6000,12000,24000", help="discordant rows, comma-separated")
    ap.add_argument("--share", type=float, default=0.45, help="min(b, c) / (b + c)")
    ap.add_argument("--old-max", type=int, default=6000, help="time the exact fractions up to this many rows")
    a = ap.parse_args(argv)
    for n in (int(s) for s in a.sizes.split(",")):
        b = int(n * a.share)
        c = n - b
        new_ms, p = per_call_ms(mcnemar_exact, b, c)
        row = {"discordant_rows": n, "b": b, "c": c, "p": p, "linear_ms": round(new_ms, 4)}
        if n <= a.old_max:
            old_ms, ref = per_call_ms(exact_fractions, b, c)
            row |= {"exact_fractions_ms": round(old_ms, 2),
                    "relative_difference": abs(p - ref) / ref if ref else abs(p - ref)}
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
