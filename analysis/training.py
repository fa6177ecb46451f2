"""Facts of the training epochs (epochs.parquet): fine-tuning time as the original study counts it, tokens
per second, padding, and what the validation curve says about over-fitting."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

# Validation loss counts as risen when the last epoch's is this much above its lowest (relative) ...
LOSS_RISE = 0.10
# ... and validation accuracy as held when the last epoch's is at most this far below the lowest-loss epoch's.
ACCURACY_HOLD = 0.02


def finetune_seconds(epochs: pd.DataFrame | None) -> float:
    """The training steps of all epochs, without evaluation: the original study's fine-tuning time."""
    return float(epochs["seconds"].sum()) if epochs is not None else math.nan


def first_and_warm(epochs: pd.DataFrame | None) -> tuple[float, float]:
    """(the first epoch's seconds, the mean of the later epochs'): the first holds the CUDA-graph captures and
    the process's first kernel selection, the later ones are the steady pace. NaN where there is no such epoch."""
    if epochs is None or not len(epochs):
        return (math.nan, math.nan)
    s = epochs.sort_values("epoch")["seconds"]
    return (float(s.iloc[0]), float(s.iloc[1:].mean()) if len(s) > 1 else math.nan)


def tokens_per_s(epochs: pd.DataFrame | None) -> float:
    if epochs is None or not epochs["seconds"].sum():
        return math.nan
    return float(epochs["tokens"].sum() / epochs["seconds"].sum())


def warm_tokens_per_s(epochs: pd.DataFrame | None) -> float:
    """Tokens/s of the epochs after the first (the first holds the CUDA-graph captures and kernel selection);
    a one-epoch run's own figure."""
    if epochs is None or not len(epochs):
        return math.nan
    return tokens_per_s(epochs.iloc[1:] if len(epochs) > 1 else epochs)


def padding_share(tokens, padded_tokens) -> float:
    """Share of the computed tokens that were padding."""
    return 1 - tokens / padded_tokens if padded_tokens else math.nan


@dataclass(frozen=True)
class ValidationTrend:
    """The validation curve from its lowest loss to the last epoch.

    kind: "over-confident" (loss rose, accuracy held: the model grew more confident in its wrong answers),
          "over-fitting" (loss rose and accuracy fell), "steady" (loss did not rise), or "unknown" (fewer
          than two epochs with a validation loss)."""
    kind: str = "unknown"
    best_epoch: int | None = None
    best_loss: float = math.nan
    best_accuracy: float = math.nan
    last_epoch: int | None = None
    last_loss: float = math.nan
    last_accuracy: float = math.nan


def validation_trend(epochs: pd.DataFrame | None) -> ValidationTrend:
    if epochs is None:
        return ValidationTrend()
    e = epochs.dropna(subset=["val_loss"]).sort_values("epoch")
    if len(e) < 2:
        return ValidationTrend()
    best, last = e.loc[e["val_loss"].idxmin()], e.iloc[-1]
    rose = last["val_loss"] > best["val_loss"] * (1 + LOSS_RISE)
    held = last["val_accuracy"] >= best["val_accuracy"] - ACCURACY_HOLD
    kind = "steady" if not rose else "over-confident" if held else "over-fitting"
    return ValidationTrend(kind, int(best["epoch"]), float(best["val_loss"]), float(best["val_accuracy"]),
                           int(last["epoch"]), float(last["val_loss"]), float(last["val_accuracy"]))
