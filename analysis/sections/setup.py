"""Setup: the data sample, the configuration (labelled by its fields' help text), the hardware and the
libraries, and how the configuration was chosen."""
from __future__ import annotations

import dataclasses

from analysis import effective, fmt
from analysis.effective import short_model
from analysis.facts import RunFacts
from analysis.markdown import Markdown, bullets, code, text
from analysis.settings import help_markdown, section_help, settings
from analysis.tables import key_value, table
from analysis.tuning import setting_value
from analysis.wording import library_version
from records.manifest import Manifest
from records.schema import LABELS, SPLITS

WEIGHTS_HELP = next(f.metadata["help"] for f in dataclasses.fields(Manifest) if f.name == "weights")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _split(f: RunFacts, split: str) -> dict:
    """The manifest's record of a split, with the config's sampling settings where the record lacks them."""
    recorded = (f.manifest.data.get("splits") or {}).get(split) or {}
    return {**(f.cfg(f"data.{split}", {}) or {}), **recorded}


def _stride(sp: dict) -> str:
    stride = sp.get("stride")
    if stride is None:
        return "not recorded"
    s = "every row" if stride == 1 else f"every {_ordinal(int(stride))} row"
    return s + f" from {sp.get('offset') or 0}" + (f", at most {sp['limit']}" if sp.get("limit") else "")


def _used(f: RunFacts, split: str) -> list[int]:
    samples = f.run.table("samples")
    return [] if samples is None else sorted(samples.loc[samples["split"] == split, "idx"].astype(int))


def _labels(f: RunFacts, split: str, sp: dict) -> str:
    counts = sp.get("label_counts") or {}
    samples = f.run.table("samples")
    if not counts and samples is not None:
        vc = samples.loc[samples["split"] == split, "label"].value_counts()
        counts = {str(k): int(v) for k, v in vc.items()}
    return ", ".join(f"{LABELS[int(k)]} {v}" for k, v in sorted(counts.items(), key=lambda kv: int(kv[0]))) \
        if counts else "not recorded"


def split_table(f: RunFacts) -> Markdown:
    rows = []
    for split in SPLITS:
        sp, used = _split(f, split), _used(f, split)
        rows.append([split, sp.get("source_split", "?"), _stride(sp), fmt.integer(sp.get("rows_sampled"), "not recorded"),
                     fmt.integer(sp.get("rows_dropped_no_label"), "not recorded"),
                     fmt.integer(sp.get("rows", len(used) or None), "not recorded"), _labels(f, split, sp)])
    return table(["split", "taken from", "stride", "sampled", "dropped (no gold label)", "used",
                  "labels of the rows used"], rows, align="llllrrl", widths=[9, 10, 17, 8, 10, 6, 30])


def dropped_rows(f: RunFacts, split: str) -> list[int]:
    """Sampled row indices missing from the samples table: dropped for having no gold label."""
    sp, used = _split(f, split), set(_used(f, split))
    if not used or not sp.get("stride") or sp.get("offset") is None or not sp.get("rows_sampled"):
        return []
    expected = (sp["offset"] + sp["stride"] * i for i in range(int(sp["rows_sampled"])))
    return [i for i in expected if i not in used]


def row_ids(f: RunFacts) -> Markdown:
    """The exact row indices of each split, as arithmetic runs, and the ones dropped."""
    items = []
    for split in SPLITS:
        used, dropped = _used(f, split), dropped_rows(f, split)
        ids = fmt.compact_ids(used) if used else "not available (no samples table)"
        drop = f"; dropped for having no gold label: {', '.join(map(str, dropped))}" if dropped else ""
        items.append(f"**{split}** (row indices in the source {code(_split(f, split).get('source_split', '?'))} split): "
                     f"{text(ids + drop)}")
    return bullets(items)


def settings_table(f: RunFacts, sections, top_level: tuple[str, ...] = ()) -> Markdown:
    """The config sections' settings: the value the run used (analysis.effective), meaning from the field's help."""
    groups = [("", settings(f.run, "", top_level))] if top_level else []
    groups += [(s, settings(f.run, s)) for s in sections]
    rows = []
    for section, items in groups:
        title = Markdown(f"**{text(section)}**") if section else ""
        if section == "model":  # the weights are the manifest's, not the config's; documented by the manifest
            rows.append([title, "weights", f.manifest.weights or "not recorded", help_markdown(WEIGHTS_HELP)])
            title = ""
        for i, s in enumerate(items):
            rows.append([title if i == 0 else "", s.name, effective.setting_text(f.run, s.key, s.value),
                         help_markdown(s.help or section_help(section))])
    return table(["", "setting", "value", "what it sets"], rows, align="llll", widths=[11, 18, 20, 42])


