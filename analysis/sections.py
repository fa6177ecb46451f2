"""One function per report section; each returns pandoc markdown (narrative from templates/report/,
tables from analysis.tables, figures from analysis.figures). report.qmd calls these and prints them."""
from __future__ import annotations

import math

import pandas as pd
import yaml

from analysis import cases as cs
from analysis import figures, fmt, stats, text
from analysis.load import label_name
from analysis.summary import BASELINES, Report, RunFigures, build
from analysis.tables import esc, key_value, md_table
from pipeline.schema import LABELS, STAGES

SECTIONS = {  # id -> heading; report.qmd uses the same ids
    "sec-summary": "Summary",
    "sec-setup": "Setup",
    "sec-accuracy": "Accuracy",
    "sec-time": "Time",
    "sec-parameters": "Parameters",
    "sec-resources": "Resources",
    "sec-cases": "Corrected, regressed and unresolved cases",
    "sec-reproducibility": "Reproducibility",
    "sec-runs": "All runs side by side",
}
MODEL_ROLES = {
    "baseline_head": "pretrained model with an untrained classification head (the original study's baseline)",
    "baseline_zeroshot": "pretrained causal LM scoring the three label words after the prompt (zero-shot)",
    "finetuned": "final adapter after the last epoch",
}


def link(sec: str) -> str:
    return f"[{SECTIONS[sec]}](#{sec})"


def model_role(m: str) -> str:
    if m.startswith("epoch_") and m[6:].isdigit():
        return f"checkpoint after epoch {m[6:]}"
    return MODEL_ROLES.get(m, m)


def load() -> Report:
    return build()


def _no_runs(R: Report) -> str | None:
    if R.runs:
        return None
    return "No runs are available, so there is nothing to show here.\n"


# ------------------------------------------------------------------------------------------------ 0
def notice(R: Report) -> str:
    """The box at the top: which runs, which are missing or unfinished."""
    return text.render("notice", R=R, sel=R.selection, gaps={r.name: r.gaps() for r in R.runs},
                       link=link)


# ------------------------------------------------------------------------------------------------ 1
def _acc_cell(f: RunFigures) -> str:
    if not f.accuracy_meaningful:
        return "not meaningful: random weights (shape-only run)"
    acc = f.accuracy
    if not acc:
        return "not available yet (no test predictions)"
    parts = []
    if "baseline_head" in acc:
        parts.append(f"untrained head {fmt.pct(acc['baseline_head'].value)}")
    if "finetuned" in acc:
        parts.append(f"fine-tuned {fmt.pct(acc['finetuned'].value)}")
    else:
        parts.append("fine-tuned not evaluated yet")
    s = " → ".join(parts)
    if "baseline_zeroshot" in acc:
        s += f" (zero-shot {fmt.pct(acc['baseline_zeroshot'].value)})"
    if "baseline_head" in f.paired:
        s += f"; McNemar p = {fmt.pvalue(f.paired['baseline_head'].p_value)}"
    return s


def _time_cell(f: RunFigures) -> str:
    if f.epochs is None:
        return "not measured yet (no epochs)"
    total = f.epochs_total
    s = f"{fmt.seconds(f.finetune_seconds)}, {f.epochs_done}"
    s += f" of {total} epochs" if total and f.epochs_done < total else " epochs"
    return s + f" on {f.run.hardware}"


def _params_cell(f: RunFigures, original: dict) -> str:
    p = f.params
    if not p:
        return "not available yet (no params table)"
    s = f"{fmt.integer(p['stored_elements'])} / {fmt.integer(p['trainable'])}"
    o = original["params"]
    if p["stored_elements"] == o["stored_total"] and p["trainable"] == o["trainable"]:
        s += " (identical to the original study's)"
    return s


def _resource_cell(f: RunFigures) -> str:
    pk = f.peaks
    gpu = fmt.gib(f.peak_gpu_bytes)
    s = f"GPU {gpu}, RAM {fmt.gib(pk['peak_process_rss_bytes'])}, CPU peak {fmt.pct_value(pk['peak_cpu_pct'])}, " \
        f"disk {fmt.gb(pk['peak_disk_used_bytes'], 0)}"
    if f.run.cap_bytes:
        s += f"; cap {fmt.gib(f.run.cap_bytes)}"
    return s


def _cases_cell(f: RunFigures) -> str:
    if not f.accuracy_meaningful:
        return "not meaningful: random weights"
    c = f.case_counts()
    if c is None:
        return "not available yet (needs baseline and fine-tuned test predictions)"
    return f"{c['corrected']} corrected, {c['regressed']} regressed, {c['unresolved']} unresolved (listed with cues)"


