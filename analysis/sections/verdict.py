"""The verdict box at the top: each criterion's figure here and in the original study, and the verdict in
words (analysis.verdict computes them)."""
from __future__ import annotations

from analysis import verdict
from analysis.facts import ReportFacts
from analysis.markdown import Markdown
from analysis.tables import table


def verdict_table(R: ReportFacts) -> Markdown:
    rows = [[c.name, c.ours, f"{c.original}", Markdown(f"**{c.verdict}**: {c.why}")] for c in verdict.criteria(R)]
    return table(["criterion", "this report", f"{R.original.label} (reference)", "verdict"], rows,
                 widths=[12, 26, 18, 34])
