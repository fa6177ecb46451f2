"""Find, select and read runs: results/<run>/manifest.json plus the parquet tables of pipeline.schema.

Read-only. A run in progress is normal: missing tables are None and missing stages are reported, not
errors. A malformed manifest, report.yaml or table is a ReportError whose message names the file.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import yaml

from pipeline.schema import LABELS, SCHEMA_VERSION, STAGES, TABLES

# Which stages write each table (pipeline/runner.py): a missing table is a gap only when one of its
# writers was requested. resources is written by every stage.
TABLE_WRITERS = {"samples": ("data",), "params": ("params",), "predictions": ("baseline", "evaluate"),
                 "epochs": ("train",), "steps": ("train",), "resources": STAGES}

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = PROJECT_ROOT / "results"
SELECTION_FILE = "report.yaml"


class ReportError(Exception):
    """A problem with the inputs; str(err) is the one line shown to the user."""


@dataclass
class Run:
    name: str
    path: Path
    manifest: dict
    tables: dict = field(default_factory=dict)  # name -> DataFrame or None when the file is absent

    def table(self, name: str) -> pd.DataFrame | None:
        return self.tables.get(name)

    def has(self, name: str) -> bool:
        df = self.tables.get(name)
        return df is not None and len(df) > 0

    # --- manifest views ---
    @property
    def config(self) -> dict:
        return self.manifest.get("config") or {}

    def cfg(self, dotted: str, default=None):
        d = self.config
        for part in dotted.split("."):
            if not isinstance(d, dict) or part not in d:
                return default
            d = d[part]
        return d

    @property
    def weights(self) -> str:
        return self.manifest.get("weights") or "unknown"

    @property
    def shape_only(self) -> bool:
        return self.weights == "random"

    @property
    def environment(self) -> dict:
        return self.manifest.get("environment") or {}

    @property
    def gpu(self) -> dict | None:
        return self.environment.get("gpu") or None

    @property
    def hardware(self) -> str:
        gpu = self.gpu
        if gpu:
            n = gpu.get("count") or 1
            return f"{n} × {gpu.get('name', 'GPU')}" if n > 1 else str(gpu.get("name", "GPU"))
        cpu = self.environment.get("cpu") or {}
        cores = cpu.get("logical_cores")
        return f"CPU only ({cores} logical cores)" if cores else "CPU only"

    @property
    def cap_bytes(self) -> float | None:
        return self.manifest.get("gpu_memory_cap_bytes")

    def stage(self, name: str) -> dict | None:
        return (self.manifest.get("stages") or {}).get(name)

    @property
    def description(self) -> str:
        return self.manifest.get("description") or self.config.get("description") or ""

    @property
    def model_name(self) -> str:
        return str(self.cfg("model.name", "unknown model"))

    @property
    def stages_requested(self) -> list[str] | None:
        """The stages of the latest `pipeline run` call (manifest key stages_requested); None when not recorded,
        in which case every stage counts as requested."""
        req = self.manifest.get("stages_requested")
        return list(req) if isinstance(req, list) else None

    def requested(self, name: str) -> bool:
        req = self.stages_requested
        return req is None or name in req

    def stage_state(self, name: str) -> str:
        """done | not requested | not run | running | interrupted | running elsewhere | failed | <other status>.

        `not requested`: absent from `stages` and left out of stages_requested on purpose (e.g. a shape-only run
        with --stages data,params,train). `interrupted`: status running, but the process that wrote it is gone."""
        rec = self.stage(name)
        if rec is None:
            return "not run" if self.requested(name) else "not requested"
        status = rec.get("status") or "in an unknown state"
        if status == "running":
            alive = process_state(rec)
            return {"gone": "interrupted", "elsewhere": "running elsewhere"}.get(alive, "running")
        return status

    def stage_label(self, name: str) -> str:
        """The stage's state in a few words, for tables."""
        state = self.stage_state(name)
        return {"not requested": "not run (not requested)", "running elsewhere": "running on another machine, "
                "or interrupted"}.get(state, state)

    def skipped(self) -> list[str]:
        """Stages that were deliberately not run (absent and not in stages_requested), in pipeline order."""
        return [st for st in STAGES if self.stage_state(st) == "not requested"]

    def skip_note(self) -> str:
        """The stages left out on purpose, in a few words ("stages baseline and evaluate were not run (not
        requested)"); empty when none were."""
        sk = self.skipped()
        if not sk:
            return ""
        many = len(sk) > 1
        return f"stage{'s' if many else ''} {_and(sk)} {'were' if many else 'was'} not run (not requested)"

    @property
    def skipped_for_shape(self) -> bool:
        """A shape-only run whose baseline / evaluate stages were left out on purpose: there is no accuracy to
        measure with random weights, so this is by design and not a gap."""
        return self.shape_only and any(st in self.skipped() for st in ("baseline", "evaluate"))

    def shape_skip_reason(self) -> str:
        """Why a shape-only run left out baseline / evaluate, e.g. "baseline and evaluation were skipped because
        accuracy means nothing with random weights"; empty unless skipped_for_shape."""
        if not self.skipped_for_shape:
            return ""
        what = [{"baseline": "baseline", "evaluate": "evaluation"}[st] for st in self.skipped()
                if st in ("baseline", "evaluate")]
        return (f"{_and(what)} {'were' if len(what) > 1 else 'was'} skipped because accuracy means nothing "
                "with random weights")

    def gaps(self) -> list[str]:
        """What is missing or unfinished, one sentence each (empty for a complete run). Stages left out of
        stages_requested on purpose, and the tables only they write, are not gaps (see skipped())."""
        notes = []
        for st in STAGES:
            rec = self.stage(st)
            state = self.stage_state(st)
            if state in ("done", "not requested"):
                continue
            if rec is None:
                notes.append(f"stage {st} has not run" + (" (it was requested)" if self.stages_requested else ""))
                continue
            extra = ""
            if st == "train" and rec.get("epochs_total"):
                extra = f", {rec.get('epochs_done', 0)} of {rec['epochs_total']} epochs done"
            err = f": {rec['error']}" if rec.get("error") else ""
            who = f"process {rec.get('pid')} on host {rec.get('host')}"
            if state == "interrupted":
                notes.append(f"stage {st} was interrupted (recorded as running, but {who} is gone){extra}")
            elif state == "running elsewhere":
                notes.append(f"stage {st} is recorded as running by {who}, another machine: it was interrupted "
                             f"or is still running there, which cannot be checked from here{extra}")
            elif state == "running":
                notes.append(f"stage {st} is running{extra}")
            elif state == "failed":
                notes.append(f"stage {st} failed{extra}{err}")
            else:
                notes.append(f"stage {st} is {state}{extra}{err}")
        for name in TABLES:
            if name == "tuning":
                continue  # optional: only written by `pipeline tune`
            if not any(self.requested(w) or self.stage(w) is not None for w in TABLE_WRITERS.get(name, STAGES)):
                continue  # only written by stages that were not requested
            if self.tables.get(name) is None:
                notes.append(f"table {name}.parquet is missing")
        return notes

    @property
    def complete(self) -> bool:
        return not self.gaps()


