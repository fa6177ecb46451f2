"""One run's headline figures for people who put results into their own papers or dashboards:
`python -m pipeline export RUN` writes a tidy CSV (one row per figure) and a JSON summary of the same
figures. Every figure comes from the report's own facts (analysis.facts over analysis.stats: Wilson
intervals, exact McNemar), so an export and the report cannot disagree. Torch-free.

CSV columns: run, section, metric, model, value, ci_low, ci_high, n, unit. `model` names the model (or the
pair compared) where a figure has one; `ci_low`/`ci_high` are the Wilson 95 % interval of an accuracy; `n`
is the number of rows behind a figure. A figure that was not measured (GPU memory on a CPU run, accuracy of
random weights) is left out of both files rather than written as 0.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from analysis import stats
from analysis.effective import used
from analysis.errors import ReportError
from analysis.facts import RunFacts
from analysis.runs import DEFAULT_RESULTS, load_run
from records.config_reading import load_config
from records.store import atomic_write_bytes

COLUMNS = ("run", "section", "metric", "model", "value", "ci_low", "ci_high", "n", "unit")
PEAKS = (  # (metric, key of RunFacts.peaks, unit)
    ("gpu_memory_used_peak", "peak_gpu_mem_used_bytes", "bytes"),
    ("torch_allocated_peak", "peak_allocated_bytes", "bytes"),
    ("torch_reserved_peak", "peak_reserved_bytes", "bytes"),
    ("process_ram_peak", "peak_process_rss_bytes", "bytes"),
    ("system_ram_used_peak", "peak_system_ram_used_bytes", "bytes"),
    ("cpu_peak", "peak_cpu_pct", "percent"),
    ("cpu_mean", "mean_cpu_pct", "percent"),
)


def _number(x):
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else int(x) if x.is_integer() and abs(x) < 2 ** 53 else x


def figures(f: RunFacts) -> list[dict]:
    """The run's figures, one dict per CSV row (missing figures left out)."""
    rows: list[dict] = []

    def add(section, metric, value, unit, model="", ci=(None, None), n=None):
        if _number(value) is not None:
            rows.append({"run": f.name, "section": section, "metric": metric, "model": model, "value": _number(value),
                         "ci_low": _number(ci[0]), "ci_high": _number(ci[1]), "n": n, "unit": unit})

    if f.accuracy_meaningful:
        for model, a in f.accuracy.items():
            add("accuracy", "test_accuracy", a.value, "fraction", model, a.ci, a.n)
        for baseline, p in f.paired.items():
            pair = f"{baseline} vs finetuned"
            add("paired", "mcnemar_exact_p", p.p_value, "p-value", pair, n=p.n)
            for metric, value in (("corrected", p.b_only), ("regressed", p.a_only), ("both_right", p.both_right),
                                  ("both_wrong", p.both_wrong)):
                add("paired", metric, value, "rows", pair, n=p.n)
    add("time", "finetune_seconds", f.finetune_seconds, "seconds")
    add("time", "epochs", f.epochs_done or None, "epochs")
    add("time", "tokens_per_second", f.tokens_per_s, "tokens per second")
    add("parameters", "stored_total", f.params.stored, "elements")
    add("parameters", "logical_total", f.params.logical, "parameters")
    add("parameters", "trainable", f.params.trainable, "parameters")
    for metric, key, unit in PEAKS:
        add("resources", metric, f.peaks[key], unit)
    add("resources", "disk_taken_by_the_run", f.disk.own, "bytes")
    add("resources", "disk_used_whole_filesystem_peak", f.disk.filesystem_peak, "bytes")
    return rows


def _nested(rows: list[dict]) -> dict:
    """Rows as {section: {model: {metric: figure}} or {metric: figure}}; a figure with an interval or a count
    is {value, ci95, n, unit}, any other {value, unit}."""
    out: dict = {}
    for r in rows:
        figure = {"value": r["value"], "unit": r["unit"]}
        if r["ci_low"] is not None:
            figure["ci95"] = [r["ci_low"], r["ci_high"]]
        if r["n"] is not None:
            figure["n"] = r["n"]
        section = out.setdefault(r["section"], {})
        (section.setdefault(r["model"], {}) if r["model"] else section)[r["metric"]] = figure
    return out


