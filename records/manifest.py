"""results/<run>/manifest.json as a typed object: one schema, one reader (the rule for "is this stage's
process still alive" is records/liveness.py). `records.store.RunStore` is its only writer; `pipeline status` and the report read
it through `Manifest.read`, so the two can never disagree about a run.

Each field's `help` is the documentation of the file (`python -m pipeline manifest-doc` prints it).
Torch-free: `analysis/` imports it.

(Just over the project's ~300-line guide: the fields with their help text and the shape checks a damaged or
hand-edited file meets on the way in are the file's one definition, read together.)
"""
from __future__ import annotations

import json
import math
import re
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from records.errors import BadInput, refuse_link
from records.hashing import bytes_sha256
from records.liveness import process_state

SCHEMA_VERSION = 1


class ManifestError(BadInput):
    """A manifest that cannot be read or has the wrong shape; str(err) names the file."""


def _f(default, help: str):
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help})
    return field(default=default, metadata={"help": help})


# ------------------------------------------------------------------------------------------ shape check
_WORDS = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number"}


def _check_kinds(cls, d: dict, where: str, prefix: str = "") -> None:
    """Each known key of `d` has the kind its field declares (null is always allowed: it reads as unset), so
    a hand-edited or damaged manifest is one line naming the key, never a traceback later."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if f.name in ("extra", "info") or d.get(f.name) is None:
            continue
        kinds = tuple(typing.get_origin(a) or a for a in (typing.get_args(hints[f.name]) or (hints[f.name],)))
        kinds += (int,) if float in kinds else ()
        v = d[f.name]
        if not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds):
            shown = [k for k in kinds if k is not type(None) and not (k is int and float in kinds)]
            want = " or ".join(_WORDS.get(k, k.__name__) for k in shown)
            raise ManifestError(f"{where}: malformed manifest, `{prefix}{f.name}` must be {want}, "
                                f"got {type(v).__name__}")


# --------------------------------------------------------------------------------------------- records
@dataclass
class StageRecord:
    status: str = _f("running", "running | done | failed. `running` whose process is gone reads as interrupted.")
    start: str | None = _f(None, "ISO-8601 UTC time the stage started.")
    end: str | None = _f(None, "ISO-8601 UTC time it ended (null while running).")
    seconds: float | None = _f(None, "Wall time of the stage.")
    fingerprint: str | None = _f(None, "Hash of the config fields the stage reads and of its upstream stages' "
                                       "fingerprints; a done stage with the current fingerprint is skipped.")
    pid: int | None = _f(None, "Process that ran the stage.")
    host: str | None = _f(None, "Host name of that process.")
    error: str | None = _f(None, "One line: why the stage failed.")
    info: dict = _f({}, "Stage-specific facts, stored flat beside the fields above: epochs_done, "
                        "epochs_total, finetune_seconds, before_training, measured_params, data_order, "
                        "checkpoints, optimizer (name, fused: as used), step (cuda_graphs, graphs_captured, "
                        "graph_fallback, packing, attention, attention_note, compile, compiled_layers, length_buckets: "
                        "as run), batch (effective, micro, processes, accumulation) "
                        "(train); scored: each checkpoint scored (final, epoch_<k>) with the train fingerprint its "
                        "meta.json records and its adapter's sha256 (evaluate); parameter totals (params); peaks (every stage).")

    CORE = ("status", "start", "end", "seconds", "fingerprint", "pid", "host", "error")

    @classmethod
    def from_dict(cls, d: dict) -> StageRecord:
        return cls(**{k: d.get(k) for k in cls.CORE if k in d},
                   info={k: v for k, v in d.items() if k not in cls.CORE})

    def to_dict(self) -> dict:
        return {**{k: getattr(self, k) for k in self.CORE}, **self.info}

    def update(self, **facts) -> None:
        """Set core fields by name; every other fact goes into `info`."""
        for key, value in facts.items():
            if key in self.CORE:
                setattr(self, key, value)
            else:
                self.info[key] = value

    def get(self, key: str, default=None):
        if key in self.CORE:
            v = getattr(self, key)
            return default if v is None else v
        return self.info.get(key, default)

    def liveness(self) -> str:
        return process_state(self.pid, self.host, self.start)

    def state(self) -> str:
        """done | failed | running | interrupted | running elsewhere | <other status as written>."""
        if self.status == "running":
            return {"gone": "interrupted", "elsewhere": "running elsewhere"}.get(self.liveness(), "running")
        return self.status or "in an unknown state"


@dataclass
class Manifest:
    schema_version: int = _f(SCHEMA_VERSION, "Version of this layout; a reader refuses newer versions.")
    run: str = _f("", "Folder name under results/.")
    description: str = _f("", "From the config: one sentence on what the run is.")
    config_path: str | None = _f(None, "The config file the run was started with.")
    config: dict = _f({}, "The resolved config (every default filled in), plain JSON.")
    config_fingerprint: str | None = _f(None, "sha256 (16 hex) of the resolved config.")
    weights: str | None = _f(None, "pretrained | random (random = shape-only run: time, memory and parameters "
                                   "real, accuracy meaningless).")
    compute_dtype: str | None = _f(None, "bfloat16 | float16 | float32, as picked for the hardware.")
    device: str | None = _f(None, "cuda | cpu.")
    gpu_memory_cap_bytes: int | None = _f(None, "Per-process GPU memory cap (the T4-budget run), else null.")
    data: dict = _f({}, "source, fingerprint, note, and per split: source_split, stride, offset, limit, "
                        "rows_sampled, rows_dropped_no_label, rows, label_counts.")
    code_version: dict = _f({}, "git_commit, dirty (and source where the commit was handed over).")
    environment: dict = _f({}, "python, platform, libraries, cuda, gpu (name, count, memory, driver), cpu, "
                               "ram_total_bytes.")
    params_summary: dict = _f({}, "stored_elements, logical_params, trainable, bytes (from the params stage).")
    stages: dict = _f({}, "Stage name -> StageRecord. A stage missing here has not run.")
    commands: list = _f([], "Every distinct command that ran this run, oldest first; a run over several "
                            "processes with its launcher (`accelerate launch ... -m pipeline ...`).")
    stages_requested: list | None = _f(None, "The stages of the latest `pipeline run` call; null = all.")
    overrides: list | None = _f(None, "The `--set KEY=VALUE` overrides of the latest call, as given (the config file "
                                      "plus these, plus `tuned.overrides`, is `config`: `pipeline verify` rebuilds "
                                      "it so). Absent in runs made before it was recorded.")
    tuned: dict | None = _f(None, "When the run's settings are a tune's choice (`pipeline tune ... --then-run`, "
                                  "`pipeline run ... --tuned`): from_run (whose tuning table chose), grid, "
                                  "chosen_trial, trials, rule, overrides (the chosen trial as --set values, applied "
                                  "over the config file). Absent when the config file alone set them.")
    test_evaluations: list | None = _f(None, "Every evaluation of this run name's test rows, oldest first, kept "
                                             "across re-runs: finished, fingerprint (of the evaluate stage), "
                                             "config_fingerprint, git_commit, command, settings (the tunable fields), "
                                             "tuned_trial, test_rows, test_accuracy (fine-tuned), source. An entry "
                                             "whose fingerprint is not the evaluate stage's was made under a "
                                             "configuration since superseded.")
    tuning: dict | None = _f(None, "Written by `pipeline tune`: grid, epochs_per_trial, trials, chosen_trial, "
                                   "chosen, chosen_overrides, rule, command (source when rebuilt from a log).")
    tables: dict | None = _f(None, "Table name -> {sha256, rows, bytes} of its file as last written; the store "
                                   "records it with every write, so a file that differs was damaged afterwards. "
                                   "Absent in runs made before checksums were recorded.")
    processes: dict | None = _f(None, "world_size, and per rank its device and GPU, for a run launched over several "
                                      "processes (accelerate launch); absent = one process.")
    row_sets: dict | None = _f(None, "For the tables stages share (predictions, resources): owner (model or stage) -> "
                                     "{rows, sha256 of those rows' values}, recorded with every write, so a damaged "
                                     "shared table re-runs only the stages whose rows changed.")
    checkpoints: dict | None = _f(None, "Checkpoint folder (epoch_1, ..., final) -> file -> {sha256, bytes}, as the "
                                        "train stage wrote them (each folder's meta.json holds the same list; a file "
                                        "that differs is never resumed from).")
    effective: dict | None = _f(None, "What the run actually used where the config leaves it to the run, the model "
                                      "or the hardware, laid out like the config: model.name (the base model's "
                                      "portable identity: hub id and revision, the GGUF's package, file and sha256, or "
                                      "random weights' architecture, seed and config), model.revision, "
                                      "model.attn_implementation, model.fast_gelu, model.half_precision_norms, "
                                      "model.frozen_weights_dtype (the weights that are not 4-bit), model.class, "
                                      "runtime.threads. The compute dtype and device are `compute_dtype` and `device`; "
                                      "the optimizer, CUDA graphs, packing and micro-batch are in stages.train "
                                      "(optimizer, step, batch). Absent in runs made before it was recorded.")
    footprint: dict | None = _f(None, "Bytes on disk the run owns, measured as each stage ends: checkpoints_bytes "
                                      "(checkpoints/<run>/), results_bytes (results/<run>/), model_cache_bytes (the "
                                      "base weights under .cache/models/ the run loads, made by it or by an earlier "
                                      "run of the same model, which then share it; or the hub's cache of the model; "
                                      "folder name in model_cache), total_bytes. The resources table's "
                                      "disk_used_bytes is the whole filesystem. Absent in runs made before it was "
                                      "recorded.")
    seal: str | None = _f(None, "sha256 of the rest of this file as the store wrote it (canonical JSON): a manifest "
                                "changed by anything but the store no longer matches (`pipeline verify`).")
    extra: dict = _f({}, "Keys this version does not know (kept, never dropped).")

    # --- (de)serialisation ---
    @classmethod
    def from_dict(cls, d: Any, where: str = "manifest.json") -> Manifest:
        if not isinstance(d, dict):
            raise ManifestError(f"{where}: malformed manifest, expected a JSON object")
        version = d.get("schema_version", SCHEMA_VERSION)
        if not isinstance(version, int) or isinstance(version, bool) or version > SCHEMA_VERSION:
            raise ManifestError(f"{where}: schema_version {version!r} is newer than this code understands "
                                f"({SCHEMA_VERSION})")
        known = {f.name for f in fields(cls)} - {"extra", "stages"}
        _check_kinds(cls, d, where)
        stages = {}
        for name, rec in (d.get("stages") or {}).items():
            if not isinstance(rec, dict):
                raise ManifestError(f"{where}: malformed manifest, stages.{name} must be a mapping")
            _check_kinds(StageRecord, rec, where, f"stages.{name}.")
            stages[name] = StageRecord.from_dict(rec)
        _check_records(d, where)
        nullable = {f.name for f in fields(cls) if f.default is None}
        values = {k: d[k] for k in known if k in d and (d[k] is not None or k in nullable)}
        m = cls(**values, stages=stages, extra={k: v for k, v in d.items() if k not in known and k != "stages"})
        m.schema_version = version
        return m

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("extra", "stages")}
        for key in ("stages_requested", "overrides", "tuned", "test_evaluations", "tuning", "tables", "processes",
                    "row_sets", "checkpoints", "effective", "footprint", "seal"):  # absent = not recorded: keep it absent
            if out[key] is None:
                del out[key]
        out["stages"] = {k: v.to_dict() for k, v in self.stages.items()}
        out.update(self.extra)
        return out

    @classmethod
    def read(cls, path: Path | str) -> Manifest:
        """The manifest at `path`; an absent file is an empty manifest (nothing has run)."""
        path = Path(path)
        refuse_link(path)  # the store never writes a link: one here was planted, and would be written through
        if not path.exists():
            return cls()
        try:
            text = path.read_text(encoding="utf-8")
            d = loads(text)
        except (OSError, UnicodeDecodeError) as e:
            raise ManifestError(f"{path}: cannot be read ({e})") from None
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}: malformed manifest, not valid JSON (line {e.lineno}: {e.msg})") from None
        except _NotJSONNumber as e:
            raise ManifestError(f"{path}: malformed manifest, {e} is not a JSON number{_line_of(text, str(e))} "
                                f"(a measurement that is missing is written as null)") from None
        return cls.from_dict(d, str(path))

    # --- views ---
    def stage(self, name: str) -> StageRecord | None:
        return self.stages.get(name)

    def requested(self, name: str) -> bool:
        return self.stages_requested is None or name in self.stages_requested

    def stage_state(self, name: str) -> str:
        """not run | not requested | done | failed | running | interrupted | running elsewhere."""
        rec = self.stages.get(name)
        if rec is None:
            return "not run" if self.requested(name) else "not requested"
        return rec.state()

    def is_done(self, name: str, fingerprint: str) -> bool:
        rec = self.stages.get(name)
        return rec is not None and rec.status == "done" and rec.fingerprint == fingerprint


JSON_MAX_DEPTH = 64  # a manifest is about 6 levels deep; a received one 100,000 deep must not exhaust the stack


def loads(text: str) -> Any:
    """A manifest's JSON: NaN and Infinity refused (_NotJSONNumber), nesting bounded (json.JSONDecodeError, so
    every reader's one line for malformed JSON answers it)."""
    try:
        d = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise json.JSONDecodeError(f"nested deeper than {JSON_MAX_DEPTH} levels", text, 0) from None
    level, todo = 0, [d]
    while todo:  # breadth first, no recursion: the depth of the parsed value
        level += 1
        if level > JSON_MAX_DEPTH:
            raise json.JSONDecodeError(f"nested deeper than {JSON_MAX_DEPTH} levels", text, 0)
        todo = [v for x in todo for v in (x.values() if isinstance(x, dict) else x if isinstance(x, list) else ())
                if isinstance(v, (dict, list))]
    return d