def hardware_table(f: RunFacts) -> Markdown:
    env, gpu = f.environment, f.gpu
    rows = [("used by the run (processes × GPU)", f.hardware)]
    if gpu:
        rows.append(("in the machine", f.machine_hardware))
        rows += [("GPU memory (device total)", fmt.mem(gpu.get("memory_total_bytes"))), ("driver", gpu.get("driver", "?")),
                 ("CUDA", env.get("cuda") or "?")]
    else:
        rows += [("GPU", "none: GPU figures are not measured in this run")]
    if f.cap_bytes:
        rows.append(("GPU memory cap (per process)", fmt.mem(f.cap_bytes)))
    cpu = env.get("cpu") or {}
    rows += [("CPU", f"{cpu.get('model', '?')} ({cpu.get('logical_cores', '?')} logical cores)"),
             ("RAM", fmt.mem(env.get("ram_total_bytes"))), ("compute dtype", f.manifest.compute_dtype or "?"),
             ("weights that are not 4-bit, stored in", effective.frozen_weights_dtype(f.run)),
             ("Python", env.get("python", "?")), ("platform", env.get("platform", "?"))]
    return key_value(rows)


def library_table(f: RunFacts) -> Markdown:
    libs = f.environment.get("libraries") or {}
    return key_value([(name, library_version(v)) for name, v in libs.items()], header=("library", "version"))


def tuning_table(f: RunFacts) -> Markdown:
    t = f.tuning
    if not t.present:
        return Markdown("")
    rows = [[int(r.trial), f"{r.learning_rate:g}", int(r.batch_size), int(r.lora_r),
             ", ".join(m.strip() for m in str(r.target_modules).strip("[]").replace("'", "").split(",")), int(r.epochs),
             fmt.pct(r.val_accuracy), fmt.num(r.val_loss, 3), fmt.seconds(r.seconds), "chosen" if r.chosen else ""]
            for r in t.trials.itertuples()]
    return table(["trial", "learning rate", "batch", "r", "target modules", "epochs", "val. accuracy", "val. loss",
                  "time", ""], rows, align="rrrrlrrrrl", widths=[5, 8, 5, 3, 30, 6, 9, 7, 8, 6])


def chosen_settings(f: RunFacts) -> Markdown:
    """The chosen trial's settings, e.g. "`train.learning_rate` = 0.001; `lora.r` = 16"."""
    return Markdown("; ".join(f"{code(k)} = {text(setting_value(v))}" for k, v in f.tuning.settings.items()))


def differing_settings(f: RunFacts) -> Markdown:
    return Markdown("; ".join(f"{code(k)} (trial {text(setting_value(v))}, final run {text(setting_value(w))})"
                              for k, v, w in f.tuning.differ))


def applied_overrides(f: RunFacts) -> Markdown:
    """The tune's choice as the pipeline applied it, e.g. "`train.learning_rate=0.001`, `lora.r=4`"."""
    overrides = f.tuning.applied.overrides
    return Markdown(", ".join(code(o) for o in overrides) if overrides else "(none recorded)")


def runs_table(R) -> Markdown:
    """One line per run: what it stands for, its model and weights, the hardware it used, its training rows."""
    rows = []
    for f in R.runs:
        role = "time, memory, parameters" if f.shape_only else "accuracy, cases, time, memory"
        rows.append([f.name, role, short_model(f.run), f.hardware + (f", {fmt.gib(f.cap_bytes, 0)} cap" if f.cap_bytes else ""),
                     f.manifest.compute_dtype or "?", fmt.integer(f.rows("train"), "?")])
    return table(["run", "measures", "model", "hardware used", "dtype", "train rows"], rows,
                 widths=[20, 18, 24, 20, 8, 8])


def train_source(f: RunFacts) -> str | None:
    """The SNLI split the training rows were taken from, as the manifest records it (None when not recorded)."""
    return ((f.manifest.data.get("splits") or {}).get("train") or {}).get("source_split")
