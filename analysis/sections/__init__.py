"""The tables and lists of each report section, built from analysis.facts: one module per section of
report.qmd, which prints what these return. Prose stays in report.qmd; cells here are short words."""
from analysis.sections import (  # noqa: F401  (report.qmd reaches them as sections.<name>)
    accuracy,
    cases,
    evaluations,
    notice,
    parameters,
    reproducibility,
    resources,
    runs,
    seeds,
    setup,
    time,
    verdict,
)
