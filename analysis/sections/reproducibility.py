"""Reproducibility: the commands that made each run, the stage fingerprints and the resolved config."""
from __future__ import annotations

import yaml

from analysis import fmt, progress
from analysis.facts import ReportFacts, RunFacts
from analysis.markdown import Markdown, bullets, code, fenced, text
from analysis.tables import table
from pipeline.stages import NAMES


def commands(R: ReportFacts) -> Markdown:
    """One line per run: every distinct command that ran it, from its manifest."""
    def line(f: RunFacts) -> str:
        cmds = f.manifest.commands or []
        return f"{text(f.name)}: " + ("; ".join(code(c) for c in cmds) if cmds else "not recorded")
    return bullets(line(f) for f in R.runs)


def fingerprint_table(f: RunFacts) -> Markdown:
    rows = [[st, progress.label(f.run, st), code((f.stage(st).fingerprint if f.stage(st) else None) or "—")]
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


def resolved_config(f: RunFacts) -> Markdown:
    """The resolved config as a YAML code block (all defaults filled in)."""
    if not f.manifest.config:
        return Markdown("")
    return fenced(yaml.safe_dump(f.manifest.config, sort_keys=False, allow_unicode=True, width=88), "yaml")
