"""Summary: the original study's five criteria beside the first runs."""
from __future__ import annotations

from analysis import fmt
from analysis.facts import ReportFacts, RunFacts
from analysis.markdown import Markdown, link, text
from analysis.original import Original
from analysis.tables import table

SHOWN = 3  # runs beside the original study; the All-runs section has every one


def accuracy_cell(f: RunFacts) -> str:
    if not f.accuracy_meaningful:
        return "not meaningful: random weights (shape-only run)"
    if not f.accuracy:
        return "not available yet (no test predictions)"
    parts = []
    if "baseline_head" in f.accuracy:
        parts.append(f"untrained head {fmt.pct(f.acc('baseline_head').value)}")
    parts.append(f"fine-tuned {fmt.pct(f.acc('finetuned').value)}" if "finetuned" in f.accuracy
                 else "fine-tuned not evaluated yet")
    s = " → ".join(parts)
    if "baseline_zeroshot" in f.accuracy:
        s += f" (zero-shot {fmt.pct(f.acc('baseline_zeroshot').value)})"
    if "baseline_head" in f.paired:
        s += f"; McNemar p = {fmt.pvalue(f.pair().p_value)}"
    return s


def time_cell(f: RunFacts) -> str:
    if f.epochs is None:
        return "not measured yet (no epochs)"
    planned = f" of {f.epochs_total} epochs" if f.unfinished else " epochs"
    return f"{fmt.seconds(f.finetune_seconds)}, {f.epochs_done}{planned} on {f.hardware}"


def counts(stored, trainable, logical) -> str:
    """The three parameter counts, each named: what sum(p.numel()) gives on the 4-bit model, what trains, and
    every weight once."""
    return f"stored in total {stored}; trainable {trainable}; logical in total {logical}"


def params_cell(f: RunFacts, o: Original) -> str:
    if not f.params.measured:
        return "not available yet (no params table)"
    p = f.params
    s = counts(fmt.integer(p.stored), fmt.integer(p.trainable), fmt.integer(p.logical, "not recorded"))
    return s + (" (stored and trainable identical to the original study's)" if o.same_params(p.stored, p.trainable)
                else "")


def resource_cell(f: RunFacts) -> str:
    pk = f.peaks
    own = fmt.size(f.disk.own, "not recorded")
    # a run over several processes: each figure is the most any one GPU or process reached
    each = f" on the most loaded of {f.world_size} GPUs" if f.world_size > 1 else ""
    per = " per process" if f.world_size > 1 else ""
    s = (f"GPU {fmt.gib(f.peak_gpu_bytes)}{each}, RAM {fmt.gib(pk['peak_process_rss_bytes'])}{per}, "
         f"CPU peak {fmt.pct_value(pk['peak_cpu_pct'])}, disk taken by the run {own} "
         f"(whole filesystem {fmt.gib(f.disk.filesystem_peak, 1)})")
    return s + (f"; cap {fmt.gib(f.cap_bytes)}" if f.cap_bytes else "")


def cases_cell(f: RunFacts) -> str:
    if not f.accuracy_meaningful:
        return "not meaningful: random weights"
    c = f.case_counts()
    if c is None:
        return "not available yet (needs baseline and fine-tuned test predictions)"
    return f"{c['corrected']} corrected, {c['regressed']} regressed, {c['unresolved']} unresolved (listed with cues)"


def capped_runs(R: ReportFacts) -> Markdown:
    """e.g. "phi2-shape-t4budget (15.00 GiB)": the runs with a GPU memory cap and their caps."""
    return Markdown(fmt.and_list(f"{text(f.name)} ({fmt.gib(f.cap.cap)})" for f in R.capped))


def criteria_table(R: ReportFacts) -> Markdown:
    """The five criteria: the original study's figure, then each of the first runs', then where it is answered."""
    o, shown = R.original, R.runs[:SHOWN]
    criteria = [
        ("accuracy comparison", f"untrained head {fmt.pct(o.accuracy_head, 0)} → fine-tuned "
         f"{fmt.pct(o.accuracy_finetuned, 0)} ({o.test_rows} test rows)", accuracy_cell, ("Accuracy", "sec-accuracy")),
        ("fine-tuning time", f"{fmt.seconds(o.finetune_seconds)}, {o.epochs} epochs on {o.hardware}", time_cell,
         ("Time", "sec-time")),
        ("parameter count", counts(fmt.integer(o.params_stored), fmt.integer(o.params_trainable), "not reported"),
         lambda f: params_cell(f, o), ("Parameters", "sec-parameters")),
        ("resource utilisation", f"GPU {fmt.gb(o.gpu_memory_bytes)}, RAM {fmt.gb(o.ram_bytes)}, CPU peak "
         f"{fmt.pct_value(o.peak_cpu_pct)}, disk {fmt.gb(o.disk_bytes, 0)} (most likely, like the GPU figure, a "
         "machine total)", resource_cell, ("Resources", "sec-resources")),
        ("failure cases", o.failure_cases, cases_cell, ("Corrected, regressed and unresolved cases", "sec-cases")),
    ]
    rows = [[name, orig, *(cell(f) for f in shown), link(*where)] for name, orig, cell, where in criteria]
    return table(["criterion", o.label, *(f.name for f in shown), "answered in"], rows,
                 widths=[14, 20, *([22] * len(shown)), 12])