def summary(R: Report) -> str:
    o = R.original
    if not R.runs:
        return text.render("summary_empty", sel=R.selection)
    shown = R.runs[:3]
    header = ["criterion", o["label"]] + [f"{r.name}" for r in shown] + ["answered in"]
    oa = o["accuracy"]
    rows_def = [
        ("accuracy comparison", f"untrained head {fmt.pct(oa['baseline_head'], 0)} → fine-tuned "
         f"{fmt.pct(oa['finetuned'], 0)} ({o['test_rows']} test rows)", _acc_cell, "sec-accuracy"),
        ("fine-tuning time", f"{fmt.seconds(o['finetune_seconds'])}, {o['epochs']} epochs on {o['hardware']}",
         _time_cell, "sec-time"),
        ("parameter count (total / trainable, stored)",
         f"{fmt.integer(o['params']['stored_total'])} / {fmt.integer(o['params']['trainable'])}",
         lambda f: _params_cell(f, o), "sec-parameters"),
        ("resource utilisation", f"GPU {fmt.gb(o['resources']['gpu_memory_bytes'])}, RAM "
         f"{fmt.gb(o['resources']['ram_bytes'])}, CPU peak {fmt.pct_value(o['resources']['peak_cpu_pct'])}, "
         f"disk {fmt.gb(o['resources']['disk_bytes'], 0)}", _resource_cell, "sec-resources"),
        ("failure cases", o["failure_cases"], _cases_cell, "sec-cases"),
    ]
    rows = []
    for crit, orig, fn, sec in rows_def:
        rows.append([esc(crit), esc(orig)] + [esc(fn(R.of(r))) for r in shown] + [link(sec)])
    widths = [14, 20] + [22] * len(shown) + [12]
    table = md_table(header, rows, widths=widths, raw=True)
    h = R.h
    ctx = dict(R=R, o=o, h=h, run=R.headline, table=table, more=len(R.runs) - len(shown), link=link,
               acc=h.accuracy, paired=h.paired, meaningful=h.accuracy_meaningful, fmt=fmt,
               shape_runs=[r.name for r in R.runs if r.shape_only],
               shape_skipped=[r.name for r in R.runs if r.skipped_for_shape],
               capped=[(r.name, R.of(r)) for r in R.runs if r.cap_bytes],
               param_match=[r.name for r in R.runs if R.of(r).params and
                            R.of(r).params["stored_elements"] == o["params"]["stored_total"] and
                            R.of(r).params["trainable"] == o["params"]["trainable"]])
    return text.render("summary", **ctx)


# ------------------------------------------------------------------------------------------------ 2
def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _stride_text(stride, offset, limit) -> str:
    if stride is None:
        return "not recorded"
    s = "every row" if stride == 1 else f"every {_ordinal(int(stride))} row"
    s += f" from {offset}" if offset else " from 0"
    return s + (f", at most {limit}" if limit else "")


def _split_rows(run) -> tuple[str, list[str]]:
    data = run.manifest.get("data") or {}
    splits = data.get("splits") or {}
    samples = run.table("samples")
    rows, ids = [], []
    for split in ("train", "validation", "test"):
        sp = splits.get(split) or {}
        cfg = run.cfg(f"data.{split}", {}) or {}
        stride, offset = sp.get("stride", cfg.get("stride")), sp.get("offset", cfg.get("offset"))
        limit = sp.get("limit", cfg.get("limit"))
        counts = sp.get("label_counts") or {}
        present = []
        if samples is not None:
            present = sorted(samples.loc[samples["split"] == split, "idx"].astype(int))
            if not counts and present:
                vc = samples.loc[samples["split"] == split, "label"].value_counts()
                counts = {str(k): int(v) for k, v in vc.items()}
        dist = ", ".join(f"{LABELS[int(k)]} {v}" for k, v in sorted(counts.items(), key=lambda kv: int(kv[0]))) \
            if counts else "not recorded"
        rows.append([split, sp.get("source_split", cfg.get("source_split", "?")),
                     _stride_text(stride, offset, limit),
                     fmt.integer(sp.get("rows_sampled"), "not recorded"),
                     fmt.integer(sp.get("rows_dropped_no_label"), "not recorded"),
                     fmt.integer(sp.get("rows", len(present) if present else None), "not recorded"), dist])
        dropped = []
        if present and stride and offset is not None and sp.get("rows_sampled"):
            expected = [offset + stride * i for i in range(int(sp["rows_sampled"]))]
            have = set(present)
            dropped = [i for i in expected if i not in have]
        ids.append((split, sp.get("source_split", cfg.get("source_split", "?")),
                    fmt.compact_ids(present) if present else "not available (no samples table)", dropped))
    table = md_table(["split", "taken from", "stride", "sampled", "dropped (no gold label)", "used",
                      "labels of the rows used"], rows, align="llllrrl", widths=[9, 10, 17, 8, 10, 6, 30])
    lines = []
    for split, src, compact, dropped in ids:
        d = f"; dropped for having no gold label: {', '.join(map(str, dropped))}" if dropped else ""
        lines.append(f"- **{split}** (row indices in the source `{src}` split): {esc(compact)}{esc(d)}")
    return table, lines


def _test_rows(g) -> str:
    """Test rows of a run: from its samples table (shape-only runs have no predictions to count)."""
    samples = g.run.table("samples")
    if samples is not None:
        return fmt.integer(int((samples["split"] == "test").sum()))
    return str(g.accuracy[next(iter(g.accuracy))].n) if g.accuracy else "?"


def _settings(run, section: str, keys: list[tuple[str, str]]) -> list[tuple[str, str]]:
    rows = []
    for key, label in keys:
        cfg = run.cfg(section) or {}
        if key not in cfg:
            continue
        v = cfg[key]
        if isinstance(v, bool):
            v = "yes" if v else "no"
        elif isinstance(v, list):
            v = ", ".join(map(str, v))
        elif isinstance(v, dict):
            v = ", ".join(f"{k}={x}" for k, x in v.items()) or "—"
        elif v is None:
            v = "—"
        rows.append((label, f"`{v}`" if key in ("name", "template") and v != "—" else esc(v)))
    return rows


