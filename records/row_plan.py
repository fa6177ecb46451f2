"""How many rows each split of a run will use, from the config and the size of its source split, before anything
runs: what `pipeline status` shows, and the one line the data stage prints when a split is capped by a limit the
user never wrote (issue 20: a silent cap). Reads a local split's size from its parquet footer, not its rows.

The counts are of rows sampled (offset, offset + stride, ... up to the limit); rows without a gold label are
dropped after sampling, so a run may keep a few fewer (the data stage says how many)."""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow.parquet as pq

from records.config import ExperimentConfig
from records.fingerprints import source_files
from records.schema import SPLITS


@dataclass(frozen=True)
class SplitRows:
    role: str                  # train | validation | test
    source_split: str
    source_rows: int | None    # the source split's size; None where it cannot be read here (hub, absent file)
    stride: int
    offset: int
    limit: int | None
    limit_by_default: bool     # the limit is DataConfig's default, not one the config's text sets

    @classmethod
    def of(cls, cfg: ExperimentConfig, role: str, source_rows: int | None) -> SplitRows:
        s = getattr(cfg.data, role)
        return cls(role, s.source_split, source_rows, s.stride, s.offset, s.limit,
                   role in cfg.limits_by_default and s.limit is not None)

    @property
    def positions(self) -> int | None:
        """Rows the stride and offset take before the limit."""
        return None if self.source_rows is None else len(range(self.offset, self.source_rows, self.stride))

    @property
    def rows(self) -> int | None:
        """Rows sampled: the positions, cut at the limit."""
        p = self.positions
        return None if p is None else p if self.limit is None else min(p, self.limit)

    @property
    def capped(self) -> bool:
        return self.limit is not None and self.positions is not None and self.positions > self.limit

    def _limit_words(self) -> str:
        if self.limit is None:
            return "no limit"
        return f"the default limit: {self.limit}" if self.limit_by_default else f"limit: {self.limit}"

    def line(self) -> str:
        """e.g. "train: 1,000 of 550,152 rows (split 'train' of 550,152 rows, stride 1, offset 0; capped by the
        default limit: 1000; set data.train.limit: null for all)"."""
        how = f"stride {self.stride}, offset {self.offset}"
        if self.positions is None:
            most = f"at most {self.limit:,} rows" if self.limit is not None else "every row it takes"
            return f"{self.role}: {most} (split {self.source_split!r} of a size not known here, {how}; " \
                   f"{self._limit_words()})"
        taken = f"{self.rows:,} of {self.positions:,} rows" if self.capped else f"{self.rows:,} rows"
        cap = f"capped by {self._limit_words()}" if self.capped else self._limit_words()
        fix = f"; set data.{self.role}.limit: null for all" if self.capped and self.limit_by_default else ""
        return f"{self.role}: {taken} (split {self.source_split!r} of {self.source_rows:,} rows, {how}; {cap}{fix})"

    def default_cap_note(self) -> str | None:
        """The line, when a limit the user never wrote cuts rows off; None otherwise."""
        return self.line() if self.capped and self.limit_by_default else None


def source_sizes(cfg: ExperimentConfig) -> tuple[dict[str, int], str | None]:
    """({source split: rows}, why some are missing or None): a local split's size from its parquet footer."""
    if cfg.data.source == "hub":
        return {}, f"split sizes not known here: the hub's {cfg.data.name} is read by the data stage"
    sizes, missing = {}, []
    for split, path in source_files(cfg).items():
        try:
            sizes[split] = pq.ParquetFile(path).metadata.num_rows
        except (OSError, ValueError) as e:  # absent, unreadable or not parquet: the data stage names the fix
            missing.append(f"{path} ({type(e).__name__})" if path.exists() else f"{path} is absent")
    return sizes, ("split sizes not known here: " + "; ".join(missing)) if missing else None


def plan(cfg: ExperimentConfig) -> tuple[list[SplitRows], str | None]:
    """Every split's rows and, where sizes are unknown, why."""
    sizes, why = source_sizes(cfg)
    return [SplitRows.of(cfg, r, sizes.get(getattr(cfg.data, r).source_split)) for r in SPLITS], why