class _NotJSONNumber(ValueError):
    pass


def _refuse_constant(token: str):
    """Python's json reads NaN and Infinity, which JSON does not have; a manifest holding one was not written
    by the store (it writes null for a missing measurement) and would put NaN into the report."""
    raise _NotJSONNumber(token)


def _line_of(text: str, token: str) -> str:
    for i, line in enumerate(text.splitlines(), 1):
        if re.search(rf"[:\[,]\s*{re.escape(token)}\s*(,|\]|}}|$)", line):
            return f" (line {i})"
    return ""


_SHA256 = re.compile(r"[0-9a-f]{64}")
_RECORD_KEYS = {"tables": ("sha256", "rows", "bytes"), "row_sets": ("sha256", "rows")}


def _check_records(d: dict, where: str) -> None:
    """`tables` and `row_sets` entries have their declared shape (the store and the report compare against them)."""
    for key, needs in _RECORD_KEYS.items():
        block = d.get(key) or {}
        entries = block.items() if key == "tables" else \
            [(f"{t}.{o}", r) for t, per in block.items()
             for o, r in (per.items() if isinstance(per, dict) else [("", per)])]
        for name, rec in entries:
            ok = isinstance(rec, dict) and isinstance(rec.get("sha256"), str) and _SHA256.fullmatch(rec["sha256"]) and all(
                isinstance(rec.get(k), int) and not isinstance(rec.get(k), bool) and rec[k] >= 0
                for k in needs if k != "sha256")
            if not ok:
                raise ManifestError(f"{where}: malformed manifest, `{key}.{name}` must be a mapping of "
                                    f"{', '.join(needs)} (sha256: 64 hex digits; the others: counts)")


