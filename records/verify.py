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
- its code version is a commit of this repository's history (HEAD or before), with no uncommitted changes;
- what the tables recompute agrees with the manifest (test accuracy and its history, epochs and checkpoints), each
  checkpoint evaluate scored is the train stage's own (fingerprint), and no symbolic link lies in the folder;
- each reproduction record beside it (`<run>.reproductions/`, records/reproduction.py) is sealed, about this run as
  it is now, and its verdicts follow from its table entries.
The seal proves that the store wrote the manifest, not who ran the store: a folder forged whole, its tables and
manifest consistent, passes. Torch-free.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from records import reproduction
from records.code_version import git
from records.config import ADDED_AS_BEFORE, PROJECT_ROOT, SAVE_CADENCE, ConfigError, fingerprint
from records.config_reading import load_config
from records.errors import shown
from records.fingerprints import without
from records.graph import NAMES
from records.integrity import check, parse
from records.manifest import Manifest, ManifestError, loads, seal_of
from records.schema import TABLES

# resources.<stage>.part: a killed stage's resource samples, sealed into the table when the stage runs again
ALLOWED = {"manifest.json", ".lock"} | {f"{t}.parquet" for t in TABLES} | {f"resources.{s}.part" for s in NAMES}


def problems(folder: Path, root: Path = PROJECT_ROOT) -> list[str]:
    """What keeps `folder` from passing, one line each (empty: it passes)."""
    return checked(folder, root, code=True)


def checked(folder: Path, root: Path = PROJECT_ROOT, code: bool = True) -> list[str]:
    """verify's checks; `code=False` leaves out the code version's (`pipeline reproduce` compares the code itself,
    and may run where git cannot tell: a lent machine's copy of the tree)."""
    path = Path(folder) / "manifest.json"
    try:
        raw = loads(path.read_text(encoding="utf-8"))
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
    tables = _tables(Path(folder), m)
    # Only tables as recorded can be recomputed from: what they give must agree with the manifest.
    out = _record(m, path) + tables + (recomputed(Path(folder), m, path) if not tables else []) + \
        _scored(m, path) + _config(m, path, root) + (_code(m, path, root) if code else [])
    return out + reproduction.problems(Path(folder), m.tables, m.config_fingerprint)


def recomputed(folder: Path, m: Manifest, path: Path) -> list[str]:
    """The seal proves only that the store wrote the manifest, and anyone can run the store. What the manifest
    says and the tables can recompute must agree: the fine-tuned test accuracy of every history entry made by
    the current evaluation (from the predictions and samples tables); the epochs trained, the epochs table, the checkpoints recorded and the epochs scored."""
    from records.store import RunStore
    store, out = RunStore(folder, writer=False), []
    # A stage not done yet (an interrupted run, exported with --partial) has only part of its figures.
    train, evaluate = (rec if rec is not None and rec.status == "done" else None
                       for rec in (m.stage("train"), m.stage("evaluate")))
    epochs = ((m.config or {}).get("train") or {}).get("epochs")
    if train is not None and isinstance(epochs, int):
        table = store.read("epochs")["epoch"].tolist() if store.has("epochs") else []
        told = {"train.epochs_done": train.get("epochs_done"), "train.epochs_total": train.get("epochs_total"),
                "epochs.parquet": table[-1] if table == list(range(1, len(table) + 1)) and table else table}
        if m.checkpoints is not None:
            told["checkpoints"] = sorted(m.checkpoints)
        want = {**dict.fromkeys(("train.epochs_done", "train.epochs_total", "epochs.parquet"), epochs),
                "checkpoints": sorted([*(f"epoch_{k}" for k in range(1, epochs + 1)), "final"])}
        out += [f"{path}: {key} says {told[key]}, but the run trained {epochs} epochs (config train.epochs) (fix: "
                f"run the train stage again)" for key in told if told[key] != want[key]]
    if evaluate is None or not store.has("predictions"):
        return out
    predictions, samples = store.read("predictions"), store.read("samples")
    models = set(predictions["model"])
    if isinstance(epochs, int) and not {f"epoch_{k}" for k in range(1, epochs + 1)} <= models:
        out.append(f"{path}: predictions.parquet lacks some of epoch_1..epoch_{epochs} (fix: run evaluate again)")
    return out + history_disagrees(m, predictions, samples, path)