def summary(f: RunFacts) -> dict:
    m = f.manifest
    identity = used(f.run, "model.name")
    return {
        "run": f.name, "description": f.description, "weights": m.weights,
        "accuracy_meaningful": f.accuracy_meaningful,
        "model": f.model, "model_identity": identity if isinstance(identity, dict) else None,
        "hardware": f.hardware, "device": m.device, "compute_dtype": m.compute_dtype,
        "test_rows": f.rows("test"), "git_commit": f.commit,
        "config_fingerprint": m.config_fingerprint, "data_fingerprint": (m.data or {}).get("fingerprint"),
        "methods": {"interval": "Wilson score interval, 95 %", "paired_test": "exact McNemar test, two-sided",
                    "alpha": stats.ALPHA, "finetune_seconds": "training steps of all epochs, without evaluation"},
        **_nested(figures(f)),
    }


def resolve(target: str) -> Path:
    """The run folder `target` names: a run folder (holding manifest.json), a config file (its results
    folder), or a run name under results/."""
    path = Path(target)
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        folder = load_config(path, check_files=False).results_path
    elif path.is_dir():
        folder = path
    else:
        folder = DEFAULT_RESULTS / target
    if not (folder / "manifest.json").is_file():
        raise ReportError(f"export: no run at {folder} (no manifest.json; fix: a run folder, a config file, or a run "
                          f"name under {DEFAULT_RESULTS.name}/)")
    return folder


def export(target: str, out: Path, partial: bool = False, force: bool = False) -> tuple[Path, Path]:
    """Write <out>/<run>.csv and <out>/<run>.json (<run>.partial.* for an incomplete run, which needs `partial`);
    returns their paths. An earlier export is replaced only with `force`. ReportError (one line) on bad input."""
    from analysis.stage_states import gaps
    from records.errors import BadInput
    from records.verify import history_disagrees
    folder = resolve(target)
    _refuse_results_folder(Path(out), folder)
    f = RunFacts(load_run(folder))
    predictions, samples = f.run.table("predictions"), f.run.table("samples")
    disagree = [] if predictions is None or samples is None else \
        history_disagrees(f.manifest, predictions, samples, folder / "manifest.json")
    if disagree:  # a manifest re-sealed over figures its own tables contradict is not published
        raise ReportError(f"export: {disagree[0]}")
    missing = gaps(f.run)
    if missing and not partial:  # its epoch count and time would read as the final figures
        raise ReportError(f"export: run {f.name} is incomplete ({'; '.join(missing)}) (fix: finish the run, or pass "
                          f"--partial to export what it has, marked incomplete)")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(figures(f))
    stem = f"{f.name}.partial" if missing else f.name
    paths = (Path(out) / f"{stem}.csv", Path(out) / f"{stem}.json")
    taken = next((p for p in paths if p.exists() or p.is_symlink()), None)
    if taken is not None and not force:
        raise ReportError(f"export: {taken} exists (an earlier export) (fix: pass --force to replace it, or --out "
                          f"another folder)")
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(paths[0], buf.getvalue().encode())
        atomic_write_bytes(paths[1], (json.dumps({**summary(f), "complete": not missing, "incomplete": missing},
                                                 indent=2) + "\n").encode())
    except OSError as e:
        raise ReportError(f"export: cannot write {out} ({e.strerror or e}; fix: --out a writable folder)") from None
    except BadInput as e:  # a link where the export goes (pipeline.store never writes through one)
        raise ReportError(f"export: {e}") from None
    return paths


def _refuse_results_folder(out: Path, run: Path) -> None:
    """An export never goes into a results folder (a run's folder, or the folder of runs): `verify` would find a
    file the pipeline does not write there, and the report would read it as a run."""
    where = out.resolve()
    inside = next((p for p in (where, *where.parents) if (p / "manifest.json").is_file()), None)
    if inside is not None or where == run.resolve().parent:
        what = f"inside the run folder {inside}" if inside else f"the results folder of {run.name}"
        raise ReportError(f"export: --out {out} is {what}, which only the pipeline writes (fix: --out another "
                          f"folder, e.g. exports)")