def _and(items: list[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def process_state(rec: dict) -> str:
    """Whether the process recorded in a stage record (pid, host) still runs: alive | gone | elsewhere | unknown.

    Same rule as pipeline.store.RunStore.is_interrupted (another host's process cannot be seen from here), and
    stricter about pid reuse: results copied from a machine with the same host name, or a pid given to a newer
    process, would otherwise look alive. On Linux a live pid only counts when that process started no later than
    the stage and is a Python process running the pipeline."""
    pid, host = rec.get("pid"), rec.get("host")
    if pid is None or host is None:
        return "unknown"
    if host != socket.gethostname():
        return "elsewhere"
    try:
        pid = int(pid)
        os.kill(pid, 0)
    except PermissionError:
        pass  # exists, owned by someone else
    except (OSError, ValueError, OverflowError):
        return "gone"
    proc = Path(f"/proc/{pid}")
    if proc.is_dir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            started = _proc_start_time(proc)
        except OSError:
            return "gone"
        if "pipeline" not in cmdline:
            return "gone"
        stage_start = _iso_time(rec.get("start"))
        if started is not None and stage_start is not None and started > stage_start + 5:
            return "gone"  # a newer process that was given the same pid
    return "alive"


def _proc_start_time(proc: Path) -> float | None:
    try:
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # field 22 of proc_pid_stat(5): starttime, in clock ticks after boot
        btime = next(int(ln.split()[1]) for ln in Path("/proc/stat").read_text().splitlines() if ln.startswith("btime"))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _iso_time(s) -> float | None:
    from datetime import datetime
    try:
        return datetime.fromisoformat(str(s)).timestamp()
    except (TypeError, ValueError):
        return None


@dataclass
class Selection:
    runs: list[Run]
    listed_missing: list[str]   # listed in report.yaml / REPORT_RUNS but without a manifest
    source: str                 # where the list came from
    results_dir: Path
    notes: list[str] = field(default_factory=list)

    @property
    def headline(self) -> Run | None:
        return self.runs[0] if self.runs else None


def discover(results_dir: Path) -> list[str]:
    """Run folders (those holding manifest.json), sorted by name."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return []
    return sorted(p.name for p in results_dir.iterdir() if (p / "manifest.json").is_file())


def read_selection_file(results_dir: Path) -> list[str] | None:
    path = Path(results_dir) / SELECTION_FILE
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ReportError(f"{path}: not valid YAML ({getattr(e, 'problem', e)})") from None
    runs = (data or {}).get("runs") if isinstance(data, dict) else None
    if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
        raise ReportError(f"{path}: expected `runs: [run-a, run-b, ...]` (a list of folder names)")
    return runs


def parse_run_list(text: str | None) -> list[str] | None:
    if text is None or not text.strip():
        return None
    return [r.strip() for r in text.split(",") if r.strip()]


def read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"{path}: cannot be read ({e})") from None
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: malformed manifest, not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(manifest, dict):
        raise ReportError(f"{path}: malformed manifest, expected a JSON object")
    version = manifest.get("schema_version")
    if version is not None and (not isinstance(version, int) or version > SCHEMA_VERSION):
        raise ReportError(f"{path}: schema_version {version!r} is newer than this report understands ({SCHEMA_VERSION})")
    for key, kind in (("config", dict), ("stages", dict), ("environment", dict), ("data", dict), ("commands", list),
                      ("stages_requested", list)):
        if manifest.get(key) is not None and not isinstance(manifest[key], kind):
            raise ReportError(f"{path}: malformed manifest, `{key}` must be a {'mapping' if kind is dict else 'list'}")
    for st, rec in (manifest.get("stages") or {}).items():
        if not isinstance(rec, dict):
            raise ReportError(f"{path}: malformed manifest, stages.{st} must be a mapping")
    return manifest


def read_table(path: Path, name: str) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    schema = TABLES[name]
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a corrupt file
        raise ReportError(f"{path}: unreadable parquet file ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from None
    missing = [c for c in schema.names if c not in table.column_names]
    if missing:
        raise ReportError(f"{path}: table `{name}` lacks columns {missing} (see pipeline/schema.py)")
    try:
        table = table.select(schema.names).cast(schema)
    except Exception as e:
        raise ReportError(f"{path}: table `{name}` has columns of the wrong type ({str(e).splitlines()[0][:200]})") from None
    return table.to_pandas()


def load_run(folder: Path) -> Run:
    folder = Path(folder)
    manifest = read_manifest(folder / "manifest.json")
    tables = {name: read_table(folder / f"{name}.parquet", name) for name in TABLES}
    return Run(name=folder.name, path=folder, manifest=manifest, tables=tables)


def select(results_dir: Path | str | None = None, runs: list[str] | str | None = None) -> Selection:
    """Which runs to show, in order; the first is the headline run.

    Order of precedence: `runs` (CLI) / REPORT_RUNS (env), then results/report.yaml, then every run found.
    Listed runs that are absent are noted; when none of the listed runs exists, every run found is shown.
    """
    results_dir = Path(results_dir or os.environ.get("REPORT_RESULTS") or DEFAULT_RESULTS)
    if isinstance(runs, str):
        runs = parse_run_list(runs)
    found = discover(results_dir)
    notes: list[str] = []
    if runs:
        listed, source = runs, "the run list given on the command line (REPORT_RUNS)"
    else:
        env = parse_run_list(os.environ.get("REPORT_RUNS"))
        if env:
            listed, source = env, "REPORT_RUNS"
        else:
            file_list = read_selection_file(results_dir)
            if file_list is not None:
                listed, source = file_list, f"{results_dir.name}/{SELECTION_FILE}"
            else:
                listed, source = found, f"every run folder in {results_dir.name}/"
    present = [r for r in listed if r in found]
    listed_missing = [r for r in listed if r not in found]
    for r in listed_missing:
        notes.append(f"run `{r}` listed but not found (no {results_dir.name}/{r}/manifest.json)")
    if not present and found:
        notes.append(f"none of the listed runs exists, so every run found in {results_dir.name}/ is shown")
        present, source = found, f"every run folder in {results_dir.name}/"
    loaded = [load_run(results_dir / r) for r in dict.fromkeys(present)]
    return Selection(runs=loaded, listed_missing=listed_missing, source=source, results_dir=results_dir, notes=notes)


def label_name(i) -> str:
    try:
        return LABELS[int(i)]
    except (ValueError, IndexError, TypeError):
        return str(i)
