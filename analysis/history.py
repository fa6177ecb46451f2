"""The test rows' history: how many times a run's test rows were scored, and under which settings, from the
manifest's `test_evaluations` (records/history.py keeps it, oldest first, across re-runs).

Why the report shows it: the test rows judge the final configuration only if nobody saw their accuracy while the
configuration was still being chosen. An entry made under another evaluate fingerprint than the run's current one
was made under a configuration since superseded (records.history.superseded, the pipeline's own rule).
A manifest written before the history existed has no `test_evaluations`: then nothing can be said either way.
Facts only; report.qmd says what they mean.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from analysis.runs import Run
from records.history import superseded


@dataclass(frozen=True)
class Evaluation:
    """One scoring of the test rows, as the manifest lists it."""
    finished: str | None          # ISO time the evaluation ended
    commit: str | None            # the code version it ran (full hash, as recorded)
    config_fingerprint: str | None
    accuracy: float | None        # the fine-tuned model's test accuracy then
    rows: int | None              # test rows scored
    current: bool                 # made under the evaluate fingerprint of the configuration reported
    changed: tuple = ()           # (setting, value then, value now) of the tunable settings that differ
    source: str | None = None     # set when recovered from an older manifest's evaluate record

    @property
    def recovered(self) -> bool:
        return bool(self.source)


@dataclass(frozen=True)
class TestHistory:
    """recorded is False for a manifest made before the history existed (entries then empty)."""
    recorded: bool = False
    entries: tuple = field(default_factory=tuple)

    @property
    def count(self) -> int:
        return len(self.entries)

    @property
    def superseded(self) -> list[Evaluation]:
        return [e for e in self.entries if not e.current]

    @property
    def recovered(self) -> list[Evaluation]:
        return [e for e in self.entries if e.recovered]

    @property
    def once_current(self) -> bool:
        """The clean case: scored exactly once, for the configuration reported."""
        return self.count == 1 and self.entries[0].current

    @property
    def repeated_current(self) -> bool:
        """Scored more than once, every time for the configuration reported (a re-run of the same settings)."""
        return self.count > 1 and not self.superseded

    @property
    def never(self) -> bool:
        """The history exists but holds no evaluation: the test rows were not scored."""
        return self.recorded and self.count == 0

    def sources(self) -> list[str]:
        """The distinct `source` notes of the recovered entries, in order."""
        return list(dict.fromkeys(e.source for e in self.recovered))


def _changed(run: Run, settings: dict) -> tuple:
    """The entry's tunable settings that differ from the run's resolved config now: (key, then, now)."""
    return tuple((key, then, run.cfg(key)) for key, then in settings.items() if run.cfg(key) != then)


def history_of(run: Run) -> TestHistory:
    m = run.manifest
    if m.test_evaluations is None:
        return TestHistory()
    entries = [e for e in m.test_evaluations if isinstance(e, dict)]
    old = {id(e) for e in superseded(m)}  # the pipeline's rule: another fingerprint than evaluate's current one
    return TestHistory(recorded=True, entries=tuple(
        Evaluation(finished=e.get("finished"), commit=e.get("git_commit"), config_fingerprint=e.get("config_fingerprint"),
                   accuracy=e.get("test_accuracy"), rows=e.get("test_rows"), current=id(e) not in old,
                   changed=_changed(run, e.get("settings") or {}), source=e.get("source") or None)
        for e in entries))