def _grouped(groups: list[tuple[str, list[tuple[str, str]]]]) -> str:
    rows = []
    for title, items in groups:
        for i, (k, v) in enumerate(items):
            rows.append([f"**{title}**" if i == 0 else "", esc(k), v])
    if not rows:
        return "_not recorded_\n"
    return md_table(["", "setting", "value"], rows, align="lll", raw=True)


def setup(R: Report) -> str:
    if not R.runs:
        return _no_runs(R)
    run = R.headline
    split_table, id_lines = _split_rows(run)
    env = run.environment
    gpu = run.gpu
    hw = [("device", esc(run.hardware))]
    if gpu:
        hw += [("GPU memory (device total)", fmt.mem(gpu.get("memory_total_bytes"))), ("driver", esc(gpu.get("driver", "?"))),
               ("CUDA", esc(env.get("cuda") or "?"))]
    else:
        hw += [("GPU", "none: GPU figures are not measured in this run")]
    if run.cap_bytes:
        hw.append(("GPU memory cap (per process)", fmt.mem(run.cap_bytes)))
    cpu = env.get("cpu") or {}
    hw += [("CPU", esc(f"{cpu.get('model', '?')} ({cpu.get('logical_cores', '?')} logical cores)")),
           ("RAM", fmt.mem(env.get("ram_total_bytes"))),
           ("compute dtype", esc(run.manifest.get("compute_dtype", "?"))),
           ("Python", esc(env.get("python", "?"))), ("platform", esc(env.get("platform", "?")))]
    libs = env.get("libraries") or {}
    lib_rows = [(esc(k), esc(v)) for k, v in libs.items()]
    model_rows = _settings(run, "model", [("source", "source"), ("name", "name"), ("revision", "revision"),
                                          ("architecture", "architecture"), ("shape", "shape"), ("num_labels", "labels"),
                                          ("attn_implementation", "attention")])
    model_rows.insert(0, ("weights", esc(run.weights + (" (random initialisation: a shape-only run)" if run.shape_only else ""))))
    tok_rows = _settings(run, "tokenizer", [("source", "source"), ("name", "name"), ("max_length", "max length")])
    quant_rows = _settings(run, "quantization", [("load_in_4bit", "4-bit loading"), ("quant_type", "4-bit type"),
                                                 ("double_quant", "double quantization"),
                                                 ("compute_dtype", "compute dtype (config)")])
    quant_rows.append(("compute dtype used", esc(run.manifest.get("compute_dtype", "not recorded"))))
    lora_rows = _settings(run, "lora", [("r", "rank r"), ("alpha", "alpha"), ("dropout", "dropout"),
                                        ("target_modules", "target modules"), ("bias", "bias")])
    prompt_rows = _settings(run, "prompt", [("template", "template"), ("label_words", "label words")])
    model_tbl = _grouped([("model", model_rows), ("tokenizer", tok_rows), ("quantization", quant_rows),
                          ("LoRA", lora_rows), ("prompt", prompt_rows)])
    train_rows = _settings(run, "train", [("epochs", "epochs"), ("batch_size", "batch size"),
                                          ("learning_rate", "learning rate"), ("weight_decay", "weight decay"),
                                          ("warmup_ratio", "warm-up ratio"), ("scheduler", "schedule"),
                                          ("max_grad_norm", "gradient clipping (max norm)"),
                                          ("pad_to_multiple_of", "pad to a multiple of"),
                                          ("gradient_checkpointing", "gradient checkpointing"),
                                          ("fused_optimizer", "fused AdamW"),
                                          ("prepare_kbit", "prepare_model_for_kbit_training")])
    seed = run.cfg("seed")
    if seed is not None:
        train_rows.insert(0, ("seed", esc(seed)))
    eval_rows = _settings(run, "eval", [("batch_size", "prediction batch size")])
    rt_rows = _settings(run, "runtime", [("device", "device"), ("gpu_memory_cap_gib", "GPU memory cap, GiB"),
                                         ("sample_interval_s", "resource sampling interval, s"), ("threads", "CPU threads")])
    train_tbl = _grouped([("training", train_rows), ("evaluation", eval_rows), ("runtime", rt_rows)])
    return text.render("setup", run=run, data=run.manifest.get("data") or {}, split_table=split_table,
                       id_lines=id_lines, model_tbl=model_tbl, train_tbl=train_tbl,
                       hw_tbl=key_value(hw, raw=True), lib_tbl=key_value(lib_rows, header=("library", "version"), raw=True),
                       tuning=tuning(R), others=[r for r in R.runs[1:]], link=link)


def tuning(R: Report) -> str:
    t = R.headline.table("tuning")
    if t is None or not len(t):
        return ""
    t = t.sort_values("trial")
    rows = [[int(r.trial), f"{r.learning_rate:g}", int(r.batch_size), int(r.lora_r),
             ", ".join(m.strip() for m in str(r.target_modules).strip("[]").replace("'", "").split(",")), int(r.epochs),
             fmt.pct(r.val_accuracy), fmt.num(r.val_loss, 3), fmt.seconds(r.seconds), "chosen" if r.chosen else ""]
            for r in t.itertuples()]
    table = md_table(["trial", "learning rate", "batch", "r", "target modules", "epochs", "val. accuracy",
                      "val. loss", "time", ""], rows, align="rrrrlrrrrl", widths=[5, 8, 5, 3, 30, 6, 9, 7, 8, 6])
    chosen = t[t["chosen"]]
    chosen = chosen.iloc[0] if len(chosen) else None
    run = R.headline
    meta = run.manifest.get("tuning") if isinstance(run.manifest.get("tuning"), dict) else {}
    trial_epochs = meta.get("epochs_per_trial")
    if trial_epochs is None and chosen is not None:
        trial_epochs = int(chosen.epochs)
    settings = chosen_settings(meta)
    differ = [(k, v, run.cfg(k)) for k, v in settings.items() if run.cfg(k) != v]
    return text.render("tuning", table=table, n=len(t), chosen=chosen, fmt=fmt, meta=meta,
                       source=esc(str(meta["source"]).strip()) if meta.get("source") else "",
                       settings=[(f"`{k}`", esc(_setting_value(v))) for k, v in settings.items()],
                       differ=[(f"`{k}`", esc(_setting_value(v)), esc(_setting_value(w))) for k, v, w in differ],
                       trial_epochs=trial_epochs, final_epochs=run.cfg("train.epochs"),
                       rule=esc(str(meta["rule"]).strip()) if meta.get("rule") else "")


