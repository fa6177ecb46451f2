"""The exact McNemar p as analysis.stats computed it before issue 20, kept as the reference the linear-time tail is
checked against (tests/analysis/test_mcnemar_scale.py) and timed against (benchmarks/mcnemar_scale.py)."""
import math
from fractions import Fraction


def exact_fractions(b: int, c: int) -> float:
    """Twice the binomial(b + c, 1/2) tail at min(b, c), summed in exact integers (cost grows as n cubed), capped at 1."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2 ** n)
    return float(min(Fraction(1), 2 * tail))
