"""What `pipeline reproduce RUN` compares, and the sealed record it leaves: a committed run's tables against the
same config re-run, table by table and column by column.

Every column of every table (records/schema.py) is one of
- SAME: a result that must come out equal (samples, predictions, parameter counts, epochs and tokens trained):
  compared exactly;
- a tolerance: a floating-point result that is deterministic on one machine but may move in its last bits under
  another library build or GPU (probabilities, losses, the learning rate, gradient norms); identical when equal,
  "within tolerance" when every value is within the named tolerance, else it differs;
- MEASURED: a measurement that naturally differs from run to run (times, tokens/s, memory, CPU): summarised (sum,
  mean or peak) and compared as a ratio, reported and never failed;
- CONTEXT: what places a measurement (a clock reading, the stage or process that took a resource sample): not
  compared.
The tuning table is not re-run: a reproduction applies the tune's recorded choice, as `run --tuned-from` does.
tests/pipeline/test_reproduce.py checks that every column of the schema has a rule here.

A table's verdict: identical / within tolerance (its tolerances named) / differs (the first differing rows named),
or "measured" for a table of measurements only. The run's verdict is the worst of its tables'.

The record lies beside the run, never inside it (`results/<run>.reproductions/<UTC time>.json`): the run's own
folder holds only what its stages wrote, so its seal and checksums stay what they were. The record carries its
own seal (the manifest's rule, records/manifest.py: seal_of), and `pipeline verify` checks each one: sealed,
about this run, its verdicts consistent with its table entries, and made against the run's current tables.
Torch-free: the report reads the records too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from records.manifest import loads, seal_of
from records.schema import DOCS, PROB_COLUMNS

KIND = "pipeline reproduce"
RECORD_VERSION = 1
IDENTICAL, WITHIN, DIFFERS, MEASURED, NOT_RERUN = "identical", "within tolerance", "differs", "measured", "not re-run"
VERDICTS = (IDENTICAL, WITHIN, DIFFERS)
SHOWN_DIFFERENCES = 5  # the first differing rows a table entry keeps
EXIT_DIFFERS = 4  # `pipeline reproduce`'s exit code for "reproduced with differences" (pipeline/cli.py)


@dataclass(frozen=True)
class Rule:
    kind: str                  # "same" | "tolerance" | "measured" | "context"
    relative: bool = False     # tolerance: relative to the committed value (else absolute)
    tol: float = 0.0
    summary: str = ""          # measured: how the column is summarised before the ratio: sum | mean | max

    def describe(self) -> str:
        return f"within {self.tol:g} {'relative' if self.relative else 'absolute'}"


SAME, CONTEXT = Rule("same"), Rule("context")
PROBABILITY = Rule("tolerance", tol=1e-6)                 # the H200 SmolLM2 rerun: bit for bit
LOSS = Rule("tolerance", relative=True, tol=1e-5)


def measured(summary: str) -> Rule:
    return Rule("measured", summary=summary)


# Column -> rule, per table; a column not named is SAME.
RULES: dict[str, dict[str, Rule]] = {
    "samples": {},
    "predictions": dict.fromkeys(PROB_COLUMNS, PROBABILITY),
    "epochs": {"train_loss": LOSS, "val_loss": LOSS, "val_accuracy": Rule("tolerance", tol=1e-12),
               "seconds": measured("sum"), "tokens_per_s": measured("mean"), "peak_allocated_bytes": measured("max")},
    "steps": {"loss": LOSS, "lr": Rule("tolerance", relative=True, tol=1e-9), "grad_norm": LOSS},
    "resources": {"stage": CONTEXT, "time": CONTEXT, "rank": CONTEXT, "gpu_index": CONTEXT,
                  **{c.name: measured("max") for c in DOCS["resources"].columns
                     if c.name not in ("stage", "time", "rank", "gpu_index")}},
    "params": {},
}
NOT_COMPARED = {"tuning": "the tune is not re-run: the reproduction applies its recorded choice"}


def rule(table: str, column: str) -> Rule:
    return RULES[table].get(column, SAME)


# ----------------------------------------------------------------------------------------------- values
def plain(v):
    """A table value as plain JSON data (numpy scalars unwrapped, NaN as null)."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _gap(a, b, r: Rule) -> float:
    """How far b is from a under rule r (0 when equal; inf when only one is missing or they are not numbers)."""
    if _missing(a) and _missing(b):
        return 0.0
    if _missing(a) or _missing(b):
        return math.inf
    if a == b:
        return 0.0
    if r.kind != "tolerance":
        return math.inf
    return abs(a - b) / abs(a) if r.relative and a != 0 else abs(a - b)


