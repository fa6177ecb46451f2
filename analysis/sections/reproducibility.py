"""Reproducibility: the commands that made each run, the stage fingerprints, the resolved config, and each run's
reproductions (`pipeline reproduce`, analysis/reproductions.py)."""
from __future__ import annotations

import shlex

import yaml

from analysis import fmt, reproductions, stage_states
from analysis.facts import ReportFacts, RunFacts
from analysis.markdown import Markdown, bullets, code, fenced, one_line, text
from analysis.tables import table
from analysis.wording import plural
from records.graph import NAMES
from records.manifest import ONE_PROCESS, program


def _shell_lines(command: str) -> list[str]:
    """A recorded command as shell lines: the program up to its config file on the first, then one option
    with its value per continuation line (recorded commands are shlex-quoted; one that does not parse is
    shown as recorded)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return [command]
    cut = next((k + 1 for k, w in enumerate(words) if w.endswith((".yaml", ".yml"))), len(words))
    head, rest, options = words[:cut], words[cut:], []
    while rest:
        take = 2 if rest[0].startswith("--") and len(rest) > 1 and not rest[1].startswith("--") else 1
        options.append(" ".join(shlex.quote(w) for w in rest[:take]))
        rest = rest[take:]
    lines = [" ".join(shlex.quote(w) for w in head), *(f"  {o}" for o in options)]
    return [ln + " \\" for ln in lines[:-1]] + lines[-1:]


def commands(R: ReportFacts) -> Markdown:
    """Every distinct command that ran each run, from its manifest, as shell lines. A run over several
    processes whose manifest recorded the command without its launcher (runs made before the launcher was
    recorded) gets it back from the manifest's `processes`, and says so."""
    blocks = []
    for f in R.runs:
        lines = []
        cmds = f.manifest.commands or []
        n = f.world_size
        added = n > 1 and any(c.startswith(ONE_PROCESS) for c in cmds)
        lines.append(f"# {one_line(f.name, 80)}" + (f" (over {n} processes: the launcher is added from the "
                                                   "manifest's processes)" if added else ""))
        if not cmds:
            lines.append("# not recorded")
        for c in cmds:
            if added and c.startswith(ONE_PROCESS):
                c = program(n) + c.removeprefix(ONE_PROCESS)
            lines += _shell_lines(c)
        blocks.append(fenced("\n".join(lines), "bash", max_word=120))  # one block per run: it pages whole
    return Markdown("\n\n".join(blocks))


def fingerprint_table(f: RunFacts) -> Markdown:
    rows = [[st, stage_states.label(f.run, st), code((f.stage(st).fingerprint if f.stage(st) else None) or "—")]
            for st in NAMES]
    return table(["stage", "status", "fingerprint"], rows, align="lll")


def checksum_table(f: RunFacts) -> Markdown:
    """The manifest's record of each table file (rows, bytes, sha256), every one verified before it was read."""
    c = f.run.checksums
    rows = [[code(f"{name}.parquet"), fmt.integer(c.records[name]["rows"]), fmt.integer(c.records[name]["bytes"]),
             code(c.records[name]["sha256"][:16])] for name in c.verified]
    return table(["table", "rows", "bytes", "sha256 (first 16 hex digits)"], rows, align="lrrl") if rows else Markdown("")


def code_state(f: RunFacts) -> str:
    """"clean" or "with uncommitted changes (dirty)", as recorded; for a commit the launcher named (a copy of
    the tree on a lent machine), that; "" when the manifest has no code version."""
    cv = f.manifest.code_version or {}
    if not cv:
        return ""
    if cv.get("dirty") is None:
        return "the commit the launcher named (PIPELINE_GIT_COMMIT), the tree copied from it" if cv.get("source") else ""
    return "with uncommitted changes (dirty)" if cv["dirty"] else "clean"


