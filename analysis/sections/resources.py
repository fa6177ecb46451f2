"""Resources: whole-run peaks beside the original study's, per-stage peaks, and GPU memory caps."""
from __future__ import annotations

from analysis import fmt
from analysis.effective import NOT_RECORDED
from analysis.facts import ReportFacts, RunFacts
from analysis.markdown import Markdown, text
from analysis.original import Original
from analysis.tables import table


def peak_table(f: RunFacts, o: Original) -> Markdown:
    pk, gpu = f.peaks, f.gpu
    rows = [
        ["GPU memory used, whole device (NVML)", fmt.mem(pk["peak_gpu_mem_used_bytes"]),
         fmt.gb(o.gpu_memory_bytes) + (" (a T4’s capacity, not a peak)" if o.gpu_figure_is_capacity else "")],
        ["GPU memory allocated by torch (peak)", fmt.mem(pk["peak_allocated_bytes"]), "not reported"],
        ["GPU memory reserved by torch (peak)", fmt.mem(pk["peak_reserved_bytes"]), "not reported"],
        ["GPU memory of the device (total)", fmt.mem(gpu.get("memory_total_bytes")) if gpu else
         fmt.NOT_MEASURED + " (no GPU)", "not reported"],
        ["GPU utilisation (peak)", fmt.pct_value(pk["peak_gpu_util_pct"]), "not reported"],
        ["RAM of the process (peak RSS)", fmt.mem(pk["peak_process_rss_bytes"]), fmt.gb(o.ram_bytes)],
        ["RAM used, whole system (peak)", fmt.mem(pk["peak_system_ram_used_bytes"]), "not reported"],
        ["CPU, whole machine (peak / mean)", f"{fmt.pct_value(pk['peak_cpu_pct'])} / {fmt.pct_value(pk['mean_cpu_pct'])}",
         fmt.pct_value(o.peak_cpu_pct)],
        ["disk taken by the run (checkpoints, results, the model cache it uses)", own_disk(f), "not reported"],
        ["disk used, whole filesystem of the checkpoints (peak)", fmt.mem(f.disk.filesystem_peak),
         fmt.gb(o.disk_bytes, 0) + " (see note)"],
    ]
    return table(["measure", f.name, o.label], rows, align="lrr", widths=[30, 24, 18])


PART_NAMES = {"checkpoints": "checkpoints", "results": "results", "model_cache": "model cache"}


def own_disk(f: RunFacts) -> str:
    """e.g. "6.74 GiB: checkpoints 1.12 GiB, results 0.01 GiB, model cache 5.61 GiB"; "not recorded" in older runs."""
    d = f.disk
    if not d.recorded:
        return NOT_RECORDED
    return f"{fmt.size(d.own)}: " + ", ".join(f"{PART_NAMES[p]} {fmt.size(b)}" for p, b in d.parts)


def stage_gpu_table(f: RunFacts) -> Markdown:
    rows = [[r.stage, fmt.gib(r.peak_gpu_mem_used_bytes), fmt.gib(r.peak_torch_allocated_bytes),
             fmt.gib(r.exact_max_allocated_bytes), fmt.gib(r.peak_torch_reserved_bytes), fmt.pct_value(r.mean_gpu_util_pct),
             fmt.pct_value(r.peak_gpu_util_pct)] for r in f.stage_peaks.itertuples()]
    return table(["stage", "device used (NVML)", "torch allocated (sampled)", "torch max allocated (exact)",
                  "torch reserved", "GPU util. mean", "GPU util. peak"], rows, align="lrrrrrr")


def stage_host_table(f: RunFacts) -> Markdown:
    rows = [[r.stage, fmt.seconds(r.span_s), r.samples, fmt.gib(r.peak_process_rss_bytes),
             fmt.gib(r.peak_system_ram_used_bytes), fmt.pct_value(r.mean_cpu_pct), fmt.pct_value(r.peak_cpu_pct),
             fmt.gib(r.peak_disk_used_bytes, 1)] for r in f.stage_peaks.itertuples()]
    return table(["stage", "sampled span", "samples", "process RSS", "system RAM", "CPU mean", "CPU peak",
                  "filesystem used"],
                 rows, align="lrrrrrrr")


def cap_table(R: ReportFacts) -> Markdown:
    rows = []
    for f in R.capped:
        c = f.cap
        within = "yes" if c.within else "no" if c.measured else "not measured"
        rows.append([f.name, fmt.mem(c.cap), fmt.mem(c.allocated), fmt.mem(c.reserved), fmt.pct(c.share), within])
    return table(["run", "cap", "peak allocated", "peak reserved", "of the cap", "within the cap"], rows, align="lrrrrl")


