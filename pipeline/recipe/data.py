"""Stage `data`: sample the splits by stride and write the samples table, plus the manifest's `data` block
(source, fingerprint, note, per-split counts).

Rows for the experiment: strided samples of the splits as published, with their source indices.

A split is sampled by position (offset, offset+stride, ...) over the split exactly as the source
publishes it, so `idx` is the row's index there and anyone can look the row up. Rows without a gold
label (SNLI's `-`, label -1) are dropped *after* sampling and counted, so the ids stay comparable
with the original study's protocol.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from records.config import ConfigError, ExperimentConfig, from_hub
from records.fingerprints import source_files
from records.hashing import bytes_sha256
from records.row_plan import SplitRows
from records.schema import SPLITS, TABLES

REQUIRED = ("premise", "hypothesis", "label")


def _load_split(cfg: ExperimentConfig, split: str) -> pd.DataFrame:
    if cfg.data.source == "hub":
        try:
            import datasets  # hub-only dependency: imported lazily
        except ImportError:
            raise ConfigError("data.source: hub needs the `datasets` package (fix: pip install datasets, "
                              "or use data.source: local)") from None
        with from_hub("data.name", cfg.data.name):
            ds = datasets.load_dataset(cfg.data.name, revision=cfg.data.revision, split=split)
        df = ds.to_pandas()
    else:
        path = source_files(cfg)[split]
        df = _read_parquet(path)
        if "idx" in df.columns and not (df["idx"].to_numpy() == range(len(df))).all():
            raise ConfigError(f"data.path: {path} holds a subset (its idx is not 0..{len(df) - 1}); "
                              "point data.path at the full split so strides index the split as published")
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ConfigError(f"data: split {split!r} lacks columns {missing} (needs premise, hypothesis, label)")
    return df.reset_index(drop=True)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        if path.stat().st_size == 0:
            raise ConfigError(f"data.path: {path} is empty (0 bytes) (fix: replace it with the split's parquet file)")
        return pd.read_parquet(path)
    except ConfigError:
        raise
    except Exception as e:  # pyarrow raises several types for a file that is not parquet
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise ConfigError(f"data.path: {path} is not a readable parquet file ({first}) (fix: point data.path "
                          f"at a folder of parquet files)") from None


def _plain(v):
    """A numpy scalar as the Python value it holds (shown as 7, not np.int64(7))."""
    return v.item() if hasattr(v, "item") else v


def _check_texts(rows: pd.DataFrame, split: str) -> None:
    """Premise and hypothesis are text: a null would be fed to the model as the word "None", a number as
    its digits, silently changing the experiment."""
    for col in ("premise", "hypothesis"):
        bad = rows[~rows[col].map(lambda v: isinstance(v, str))]
        if len(bad):
            v = _plain(bad[col].iloc[0])
            what = "is null" if v is None or (isinstance(v, float) and v != v) else \
                f"is {type(v).__name__} {v!r}, not text"
            raise ConfigError(f"data: split {split!r} row {bad.index[0]}: {col} {what} ({len(bad)} such rows "
                              f"among those sampled; fix: repair the file, or sample other rows)")


def load_samples(cfg: ExperimentConfig) -> tuple[pd.DataFrame, dict]:
    """-> (samples table, per-role summary for the manifest)."""
    cache: dict[str, pd.DataFrame] = {}
    frames, summary, taken = [], {}, {}
    for role in SPLITS:
        s = getattr(cfg.data, role)
        if s.source_split not in cache:
            cache[s.source_split] = _load_split(cfg, s.source_split)
        full = cache[s.source_split]
        positions = list(range(s.offset, len(full), s.stride))
        note = SplitRows.of(cfg, role, len(full)).default_cap_note()
        if note:  # a cap the user never wrote is said aloud (issue 20)
            print(f"  {note}")
        if s.limit is not None:
            positions = positions[: s.limit]
        if not positions:
            raise ConfigError(f"data.{role}: offset {s.offset} is past the end of split "
                              f"{s.source_split!r} ({len(full)} rows)")
        rows = full.iloc[positions]
        labelled = rows[rows["label"].isin([0, 1, 2])]
        bad = rows[~rows["label"].isin([-1, 0, 1, 2])]
        if len(bad):
            raise ConfigError(f"data: split {s.source_split!r} has labels outside -1..2 "
                              f"(e.g. {_plain(bad['label'].iloc[0])!r}); expected SNLI's 0/1/2 and -1")
        if not len(labelled):
            raise ConfigError(f"data.{role}: all {len(rows)} rows sampled from split {s.source_split!r} have no gold "
                              f"label (-1), so none is left (fix: change data.{role}'s stride, offset or limit, "
                              f"or use a labelled split)")
        _check_texts(labelled, s.source_split)
        frames.append(pd.DataFrame({
            "split": role, "source_split": s.source_split,
            "idx": labelled.index.to_numpy(dtype="int64"),  # position in the split as published
            "premise": labelled["premise"].astype(str).to_numpy(),
            "hypothesis": labelled["hypothesis"].astype(str).to_numpy(),
            "label": labelled["label"].astype("int64").to_numpy(),
        }))
        taken[role] = (s.source_split, set(frames[-1]["idx"]))
        summary[role] = {
            "source_split": s.source_split, "stride": s.stride, "offset": s.offset, "limit": s.limit,
            "rows_sampled": len(positions), "rows_dropped_no_label": int(len(rows) - len(labelled)),
            "rows": len(labelled),
            "label_counts": {str(k): int(v) for k, v in labelled["label"].value_counts().sort_index().items()},
        }
    # A row used for training must never be scored as validation or test.
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        (sa, ia), (sb, ib) = taken[a], taken[b]
        if sa == sb and ia & ib:
            raise ConfigError(f"data.{a} and data.{b}: {len(ia & ib)} rows of split {sa!r} are in both "
                              f"(e.g. idx {min(ia & ib)}); change the stride or offset so they are disjoint")
    samples = pd.concat(frames, ignore_index=True)[TABLES["samples"].names]
    return samples, summary


def samples_fingerprint(samples: pd.DataFrame) -> str:
    blob = pd.util.hash_pandas_object(samples, index=False).to_numpy().tobytes()
    return bytes_sha256(blob)[:16]


# ------------------------------------------------------------------------------------------ the stage
def prepare(ctx) -> None:
    """Bad data is bad input: read and check the source before anything is written."""
    ctx.sampled = load_samples(ctx.cfg)


def run(ctx) -> dict:
    samples, summary = ctx.sampled
    ctx.store.write("samples", samples)
    ctx.samples = samples  # later stages of this process read these rows, not the file again
    data = ctx.cfg.data
    source = f"hub:{data.name}" if data.source == "hub" else f"local:{data.path}"
    ctx.store.update_manifest(data={"source": source, "fingerprint": samples_fingerprint(samples),
                                    "note": data.note, "splits": summary})
    dropped = sum(v["rows_dropped_no_label"] for v in summary.values())
    print("  " + ", ".join(f"{k}: {v['rows']} rows" for k, v in summary.items()) +
          f"; {dropped} without a gold label dropped")
    return {}
