"""The reproductions of a run: the sealed records `pipeline reproduce` leaves beside it
(`results/<run>.reproductions/<UTC time>.json`, records/reproduction.py), read for the report.

Read-only and torch-free. A record that fails the checks `pipeline verify` makes on it (its seal, its verdicts
against its own entries, made against the run's tables as they are now) is still listed, marked with what is wrong,
so a stale or edited record never reads as a sound reproduction. Every text here comes from a file: the report
escapes it (analysis.markdown) wherever it shows it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from records import reproduction as rp
from records.manifest import Manifest

# The tables a reproduction names, in the order the report lists them.
SHOWN = ("samples", "predictions", "epochs", "steps", "params", "manifest")


@dataclass(frozen=True)
class Reproduction:
    made: str | None
    where: str                       # "1 x NVIDIA H200", or "cpu" on a machine without a GPU
    verdict: str | None
    tables: dict = field(default_factory=dict)   # table -> verdict, the compared tables only
    time_ratio: float | None = None  # fine-tuning seconds reproduced / committed
    code_changed: bool = False
    problems: tuple = ()             # what `verify` finds wrong with the record (empty: sound)

    @property
    def sound(self) -> bool:
        return not self.problems

    @property
    def date(self) -> str | None:
        return self.made[:10] if isinstance(self.made, str) else None


def of_folder(folder: Path | None, manifest: Manifest) -> list[Reproduction]:
    """Every reproduction record of the run in `folder`, oldest first."""
    if folder is None:
        return []
    out = []
    for path in rp.records_of(Path(folder)):
        found = tuple(rp.record_problems(path, Path(folder).name, manifest.tables, manifest.config_fingerprint))
        try:
            d = rp.read(path)
        except (OSError, ValueError, UnicodeDecodeError):
            out.append(Reproduction(made=None, where="?", verdict=None, problems=found))
            continue
        tables = d.get("tables") if isinstance(d.get("tables"), dict) else {}
        verdicts = {k: v.get("verdict") for k, v in tables.items() if isinstance(v, dict)}
        ratio = d.get("time_ratio")
        out.append(Reproduction(made=d.get("made") if isinstance(d.get("made"), str) else None,
                                where=str(d.get("gpu") or d.get("device") or "?"),
                                verdict=d.get("verdict") if isinstance(d.get("verdict"), str) else None,
                                tables={k: verdicts[k] for k in SHOWN if k in verdicts},
                                time_ratio=ratio if isinstance(ratio, (int, float)) else None,
                                code_changed=bool((d.get("code") or {}).get("changed")), problems=found))
    return sorted(out, key=lambda r: r.made or "")


def latest(runs) -> tuple[str, Reproduction] | None:
    """(run name, its newest sound reproduction) over `runs` (each with .name, .path and .manifest): the most
    recent of them all; None when no run has one."""
    found = [(r.name, x) for r in runs for x in of_folder(r.path, r.manifest) if x.sound and x.made]
    return max(found, key=lambda pair: pair[1].made) if found else None