def chosen_settings(meta: dict) -> dict:
    """The chosen trial's settings as {dotted config key: value}: tuning.chosen, else tuning.chosen_overrides
    (`key=value` words as `pipeline run --set` takes them, values in YAML)."""
    chosen = meta.get("chosen")
    if isinstance(chosen, dict) and chosen:
        return dict(chosen)
    out = {}
    for o in meta.get("chosen_overrides") or []:
        key, sep, value = str(o).partition("=")
        if not sep:
            continue
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def _setting_value(v) -> str:
    if isinstance(v, list):
        return ", ".join(map(str, v))
    if isinstance(v, float):
        return f"{v:g}"
    return "—" if v is None else str(v)


# ------------------------------------------------------------------------------------------------ 3
def accuracy(R: Report) -> str:
    if not R.runs:
        return _no_runs(R)
    run, f, o = R.headline, R.h, R.original
    if not f.accuracy_meaningful:
        return text.render("accuracy_shape", run=run, others=[r.name for r in R.runs if not r.shape_only], link=link)
    if not f.accuracy:
        return text.render("accuracy_missing", run=run, gaps=run.gaps(), skipped=run.skip_note())
    orig = {"baseline_head": o["accuracy"]["baseline_head"], "finetuned": o["accuracy"]["finetuned"]}
    rows = []
    for m, a in f.accuracy.items():
        lo, hi = a.ci
        rows.append([m, model_role(m), f"{a.correct} / {a.n}", fmt.pct(a.value), f"{fmt.pct(lo)} – {fmt.pct(hi)}",
                     fmt.pct(orig[m], 0) + " (original study)" if m in orig else ""])
    acc_table = md_table(["model", "what it is", "correct", "accuracy", "95 % interval (Wilson)", "original study"],
                         rows, align="llrrrl", widths=[14, 36, 8, 9, 16, 14])
    prow = []
    for b, p in f.paired.items():
        prow.append([f"{b} vs finetuned", p.n, p.both_right, p.a_only, p.b_only, p.both_wrong, fmt.pvalue(p.p_value)])
    paired_table = md_table(["comparison", "pairs", "both right", "only baseline right", "only fine-tuned right",
                             "both wrong", "exact McNemar p"], prow, align="lrrrrrr") if prow else ""
    cm_models = [m for m in ("baseline_head", "baseline_zeroshot", "finetuned") if m in f.accuracy]
    pc_rows = []
    for m in cm_models:
        pc = stats.per_class(f.test, m)
        for r in pc.itertuples():
            pc_rows.append([m, r.label, fmt.num(r.precision, 2, "undefined (never predicted)"), fmt.num(r.recall, 2),
                            fmt.num(r.f1, 2, "undefined"), r.predicted, r.support])
    pc_table = md_table(["model", "label", "precision", "recall", "F1", "predicted", "gold (support)"], pc_rows,
                        align="llrrrrr")
    # per epoch: validation from the epochs table, test accuracy of each checkpoint where predicted
    ep_table = ""
    if f.epochs is not None:
        er = []
        for r in f.epochs.itertuples():
            ta = f.accuracy.get(f"epoch_{int(r.epoch)}")
            er.append([int(r.epoch), fmt.num(r.train_loss, 3), fmt.num(r.val_loss, 3), fmt.pct(r.val_accuracy),
                       fmt.pct(ta.value) if ta else "not predicted"])
        ep_table = md_table(["epoch", "training loss (mean)", "validation loss", "validation accuracy",
                             "test accuracy of the checkpoint"], er, align="rrrrr")
    n_val = int((f.validation["model"] == f.validation["model"].iloc[0]).sum()) if len(f.validation) else None
    return text.render(
        "accuracy", run=run, f=f, o=o, acc=f.accuracy, paired=f.paired, acc_table=acc_table,
        paired_table=paired_table, pc_table=pc_table, ep_table=ep_table, n_val=n_val,
        fig_acc=figures.accuracy(run, f.test, o) or "", fig_cm=figures.confusion(run, f.test, cm_models) or "",
        fig_train=figures.training(run) or "", chance=1 / len(LABELS), link=link, fmt=fmt,
        has_tuning=run.table("tuning") is not None and len(run.table("tuning")) > 0,
        macro={m: stats.macro_f1(f.test, m) for m in cm_models})


# ------------------------------------------------------------------------------------------------ 4
LOW_GPU_UTIL_PCT = 50  # below this mean NVML utilisation during train, the Time section notes a launch-bound loop


