"""`python -m pipeline reproduce RUN`: run a committed run again from its manifest and say whether it came out the same.

1. The run folder must pass `verify`'s checks (sealed manifest, tables as written, every stage done, the config file
   with the recorded overrides and tune's choice resolving to the config it ran); the code version is compared
   here instead: a run made by another commit than this checkout's is refused unless `--allow-code-change`.
2. The config is rebuilt exactly as `verify` rebuilds it (config file + recorded `--set` overrides + the tune's
   recorded choice, as `run --tuned-from` applies it), with only `output.results_dir` and `output.checkpoint_dir`
   pointed at a scratch folder, and the stages the run recorded run there from scratch. The committed folder is
   only read.
3. Each table is compared with the committed one (records/reproduction.py: what must be identical, what within a
   named tolerance, what is a measurement compared as a ratio), and so are the manifest's fingerprints and
   parameter totals. Library, Python, GPU and dtype differences are reported, never refused.
4. A sealed record goes beside the run, `results/<run>.reproductions/<UTC time>.json`, which `verify` checks and
   the report lists. Exit 0 when every compared table is identical or within tolerance; EXIT_DIFFERS (4) when one
   differs.
"""
from __future__ import annotations

import shutil
import socket
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from records import reproduction as rp
from records.code_version import run_code_version
from records.config import PROJECT_ROOT, TUNABLE
from records.config_reading import load_config
from records.errors import BadInput, shown
from records.graph import NAMES
from records.manifest import Manifest
from records.schema import TABLES
from records.store import RunStore, atomic_write_json, utc_now
from records.verify import as_recorded, checked

OUTPUT_FIELDS = ("output.results_dir", "output.checkpoint_dir")


def _key(override: str) -> str:
    return override.split("=", 1)[0].strip()


def run_folder(run: str, results: str) -> Path:
    folder = Path(run) if Path(run).is_dir() else Path(results) / run
    if not (folder / "manifest.json").is_file():
        raise BadInput(f"reproduce: {folder} holds no manifest.json (fix: name a run folder, or a run under "
                       f"--results {results})")
    return folder


def code_change(recorded: dict, here: dict) -> str | None:
    """Why the code here is not the code that made the run (None: the same commit, neither with uncommitted
    changes)."""
    made, now = (recorded or {}).get("git_commit"), (here or {}).get("git_commit")
    if not made or not now:
        return f"the code version cannot be compared (run: {made or 'not recorded'}, here: {now or 'unknown'})"
    if made != now:
        return f"the run was made by commit {made[:12]}, this checkout is {now[:12]}"
    for who, v in (("the run", recorded), ("this checkout", here)):
        if v.get("dirty") is True:
            return f"{who} had uncommitted changes on top of {made[:12]}"
    return None


def rebuilt(m: Manifest, scratch: Path) -> tuple[list[str], list[str]]:
    """(the `--set` overrides of the reproduction, the tune's choice): the recorded ones, with the output folders
    moved to `scratch`."""
    given = [o for o in (m.overrides or []) if _key(o) not in OUTPUT_FIELDS]
    given += [f"output.results_dir={scratch / 'results'}", f"output.checkpoint_dir={scratch / 'checkpoints'}"]
    chosen = list((m.tuned or {}).get("overrides") or [])
    other = next((o for o in chosen if _key(o) not in TUNABLE), None)
    if other is not None:  # the manifest is data: a tune chooses only the tunable fields (records/tuned.py)
        raise BadInput(f"reproduce: the run's tuned.overrides sets {shown(_key(other))}, which is not tunable, "
                       f"refused (a tune chooses only {', '.join(TUNABLE)})")
    return given, chosen


def _without_output(config: dict) -> dict:
    return {**config, "output": None}


