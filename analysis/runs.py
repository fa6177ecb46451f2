"""Find, select and read runs: results/<run>/manifest.json (through records.manifest.Manifest, the same
reader `pipeline status` uses) plus the parquet tables of records.schema.

Read-only. A run in progress is normal: missing tables are None and missing stages are reported, not
errors. A malformed manifest, report.yaml or table is a ReportError whose message names the file and the
fix. Every table is checked before anything is computed from it: against the manifest's checksum record
(analysis/integrity.py: a damaged table stops the whole render), then its values (analysis/validate.py).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from analysis import integrity, processes, validate
from analysis.errors import ReportError
from analysis.markdown import one_line
from records.errors import BadInput
from records.manifest import Manifest, ManifestError, StageRecord
from records.schema import TABLES, with_later_columns

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = PROJECT_ROOT / "results"
SELECTION_FILE = "report.yaml"


@dataclass
class Run:
    name: str
    path: Path | None
    manifest: Manifest
    tables: dict = field(default_factory=dict)  # name -> DataFrame, or None when the file is absent
    checksums: integrity.Checksums = field(default_factory=integrity.Checksums)  # what was verified

    @classmethod
    def empty(cls) -> Run:
        """No run at all: every fact of it reads as missing (the report of an empty results/ folder)."""
        return cls(name="", path=None, manifest=Manifest())

    def table(self, name: str) -> pd.DataFrame | None:
        return self.tables.get(name)

    def has(self, name: str) -> bool:
        df = self.tables.get(name)
        return df is not None and len(df) > 0

    def cfg(self, dotted: str, default=None):
        """A value of the resolved config by its dotted name, e.g. cfg("train.epochs")."""
        d = self.manifest.config
        for part in dotted.split("."):
            if not isinstance(d, dict) or part not in d:
                return default
            d = d[part]
        return d

    def stage(self, name: str) -> StageRecord | None:
        return self.manifest.stage(name)

    @property
    def shape_only(self) -> bool:
        """Random weights: time, memory and parameter counts are real, accuracy means nothing."""
        return self.manifest.weights == "random"

    @property
    def environment(self) -> dict:
        return self.manifest.environment or {}

    @property
    def commit(self) -> str | None:
        """The git commit of the code that made the run, as its manifest records it (None: not recorded)."""
        return (self.manifest.code_version or {}).get("git_commit")

    @property
    def gpu(self) -> dict | None:
        return self.environment.get("gpu") or None

    @property
    def processes(self) -> int:
        """Processes the run was launched with (the manifest's `processes`; absent = one process)."""
        return processes.world_size(self)

    @property
    def gpu_model(self) -> str | None:
        """The GPU model the run's processes used: each rank's recorded GPU where the manifest lists ranks,
        else the machine's GPU name; None on a CPU-only run. Several models read "A + B"."""
        ranks = (self.manifest.processes or {}).get("ranks") or []
        names = list(dict.fromkeys(str(r.get("gpu")) for r in ranks if r.get("gpu")))
        if names:
            return " + ".join(names)
        return str(self.gpu.get("name") or "GPU") if self.gpu else None

    @property
    def hardware(self) -> str:
        """What the run used: its processes x its GPU model, e.g. "1 × NVIDIA H200" for a one-process run on a
        machine with two (the machine's total is `machine_hardware`)."""
        if self.gpu_model:
            return f"{self.processes} × {self.gpu_model}"
        cores = (self.environment.get("cpu") or {}).get("logical_cores")
        return f"CPU only ({cores} logical cores)" if cores else "CPU only"

    @property
    def machine_hardware(self) -> str:
        """The machine the run was on: its GPU count x model, e.g. "2 × NVIDIA H200" (not what the run used)."""
        if not self.gpu:
            return self.hardware
        return f"{self.gpu.get('count') or 1} × {self.gpu.get('name', 'GPU')}"

    @property
    def cap_bytes(self) -> float | None:
        return self.manifest.gpu_memory_cap_bytes

    @property
    def description(self) -> str:
        return (self.manifest.description or self.cfg("description") or "").strip().rstrip(".")

    @property
    def model_name(self) -> str:
        return str(self.cfg("model.name", "unknown model"))

    @property
    def runs_remote_code(self) -> bool:
        """The config let the model repository's own Python code run (model.trust_remote_code: true)."""
        return self.cfg("model.trust_remote_code") is True


@dataclass
class Selection:
    runs: list[Run]
    listed_missing: list[str]   # listed in report.yaml / REPORT_RUNS but without a manifest
    source: str                 # where the list came from
    results_dir: Path
    notes: list[str] = field(default_factory=list)


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
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ReportError(f"{path}: not valid YAML ({getattr(e, 'problem', e)})") from None
    runs = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
        raise ReportError(f"{path}: expected `runs: [run-a, run-b, ...]` (a list of folder names)")
    return runs


def parse_run_list(text: str | None) -> list[str] | None:
    if text is None or not text.strip():
        return None
    return [r.strip() for r in text.split(",") if r.strip()]


def read_table(path: Path, name: str, manifest: Manifest | None = None,
               checks: integrity.Checksums | None = None) -> pd.DataFrame | None:
    """Table `name` of a run, checked against the manifest's record of it (when there is one) and then its
    values; None when the file is absent and the manifest does not record it."""
    manifest = manifest or Manifest()
    checks = checks or integrity.Checksums()
    data = integrity.read_checked(path, name, checks, manifest)
    if data is None:
        return None
    schema, fix = TABLES[name], integrity.rewrite_fix(manifest, name)
    try:
        # columns the schema gained later are filled in as it declares (records/schema.py: older_tables)
        table = with_later_columns(name, pq.read_table(pa.BufferReader(data)))
    except Exception as e:  # pyarrow raises several types for a corrupt file
        why = one_line(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", 200)
        raise ReportError(f"{path}: unreadable parquet file ({why}) {fix}") from None
    missing = [c for c in schema.names if c not in table.column_names]
    if missing:
        raise ReportError(f"{path}: table `{name}` lacks columns {missing} (see records/schema.py) {fix}")
    try:
        table = table.select(schema.names).cast(schema)
    except Exception as e:
        why = one_line(str(e).splitlines()[0] if str(e) else type(e).__name__, 200)
        raise ReportError(f"{path}: table `{name}` has columns of the wrong type ({why}) {fix}") from None
    integrity.check_rows(path, name, table.num_rows, checks, manifest)
    df = table.to_pandas()
    validate.table(path, name, df, manifest)
    return df


# A run may be writing the folder while the report reads it: the store replaces a table, then its record in the
# manifest, each by an atomic rename. A read between the two sees a table its manifest does not vouch for yet.
READ_ATTEMPTS = 60   # at READ_RETRY_S apart: a few seconds, far longer than the gap between a table and its record
READ_RETRY_S = 0.05


def load_run(folder: Path) -> Run:
    """The run in `folder`, read consistently: the manifest and the tables it vouches for as of one moment. A read
    during which the manifest changed is read again; so is one that found a table not as recorded while a live
    process writes the folder (the next manifest will vouch for it). Only a problem that stays while nothing
    writes is reported (ReportError, one line)."""
    folder = Path(folder)
    for attempt in range(READ_ATTEMPTS):
        stamp = _stamp(folder / "manifest.json")
        try:
            run, error = _load_once(folder), None
        except ReportError as e:
            run, error = None, e
        # Tables that all match the manifest read first are that manifest's run, whatever was written since.
        if error is None or (_stamp(folder / "manifest.json") == stamp and not _being_written(folder)):
            break
        if attempt < READ_ATTEMPTS - 1:
            time.sleep(READ_RETRY_S)
    if error is not None:
        raise error
    return run


def _stamp(path: Path) -> tuple | None:
    """What changes with every write of the manifest (the store renames a new file over it: a new inode)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _being_written(folder: Path) -> bool:
    """A live process holds the folder's lock, or runs one of its stages."""
    from records.lock import holder
    try:
        m = Manifest.read(folder / "manifest.json")
    except (ManifestError, BadInput):
        return False
    return holder(folder) is not None or any(rec.state() == "running" for rec in m.stages.values())


def _load_once(folder: Path) -> Run:
    try:
        manifest = Manifest.read(folder / "manifest.json")
    except BadInput as e:  # a damaged manifest, or a link in its place
        raise ReportError(str(e)) from None
    validate.manifest_facts(manifest, folder / "manifest.json")
    checks = integrity.records(manifest, folder / "manifest.json")
    tables = {name: read_table(folder / f"{name}.parquet", name, manifest, checks) for name in TABLES}
    validate.predictions_against_samples(folder, tables, manifest)
    return Run(name=folder.name, path=folder, manifest=manifest, tables=tables, checksums=checks)


def select(results_dir: Path | str | None = None, runs: list[str] | str | None = None) -> Selection:
    """Which runs to show, in order; the first is the headline run.

    Order of precedence: `runs` (CLI) / REPORT_RUNS (env), then results/report.yaml, then every run found.
    Listed runs that are absent are noted; when none of the listed runs exists, every run found is shown.
    """
    results_dir = Path(results_dir or os.environ.get("REPORT_RESULTS") or DEFAULT_RESULTS)
    if isinstance(runs, str):
        runs = parse_run_list(runs)
    found = discover(results_dir)
    env = parse_run_list(os.environ.get("REPORT_RUNS"))
    file_list = None if runs or env else read_selection_file(results_dir)
    if runs:
        listed, source = runs, "the run list given on the command line (REPORT_RUNS)"
    elif env:
        listed, source = env, "REPORT_RUNS"
    elif file_list is not None:
        listed, source = file_list, f"{results_dir.name}/{SELECTION_FILE}"
    else:
        listed, source = found, f"every run folder in {results_dir.name}/"
    present = [r for r in listed if r in found]
    listed_missing = [r for r in listed if r not in found]
    notes = [f"run {r} listed but not found (no {results_dir.name}/{r}/manifest.json)" for r in listed_missing]
    if not present and found:
        notes.append(f"none of the listed runs exists, so every run found in {results_dir.name}/ is shown")
        present, source = found, f"every run folder in {results_dir.name}/"
    loaded = [load_run(results_dir / r) for r in dict.fromkeys(present)]
    return Selection(runs=loaded, listed_missing=listed_missing, source=source, results_dir=results_dir, notes=notes)