def train_utilisation(f: RunFigures) -> dict | None:
    """Mean GPU utilisation (NVML) over the train stage's samples beside the epochs' tokens/s; None when either is
    not measured (CPU run, no samples, no epochs). low: the mean is below LOW_GPU_UTIL_PCT."""
    sp = f.stage_peaks
    if f.epochs is None or not len(sp) or "train" not in set(sp["stage"]):
        return None
    row = sp[sp["stage"] == "train"].iloc[0]
    mean = row["mean_gpu_util_pct"]
    if fmt.missing(mean):
        return None
    res = f.run.table("resources")
    n = int(res.loc[res["stage"] == "train", "gpu_util_pct"].notna().sum())
    tps = f.epochs["tokens_per_s"].dropna()
    if not len(tps):
        return None
    return {"mean": float(mean), "samples": n, "low": float(mean) < LOW_GPU_UTIL_PCT,
            "tps_min": float(tps.min()), "tps_max": float(tps.max()), "epochs": len(tps)}


def time(R: Report) -> str:
    if not R.runs:
        return _no_runs(R)
    run, f, o = R.headline, R.h, R.original
    ep_table = ""
    if f.epochs is not None:
        rows = []
        for r in f.epochs.itertuples():
            pad = 1 - r.tokens / r.padded_tokens if r.padded_tokens else math.nan
            rows.append([int(r.epoch), fmt.seconds(r.seconds), fmt.integer(r.tokens), fmt.integer(r.padded_tokens),
                         fmt.pct(pad), fmt.num(r.tokens_per_s, 0), fmt.gib(r.peak_allocated_bytes)])
        e = f.epochs
        rows.append(["**all**", f"**{fmt.seconds(f.finetune_seconds)}**", fmt.integer(e["tokens"].sum()),
                     fmt.integer(e["padded_tokens"].sum()),
                     fmt.pct(1 - e["tokens"].sum() / e["padded_tokens"].sum()) if e["padded_tokens"].sum() else "—",
                     fmt.num(f.tokens_per_s, 0), fmt.gib(e["peak_allocated_bytes"].max())])
        ep_table = md_table(["epoch", "training time", "tokens", "tokens incl. padding", "padding", "tokens/s",
                             "peak allocated"], [[esc(c) if i not in (0, 1) or "**" not in str(c) else c
                                                  for i, c in enumerate(r)] for r in rows], align="rrrrrrr", raw=True)
    st_rows = []
    for st in list(STAGES) + [s for s in (run.manifest.get("stages") or {}) if s not in STAGES]:
        rec = run.stage(st)
        if rec is None:
            st_rows.append([st, run.stage_label(st), "—", "—"])
        else:
            st_rows.append([st, run.stage_label(st), fmt.seconds(rec.get("seconds"), "—"),
                            str(rec.get("start") or "—")])
    stage_table = md_table(["stage", "status", "wall time", "started (UTC)"], st_rows, align="llrl")
    run_rows = []
    for r in R.runs:
        g = R.of(r)
        per_epoch = g.finetune_seconds / g.epochs_done if g.epochs_done else math.nan
        norm = per_epoch / g.train_rows * o["train_rows"] if g.train_rows else math.nan
        run_rows.append([r.name, r.hardware, r.manifest.get("compute_dtype", "?"), fmt.integer(g.train_rows, "?"),
                         f"{g.epochs_done}" + (f" of {g.epochs_total}" if g.epochs_total and g.epochs_done < g.epochs_total else ""),
                         fmt.seconds(g.finetune_seconds), fmt.seconds(per_epoch), fmt.seconds(norm)])
    o_epoch = o["finetune_seconds"] / o["epochs"]
    run_rows.append([f"{o['label']} (reference)", o["hardware"], "not reported",
                     fmt.integer(o["train_rows"]), str(o["epochs"]), fmt.seconds(o["finetune_seconds"]),
                     fmt.seconds(o_epoch), fmt.seconds(o_epoch)])
    runs_table = md_table(["run", "hardware", "dtype", "train rows", "epochs", "fine-tuning time", "per epoch",
                           f"per epoch per {o['train_rows']:,} rows"], run_rows, align="lllrrrrr",
                          widths=[18, 14, 8, 7, 7, 14, 10, 12])
    return text.render("time", run=run, f=f, o=o, ep_table=ep_table, stage_table=stage_table, runs_table=runs_table,
                       ratio=f.finetune_seconds / o["finetune_seconds"] if f.epochs is not None else math.nan,
                       util=train_utilisation(f), threshold=LOW_GPU_UTIL_PCT, link=link, fmt=fmt)