def history_disagrees(m: Manifest, predictions, samples, path: Path) -> list[str]:
    """One line per entry of the test-evaluation history made by the current evaluation whose fine-tuned test
    accuracy (or row count) is not what the predictions and samples tables give (`export` refuses these too)."""
    from records.history import test_accuracy
    evaluate = m.stage("evaluate")
    if evaluate is None or evaluate.status != "done":
        return []
    rows, accuracy = test_accuracy(predictions, samples)
    out = []
    for i, e in enumerate(m.test_evaluations or []):
        if not isinstance(e, dict) or e.get("fingerprint") != evaluate.fingerprint or \
                e.get("config_fingerprint") != m.config_fingerprint:
            continue  # an evaluation under other settings: its predictions were replaced since
        if e.get("test_rows") != rows or not _same(e.get("test_accuracy"), accuracy):
            out.append(f"{path}: test_evaluations[{i}] says fine-tuned test accuracy {e.get('test_accuracy')} on "
                       f"{e.get('test_rows')} rows, but predictions.parquet gives {accuracy} on {rows} (fix: run "
                       f"evaluate again; never edit a manifest)")
    return out


def _same(a, b) -> bool:
    return a is None and b is None or isinstance(a, (int, float)) and b is not None and abs(a - b) < 1e-12


def _scored(m: Manifest, path: Path) -> list[str]:
    """Each checkpoint evaluate scored was written by this run's train stage (its fingerprint), and is the one
    whose files train recorded (`checkpoints`). Runs made before evaluate recorded `scored` have nothing to check."""
    train, evaluate = m.stage("train"), m.stage("evaluate")
    scored = evaluate.get("scored") if evaluate is not None else None
    if not isinstance(scored, dict) or train is None:
        return []
    out = []
    for name, rec in scored.items():
        rec = rec if isinstance(rec, dict) else {}
        recorded = ((m.checkpoints or {}).get(name) or {}).get("adapter_model.safetensors", {}).get("sha256")
        if rec.get("fingerprint") != train.fingerprint:
            out.append(f"{path}: evaluate scored checkpoint {name} of train fingerprint {rec.get('fingerprint')}, not "
                       f"this run's {train.fingerprint}: another config's adapter (fix: run --stages train,evaluate)")
        elif recorded is not None and rec.get("adapter_sha256") != recorded:
            out.append(f"{path}: evaluate scored a checkpoint {name} other than the one train wrote (its adapter's "
                       f"sha256 differs from `checkpoints`) (fix: run --stages train,evaluate)")
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
    from records.integrity import links
    out = [f"{p}: a symbolic link (to {shown(os.readlink(p))}) in a run folder (fix: remove it; the pipeline "
           f"writes none)" for p in links(folder)]
    for p in sorted(folder.iterdir()):
        if p.is_symlink():
            continue
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
        rebuilt = as_recorded(load_config(config, given, check_files=False).to_dict(), m.config or {})
    except ConfigError as e:
        return [f"{path}: its config cannot be rebuilt: {e}"]
    if fingerprint(rebuilt) == m.config_fingerprint and rebuilt == m.config:
        return []
    differ = _first_difference(rebuilt, m.config or {})
    return [f"{path}: config {m.config_path} with the recorded overrides gives {differ}, not what the run used "
            f"(fix: run again with the committed config, or commit the config the run used)"]


def _has(d: dict, dotted: str) -> bool:
    head, _, rest = dotted.partition(".")
    return head in d and (not rest or isinstance(d[head], dict) and _has(d[head], rest))


def as_recorded(rebuilt: dict, recorded: dict) -> dict:
    """`rebuilt` (a config rebuilt today) as a run that `recorded` its config would have recorded it: without the
    save-cadence fields it predates (records.config.SAVE_CADENCE: they change no result), and without the fields
    added since the run (records.config.ADDED_AS_BEFORE) that its config leaves at the default that is what the
    run did; such a field set to anything else still counts as a difference. `verify` and `reproduce` both
    compare through this."""
    rebuilt = without(rebuilt, [f for f in SAVE_CADENCE if not _has(recorded, f)])
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
