"""Every number the report shows, computed once per run (RunFacts) and for the whole selection
(ReportFacts). Numbers only: fmt turns them into words, report.qmd places them.

A fact that cannot exist (no predictions, a shape-only run, no runs at all) reads as missing (NaN, None,
an empty table) instead of raising, so report.qmd's inline expressions evaluate in every case, also
inside blocks that conditional content then hides.

(Over the project's ~300-line guide: it is the index of every fact the report names, each a short property
that calls the module computing it; splitting it would give report.qmd two places to look a name up.)"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd

from analysis import cases, cost, effective, processes, recipe, resources, stage_states, stats, training
from analysis.disk import Disk, MachineTotals, machine_totals, run_disk
from analysis.history import TestHistory, history_of
from analysis.original import Original, original_study
from analysis.published import PublishedResults, published_snli
from analysis.runs import Run, Selection, select
from analysis.seeds import SeedStudy, seed_study
from analysis.tuning import Tuning, tuning_of
from analysis.verification import Verification, verification_of

BASELINES = ("baseline_head", "baseline_zeroshot")


@dataclass(frozen=True)
class ParamTotals:
    stored: float = math.nan      # sum(p.numel()) on the 4-bit model
    logical: float = math.nan     # every weight once at its logical size (peft's count)
    trainable: float = math.nan
    bytes: float = math.nan

    @property
    def measured(self) -> bool:
        return not math.isnan(self.stored)

    @property
    def trainable_share(self) -> float:
        return self.trainable / self.logical if self.logical else math.nan


@dataclass
class RunFacts:
    run: Run

    def __getattr__(self, name):  # name, hardware, shape_only, cap_bytes, ... of the run itself
        if name == "run":
            raise AttributeError(name)
        return getattr(self.run, name)

    # --- accuracy ---
    @cached_property
    def test(self) -> pd.DataFrame:
        return stats.with_gold(self.run.table("predictions"), self.run.table("samples"), "test")

    @cached_property
    def validation(self) -> pd.DataFrame:
        return stats.with_gold(self.run.table("predictions"), self.run.table("samples"), "validation")

    @cached_property
    def accuracy(self) -> dict[str, stats.Accuracy]:
        found = (stats.accuracy(self.test, m) for m in stats.models_in(self.test))
        return {a.model: a for a in found if a is not None}

    def acc(self, model: str) -> stats.Accuracy:
        """The accuracy of one model; n = 0 (every figure NaN) when it has no test predictions."""
        return self.accuracy.get(model) or stats.Accuracy(model, 0, 0)

    @property
    def accuracy_meaningful(self) -> bool:
        return not self.run.shape_only

    @property
    def has_pair(self) -> bool:
        """Untrained-head baseline and fine-tuned predictions on the test rows, with real weights."""
        return self.accuracy_meaningful and {"baseline_head", "finetuned"} <= set(self.accuracy)

    @cached_property
    def paired(self) -> dict[str, stats.Paired]:
        found = {b: stats.paired(self.test, b, "finetuned") for b in BASELINES}
        return {b: p for b, p in found.items() if p is not None}

    def pair(self, baseline: str = "baseline_head") -> stats.Paired:
        return self.paired.get(baseline) or stats.Paired(baseline, "finetuned", 0, 0, 0, 0, 0)

    @cached_property
    def cases(self) -> pd.DataFrame:
        return cases.case_table(self.test, "baseline_head", "finetuned")

    def case_counts(self, baseline: str = "baseline_head") -> dict[str, int] | None:
        """Corrected / regressed / unresolved / kept against a baseline; None without both predictions."""
        c = self.cases if baseline == "baseline_head" else cases.case_table(self.test, baseline, "finetuned")
        return cases.counts(c) if len(c) else None

    @property
    def one_class(self) -> tuple[int, int, int]:
        """(label, rows, of): the class the untrained-head baseline predicts most and on how many of its test
        rows; (-1, 0, 0) without its predictions or with random weights. An untrained head often predicts one
        class for every row."""
        t = self.test[self.test["model"] == "baseline_head"] if len(self.test) else self.test
        if not self.accuracy_meaningful:
            return (-1, 0, 0)
        if not len(t):
            return (-1, 0, 0)
        top = t["pred"].value_counts()
        return (int(top.index[0]), int(top.iloc[0]), len(t))

    def epoch_test_accuracy(self) -> dict[int, float]:
        """{epoch: test accuracy of that epoch's checkpoint} where the run scored them."""
        return {int(m[6:]): a.value for m, a in self.accuracy.items() if m.startswith("epoch_") and m[6:].isdigit()}

    def counts(self, baseline: str = "baseline_head") -> dict[str, int]:
        """case_counts, with zeros where there are no cases."""
        return self.case_counts(baseline) or dict.fromkeys(cases.CATEGORIES, 0)

    # --- data ---
    def rows(self, split: str) -> int | None:
        s = self.run.table("samples")
        if s is not None and len(s):
            return int((s["split"] == split).sum())
        return ((self.run.manifest.data.get("splits") or {}).get(split) or {}).get("rows")

    @property
    def scored_rows(self) -> int:
        """Test rows the models were scored on (0 without predictions)."""
        return next(iter(self.accuracy.values())).n if self.accuracy else 0

    @property
    def validation_rows(self) -> int | None:
        v = self.validation
        return int((v["model"] == v["model"].iloc[0]).sum()) if len(v) else None

    # --- time ---
    @cached_property
    def epochs(self) -> pd.DataFrame | None:
        e = self.run.table("epochs")
        return e.sort_values("epoch").reset_index(drop=True) if e is not None and len(e) else None

    @property
    def epochs_done(self) -> int:
        return 0 if self.epochs is None else len(self.epochs)

    @property
    def epochs_total(self) -> int | None:
        tr = self.run.stage("train")
        return (tr.get("epochs_total") if tr else None) or self.run.cfg("train.epochs")

    @property
    def unfinished(self) -> bool:
        return bool(self.epochs_total) and self.epochs_done < self.epochs_total

    @property
    def finetune_seconds(self) -> float:
        return training.finetune_seconds(self.epochs)

    @property
    def tokens_per_s(self) -> float:
        return training.tokens_per_s(self.epochs)

    def stage_seconds(self, stage: str) -> float:
        """Wall time of a finished stage as recorded; NaN when it has none."""
        rec = self.run.stage(stage)
        return float(rec.seconds) if rec is not None and rec.seconds is not None else math.nan

    @property
    def warm_tokens_per_s(self) -> float:
        return training.warm_tokens_per_s(self.epochs)

    @cached_property
    def first_and_warm(self) -> tuple[float, float]:
        """The first epoch's seconds and the later epochs' mean (training.first_and_warm)."""
        return training.first_and_warm(self.epochs)

    @cached_property
    def trend(self) -> training.ValidationTrend:
        return training.validation_trend(self.epochs)

    @cached_property
    def tuning(self) -> Tuning:
        return tuning_of(self.run)

    @cached_property
    def test_history(self) -> TestHistory:
        """How many times the test rows were scored, and under which settings (manifest `test_evaluations`)."""
        return history_of(self.run)

    @property
    def test_history_matters(self) -> bool:
        """Scoring the test rows more than once misleads only where accuracy means something."""
        return self.accuracy_meaningful and (bool(self.accuracy) or self.test_history.count > 0)

    @property
    def gpu_time(self) -> cost.GpuTime:
        return cost.gpu_time(self.run)

    @property
    def recipe_differences(self) -> list:
        return recipe.differences(self.run)

    # --- provenance ---
    @cached_property
    def verification(self) -> Verification:
        """Whether `python -m pipeline verify` accepts the run folder (computed once, when first asked)."""
        return verification_of(self.run)

    # --- parameters ---
    @cached_property
    def params(self) -> ParamTotals:
        t = self.run.table("params")
        if t is not None and len(t):
            return ParamTotals(*(int(t[c].sum()) for c in ("stored_elements", "logical_params", "trainable", "bytes")))
        s = self.run.manifest.params_summary or {}
        if s.get("stored_elements") is not None:
            return ParamTotals(s["stored_elements"], s.get("logical_params", math.nan), s.get("trainable", math.nan))
        return ParamTotals()

    @property
    def model(self) -> str:
        """The base model as the run loaded it (its portable identity), in words."""
        return effective.model_text(self.run)

    # --- resources ---
    @cached_property
    def disk(self) -> Disk:
        return run_disk(self.run)

    @cached_property
    def peaks(self) -> dict:
        return resources.overall(self.run.table("resources"), self.run.table("epochs"), self.run.manifest.stages)

    @cached_property
    def stage_peaks(self) -> pd.DataFrame:
        return resources.per_stage(self.run.table("resources"), self.run.manifest.stages)

    # --- processes (a run launched over several GPUs) ---
    @property
    def world_size(self) -> int:
        return processes.world_size(self.run)

    @property
    def batch(self) -> processes.Batch:
        return processes.batch(self.run)

    @cached_property
    def per_gpu(self) -> pd.DataFrame:
        return processes.per_gpu(self.run)

    @property
    def peak_gpu_bytes(self) -> float:
        """Peak device memory as nvidia-smi shows it (NVML), else torch reserved / allocated."""
        vals = [self.peaks[k] for k in ("peak_gpu_mem_used_bytes", "peak_reserved_bytes", "peak_allocated_bytes")]
        return next((v for v in vals if not math.isnan(v)), math.nan)

    @property
    def cap(self) -> resources.CapCheck:
        if not self.run.cap_bytes:
            return resources.CapCheck()
        return resources.CapCheck(self.run.cap_bytes, self.peaks["peak_allocated_bytes"], self.peaks["peak_reserved_bytes"])

    @property
    def utilisation(self) -> resources.TrainUtilisation:
        return resources.train_utilisation(self.stage_peaks, self.epochs)

    # --- progress (analysis.stage_states, one wording per state) ---
    @property
    def gaps(self) -> list[str]:
        return stage_states.gaps(self.run)

    @property
    def skipped(self) -> list[str]:
        return stage_states.skipped(self.run)

    @property
    def skipped_for_shape(self) -> bool:
        return stage_states.skipped_for_shape(self.run)

    @property
    def why_missing(self) -> str:
        return stage_states.why_missing(self.run)


def _setting(v) -> str:
    """A config value as the YAML file would spell it (null, true); a key the run's config lacked says so."""
    if v is processes.ABSENT:
        return "(no such setting)"
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


@dataclass
class ReportFacts:
    selection: Selection
    original: Original
    runs: list[RunFacts] = field(default_factory=list)
    published: PublishedResults = field(default_factory=published_snli)  # published SNLI results (reference)
    studies: dict = field(default_factory=dict, repr=False)  # run name -> its seed study, read once (seeds_of)

    @property
    def headline(self) -> RunFacts:
        """The first run; with no runs an empty one whose every fact is missing."""
        return self.runs[0] if self.runs else RunFacts(Run.empty())

    def names(self, which) -> list[str]:
        return [f.name for f in self.runs if which(f)]

    @property
    def shape_only_runs(self) -> list[str]:
        return self.names(lambda f: f.shape_only)

    @property
    def shape_skipped_runs(self) -> list[str]:
        """Shape-only runs that left baseline and evaluate out on purpose."""
        return self.names(lambda f: f.skipped_for_shape)

    @property
    def pretrained_runs(self) -> list[str]:
        return self.names(lambda f: not f.shape_only)

    @property
    def capped(self) -> list[RunFacts]:
        return [f for f in self.runs if f.cap.applies]

    @property
    def disk_totals(self) -> MachineTotals:
        return machine_totals([f.disk for f in self.runs])

    @property
    def multi_process(self) -> list[RunFacts]:
        """Runs launched over several processes (accelerate launch), in report order."""
        return [f for f in self.runs if f.world_size > 1]

    def one_process_twin(self, f: RunFacts) -> RunFacts | None:
        """The one-process run of this report that did the same work as `f` (processes.same_work), or failing
        that the same work with other runner settings (processes.near_work; twin_differences names them)."""
        twin = processes.counterpart(f.run, [g.run for g in self.runs])
        return next((g for g in self.runs if g.run is twin), None)

    def twin_differences(self, f: RunFacts | None) -> list[str]:
        """What sets the run over several GPUs `f` apart from its one-process twin besides the number of GPUs: each
        config difference as "key a / b", then the code commit, the GPU model and the versions of torch,
        transformers, peft and bitsandbytes where they differ. Empty for a like-for-like pair (or no twin)."""
        twin = self.one_process_twin(f) if f is not None else None
        if twin is None:
            return []
        out = [f"{key} {_setting(a)} / {_setting(b)}" for key, (a, b) in processes.differences(f.run, twin.run).items()]
        if f.commit != twin.commit:
            out.append(f"code {(f.commit or 'unknown')[:7]} / {(twin.commit or 'unknown')[:7]}")
        ga, gb = ((g.gpu or {}).get("name") for g in (f, twin))
        if ga != gb:
            out.append(f"GPU {ga or 'none'} / {gb or 'none'}")
        for lib in ("torch", "transformers", "peft", "bitsandbytes"):
            va, vb = ((g.environment.get("libraries") or {}).get(lib) for g in (f, twin))
            if va != vb:
                out.append(f"{lib} {va or 'not installed'} / {vb or 'not installed'}")
        return out

    @property
    def accuracy_run(self) -> RunFacts | None:
        """The first run with real weights and a baseline / fine-tuned pair: the report's accuracy figure."""
        return next((f for f in self.runs if f.has_pair), None)

    @property
    def time_run(self) -> RunFacts | None:
        """The like-for-like run for time and memory: the original's parameter counts (its architecture), one
        process, no memory cap, epochs measured; None when the report has no such run."""
        return next((f for f in self.runs if f.name in self.param_match and f.world_size == 1 and not f.cap_bytes
                     and f.epochs is not None), None)

    @property
    def original_shape_logical(self) -> float:
        """Logical parameters of the first run with the original's stored and trainable counts (NaN without)."""
        return next((f.params.logical for f in self.runs if f.name in self.param_match), math.nan)

    def twin_of(self, f: RunFacts | None) -> RunFacts | None:
        """The run over several GPUs that did the same work as the one-process run `f`."""
        return next((g for g in self.multi_process if f is not None and self.one_process_twin(g) is f), None)

    def epoch_gap(self, a: RunFacts | None, b: RunFacts | None) -> tuple[float, int | None]:
        """(largest difference, its epoch) between two runs' per-epoch test accuracies; (NaN, None) without both."""
        ea = a.epoch_test_accuracy() if a else {}
        eb = b.epoch_test_accuracy() if b else {}
        both = sorted(set(ea) & set(eb))
        if not both:
            return (math.nan, None)
        e = max(both, key=lambda k: abs(ea[k] - eb[k]))
        return (abs(ea[e] - eb[e]), e)

    @property
    def gpu_hours(self) -> float:
        return sum(f.gpu_time.gpu_hours for f in self.runs)

    @property
    def remote_code_runs(self) -> list[str]:
        """Runs whose config let the model repository's own code run (model.trust_remote_code: true)."""
        return self.names(lambda f: f.runs_remote_code)

    @property
    def others_rescored(self) -> list[RunFacts]:
        """Runs besides the headline whose test rows were also scored under a configuration since superseded."""
        return [f for f in self.runs[1:] if f.test_history_matters and f.test_history.superseded]

    @property
    def verified_runs(self) -> list[str]:
        return self.names(lambda f: f.verification.passed)

    @property
    def unsealed_runs(self) -> list[str]:
        """Runs whose manifest predates the store's seal: `pipeline verify` refuses them for being older."""
        return self.names(lambda f: not f.verification.sealed)

    def seeds_of(self, f: RunFacts | None) -> SeedStudy:
        """The seed study of a run's settings (results/<run>.study.json, analysis/seeds.py); absent when none."""
        name = f.name if f is not None else ""
        if name not in self.studies:
            self.studies[name] = seed_study(self.selection.results_dir, name)
        return self.studies[name]

    @property
    def param_match(self) -> list[str]:
        """Runs whose stored and trainable counts equal the original study's exactly."""
        return self.names(lambda f: self.original.same_params(f.params.stored, f.params.trainable))


def report_facts(results_dir=None, runs=None) -> ReportFacts:
    """Every fact of the selected runs (REPORT_RESULTS / REPORT_RUNS / results/report.yaml, see runs.select)."""
    sel = select(results_dir or os.environ.get("REPORT_RESULTS"), runs)
    return ReportFacts(selection=sel, original=original_study(), runs=[RunFacts(r) for r in sel.runs])
