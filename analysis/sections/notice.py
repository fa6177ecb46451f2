"""The notice at the top: which runs the report shows, and a note on each run that left stages out or is
incomplete (one block per run, templates/report/run_notes.md.j2)."""
from __future__ import annotations

from dataclasses import dataclass

from analysis import blocks, fmt, stage_states
from analysis.facts import ReportFacts, RunFacts
from analysis.markdown import Markdown, bullets, code, text


@dataclass(frozen=True)
class RunNote:
    name: str
    stages_option: Markdown     # the `--stages a,b` the run was started with
    shape_only: bool            # left baseline / evaluate out because its weights are random
    shape_reason: str           # why, in words
    skipped: str                # the stages left out, in words ("" when none)
    skipped_count: int
    gaps: list                  # what is missing or unfinished, one phrase each


def run_note(f: RunFacts) -> RunNote:
    requested = f.manifest.stages_requested or []
    return RunNote(name=f.name, stages_option=code("--stages " + ",".join(requested)),
                   shape_only=stage_states.skipped_for_shape(f.run), shape_reason=stage_states.shape_skip_reason(f.run),
                   skipped=stage_states.skip_note(f.run), skipped_count=len(f.skipped), gaps=f.gaps)


def run_list(R: ReportFacts) -> Markdown:
    """e.g. "**a** (headline), **b**, **c**"."""
    return Markdown(", ".join(f"**{text(f.name)}**" + (" (headline)" if i == 0 else "") for i, f in enumerate(R.runs)))


def remote_code(R: ReportFacts) -> Markdown:
    """One bullet per run that let the model repository's code run: the run, its model and revision."""
    return bullets(f"**{text(f.name)}**: model {code(f.model_name)}, revision {code(f.cfg('model.revision') or 'default')}"
                   for f in R.runs if f.runs_remote_code)


@dataclass(frozen=True)
class NoteGroup:
    """Runs that left the same stages out for the same reason: one sentence for all of them."""
    names: Markdown
    count: int
    stages_option: Markdown
    shape_only: bool
    shape_reason: str
    skipped: str
    skipped_count: int
    gaps: bool


def note_groups(notes: list[RunNote]) -> list[NoteGroup]:
    groups: dict[tuple, list[RunNote]] = {}
    for n in notes:
        if n.skipped:
            groups.setdefault((n.stages_option, n.shape_only, n.shape_reason, n.skipped, bool(n.gaps)), []).append(n)
    return [NoteGroup(Markdown(fmt.and_list(f"**{text(n.name)}**" for n in members)), len(members), *key[:4],
                      members[0].skipped_count, key[4]) for key, members in groups.items()]


def run_notes(R: ReportFacts) -> Markdown:
    notes = [run_note(f) for f in R.runs]
    return blocks.render("run_notes", selection_notes=R.selection.notes, groups=note_groups(notes), runs=notes)