def reproduce(run: str, results: str = "results", out: str | None = None, allow_code_change: bool = False) -> int:
    folder = run_folder(run, results)
    found = checked(folder, PROJECT_ROOT, code=False)
    if found:
        raise BadInput(f"reproduce: {found[0]} (the run must pass `pipeline verify` to be reproduced)")
    m = Manifest.read(folder / "manifest.json")
    from pipeline.engine import distributed  # torch
    dist = distributed.current()
    world = int((m.processes or {}).get("world_size") or 1)
    if dist.world != world:
        raise BadInput(f"reproduce: {m.run} ran over {world} process(es), this over {dist.world} (fix: accelerate "
                       f"launch --multi_gpu --num_processes {world} -m pipeline reproduce {run} --out DIR)"
                       if world > 1 else f"reproduce: {m.run} ran in one process (fix: python -m pipeline reproduce)")
    if world > 1 and out is None:
        raise BadInput("reproduce: a run over several processes needs --out DIR, one folder every process sees")
    here = run_code_version(PROJECT_ROOT)
    changed = code_change(m.code_version, here)
    if changed and not allow_code_change:
        raise BadInput(f"reproduce: {changed} (fix: check out {str((m.code_version or {}).get('git_commit'))[:12]} "
                       f"to reproduce it with its own code, or add --allow-code-change to compare across the change)")
    scratch = Path(out) if out else Path(tempfile.mkdtemp(prefix=f"reproduce-{m.run}-"))
    try:
        return _reproduce(folder, m, scratch, here, changed, allow_code_change, dist.main, run)
    finally:
        if out is None:
            shutil.rmtree(scratch, ignore_errors=True)


def _reproduce(folder: Path, m: Manifest, scratch: Path, here: dict, changed: str | None, allowed: bool,
               main: bool, run: str) -> int:
    from pipeline.configs import check_model
    from pipeline.run import Runner  # torch
    given, chosen = rebuilt(m, scratch)
    config_path = Path(m.config_path) if Path(m.config_path).is_absolute() else PROJECT_ROOT / m.config_path
    cfg = check_model(load_config(config_path, [*given, *chosen]), config_path)
    if _without_output(as_recorded(cfg.to_dict(), m.config or {})) != _without_output(m.config):  # verify's check
        raise BadInput(f"reproduce: {m.config_path} with the recorded overrides no longer gives the run's config")
    if cfg.model.trust_remote_code:
        raise BadInput(f"reproduce: {m.config_path} sets model.trust_remote_code: true, which runs code shipped "
                       f"with the model; refused here (fix: read it, then `python -m pipeline run` it yourself)")
    if (cfg.results_path / "manifest.json").exists():
        raise BadInput(f"reproduce: {cfg.results_path} already holds a run (fix: --out an empty folder)")
    stages = [s for s in NAMES if s in m.stages]
    command = f"python -m pipeline reproduce {m.run}" + (" --allow-code-change" if allowed else "")
    print(f"=== reproducing {m.run} ({', '.join(stages)}) in {scratch}", flush=True)
    Runner(cfg, str(config_path), tuple(given), tuned=m.tuned, command=command).run(stages, restart=True)
    if not main:
        return 0
    new = Manifest.read(cfg.results_path / "manifest.json")
    record = _record(folder, m, cfg.results_path, new, here, changed, allowed, command)
    path = _write(folder, record)
    print(summary(record, path))
    return record["exit_code"]


def _tables(store: RunStore) -> dict:
    return {name: store.read(name) if store.has(name) else None for name in TABLES}


def facts(m: Manifest) -> dict:
    """The manifest's facts a reproduction must give again: the same inputs (data and stage fingerprints), the
    same model (parameter totals), the same epochs."""
    out = {"data.fingerprint": (m.data or {}).get("fingerprint"), "params_summary": m.params_summary or None}
    out.update({f"stages.{s}.fingerprint": r.fingerprint for s, r in m.stages.items()})
    train = m.stage("train")
    if train is not None:
        out["train.epochs_done"] = train.get("epochs_done")
    return out


def measurements(m: Manifest, new: Manifest) -> dict:
    out = {}
    for s, r in m.stages.items():
        other = new.stage(s)
        out[f"stages.{s}.seconds"] = {"committed": r.seconds, "reproduced": other.seconds if other else None}
    train, again = m.stage("train"), new.stage("train")
    if train is not None:
        out["fine-tuning seconds"] = {"committed": train.get("finetune_seconds"),
                                      "reproduced": again.get("finetune_seconds") if again else None}
    for v in out.values():
        v["ratio"] = rp.ratio(v["committed"], v["reproduced"])
    return out


def environment_differences(m: Manifest, new: Manifest) -> list[dict]:
    """What differs between the machine and libraries that made the run and this one (reported, allowed)."""
    a, b = m.environment or {}, new.environment or {}
    pairs = {"python": (a.get("python"), b.get("python")),
             "gpu": (_gpu(a), _gpu(b)), "cuda": (a.get("cuda"), b.get("cuda")),
             "driver": ((a.get("gpu") or {}).get("driver"), (b.get("gpu") or {}).get("driver")),
             "device": (m.device, new.device), "compute_dtype": (m.compute_dtype, new.compute_dtype)}
    libs_a, libs_b = a.get("libraries") or {}, b.get("libraries") or {}
    pairs.update({f"library {k}": (libs_a.get(k), libs_b.get(k)) for k in sorted(set(libs_a) | set(libs_b))})
    return [{"what": k, "committed": x, "reproduced": y} for k, (x, y) in pairs.items() if x != y]


