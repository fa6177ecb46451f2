"""Whether `python -m pipeline verify` accepts a run folder (records/verify.py: sealed manifest, every table as
written, config rebuilt from the committed config file, code a commit of this repository), for the report's
provenance.

The check is the pipeline's own, called here rather than copied. It is informational: a folder that fails still
renders (its tables were checked on their own, analysis/integrity.py), and the report lists the problems. When
the check cannot run at all (records.verify missing from this environment, or it stops with an error) the
run reads "not checked" with the reason, never "verified". Without git, verify itself returns a problem line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from analysis.runs import Run
from records.verify import problems


@dataclass(frozen=True)
class Verification:
    checked: bool = False
    problems: tuple = field(default_factory=tuple)   # one line each, the folder's path shortened
    why_not_checked: str = ""
    commit: str | None = None                        # the run's code version, as recorded
    config_path: str | None = None
    overrides: int = 0                               # `--set` overrides recorded
    tuned_trial: int | None = None                   # the tune's trial the pipeline applied, if any
    sealed: bool = False                             # the manifest carries the store's seal (older ones do not)

    @property
    def passed(self) -> bool:
        return self.checked and not self.problems


def _shortened(line: str, folder: Path) -> str:
    """A problem line with the folder's absolute path as results/<run>: the reader knows where it lies."""
    return line.replace(str(folder), f"{folder.parent.name}/{folder.name}")


def _problems(folder: Path) -> list[str]:
    # Imported here: the report must still render where records.verify cannot be imported (then "not checked").
    return problems(folder)


def verification_of(run: Run) -> Verification:
    m = run.manifest
    recorded = dict(commit=(m.code_version or {}).get("git_commit"), config_path=m.config_path,
                    overrides=len(m.overrides or []), tuned_trial=(m.tuned or {}).get("chosen_trial"),
                    sealed=m.seal is not None)
    if run.path is None:
        return Verification(why_not_checked="no run folder", **recorded)
    try:
        found = _problems(Path(run.path))
    except ImportError as e:
        return Verification(why_not_checked=f"pipeline verify is not available here ({e})", **recorded)
    except Exception as e:  # a check that breaks must not stop the report: it says so instead
        return Verification(why_not_checked=f"pipeline verify stopped: {type(e).__name__}: {e}", **recorded)
    return Verification(checked=True, problems=tuple(_shortened(p, Path(run.path)) for p in found), **recorded)
