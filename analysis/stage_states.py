"""How far a run got: each stage's state, the stages left out on purpose, and what is missing, in words.

States come from records.manifest (Manifest.stage_state, the one liveness rule `pipeline status` uses too);
which table each stage writes comes from records.graph. Each state has one wording, here.
"""
from __future__ import annotations

from analysis.fmt import and_list
from analysis.runs import Run
from records.graph import NAMES, writers
from records.schema import TABLES

# What each stage's product is called when the stage is left out of a shape-only run.
SHAPE_SKIPPABLE = {"baseline": "baseline", "evaluate": "evaluation"}


def state(run: Run, stage: str) -> str:
    """not run | not requested | done | failed | running | interrupted | running elsewhere."""
    return run.manifest.stage_state(stage)


def label(run: Run, stage: str) -> str:
    """The stage's state in a few words, for tables."""
    s = state(run, stage)
    return {"not requested": "not run (not requested)",
            "running elsewhere": "running on another machine, or interrupted"}.get(s, s)


def skipped(run: Run) -> list[str]:
    """Stages deliberately not run (absent and left out of stages_requested), in pipeline order."""
    return [st for st in NAMES if state(run, st) == "not requested"]


def skip_note(run: Run) -> str:
    """e.g. "stages baseline and evaluate were not run (not requested)"; empty when none were left out."""
    sk = skipped(run)
    if not sk:
        return ""
    many = len(sk) > 1
    return f"stage{'s' if many else ''} {and_list(sk)} {'were' if many else 'was'} not run (not requested)"


def skipped_for_shape(run: Run) -> bool:
    """A shape-only run that left out baseline / evaluate on purpose: by design, not a gap."""
    return run.shape_only and any(st in SHAPE_SKIPPABLE for st in skipped(run))


def shape_skip_reason(run: Run) -> str:
    """e.g. "baseline and evaluation were skipped because accuracy means nothing with random weights"."""
    if not skipped_for_shape(run):
        return ""
    what = [SHAPE_SKIPPABLE[st] for st in skipped(run) if st in SHAPE_SKIPPABLE]
    return f"{and_list(what)} {'were' if len(what) > 1 else 'was'} skipped because accuracy means nothing with random weights"


def _stage_gap(run: Run, st: str) -> str | None:
    s = state(run, st)
    if s in ("done", "not requested"):
        return None
    rec = run.stage(st)
    if rec is None:
        return f"stage {st} has not run" + (" (it was requested)" if run.manifest.stages_requested else "")
    extra = ""
    if st == "train" and rec.get("epochs_total"):
        extra = f", {rec.get('epochs_done', 0)} of {rec.get('epochs_total')} epochs done"
    err = f": {rec.error}" if rec.error else ""
    who = f"process {rec.pid} on host {rec.host}"
    if s == "interrupted":
        return f"stage {st} was interrupted (recorded as running, but {who} is gone){extra}"
    if s == "running elsewhere":
        return (f"stage {st} is recorded as running by {who}, another machine: it was interrupted or is still "
                f"running there, which cannot be checked from here{extra}")
    if s == "running":
        return f"stage {st} is running{extra}"
    if s == "failed":
        return f"stage {st} failed{extra}{err}"
    return f"stage {st} is {s}{extra}{err}"


def gaps(run: Run) -> list[str]:
    """What is missing or unfinished, one sentence each (empty for a complete run). Stages left out of
    stages_requested on purpose, and the tables only they write, are not gaps (see skipped())."""
    notes = [g for g in (_stage_gap(run, st) for st in NAMES) if g]
    for name in TABLES:
        owners = writers(name)  # tuning has none: written by `pipeline tune`, optional
        if any(run.manifest.requested(w) or run.stage(w) is not None for w in owners) and run.table(name) is None:
            notes.append(f"table {name}.parquet is missing")
    return notes


def complete(run: Run) -> bool:
    return not gaps(run)


def why_missing(run: Run) -> str:
    """Why something a run should have is absent, in a few words: its gaps and the stages left out."""
    reasons = gaps(run) + ([skip_note(run)] if skip_note(run) else [])
    return "; ".join(reasons) or "no reason recorded"


def status(run: Run) -> str:
    """The run's status in one line, for the all-runs table."""
    gs, sk = gaps(run), skipped(run)
    if gs:
        return "incomplete: " + "; ".join(gs)
    if sk:
        why = ": random weights, so no accuracy to measure" if skipped_for_shape(run) else ""
        return f"complete for the stages requested; {', '.join(sk)} not run (not requested{why})"
    return "complete"
