"""The verdict at the top of the report: for each of the original study's criteria, this report's figure
beside the original's and whether they agree, all computed here from the facts.

- within noise of the original: the original's accuracy lies inside this report's 95 % interval;
- differs from the original: it lies outside, or a count differs;
- the same as the original: a count that is equal exactly;
- not comparable here: the two figures measure different things (another GPU, a card's capacity against a
  measured peak, reasons against counts); `why` says which.

Which run answers a criterion: accuracy, the first run with real weights and a baseline / fine-tuned pair
(ReportFacts.accuracy_run); time, memory and parameters, the one-process, uncapped run with the original's
parameter counts (ReportFacts.time_run), the run with a memory cap for memory where there is one."""
from __future__ import annotations

import math
from dataclasses import dataclass

from analysis import fmt
from analysis.effective import short_model
from analysis.facts import ReportFacts, RunFacts
from analysis.markdown import Markdown, text

WITHIN = "within noise of the original"
DIFFERS = "differs from the original"
SAME = "the same as the original"
NOT_COMPARABLE = "not comparable here"
NO_RUN = "not measured here"


@dataclass(frozen=True)
class Criterion:
    name: str
    ours: Markdown        # this report's figure, with the run that gave it
    original: str         # the original study's figure
    verdict: str          # one of the constants above
    why: Markdown         # the reason, in a clause


def _run(f: RunFacts) -> str:
    return f"{text(f.name)}, {text(f.hardware)}"


def _interval(f: RunFacts, model: str) -> str:
    a = f.acc(model)
    return f"{fmt.pct(a.value)} (95 % interval {fmt.pct(a.ci[0])}–{fmt.pct(a.ci[1])})"


def accuracy(R: ReportFacts, model: str, original: float, name: str) -> Criterion:
    f, o = R.accuracy_run, R.original
    orig = f"{fmt.pct(original, 0)} ({o.test_rows} test rows)"
    if f is None:
        return Criterion(name, Markdown(NO_RUN), orig, NO_RUN, Markdown("no run with real weights has test predictions"))
    a = f.acc(model)
    inside = a.ci[0] <= original <= a.ci[1]
    why = (f"the original's {fmt.pct(original, 0)} lies {'inside' if inside else 'outside'} this run's 95 % interval "
           f"({a.n} test rows)")
    if model == "finetuned" and f.cfg("model.name") != o.model_id:
        why += f"; on another model ({text(short_model(f.run))})"
    twin = R.twin_of(f)
    if model == "finetuned" and twin is not None and "finetuned" in twin.accuracy:
        near = " (not like for like: other runner settings or code)" if R.twin_differences(twin) else ""
        why += (f"; its {twin.world_size}-GPU twin{near}, which learns as another seed would, got "
                f"{fmt.pct(twin.acc('finetuned').value)}")
    return Criterion(name, Markdown(f"{_interval(f, model)}; {_run(f)}"), orig, WITHIN if inside else DIFFERS,
                     Markdown(why))


def time(R: ReportFacts) -> Criterion:
    f, o = R.time_run, R.original
    orig = f"{fmt.seconds(o.finetune_seconds)}, {o.epochs} epochs, {o.hardware}"
    if f is None:
        return Criterion("fine-tuning time", Markdown(NO_RUN), orig, NO_RUN,
                         Markdown("no run of the original's architecture on one GPU without a memory cap"))
    ours = Markdown(f"{fmt.seconds(f.finetune_seconds)}, {f.epochs_done} epochs; {_run(f)} (random weights)")
    same_gpu = bool(f.gpu_model) and f.gpu_model in o.hardware
    if not same_gpu:
        recipe = f" and a recipe of its own ({len(f.recipe_differences)} differences, named under Time)" \
            if f.recipe_differences else ""
        return Criterion("fine-tuning time", ours, orig, NOT_COMPARABLE, Markdown(
            f"another GPU ({text(f.gpu_model or 'none')}, not the original's){recipe}; a T4’s time was not measured"))
    ratio = f.finetune_seconds / o.finetune_seconds
    return Criterion("fine-tuning time", ours, orig, WITHIN if 0.9 <= ratio <= 1.1 else DIFFERS,
                     Markdown(f"{fmt.num(ratio, 2)} times the original's time on the same GPU model"))