def ratio(committed, reproduced) -> float | None:
    """reproduced / committed; None when either is missing or the committed value is 0."""
    c, r = plain(committed), plain(reproduced)
    if _missing(c) or _missing(r) or c == 0:
        return None
    return float(r) / float(c)


def summarise(values: pd.Series, how: str):
    values = values.dropna()
    if values.empty:
        return None
    return plain({"sum": values.sum, "mean": values.mean, "max": values.max}[how]())


# --------------------------------------------------------------------------------------------- comparison
def compare_table(name: str, committed: pd.DataFrame | None, reproduced: pd.DataFrame | None) -> dict:
    """One table's entry of a reproduction record: its verdict, each compared column's, the tolerances that
    were used, the first differing rows, and its measurements as ratios."""
    if name in NOT_COMPARED:
        return {"verdict": NOT_RERUN, "why": NOT_COMPARED[name]}
    entry: dict = {"rows": [_rows(committed), _rows(reproduced)], "columns": {}, "measurements": {},
                   "differences": []}
    for c in DOCS[name].columns:
        r = rule(name, c.name)
        if r.kind == "measured":
            old = summarise(committed[c.name], r.summary) if _rows(committed) else None
            new = summarise(reproduced[c.name], r.summary) if _rows(reproduced) else None
            entry["measurements"][f"{c.name} ({r.summary})"] = {"committed": old, "reproduced": new,
                                                                  "ratio": ratio(old, new)}
    compared = [c.name for c in DOCS[name].columns if rule(name, c.name).kind in ("same", "tolerance")]
    if not compared:
        entry["verdict"] = MEASURED
        return entry
    if committed is None or reproduced is None:
        entry["verdict"] = DIFFERS
        entry["differences"] = [{"row": None, "column": None, "what": f"the table is missing from the "
                                 f"{'committed run' if committed is None else 'reproduction'}"}]
        return entry
    key = list(DOCS[name].key)
    both = committed[compared].merge(reproduced[compared], on=key, how="outer", suffixes=("@c", "@r"),
                                     indicator=True).sort_values(key, kind="stable").reset_index(drop=True)
    shown: list[dict] = []
    gone = both["_merge"] == "left_only"
    extra = both["_merge"] == "right_only"
    entry["missing_rows"], entry["extra_rows"] = int(gone.sum()), int(extra.sum())
    bad_rows = gone | extra
    for col in (c for c in compared if c not in key):
        r = rule(name, col)
        gaps = [_gap(plain(a), plain(b), r) for a, b in zip(both[f"{col}@c"], both[f"{col}@r"], strict=True)]
        gaps = pd.Series(gaps, index=both.index)[~(gone | extra)]
        worst = float(gaps.max()) if len(gaps) else 0.0
        over = gaps > r.tol if r.kind == "tolerance" else gaps > 0
        verdict = DIFFERS if over.any() else WITHIN if worst > 0 else IDENTICAL
        col_entry = {"verdict": verdict, "rows_differing": int(over.sum())}
        if r.kind == "tolerance":
            col_entry.update(tolerance=r.describe(), largest=worst if math.isfinite(worst) else None)
        entry["columns"][col] = col_entry
        bad_rows = bad_rows | over.reindex(both.index, fill_value=False)
    for i in both.index[bad_rows][:SHOWN_DIFFERENCES]:
        row = {k: plain(both.at[i, k]) for k in key}
        if gone[i] or extra[i]:
            shown.append({"row": row, "column": None, "what": "missing from the reproduction" if gone[i]
                          else "only in the reproduction"})
            continue
        for col in entry["columns"]:
            a, b = plain(both.at[i, f"{col}@c"]), plain(both.at[i, f"{col}@r"])
            r = rule(name, col)
            if _gap(a, b, r) > (r.tol if r.kind == "tolerance" else 0):
                shown.append({"row": row, "column": col, "committed": a, "reproduced": b})
                break
    entry["differences"] = shown
    entry["verdict"] = table_verdict(entry)
    tolerances = {c: ce["tolerance"] for c, ce in entry["columns"].items() if ce["verdict"] == WITHIN}
    if tolerances:
        entry["tolerance"] = "; ".join(f"{c} {t}" for c, t in tolerances.items())
    return entry


def _rows(df: pd.DataFrame | None) -> int | None:
    return None if df is None else len(df)


def table_verdict(entry: dict) -> str:
    """A compared table's verdict from its columns and rows: what `verify` recomputes from a record."""
    if entry.get("verdict") in (MEASURED, NOT_RERUN):
        return entry["verdict"]
    cols = [c.get("verdict") for c in (entry.get("columns") or {}).values()]
    if entry.get("missing_rows") or entry.get("extra_rows") or DIFFERS in cols or entry.get("differences"):
        return DIFFERS
    return WITHIN if WITHIN in cols else IDENTICAL


