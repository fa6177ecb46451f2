"""Phrases whose wording depends on a result: report.qmd calls these where a sentence turns on a number
(significant or not, within a cap or over it). Decisions such as the significance level live in the
facts' modules (stats.ALPHA), never in report.qmd; each phrase is worded once, here."""
from __future__ import annotations

from analysis import fmt, stats
from analysis.markdown import Markdown, text


def level() -> str:
    """The significance level in words, e.g. "5 %"."""
    return fmt.pct(stats.ALPHA, 0)


def significance(p: stats.Paired) -> str:
    """"significant at the 5 % level" or "not significant at the 5 % level"."""
    return f"{'significant' if p.significant else 'not significant'} at the {level()} level"


def verdict(p: stats.Paired) -> str:
    """What a paired test says about fine-tuning, in one clause."""
    if not p.significant:
        return f"not significant at the {level()} level"
    if p.improved:
        return f"the improvement is unlikely to be chance at the {level()} level"
    return f"fine-tuning made the predictions significantly worse at the {level()} level"


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """plural(1, "row") -> "1 row"; plural(3, "row") -> "3 rows"."""
    return f"{n} {noun if n == 1 else (nouns or noun + 's')}"


def names(items) -> Markdown:
    """Run names (untrusted) as "a, b and c"."""
    return Markdown(fmt.and_list(text(i) for i in items))


def cap_verdict(cap) -> str:
    """Peak memory against a GPU memory cap: "within it, 8.50 GiB to spare" / "over it" / not measured."""
    if not cap.measured:
        return "not measured against it"
    return f"within it, {fmt.gib(cap.headroom)} to spare" if cap.within else "over it"


def between(low: str, high: str) -> str:
    """Two formatted amounts as a range, or one where they are the same: "19.2 GiB to 26.6 GiB", "37.3 GiB"."""
    return low if low == high else f"{low} to {high}"


def times(ratio: float) -> str:
    """A ratio of two durations, e.g. "0.13 times"."""
    return f"{fmt.num(ratio, 2)} times"


def library_version(version) -> str:
    """A library version from the manifest; None means the library was not installed."""
    return "not installed" if version is None else str(version)
