"""All runs side by side: one column per run beside the original study."""
from __future__ import annotations

from analysis import fmt, stage_states
from analysis.facts import ReportFacts, RunFacts
from analysis.markdown import Markdown
from analysis.sections.evaluations import history_cell
from analysis.sections.reproducibility import verification_cell
from analysis.tables import table


def _accuracy(f: RunFacts, model: str) -> str:
    if not f.accuracy_meaningful:
        return "not meaningful (random weights)"
    a = f.accuracy.get(model)
    return f"{fmt.pct(a.value)} [{fmt.pct(a.ci[0], 0)}, {fmt.pct(a.ci[1], 0)}]" if a else "not available"


def _p(f: RunFacts) -> str:
    if not f.accuracy_meaningful:
        return "—"
    return fmt.pvalue(f.pair().p_value) if "baseline_head" in f.paired else "not available"


def _counts(f: RunFacts) -> str:
    if not f.accuracy_meaningful:
        return "—"
    c = f.case_counts()
    return f"{c['corrected']} / {c['regressed']} / {c['unresolved']}" if c else "not available"


def _cap(f: RunFacts) -> str:
    return f"{fmt.gib(f.cap.cap)}; peak {fmt.pct(f.cap.share, 0)} of it" if f.cap.applies else "none"


def _checksums(f: RunFacts) -> str:
    c = f.run.checksums
    return f"verified ({len(c.verified)} tables)" if c.recorded else "not recorded (an older manifest)"


def _test_rows(f: RunFacts) -> str:
    n = f.rows("test")
    return fmt.integer(n) if n is not None else str(next(iter(f.accuracy.values())).n) if f.accuracy else "?"


def made_by(f: RunFacts) -> str:
    """The code commit that made the run and the day its last stage ended: runs of one report may come from
    different commits, and the reader sees which."""
    ends = [rec.end for rec in f.manifest.stages.values() if rec.end]
    day = max(ends)[:10] if ends else "date not recorded"
    return f"code {f.commit[:7]}, {day}" if f.commit else f"code not recorded, {day}"


def comparison_table(R: ReportFacts) -> Markdown:
    o = R.original
    metrics = [
        ("model", lambda f: f.model, o.model_id),
        ("weights", lambda f: f.manifest.weights or "unknown", "pretrained"),
        ("hardware", lambda f: f.hardware, o.hardware),
        ("compute dtype", lambda f: f.manifest.compute_dtype or "?", "not reported"),
        ("train / test rows", lambda f: f"{fmt.integer(f.rows('train'), '?')} / {_test_rows(f)}",
         f"{o.train_rows:,} / {o.test_rows}"),
        ("accuracy, untrained head", lambda f: _accuracy(f, "baseline_head"), fmt.pct(o.accuracy_head, 0)),
        ("accuracy, zero-shot prompt", lambda f: _accuracy(f, "baseline_zeroshot"), "not measured"),
        ("accuracy, fine-tuned", lambda f: _accuracy(f, "finetuned"), fmt.pct(o.accuracy_finetuned, 0)),
        ("McNemar p, head vs fine-tuned", _p, "not reported"),
        ("corrected / regressed / unresolved", _counts, "listed"),
        ("epochs", lambda f: f"{f.epochs_done}" + (f" of {f.epochs_total}" if f.unfinished else ""), str(o.epochs)),
        ("fine-tuning time", lambda f: fmt.seconds(f.finetune_seconds), fmt.seconds(o.finetune_seconds)),
        ("tokens per second (training)", lambda f: fmt.num(f.tokens_per_s, 0), "not reported"),
        ("parameters, stored total", lambda f: fmt.integer(f.params.stored, "not available"), fmt.integer(o.params_stored)),
        ("parameters, trainable", lambda f: fmt.integer(f.params.trainable, "not available"),
         fmt.integer(o.params_trainable)),
        ("parameters, logical total", lambda f: fmt.integer(f.params.logical, "not available"), "not reported"),
        ("peak GPU memory (NVML, device)", lambda f: fmt.gib(f.peaks["peak_gpu_mem_used_bytes"]),
         fmt.gb(o.gpu_memory_bytes) + (" (likely the T4’s capacity)" if o.gpu_figure_is_capacity else "")),
        ("peak torch allocated", lambda f: fmt.gib(f.peaks["peak_allocated_bytes"]), "not reported"),
        ("GPU memory cap", _cap, "none (a T4)"),
        ("peak process RAM", lambda f: fmt.gib(f.peaks["peak_process_rss_bytes"]), fmt.gb(o.ram_bytes)),
        ("peak CPU", lambda f: fmt.pct_value(f.peaks["peak_cpu_pct"]), fmt.pct_value(o.peak_cpu_pct)),
        ("disk taken by the run", lambda f: fmt.size(f.disk.own, "not recorded"), "not reported"),
        ("disk used, whole filesystem", lambda f: fmt.gib(f.disk.filesystem_peak, 1),
         fmt.gb(o.disk_bytes, 0) + " (likely a machine total)"),
        ("table checksums", _checksums, "not applicable"),
        ("test rows scored", history_cell, "not reported"),
        ("pipeline verify", verification_cell, "not applicable"),
        ("code from the model repository", lambda f: "ran (model.trust_remote_code)" if f.runs_remote_code
         else "not allowed", "not reported"),
        ("made by", made_by, "not reported"),
        ("status", lambda f: stage_states.status(f.run), "published"),
    ]
    n = len(R.runs)
    rows = [[name, orig, *(fn(f) for f in R.runs)] for name, fn, orig in metrics]
    return table(["", o.label, *(f.name for f in R.runs)], rows, align="l" * (2 + n),
                 widths=[16, 16, *([max(14, 60 // max(n, 1))] * n)])