def compare_facts(committed: dict, reproduced: dict) -> dict:
    """The manifest's facts that must come out equal (data fingerprint, stage fingerprints, parameter totals),
    compared like a table: an entry with the same shape."""
    entry: dict = {"columns": {}, "differences": []}
    for k in committed:
        same = committed[k] == reproduced.get(k)
        entry["columns"][k] = {"verdict": IDENTICAL if same else DIFFERS, "rows_differing": int(not same)}
        if not same:
            entry["differences"].append({"row": None, "column": k, "committed": committed[k],
                                         "reproduced": reproduced.get(k)})
    entry["verdict"] = table_verdict(entry)
    return entry


def overall(tables: dict) -> str:
    """The run's verdict: the worst of its compared tables'."""
    verdicts = {t.get("verdict") for t in tables.values()}
    return DIFFERS if DIFFERS in verdicts else WITHIN if WITHIN in verdicts else IDENTICAL


# --------------------------------------------------------------------------------------------- the record
def folder_of(run_folder: Path) -> Path:
    """Where a run's reproduction records lie: beside its folder, never inside it."""
    run_folder = Path(run_folder)
    return run_folder.parent / f"{run_folder.name}.reproductions"


def sealed(record: dict) -> dict:
    body = {k: v for k, v in record.items() if k != "seal"}
    return {**body, "seal": seal_of(body)}


def read(path: Path) -> dict:
    """A record as written (ValueError when it is not JSON or not a mapping)."""
    d = loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(d, dict):
        raise ValueError("not a JSON object")
    return d


def records_of(run_folder: Path) -> list[Path]:
    folder = folder_of(run_folder)
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


def problems(run_folder: Path, tables: dict | None, config_fingerprint: str | None) -> list[str]:
    """What is wrong with the reproduction records of a run (empty: none, or all sound). `tables`: the run's
    manifest `tables` record now, to tell a record of the run as it is from one of an earlier version."""
    folder = folder_of(run_folder)
    if not folder.exists():
        return []
    if folder.is_symlink() or not folder.is_dir():
        return [f"{folder}: not a folder of reproduction records (fix: remove it)"]
    out = [f"{p}: not a reproduction record (fix: remove it; `pipeline reproduce` writes <UTC time>.json)"
           for p in sorted(folder.iterdir()) if p.is_symlink() or not p.is_file() or p.suffix != ".json"]
    for p in records_of(run_folder):
        if p.is_symlink():
            continue
        out += [f"{p}: {line}" for line in record_problems(p, Path(run_folder).name, tables, config_fingerprint)]
    return out


def record_problems(path: Path, run: str, tables: dict | None, config_fingerprint: str | None) -> list[str]:
    try:
        d = read(path)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        return [f"cannot be read ({str(e).splitlines()[0][:200]})"]
    if d.get("seal") != seal_of(d):
        return ["changed after `pipeline reproduce` wrote it (its seal does not match; fix: reproduce again)"]
    if d.get("kind") != KIND or d.get("run") != run:
        return [f"is not a reproduction record of run {run} (fix: remove it)"]
    out = []
    entries = d.get("tables") if isinstance(d.get("tables"), dict) else {}
    for name, e in entries.items():
        if not isinstance(e, dict) or e.get("verdict") != table_verdict(e):
            out.append(f"table {name}: its verdict {e.get('verdict') if isinstance(e, dict) else e!r} does not "
                       f"follow from its columns and rows")
    compared = {k: v for k, v in entries.items() if isinstance(v, dict) and v.get("verdict") in VERDICTS}
    if d.get("verdict") != overall(compared):
        out.append(f"its verdict {d.get('verdict')!r} is not the worst of its tables' ({overall(compared)})")
    want_exit = 0 if d.get("verdict") in (IDENTICAL, WITHIN) else EXIT_DIFFERS
    if d.get("exit_code") != want_exit:
        out.append(f"its exit code {d.get('exit_code')!r} does not match its verdict {d.get('verdict')!r}")
    code = d.get("code") or {}
    if code.get("changed") and not code.get("allowed"):
        out.append("made by other code than the run's without --allow-code-change")
    committed = d.get("committed") or {}
    if committed.get("config_fingerprint") != config_fingerprint or \
            committed.get("tables") != {k: (v or {}).get("sha256") for k, v in (tables or {}).items()}:
        out.append("reproduces an earlier version of the run (its config or tables differ from the run's now; fix: "
                   "reproduce it again, or remove the record)")
    return out