def verified_as(f: RunFacts) -> Markdown:
    """What a run that passes `pipeline verify` was made from: code commit, config file, overrides, tune trial."""
    v = f.verification
    overrides = f", with {plural(v.overrides, '`--set` override')}" if v.overrides else ""
    tuned = f", the tune's trial {v.tuned_trial} applied by the pipeline" if v.tuned_trial is not None else ""
    return Markdown(f"code {code(v.commit[:12] if v.commit else None)}, config {code(v.config_path)}{overrides}{tuned}")


def verification_list(R: ReportFacts) -> Markdown:
    """One bullet per run: verified (and from what), or each problem `pipeline verify` found on its own line,
    or why it was not checked."""
    items = []
    for f in R.runs:
        v = f.verification
        if v.passed:
            items.append(f"**{text(f.name)}**: verified: {verified_as(f)}")
        elif v.checked:
            items.append(f"**{text(f.name)}**: not verified:\n" + "\n".join(f"    - {text(p)}" for p in v.problems))
        else:
            items.append(f"**{text(f.name)}**: not checked ({text(v.why_not_checked)})")
    return bullets(items)


def verification_cell(f: RunFacts) -> str:
    """The all-runs table's word on `pipeline verify`."""
    v = f.verification
    if v.passed:
        return "verified"
    if v.checked:
        return f"not verified ({plural(len(v.problems), 'problem')})"
    return "not checked"


def resolved_config(f: RunFacts) -> Markdown:
    """The resolved config as a YAML code block (all defaults filled in)."""
    if not f.manifest.config:
        return Markdown("")
    return fenced(yaml.safe_dump(f.manifest.config, sort_keys=False, allow_unicode=True, width=88), "yaml")


def _tables_cell(x: reproductions.Reproduction) -> str:
    """The compared tables grouped by verdict: "identical: samples, predictions; differs: steps"."""
    groups: dict[str, list[str]] = {}
    for name, verdict in x.tables.items():
        groups.setdefault(str(verdict), []).append(name)
    return "; ".join(f"{v}: {', '.join(names)}" for v, names in groups.items()) or "none recorded"


def _verdict_cell(x: reproductions.Reproduction) -> str:
    word = str(x.verdict or "unreadable")
    if x.code_changed:
        word += " (by other code: --allow-code-change)"
    if not x.sound:
        word += f"; record not sound: {x.problems[0]}"
    return word


def reproductions_table(R: ReportFacts) -> Markdown:
    """One row per reproduction of each run (oldest first), or "never reproduced"."""
    rows = []
    for f in R.runs:
        found = reproductions.of_folder(f.run.path, f.manifest)
        if not found:
            rows.append([f.name, "never reproduced", "", "", "", ""])
        for x in found:
            rows.append([f.name, x.date or "?", x.where, _verdict_cell(x), _tables_cell(x),
                         f"x{fmt.num(x.time_ratio, 2)}" if x.time_ratio is not None else "not measured"])
    header = ["run", "reproduced", "on", "verdict", "tables", "fine-tuning time (reproduced / committed)"]
    return table(header, rows, align="llllll", widths=[14, 10, 12, 14, 30, 10]) if rows else Markdown("")


def latest_reproduction(R: ReportFacts) -> Markdown:
    """The verdict box's line on the newest sound reproduction of any run of the report."""
    hit = reproductions.latest(R.runs)
    if hit is None:
        return Markdown("No run of this report has been reproduced yet (`python -m pipeline reproduce RUN` runs one "
                        "again from its manifest and compares it table by table).")
    name, x = hit
    ratio = f"; fine-tuning took x{fmt.num(x.time_ratio, 2)} the committed time" if x.time_ratio is not None else ""
    code_note = ", by other code than the run's" if x.code_changed else ""
    return Markdown(f"Latest reproduction: **{text(name)}**, {text(x.date)} on {text(x.where)}{text(code_note)}: "
                    f"{text(x.verdict)}{text(ratio)}.")