# ------------------------------------------------------------------------------------------------ 5
def parameters(R: Report) -> str:
    if not R.runs:
        return _no_runs(R)
    run, f, o = R.headline, R.h, R.original
    t = run.table("params")
    table = ""
    quant_gap = score_rows = None
    if t is not None and len(t):
        rows = [[esc(r.component), fmt.integer(r.stored_elements), fmt.integer(r.logical_params),
                 fmt.integer(r.trainable), fmt.integer(r.bytes), esc(r.dtype)] for r in t.itertuples()]
        rows.append(["**total**", f"**{fmt.integer(t['stored_elements'].sum())}**",
                     f"**{fmt.integer(t['logical_params'].sum())}**", f"**{fmt.integer(t['trainable'].sum())}**",
                     f"**{fmt.integer(t['bytes'].sum())}**", ""])
        table = md_table(["component", "stored elements", "logical parameters", "trainable", "bytes", "dtype"], rows,
                         align="lrrrrl", raw=True, widths=[30, 14, 14, 12, 14, 8])
        quant_gap = int((t["logical_params"] - t["stored_elements"]).sum())
        score_rows = t[t["component"].str.contains(r"score|head", case=False)]
    run_rows = []
    for r in R.runs:
        p = R.of(r).params
        if not p:
            run_rows.append([r.name, "not available", "not available", "not available", "—"])
            continue
        same = p["stored_elements"] == o["params"]["stored_total"] and p["trainable"] == o["params"]["trainable"]
        run_rows.append([r.name, fmt.integer(p["stored_elements"]), fmt.integer(p["logical_params"]),
                         fmt.integer(p["trainable"]), "yes, exactly" if same else "no (a different model)"])
    run_rows.append([f"{o['label']} (reference)", fmt.integer(o["params"]["stored_total"]), "not reported",
                     fmt.integer(o["params"]["trainable"]), "—"])
    runs_table = md_table(["run", "stored elements", "logical parameters", "trainable", "same as the original study"],
                          run_rows, align="lrrrl")
    p = f.params
    return text.render("parameters", run=run, f=f, o=o, p=p, table=table, runs_table=runs_table, quant_gap=quant_gap,
                       score_rows=score_rows, fmt=fmt,
                       trainable_share=(p["trainable"] / p["logical_params"]) if p and p.get("logical_params") else math.nan)


# ------------------------------------------------------------------------------------------------ 6
def _peak_rows(f: RunFigures, o: dict) -> list[list[str]]:
    pk, res, run = f.peaks, o["resources"], f.run
    gpu = run.gpu
    total = gpu.get("memory_total_bytes") if gpu else None
    return [
        ["GPU memory used, whole device (NVML)", fmt.mem(pk["peak_gpu_mem_used_bytes"]),
         fmt.gb(res["gpu_memory_bytes"]) + " (see note)"],
        ["GPU memory allocated by torch (peak)", fmt.mem(pk["peak_allocated_bytes"]), "not reported"],
        ["GPU memory reserved by torch (peak)", fmt.mem(pk["peak_reserved_bytes"]), "not reported"],
        ["GPU memory of the device (total)", fmt.mem(total) if gpu else fmt.NOT_MEASURED + " (no GPU)", "not reported"],
        ["GPU utilisation (peak)", fmt.pct_value(pk["peak_gpu_util_pct"]), "not reported"],
        ["RAM of the process (peak RSS)", fmt.mem(pk["peak_process_rss_bytes"]), fmt.gb(res["ram_bytes"])],
        ["RAM used, whole system (peak)", fmt.mem(pk["peak_system_ram_used_bytes"]), "not reported"],
        ["CPU, whole machine (peak / mean)", f"{fmt.pct_value(pk['peak_cpu_pct'])} / {fmt.pct_value(pk['mean_cpu_pct'])}",
         fmt.pct_value(res["peak_cpu_pct"])],
        ["disk used (filesystem of the checkpoints)", fmt.gb(pk["peak_disk_used_bytes"], 1), fmt.gb(res["disk_bytes"], 0)],
    ]


def cap_check(f: RunFigures) -> dict | None:
    cap = f.run.cap_bytes
    if not cap:
        return None
    alloc = f.peaks["peak_allocated_bytes"]
    reserved = f.peaks["peak_reserved_bytes"]
    worst = max([v for v in (alloc, reserved) if not fmt.missing(v)], default=math.nan)
    return {"cap": cap, "alloc": alloc, "reserved": reserved, "share": worst / cap if not fmt.missing(worst) else math.nan,
            "within": (not fmt.missing(worst)) and worst <= cap, "headroom": cap - worst if not fmt.missing(worst) else math.nan}


def resources(R: Report) -> str:
    if not R.runs:
        return _no_runs(R)
    run, f, o = R.headline, R.h, R.original
    peak_table = md_table(["measure", f"{run.name}", o["label"]], _peak_rows(f, o), align="lrr", widths=[30, 24, 18])
    sp = f.stage_peaks
    gpu_table = host_table = ""
    if len(sp):
        g, h = [], []
        for r in sp.itertuples():
            g.append([r.stage, fmt.gib(r.peak_gpu_mem_used_bytes), fmt.gib(r.peak_torch_allocated_bytes),
                      fmt.gib(r.exact_max_allocated_bytes), fmt.gib(r.peak_torch_reserved_bytes),
                      fmt.pct_value(r.mean_gpu_util_pct), fmt.pct_value(r.peak_gpu_util_pct)])
            h.append([r.stage, fmt.seconds(r.span_s), r.samples, fmt.gib(r.peak_process_rss_bytes),
                      fmt.gib(r.peak_system_ram_used_bytes), fmt.pct_value(r.mean_cpu_pct), fmt.pct_value(r.peak_cpu_pct),
                      fmt.gb(r.peak_disk_used_bytes, 1)])
        gpu_table = md_table(["stage", "device used (NVML)", "torch allocated (sampled)",
                              "torch max allocated (exact)", "torch reserved", "GPU util. mean", "GPU util. peak"], g,
                             align="lrrrrrr")
        host_table = md_table(["stage", "sampled span", "samples", "process RSS", "system RAM", "CPU mean", "CPU peak",
                               "disk used"], h, align="lrrrrrrr")
    caps = []
    for r in R.runs:
        c = cap_check(R.of(r))
        if c:
            caps.append([r.name, fmt.mem(c["cap"]), fmt.mem(c["alloc"]), fmt.mem(c["reserved"]), fmt.pct(c["share"]),
                         "yes" if c["within"] else ("no" if not fmt.missing(c["share"]) else "not measured")])
    cap_table = md_table(["run", "cap", "peak allocated", "peak reserved", "of the cap", "within the cap"], caps,
                         align="lrrrrl") if caps else ""
    orig_gpu = o["resources"]["gpu_memory_bytes"]
    t4 = o["t4"]["nvml_total_bytes"]
    return text.render("resources", run=run, f=f, o=o, peak_table=peak_table, gpu_table=gpu_table,
                       host_table=host_table, cap_table=cap_table, cap=cap_check(f),
                       fig=figures.resource_timeline(run) or "", has_gpu=run.gpu is not None,
                       orig_is_capacity=abs(orig_gpu - t4) < 0.001 * t4, t4=t4, orig_gpu=orig_gpu, fmt=fmt)