def scaling_table(r: ReportFacts) -> Markdown:
    """Each run over several GPUs beside the one-GPU run of the same work: effective batch and its split, the
    fine-tuning time and the tokens/s of the epochs after the first (the first holds the CUDA-graph captures),
    each with its speed-up; scaling efficiency (the warm speed-up / GPUs) and test accuracy."""
    rows = []
    for f in r.multi_process:
        b, twin = f.batch, r.one_process_twin(f)
        split = (f"{b.effective} = {b.micro} x {b.processes} x {b.accumulation}" if b.recorded
                 else NOT_RECORDED)
        if twin is None:
            rows.append([f.name, f.world_size, split, "none in this report", "–", fmt.seconds(f.finetune_seconds),
                         "–", fmt.integer(f.warm_tokens_per_s), "–", "–", "not reported"])
            continue
        apart = r.twin_differences(f)
        warm = f.warm_tokens_per_s / twin.warm_tokens_per_s
        acc = (f"{fmt.pct(f.acc('finetuned').value)} / {fmt.pct(twin.acc('finetuned').value)}"
               if f.accuracy_meaningful and "finetuned" in f.accuracy else "not reported")
        rows.append([f.name, f.world_size, split, twin.name,
                     "yes" if not apart else "no: " + "; ".join(apart),
                     f"{fmt.seconds(f.finetune_seconds)} / {fmt.seconds(twin.finetune_seconds)}",
                     f"{twin.finetune_seconds / f.finetune_seconds:.2f}x",
                     f"{fmt.integer(f.warm_tokens_per_s)} / {fmt.integer(twin.warm_tokens_per_s)}",
                     f"{warm:.2f}x", fmt.pct(warm / f.world_size, 0), acc])
    return table(["run", "GPUs", "effective batch = micro x GPUs x accumulation", "same work on one GPU",
                  "like for like (this / one GPU)", "fine-tuning time (this / one GPU)", "speed-up",
                  "tokens/s after epoch 1 (this / one GPU)", "speed-up", "scaling efficiency",
                  "test accuracy (this / one GPU)"], rows, align="lrlllrrrrrl",
                 widths=[13, 5, 11, 13, 14, 11, 7, 12, 7, 9, 10])


def per_gpu_table(r: ReportFacts) -> Markdown:
    """During training, per process: its GPU, peak device memory (NVML), peak torch reserved and mean GPU
    utilisation; the one-GPU run of the same work below each, for comparison."""
    rows = []
    for f in r.multi_process:
        twin = r.one_process_twin(f)
        for run in (f, twin) if twin is not None else (f,):
            for g in run.per_gpu.itertuples():
                rows.append([run.name, g.rank, "not recorded" if g.gpu_index is None else g.gpu_index,
                             fmt.gib(g.peak_gpu_mem_used_bytes), fmt.gib(g.peak_torch_reserved_bytes),
                             fmt.pct_value(g.mean_gpu_util_pct), g.samples])
    return table(["run", "rank", "GPU", "device memory used, peak GiB (NVML)", "torch reserved, peak GiB",
                  "GPU utilisation, mean", "samples"], rows, align="lrrrrrr", widths=[24, 6, 6, 18, 14, 14, 9])


def runs_peak_table(R: ReportFacts) -> Markdown:
    """Every run's peaks with the hardware it used: a run over several GPUs gives the most loaded GPU and the
    largest process; the original study's GPU figure is a capacity and is said to be one."""
    o, rows = R.original, []
    for f in R.runs:
        pk = f.peaks
        each = f" (most loaded of {f.world_size})" if f.world_size > 1 else ""
        rows.append([f.name, f.hardware, fmt.gib(f.peak_gpu_bytes) + each, fmt.gib(pk["peak_reserved_bytes"]),
                     fmt.gib(f.cap_bytes, 0) if f.cap_bytes else "—", fmt.gib(pk["peak_process_rss_bytes"]),
                     fmt.pct_value(pk["peak_cpu_pct"])])
    gpu = fmt.gb(o.gpu_memory_bytes) + (" (a T4’s capacity, not a peak)" if o.gpu_figure_is_capacity else "")
    rows.append([f"{o.label} (reference)", o.hardware, gpu, "not reported", "—", fmt.gb(o.ram_bytes),
                 fmt.pct_value(o.peak_cpu_pct)])
    return table(["run", "hardware", "GPU memory used (NVML)", "torch reserved", "cap", "process RAM", "CPU peak"],
                 rows, align="llrrrrr", widths=[20, 14, 18, 10, 6, 10, 8])


def capped_runs(R: ReportFacts) -> Markdown:
    """e.g. "phi2-shape-t4budget (15.00 GiB)": the runs with a GPU memory cap and their caps."""
    return Markdown(fmt.and_list(f"{text(f.name)} ({fmt.gib(f.cap.cap)})" for f in R.capped))