def _gpu(env: dict) -> str | None:
    gpu = env.get("gpu") or {}
    return f"{gpu.get('count', 1)} x {gpu['name']}" if gpu.get("name") else None


def _record(folder: Path, m: Manifest, scratch_run: Path, new: Manifest, here: dict, changed: str | None,
            allowed: bool, command: str) -> dict:
    old_tables, new_tables = _tables(RunStore(folder, writer=False)), _tables(RunStore(scratch_run, writer=False))
    tables = {name: rp.compare_table(name, old_tables[name], new_tables[name]) for name in TABLES
              if old_tables[name] is not None or new_tables[name] is not None}
    tables["manifest"] = rp.compare_facts(facts(m), facts(new))
    verdict = rp.overall({k: v for k, v in tables.items() if v["verdict"] in rp.VERDICTS})
    runs = measurements(m, new)
    return {
        "kind": rp.KIND, "version": rp.RECORD_VERSION, "run": folder.name, "made": utc_now(),
        "host": socket.gethostname(), "gpu": _gpu(new.environment or {}), "device": new.device,
        "compute_dtype": new.compute_dtype, "command": command,
        "code": {"run": (m.code_version or {}).get("git_commit"), "here": here.get("git_commit"),
                 "changed": changed is not None, "why": changed, "allowed": allowed},
        "libraries": (new.environment or {}).get("libraries"),
        "environment_differences": environment_differences(m, new),
        "committed": {"config_fingerprint": m.config_fingerprint, "gpu": _gpu(m.environment or {}),
                      "tables": {k: (v or {}).get("sha256") for k, v in (m.tables or {}).items()}},
        "tables": tables, "measurements": runs,
        "time_ratio": (runs.get("fine-tuning seconds") or {}).get("ratio"),
        "verdict": verdict, "exit_code": 0 if verdict != rp.DIFFERS else rp.EXIT_DIFFERS,
    }


def _write(folder: Path, record: dict) -> Path:
    target = rp.folder_of(folder)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path, n = target / f"{stamp}.json", 1
    while path.exists():  # two reproductions within one second
        n += 1
        path = target / f"{stamp}-{n}.json"
    atomic_write_json(path, rp.sealed(record))
    return path


def _row(row: dict | None) -> str:
    return " ".join(f"{k}={v}" for k, v in (row or {}).items()) or "-"


def summary(record: dict, path: Path) -> str:
    """What the command prints: one line per table, the measurements, the code and environment, the verdict."""
    lines = []
    for name, e in record["tables"].items():
        line = f"  {name:<12} {e['verdict']}"
        if e.get("rows"):
            line += f" ({e['rows'][0]} rows committed, {e['rows'][1]} reproduced)"
        if e.get("tolerance"):
            line += f": {e['tolerance']}"
        lines.append(line)
        for d in e.get("differences") or []:
            what = d.get("what") or f"{d['column']} {d.get('committed')!r} -> {d.get('reproduced')!r}"
            lines.append(f"      first differing: {_row(d.get('row'))}: {what}")
    measured = {**record["measurements"], **{f"{name}.{k}": v for name, e in record["tables"].items()
                                             for k, v in (e.get("measurements") or {}).items()}}
    for what, v in measured.items():
        if v["ratio"] is not None:
            lines.append(f"  {what}: {v['reproduced']:.4g} vs {v['committed']:.4g} committed (x{v['ratio']:.2f}; "
                         f"a measurement, reported)")
    code = record["code"]
    lines.append(f"  code: {code['why'] + ' (allowed by --allow-code-change)' if code['changed'] else 'the same commit'}")
    for d in record["environment_differences"]:
        lines.append(f"  environment: {d['what']} {d['committed']} -> {d['reproduced']} (reported, allowed)")
    word = {rp.IDENTICAL: "reproduced: identical", rp.WITHIN: "reproduced within tolerance",
            rp.DIFFERS: "reproduced with differences"}[record["verdict"]]
    return "\n".join([f"{record['run']}: {word}", *lines, f"record: {path}"])