# ------------------------------------------------------------------------------------------------ 7
def _pred_cell(row, which: str) -> str:
    pred = int(row[f"pred_{which}"])
    p = row[f"p_{LABELS[pred]}_{which}"]
    s = f"{LABELS[pred]} {p:.2f}"
    if pred != int(row["label"]):
        s += f" (gold {row[f'p_{LABELS[int(row.label)]}_{which}']:.2f})"
    return s


def case_rows(df: pd.DataFrame, with_cues: bool = False) -> list[list]:
    out = []
    cues = cs.cue_list(df) if with_cues and len(df) else None
    for i, row in df.iterrows():
        r = [int(row["idx"]), row["premise"], row["hypothesis"], label_name(row["label"]), _pred_cell(row, "base"),
             _pred_cell(row, "ft")]
        if with_cues:
            r.append(cues.loc[i])
        out.append(r)
    return out


def cases(R: Report) -> str:
    if not R.runs:
        return _no_runs(R)
    run, f = R.headline, R.h
    if not f.accuracy_meaningful:
        return text.render("cases_unavailable", run=run, reason="shape")
    df = f.cases
    if not len(df):
        return text.render("cases_unavailable", run=run, reason="missing", gaps=run.gaps(), skipped=run.skip_note())
    header = ["test idx", "premise", "hypothesis", "gold", "baseline (head)", "fine-tuned"]
    widths = [6, 34, 26, 10, 14, 14]
    tables = {}
    for cat in ("corrected", "regressed", "unresolved"):
        sub = df[df["category"] == cat]
        cues = cat == "unresolved"
        tables[cat] = md_table(header + (["cues"] if cues else []), case_rows(sub, cues), align="rlllll" + ("l" if cues else ""),
                               widths=widths[:] + ([10] if cues else [])) if len(sub) else ""
    comp = []
    for b in BASELINES:
        c = f.case_counts(b)
        p = f.paired.get(b)
        if c is None:
            continue
        comp.append([f"{b} → finetuned", c["corrected"], c["regressed"], c["unresolved"], c["kept"],
                     fmt.pvalue(p.p_value) if p else "—"])
    comp_table = md_table(["comparison", "corrected", "regressed", "unresolved", "both right", "exact McNemar p"], comp,
                          align="lrrrrr")
    lb = cs.label_breakdown(df)
    lb_rows = [[f"gold {g}"] + [int(v) for v in lb.loc[g]] for g in lb.index]
    lb_table = md_table(["unresolved", *[f"predicted {x}" for x in LABELS]], lb_rows, align="lrrr")
    ger = cs.gold_error_rates(df)
    ger_rows = [[r.label, r.rows, r.unresolved, r.ft_wrong, fmt.pct(r.ft_wrong / r.rows if r.rows else math.nan)]
                for r in ger.itertuples()]
    ger_table = md_table(["gold label", "test rows", "unresolved", "fine-tuned wrong", "error rate"], ger_rows,
                         align="lrrrr")
    bd = cs.cue_breakdown(df)

    def cell(v, stat_row):
        if isinstance(v, tuple):
            k, n = v
            return f"{k} / {n} ({fmt.pct(k / n if n else math.nan, 0)})"
        return fmt.num(v, 2 if "overlap" in stat_row else 1)
    bd_rows = [[r["cue"], cell(r["unresolved"], r["cue"]), cell(r["fine-tuned right"], r["cue"]), cell(r["all"], r["cue"])]
               for _, r in bd.iterrows()]
    bd_table = md_table(["cue", "among unresolved", "among fine-tuned right", "all test rows"], bd_rows, align="lrrr")
    th = cs.cue_thresholds(df)
    counts = f.case_counts()
    return text.render("cases", run=run, f=f, counts=counts, tables=tables, comp_table=comp_table, lb_table=lb_table,
                       ger_table=ger_table, bd_table=bd_table, th=th, negation=sorted(cs.NEGATION), fmt=fmt,
                       n=len(df), zeroshot=f.case_counts("baseline_zeroshot"), p=f.paired,
                       has_tuning=run.table("tuning") is not None)


# ------------------------------------------------------------------------------------------------ 8
def reproducibility(R: Report) -> str:
    if not R.runs:
        return text.render("reproducibility", R=R, run=None, o=R.original)
    run = R.headline
    st_rows = [[st, esc(run.stage_label(st)), f"`{(run.stage(st) or {}).get('fingerprint') or '—'}`"]
               for st in STAGES]
    fp_table = md_table(["stage", "status", "fingerprint"], st_rows, align="lll", raw=True)
    config_yaml = yaml.safe_dump(run.config, sort_keys=False, allow_unicode=True, width=88).rstrip() if run.config else ""
    return text.render("reproducibility", R=R, run=run, o=R.original, fp_table=fp_table, config_yaml=config_yaml,
                       data=run.manifest.get("data") or {}, code=run.manifest.get("code_version") or {},
                       commands={r.name: r.manifest.get("commands") or [] for r in R.runs})


