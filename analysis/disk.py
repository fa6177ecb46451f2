"""Disk: what a run itself takes, and what the whole filesystem held, kept apart.

The run's own footprint (its checkpoints, its results and the model cache it loads from, shared by runs of one model) is recorded in the
manifest (`footprint`) by runs since that was added; the resource sampler measures the whole filesystem
holding the checkpoints (`disk_used_bytes`), which counts everything else on that disk too. The first is the
run's figure; the second is the kind of figure a machine total is."""
from __future__ import annotations

import math
from dataclasses import dataclass

from analysis.runs import Run

PARTS = ("checkpoints", "results", "model_cache")


@dataclass(frozen=True)
class Disk:
    own: float = math.nan                 # bytes the run owns (manifest footprint), NaN when not recorded
    parts: tuple = ()                     # (part, bytes) of the footprint
    model_cache: str | None = None        # the cache folder's name
    filesystem_start: float = math.nan    # the whole filesystem at the run's first sample
    filesystem_peak: float = math.nan     # ... at its fullest

    @property
    def recorded(self) -> bool:
        return not math.isnan(self.own)

    @property
    def filesystem_growth(self) -> float:
        """How much the whole filesystem grew while the run was sampled (what the run wrote, plus anything else
        that wrote to that disk meanwhile)."""
        return self.filesystem_peak - self.filesystem_start

    @property
    def added(self) -> float:
        """What the run put on the disk: its recorded footprint, else the filesystem's growth during the run."""
        return self.own if self.recorded else self.filesystem_growth


def run_disk(run: Run) -> Disk:
    fp = run.manifest.footprint or {}
    res = run.table("resources")
    start = peak = math.nan
    if res is not None and len(res):
        used = res.sort_values("time")["disk_used_bytes"].dropna()
        if len(used):
            start, peak = float(used.iloc[0]), float(used.max())
    total = fp.get("total_bytes")
    parts = tuple((p, float(fp[f"{p}_bytes"])) for p in PARTS if fp.get(f"{p}_bytes") is not None)
    return Disk(float(total) if total is not None else math.nan, parts, fp.get("model_cache"), start, peak)


@dataclass(frozen=True)
class MachineTotals:
    """Across runs: how full the filesystem already was before a run wrote anything, against the most any run
    put on it. The first dwarfing the second is why a disk figure like the original study's reads as a machine
    total."""
    start_min: float = math.nan
    start_max: float = math.nan
    added_max: float = math.nan
    runs: int = 0

    @property
    def known(self) -> bool:
        return self.runs > 0


def machine_totals(disks: list[Disk]) -> MachineTotals:
    known = [d for d in disks if not math.isnan(d.filesystem_start) and not math.isnan(d.added)]
    if not known:
        return MachineTotals()
    return MachineTotals(min(d.filesystem_start for d in known), max(d.filesystem_start for d in known),
                         max(d.added for d in known), len(known))
