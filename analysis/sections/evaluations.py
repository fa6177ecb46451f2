"""The test rows' history (analysis/history.py): each scoring of a run's test rows as a table row, and the
short cell of the all-runs table. The sentences around them are report.qmd's."""
from __future__ import annotations

from datetime import datetime

from analysis import fmt
from analysis.facts import RunFacts
from analysis.history import Evaluation, TestHistory
from analysis.markdown import Markdown, code, text
from analysis.tables import table
from analysis.tuning import setting_value
from analysis.wording import plural

RECOVERED = "recovered from an older manifest"


def when(iso: str | None) -> Markdown:
    """An ISO time as "2025-11-28 10:30 UTC"; escaped as recorded when it does not parse (it is manifest text)."""
    if not iso:
        return text("not recorded")
    try:
        t = datetime.fromisoformat(str(iso))
    except ValueError:
        return text(iso)
    return text(t.strftime("%Y-%m-%d %H:%M") + (" UTC" if t.utcoffset() is not None and not t.utcoffset() else ""))


def short_commit(commit: str | None) -> Markdown:
    return code(commit[:12] if commit else None)


def changed_settings(e: Evaluation) -> Markdown:
    """The tunable settings an entry was made with where they differ from the run's reported configuration."""
    if e.current:
        return Markdown("— (the configuration reported)")
    if not e.changed:  # superseded by a field outside the tunable ones (epochs, data, model, ...)
        return Markdown(f"none of the tunable ones (config fingerprint then {code(e.config_fingerprint)})")
    return Markdown("; ".join(f"{code(key)} {text(setting_value(then))} (now {text(setting_value(now))})"
                              for key, then, now in e.changed))


def _row(e: Evaluation, n: int) -> list:
    return [n, when(e.finished), short_commit(e.commit), "reported here" if e.current else "superseded",
            changed_settings(e), fmt.pct(e.accuracy, 1, "not recorded"), fmt.integer(e.rows, "not recorded"),
            RECOVERED if e.recovered else "as it ran"]


HEADER = ["#", "finished", "code", "configuration", "settings then, where they differ from now",
          "test accuracy (fine-tuned)", "test rows", "recorded"]
WIDTHS = [3, 11, 10, 10, 30, 9, 6, 11]


def history_table(f: RunFacts) -> Markdown:
    """Every scoring of the run's test rows, oldest first."""
    entries = f.test_history.entries
    if not entries:
        return Markdown("")
    return table(HEADER, [_row(e, n) for n, e in enumerate(entries, 1)], align="rlllllrl", widths=WIDTHS)


def runs_history_table(runs: list[RunFacts]) -> Markdown:
    """history_table of several runs in one table, a run column first."""
    rows = [[f.name, *_row(e, n)] for f in runs for n, e in enumerate(f.test_history.entries, 1)]
    if not rows:
        return Markdown("")
    return table(["run", *HEADER], rows, align="lrlllllrl", widths=[10, *WIDTHS])


def recovered_sources(h: TestHistory) -> Markdown:
    """The `source` notes of recovered entries, verbatim and escaped, each in quotes."""
    return Markdown("; ".join(f'"{text(s)}"' for s in h.sources()))


def history_cell(f: RunFacts) -> str:
    """How many times the run's test rows were scored, in a few words (the all-runs table)."""
    h = f.test_history
    if not f.accuracy_meaningful:
        return "— (random weights)"
    if not h.recorded:
        return "not recorded (an older manifest)"
    if h.never:
        return "not yet"
    if h.once_current:
        return "once, for this configuration"
    if h.repeated_current:
        return f"{plural(h.count, 'time')}, all for this configuration"
    return f"{plural(h.count, 'time')}: {len(h.superseded)} under superseded settings"