# ------------------------------------------------------------------------------------------------ 9
def all_runs(R: Report) -> str:
    o = R.original
    figs = [R.of(r) for r in R.runs]

    def acc(g: RunFigures, m: str) -> str:
        if not g.accuracy_meaningful:
            return "not meaningful (random weights)"
        a = g.accuracy.get(m)
        return f"{fmt.pct(a.value)} [{fmt.pct(a.ci[0], 0)}, {fmt.pct(a.ci[1], 0)}]" if a else "not available"

    def pv(g: RunFigures) -> str:
        if not g.accuracy_meaningful:
            return "—"
        p = g.paired.get("baseline_head")
        return fmt.pvalue(p.p_value) if p else "not available"

    def cap(g: RunFigures) -> str:
        c = cap_check(g)
        if not c:
            return "none"
        return f"{fmt.gib(c['cap'])}; peak {fmt.pct(c['share'], 0)} of it"

    def counts(g: RunFigures) -> str:
        if not g.accuracy_meaningful:
            return "—"
        c = g.case_counts()
        return f"{c['corrected']} / {c['regressed']} / {c['unresolved']}" if c else "not available"

    def status(g: RunFigures) -> str:
        gaps, skipped = g.run.gaps(), g.run.skipped()
        if gaps:
            return "incomplete: " + "; ".join(gaps)
        if skipped:
            why = ": random weights, so no accuracy to measure" if g.run.skipped_for_shape else ""
            return f"complete for the stages requested; {', '.join(skipped)} not run (not requested{why})"
        return "complete"

    ores = o["resources"]
    metrics = [
        ("model", lambda g: g.run.model_name, o["model"].split(",")[0]),
        ("weights", lambda g: g.run.weights, "pretrained"),
        ("hardware", lambda g: g.run.hardware, o["hardware"]),
        ("compute dtype", lambda g: g.run.manifest.get("compute_dtype", "?"), "not reported"),
        ("train / test rows", lambda g: f"{fmt.integer(g.train_rows, '?')} / {_test_rows(g)}",
         f"{o['train_rows']:,} / {o['test_rows']}"),
        ("accuracy, untrained head", lambda g: acc(g, "baseline_head"), fmt.pct(o["accuracy"]["baseline_head"], 0)),
        ("accuracy, zero-shot prompt", lambda g: acc(g, "baseline_zeroshot"), "not measured"),
        ("accuracy, fine-tuned", lambda g: acc(g, "finetuned"), fmt.pct(o["accuracy"]["finetuned"], 0)),
        ("McNemar p, head vs fine-tuned", pv, "not reported"),
        ("corrected / regressed / unresolved", counts, "listed"),
        ("epochs", lambda g: f"{g.epochs_done}" + (f" of {g.epochs_total}" if g.epochs_total and g.epochs_done < g.epochs_total else ""),
         str(o["epochs"])),
        ("fine-tuning time", lambda g: fmt.seconds(g.finetune_seconds), fmt.seconds(o["finetune_seconds"])),
        ("tokens per second (training)", lambda g: fmt.num(g.tokens_per_s, 0), "not reported"),
        ("parameters, stored total", lambda g: fmt.integer(g.params.get("stored_elements"), "not available"),
         fmt.integer(o["params"]["stored_total"])),
        ("parameters, trainable", lambda g: fmt.integer(g.params.get("trainable"), "not available"),
         fmt.integer(o["params"]["trainable"])),
        ("parameters, logical total", lambda g: fmt.integer(g.params.get("logical_params"), "not available"), "not reported"),
        ("peak GPU memory (NVML, device)", lambda g: fmt.gib(g.peaks["peak_gpu_mem_used_bytes"]),
         f"{fmt.gb(ores['gpu_memory_bytes'])} (likely the T4's capacity)"),
        ("peak torch allocated", lambda g: fmt.gib(g.peaks["peak_allocated_bytes"]), "not reported"),
        ("GPU memory cap", cap, "none (a T4)"),
        ("peak process RAM", lambda g: fmt.gib(g.peaks["peak_process_rss_bytes"]), fmt.gb(ores["ram_bytes"])),
        ("peak CPU", lambda g: fmt.pct_value(g.peaks["peak_cpu_pct"]), fmt.pct_value(ores["peak_cpu_pct"])),
        ("disk used", lambda g: fmt.gb(g.peaks["peak_disk_used_bytes"], 1), fmt.gb(ores["disk_bytes"], 0)),
        ("status", status, "published"),
    ]
    rows = [[name, orig] + [fn(g) for g in figs] for name, fn, orig in metrics]
    header = ["", o["label"]] + [r.name for r in R.runs]
    n = len(R.runs)
    table = md_table(header, rows, align="l" * (2 + n), widths=[16, 16] + [max(14, 60 // max(n, 1))] * n)
    overview_rows = [{"name": g.name, "finetune_seconds": g.finetune_seconds, "peak_gpu_bytes": g.peak_gpu_bytes}
                     for g in figs]
    fig = figures.runs_overview(overview_rows, o) or ""
    return text.render("all_runs", R=R, table=table, fig=fig, o=o)
