"""Seed studies in numbers: a run's settings repeated over several seeds (`pipeline run CONFIG --seeds 0-4`,
records/study.py), read from results/<run>.study.json and each seed's own folder.

For the fine-tuned test accuracy and the fine-tuning time over the seeds: mean, standard deviation, a 95 % t
interval for the mean, minimum and maximum; every seed's accuracy with its Wilson interval; and per test row,
whether every seed gets it right, no seed does, or it depends on the seed. Numbers only: report.qmd words them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from analysis import stats, training
from analysis.errors import ReportError
from analysis.runs import Run, load_run
from records import study as records_study

KINDS = {"stable right": "every seed right", "stable wrong": "no seed right", "seed-dependent": "depends on the seed"}


def t_quantile(df: int, level: float = 0.95) -> float:
    """The two-sided `level` quantile of Student's t with `df` degrees of freedom (e.g. 2.776 for df 4), exactly:
    P(|T| < t) has a closed form for whole df (Abramowitz & Stegun 26.7.3/4), solved by bisection."""
    if df < 1:
        return math.nan
    lo, hi = 0.0, 1e6
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _inside(mid, df) < level else (lo, mid)
    return (lo + hi) / 2


def _inside(t: float, df: int) -> float:
    """P(|T| < t) for Student's t with whole `df`."""
    theta = math.atan(t / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for k in range(1, df // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        return s * total
    if df == 1:
        return 2 * theta / math.pi
    term, total = 1.0, 1.0
    for k in range(1, (df - 1) // 2):
        term *= c2 * (2 * k) / (2 * k + 1)
        total += term
    return 2 / math.pi * (theta + s * math.cos(theta) * total)


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation, 95 % t interval for the mean, minimum and maximum of some values."""
    values: tuple[float, ...] = ()

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / self.n if self.n else math.nan

    @property
    def sd(self) -> float:
        if self.n < 2:
            return math.nan
        return math.sqrt(sum((v - self.mean) ** 2 for v in self.values) / (self.n - 1))

    @property
    def ci(self) -> tuple[float, float]:
        half = t_quantile(self.n - 1) * self.sd / math.sqrt(self.n) if self.n >= 2 else math.nan
        return (self.mean - half, self.mean + half)

    @property
    def min(self) -> float:
        return min(self.values) if self.n else math.nan

    @property
    def max(self) -> float:
        return max(self.values) if self.n else math.nan

    def covers(self, x: float) -> bool:
        """Whether `x` lies within the seeds' range (min to max, both included)."""
        return bool(self.n) and self.min <= x <= self.max


@dataclass
class Seed:
    seed: int
    name: str
    run: Run | None   # its folder as read (analysis.runs); None when the folder is not there yet

    @cached_property
    def test(self) -> pd.DataFrame:
        """Its fine-tuned test predictions with the gold label."""
        if self.run is None:
            return stats.with_gold(None, None)
        t = stats.with_gold(self.run.table("predictions"), self.run.table("samples"), "test")
        return t[t["model"] == "finetuned"]

    @property
    def accuracy(self) -> stats.Accuracy | None:
        """Its fine-tuned test accuracy; None without one, or with random weights (it would mean nothing)."""
        if self.run is None or self.run.shape_only:
            return None
        return stats.accuracy(self.test, "finetuned")

    @property
    def finetune_seconds(self) -> float:
        e = self.run.table("epochs") if self.run is not None else None
        return training.finetune_seconds(e if e is not None and len(e) else None)

    @cached_property
    def first_and_warm(self) -> tuple[float, float]:
        """Its first epoch's seconds and its later epochs' mean (training.first_and_warm)."""
        return training.first_and_warm(self.run.table("epochs") if self.run is not None else None)


@dataclass
class SeedStudy:
    name: str = ""
    path: Path | None = None
    record: dict = field(default_factory=dict)
    seeds: list[Seed] = field(default_factory=list)

    @property
    def present(self) -> bool:
        return bool(self.record)

    @property
    def missing(self) -> list[int]:
        """Seeds of the record whose folder is not there (a study in progress)."""
        return [s.seed for s in self.seeds if s.run is None]

    @property
    def scored(self) -> list[Seed]:
        """The seeds with a fine-tuned test accuracy that means something (real weights)."""
        return [s for s in self.seeds if s.accuracy is not None]

    @property
    def accuracy(self) -> Spread:
        return Spread(tuple(s.accuracy.value for s in self.scored))

    @property
    def time(self) -> Spread:
        return Spread(tuple(t for s in self.seeds if not math.isnan(t := s.finetune_seconds)))

    @property
    def first_epoch(self) -> Spread:
        """The seeds' first epochs (CUDA-graph captures and kernel selection included), in seconds."""
        return Spread(tuple(t for s in self.seeds if not math.isnan(t := s.first_and_warm[0])))

    @property
    def warm_epoch(self) -> Spread:
        """Each seed's mean later epoch, in seconds: the steady pace."""
        return Spread(tuple(t for s in self.seeds if not math.isnan(t := s.first_and_warm[1])))

    @property
    def seed_list(self) -> list[int]:
        return [s.seed for s in self.seeds]

    @property
    def governs(self) -> list[str]:
        return list(self.record.get("seed_governs") or [])

    @cached_property
    def rows(self) -> pd.DataFrame:
        """Per test row (idx) scored by every scored seed: how many seeds got it right, of how many, and its kind."""
        frames = [(s.test["pred"] == s.test["label"]).set_axis(s.test["idx"]).rename(s.seed) for s in self.scored]
        if not frames:
            return pd.DataFrame(columns=["idx", "right", "seeds", "kind"])
        joined = pd.concat(frames, axis=1, join="inner")
        right = joined.sum(axis=1).astype(int)
        kind = right.map(lambda k: "stable right" if k == len(frames) else "stable wrong" if k == 0 else "seed-dependent")
        return pd.DataFrame({"idx": joined.index.astype(int), "right": right.values, "seeds": len(frames),
                             "kind": kind.values}).sort_values("idx").reset_index(drop=True)

    @property
    def counts(self) -> dict[str, int]:
        """Test rows every seed gets right, no seed gets right, and those that depend on the seed."""
        c = self.rows["kind"].value_counts() if len(self.rows) else {}
        return {k: int(c.get(k, 0)) for k in KINDS}

    @property
    def kinds(self) -> dict[int, str]:
        """idx -> its kind in words ("every seed right", ...), for the case lists."""
        return {int(i): KINDS[k] for i, k in zip(self.rows["idx"], self.rows["kind"], strict=True)}


def seed_study(results_dir: Path, run: str) -> SeedStudy:
    """The study of `run`'s settings (results/<run>.study.json), or an absent one. A record that is not the
    pipeline's (malformed, or edited: its seal) stops the render with one line, as a damaged manifest does."""
    path = records_study.record_path(Path(results_dir), run) if run else None
    if path is None or not path.is_file():
        return SeedStudy(name=run)
    try:
        record = records_study.read(path)
    except records_study.StudyError as e:
        raise ReportError(str(e)) from None
    seeds = []
    for seed, folder in records_study.seed_folders(path, record).items():
        seeds.append(Seed(seed, folder.name, load_run(folder) if (folder / "manifest.json").is_file() else None))
    return SeedStudy(name=run, path=path, record=record, seeds=seeds)