ONE_PROCESS = "python -m pipeline"


def program(world_size: int) -> str:
    """How a command in `commands` starts: the launch is part of it for a run over several processes."""
    return ONE_PROCESS if world_size == 1 else f"accelerate launch --multi_gpu --num_processes {world_size} -m pipeline"


def seal_of(d: dict) -> str:
    """The seal of a manifest's plain data (every key but `seal`): the store writes it, `pipeline verify` checks it.
    Canonical JSON of the values as written (floats by their shortest repr), so reading and re-serialising agree."""
    body = {k: v for k, v in d.items() if k != "seal"}
    return bytes_sha256(json.dumps(finite(body), sort_keys=True, separators=(",", ":"), default=str,
                                   allow_nan=False).encode())


def finite(obj):
    """`obj` with every NaN or infinite float replaced by None: what the store writes (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def documentation() -> str:
    """manifest.json's fields and their help, as markdown (the file's documentation, from the one source)."""
    lines = ["# results/<run>/manifest.json", "",
             "Written only by `records.store.RunStore`, atomically. Generated from `records/manifest.py`.", "",
             "| key | meaning |", "|---|---|"]
    lines += [f"| `{f.name}` | {f.metadata['help']} |" for f in fields(Manifest) if f.name != "extra"]
    lines += ["", "## stages.<name>", "", "| key | meaning |", "|---|---|"]
    lines += [f"| `{f.name}` | {f.metadata['help']} |" for f in fields(StageRecord)]
    return "\n".join(lines) + "\n"
