"""Accuracy: every model's test accuracy with its interval, the paired tests, per-class scores and the
per-epoch validation."""
from __future__ import annotations

from analysis import fmt, stats
from analysis.cases import LABELS
from analysis.effective import short_model
from analysis.facts import RunFacts
from analysis.markdown import Markdown, bullets, text
from analysis.original import Original
from analysis.published import published_snli
from analysis.tables import bold, table
from analysis.wording import plural, significance

ROLES = {
    "baseline_head": "pretrained model with an untrained classification head (the original study's baseline)",
    "baseline_zeroshot": "pretrained causal LM scoring the three label words after the prompt (zero-shot)",
    "finetuned": "final adapter after the last epoch",
}
MAIN_MODELS = ("baseline_head", "baseline_zeroshot", "finetuned")


def role(model: str) -> str:
    if model.startswith("epoch_") and model[6:].isdigit():
        return f"checkpoint after epoch {model[6:]}"
    return ROLES.get(model, model)


def model_table(f: RunFacts, o: Original, models=None) -> Markdown:
    """Every model's test accuracy (or only `models`, e.g. without each epoch's checkpoint)."""
    original = {"baseline_head": o.accuracy_head, "finetuned": o.accuracy_finetuned}
    rows = [[m, role(m), f"{a.correct} / {a.n}", fmt.pct(a.value), f"{fmt.pct(a.ci[0])} – {fmt.pct(a.ci[1])}",
             f"{fmt.pct(original[m], 0)} ({o.label})" if m in original else ""] for m, a in f.accuracy.items()
            if models is None or m in models]
    return table(["model", "what it is", "correct", "accuracy", "95 % interval (Wilson)", o.label], rows,
                 align="llrrrl", widths=[14, 36, 8, 9, 16, 14])


def paired_table(f: RunFacts) -> Markdown:
    rows = [[f"{b} vs finetuned", p.n, p.both_right, p.a_only, p.b_only, p.both_wrong, fmt.pvalue(p.p_value)]
            for b, p in f.paired.items()]
    return table(["comparison", "pairs", "both right", "only baseline right", "only fine-tuned right", "both wrong",
                  "exact McNemar p"], rows, align="lrrrrrr")


def paired_findings(f: RunFacts) -> Markdown:
    """One line per paired comparison: rows fixed and broken, p and what it means."""
    return bullets(f"{text(b)} vs finetuned: fine-tuning fixed {plural(p.b_only, 'row')} and broke {p.a_only}; "
                   f"p = {fmt.pvalue(p.p_value)}, {significance(p)}." for b, p in f.paired.items())


def main_models(f: RunFacts) -> list[str]:
    """The baselines and the final model the run has (each epoch's checkpoint left out): the main body's models."""
    return [m for m in MAIN_MODELS if m in f.accuracy]


def per_class_table(f: RunFacts) -> Markdown:
    rows = []
    for m in main_models(f):
        for r in stats.per_class(f.test, m).itertuples():
            rows.append([m, r.label, fmt.num(r.precision, 2, "undefined (never predicted)"), fmt.num(r.recall, 2),
                         fmt.num(r.f1, 2, "undefined"), r.predicted, r.support])
    return table(["model", "label", "precision", "recall", "F1", "predicted", "gold (support)"], rows, align="llrrrrr")


def macro_f1(f: RunFacts) -> Markdown:
    """e.g. "baseline_head 0.154, finetuned 0.775"."""
    return Markdown(", ".join(f"{text(m)} {fmt.num(stats.macro_f1(f.test, m), 3)}" for m in main_models(f)))


def epoch_table(f: RunFacts) -> Markdown:
    """Validation per epoch from the epochs table, and each checkpoint's test accuracy where it was predicted."""
    if f.epochs is None:
        return Markdown("")
    rows = []
    for r in f.epochs.itertuples():
        test = f.accuracy.get(f"epoch_{int(r.epoch)}")
        rows.append([int(r.epoch), fmt.num(r.train_loss, 3), fmt.num(r.val_loss, 3), fmt.pct(r.val_accuracy),
                     fmt.pct(test.value) if test else "not predicted"])
    return table(["epoch", "training loss (mean)", "validation loss", "validation accuracy",
                  "test accuracy of the checkpoint"], rows, align="rrrrr")


def published_table(f: RunFacts) -> Markdown:
    """Published SNLI test accuracies (external reference data, cited) beside this run's fine-tuned accuracy."""
    p = published_snli()
    rows = [[r.model, fmt.pct(r.accuracy), r.citation] for r in sorted(p.results, key=lambda r: r.accuracy)]
    if "finetuned" in f.accuracy and f.accuracy_meaningful:
        a = f.acc("finetuned")
        rows.append([bold(f"this report: {short_model(f.run)}, fine-tuned"),
                     bold(f"{fmt.pct(a.value)} [{fmt.pct(a.ci[0], 0)}, {fmt.pct(a.ci[1], 0)}]"),
                     f"{a.n} strided test rows; run {f.name}"])
    return table(["model", "test accuracy", "source"], rows, align="lrl", widths=[30, 12, 58])


def label_name(i: int) -> str:
    """A class index as its label ("entailment"); "no class" for the -1 of a run without predictions."""
    return LABELS[i] if 0 <= i < len(LABELS) else "no class"