def parameters(R: ReportFacts) -> Criterion:
    o = R.original
    orig = f"{fmt.integer(o.params_stored)} stored, {fmt.integer(o.params_trainable)} trainable"
    match = [f for f in R.runs if f.name in R.param_match]
    if match:
        f = match[0]
        return Criterion("parameter count", Markdown(f"{fmt.integer(f.params.stored)} stored, "
                         f"{fmt.integer(f.params.trainable)} trainable; {text(f.name)}"), orig, SAME,
                         Markdown(f"both counts equal exactly, on Phi-2’s shape ({say_runs(match)})"))
    f = next((g for g in R.runs if g.params.measured), None)
    if f is None:
        return Criterion("parameter count", Markdown(NO_RUN), orig, NO_RUN, Markdown("no run has a params table"))
    return Criterion("parameter count", Markdown(f"{fmt.integer(f.params.stored)} stored, "
                     f"{fmt.integer(f.params.trainable)} trainable; {text(f.name)}"), orig, NOT_COMPARABLE,
                     Markdown(f"another model ({text(short_model(f.run))})"))


def say_runs(runs: list[RunFacts]) -> str:
    return fmt.and_list(text(f.name) for f in runs)


def gpu_memory(R: ReportFacts) -> Criterion:
    o = R.original
    orig = f"{fmt.gb(o.gpu_memory_bytes)}" + (" (a T4’s capacity)" if o.gpu_figure_is_capacity else "")
    f = next((g for g in R.capped if g.name in R.param_match), None) or R.time_run
    if f is None or (not f.cap.measured and math.isnan(f.peak_gpu_bytes)):
        return Criterion("peak GPU memory", Markdown(NO_RUN), orig, NO_RUN, Markdown("no run of the original's shape"))
    if f.cap.applies:
        ours = Markdown(f"{fmt.gib(f.cap.reserved)} reserved at most, under a {fmt.gib(f.cap.cap)} cap; {_run(f)}")
    else:
        ours = Markdown(f"{fmt.gib(f.peak_gpu_bytes)} at most; {_run(f)}")
    if o.gpu_figure_is_capacity:
        why = "the original's figure is a card's capacity, not a measured peak"
        if f.cap.applies and f.cap.measured:
            why += (f"; this run's peak fits a T4’s memory ({fmt.gib(f.cap.cap)} cap)" if f.cap.within
                    else "; this run's peak exceeds its T4-sized cap")
        return Criterion("peak GPU memory", ours, orig, NOT_COMPARABLE, Markdown(why))
    return Criterion("peak GPU memory", ours, orig, NOT_COMPARABLE, Markdown("another GPU and recipe"))


def cases(R: ReportFacts) -> Criterion:
    f = R.accuracy_run
    orig = "cases listed, with a reason for each; no counts"
    if f is None:
        return Criterion("failure cases", Markdown(NO_RUN), orig, NO_RUN, Markdown("no run with real weights has test predictions"))
    c = f.counts()
    return Criterion("failure cases", Markdown(f"{c['corrected']} corrected, {c['regressed']} regressed, "
                     f"{c['unresolved']} unresolved of {len(f.cases)}; {text(f.name)}"), orig, NOT_COMPARABLE,
                     Markdown("the original gives reasons, not counts, for another model's predictions"))


def criteria(R: ReportFacts) -> list[Criterion]:
    o = R.original
    return [accuracy(R, "finetuned", o.accuracy_finetuned, "fine-tuned accuracy"),
            accuracy(R, "baseline_head", o.accuracy_head, "untrained-head accuracy"),
            time(R), parameters(R), gpu_memory(R), cases(R)]
