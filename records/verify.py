"""`python -m pipeline verify [RUN ...]`: is a results folder exactly what the pipeline wrote, from a config and
code of this repository? The check a committed run must pass (tests/pipeline/test_committed_results.py runs it on
every folder under results/), and the one a user runs on results that came back from another machine.

A folder passes when
- its manifest carries the store's seal (records/manifest.py: seal_of) and reads as a manifest: nothing but the
  store wrote it;
- every stage it records is done, and it names the command, the stages asked for, the code and the environment;
- every parquet file is one the store recorded, matching its checksum and its table's schema (records/integrity.py),
  and no other file lies there;
- the config file it names, with the `--set` overrides and the tune's choice it records, resolves to the config it
  holds (same fingerprint);
- its code version is a commit of this repository's history (HEAD or before), with no uncommitted changes.
Torch-free.
"""
from __future__ import annotations

import json
from pathlib import Path

from records.code_version import git
from records.config import ADDED_AS_BEFORE, PROJECT_ROOT, ConfigError, fingerprint
from records.config_reading import load_config
from records.integrity import check, parse
from records.manifest import Manifest, ManifestError, seal_of
from records.schema import TABLES

ALLOWED = {"manifest.json", ".lock"} | {f"{t}.parquet" for t in TABLES}


def problems(folder: Path, root: Path = PROJECT_ROOT) -> list[str]:
    """What keeps `folder` from passing, one line each (empty: it passes)."""
    path = Path(folder) / "manifest.json"
    try:
        raw = json.loads(path.read_text())
        m = Manifest.from_dict(raw, str(path))
    except FileNotFoundError:
        return [f"{path} is missing (fix: name a run folder, one holding manifest.json)"]
    except (OSError, ValueError, ManifestError) as e:
        return [f"{path} cannot be read as a manifest ({str(e).splitlines()[0][:200]})"]
    if raw.get("seal") is None:
        return [f"{path} has no seal: not written by this version's results store (fix: run the pipeline again)"]
    if raw["seal"] != seal_of(raw):
        return [f"{path} was changed after the results store wrote it (its seal does not match; fix: run the "
                f"pipeline again instead of editing the manifest)"]
    out = _record(m, path) + _tables(Path(folder), m) + _config(m, path, root) + _code(m, path, root)
    return out


def _record(m: Manifest, path: Path) -> list[str]:
    out = [f"{path}: stage {name} is {rec.state()}, not done (fix: run it to the end)"
           for name, rec in m.stages.items() if rec.status != "done"]
    for key in ("commands", "stages_requested", "code_version", "environment", "config_path"):
        if not getattr(m, key):
            out.append(f"{path}: `{key}` is not recorded (fix: run the pipeline again with this version)")
    if m.overrides is None:
        out.append(f"{path}: `overrides` is not recorded, so its config cannot be rebuilt (fix: run the pipeline "
                   f"again with this version)")
    return out


def _tables(folder: Path, m: Manifest) -> list[str]:
    out = []
    for p in sorted(folder.iterdir()):
        if p.name not in ALLOWED:
            out.append(f"{p}: not a file the pipeline writes (fix: remove it)")
        elif p.suffix == ".parquet":
            name = p.stem
            if name not in (m.tables or {}):
                out.append(f"{p}: not recorded in the manifest's `tables` (fix: run the stage that writes it again)")
            else:
                _, problem = parse(name, p.read_bytes())
                if problem:
                    out.append(f"{p}: {problem}")
    found = check(folder, m)
    out += [f"{folder}: {line} (fix: run stage {stage} again)" for stage, lines in found.stages.items()
            for line in lines]
    out += [f"{folder}: {line}" for line in found.other]
    return list(dict.fromkeys(out))


def _config(m: Manifest, path: Path, root: Path) -> list[str]:
    if not m.config_path or m.overrides is None:
        return []
    config = Path(m.config_path)
    config = config if config.is_absolute() else root / config
    given = [*m.overrides, *((m.tuned or {}).get("overrides") or [])]
    try:
        rebuilt = _as_recorded(load_config(config, given, check_files=False).to_dict(), m.config or {})
    except ConfigError as e:
        return [f"{path}: its config cannot be rebuilt: {e}"]
    if fingerprint(rebuilt) == m.config_fingerprint and rebuilt == m.config:
        return []
    differ = _first_difference(rebuilt, m.config or {})
    return [f"{path}: config {m.config_path} with the recorded overrides gives {differ}, not what the run used "
            f"(fix: run again with the committed config, or commit the config the run used)"]


def _as_recorded(rebuilt: dict, recorded: dict) -> dict:
    """`rebuilt` without the fields added since the run (records.config.ADDED_AS_BEFORE) that its config leaves
    at the default that is what the run did; a field set to anything else still counts as a difference."""
    for dotted, before in ADDED_AS_BEFORE.items():
        *parents, leaf = dotted.split(".")
        new, old = rebuilt, recorded
        for part in parents:
            new, old = new.get(part, {}), old.get(part, {}) if isinstance(old, dict) else {}
        if isinstance(old, dict) and leaf not in old and new.get(leaf, before) == before:
            new.pop(leaf, None)
    return rebuilt


def _first_difference(a, b, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
    return f"{prefix.rstrip('.')}={json.dumps(a)} (the run had {json.dumps(b)})"


def _code(m: Manifest, path: Path, root: Path) -> list[str]:
    commit = (m.code_version or {}).get("git_commit")
    if not commit:
        return [f"{path}: no code version recorded (fix: run from a git checkout, or set PIPELINE_GIT_COMMIT)"]
    if (m.code_version or {}).get("dirty") is True:
        return [f"{path}: made with uncommitted changes on top of {commit[:12]} (fix: commit, then run again)"]
    if git(root, "rev-parse", "--verify", "HEAD") is None:
        return [f"{path}: cannot check code version {commit[:12]}: git is not available here, or {root} is not a "
                f"git checkout"]
    if git(root, "cat-file", "-e", f"{commit}^{{commit}}") is None:
        return [f"{path}: code version {commit[:12]} is not a commit of this repository (fix: run the pipeline from "
                f"a commit of this repository)"]
    if git(root, "merge-base", "--is-ancestor", commit, "HEAD") is None:
        return [f"{path}: code version {commit[:12]} is not in this checkout's history (fix: run from a commit on main)"]
    return []


def summary(folder: Path) -> str:
    """One line for a folder that passes."""
    m = Manifest.read(Path(folder) / "manifest.json")
    tuned = f", tune trial {m.tuned.get('chosen_trial')}" if m.tuned else ""
    return (f"{folder}: verified ({len(m.tables or {})} tables as written, config {m.config_path} + "
            f"{len(m.overrides or [])} overrides{tuned}, code {str(m.code_version.get('git_commit'))[:12]})")


def folders(targets: list[str], results: Path) -> list[Path]:
    """The run folders named (a folder, or a run name under results/); none named: every run under results/."""
    if not targets:
        return sorted(p for p in Path(results).iterdir() if (p / "manifest.json").is_file()) \
            if Path(results).is_dir() else []
    return [Path(t) if Path(t).is_dir() else Path(results) / t for t in targets]
