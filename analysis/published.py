"""Published SNLI accuracies (analysis/published_snli.yaml): external reference data with a citation each,
to place this report's accuracies; not results of this project, and measured on the full test split."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

PUBLISHED_FILE = Path(__file__).resolve().parent / "published_snli.yaml"


@dataclass(frozen=True)
class Published:
    model: str
    accuracy: float
    citation: str


@dataclass(frozen=True)
class PublishedResults:
    label: str
    split: str
    test_rows: int
    train_rows: int
    results: tuple[Published, ...]


def published_snli(path: Path = PUBLISHED_FILE) -> PublishedResults:
    d = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return PublishedResults(label=d["label"], split=d["split"], test_rows=d["test_rows"], train_rows=d["train_rows"], results=tuple(
        Published(r["model"], float(r["accuracy"]), " ".join(str(r["citation"]).split())) for r in d["results"]))
