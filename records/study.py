"""Seed studies: one config's resolved settings run once per seed (`pipeline run CONFIG --seeds 0-4`), and the
record that ties the seeds together, results/<study>.study.json beside the seed folders.

Each seed is an ordinary run, `<study>-seed<k>` under the same results folder, made with `--set seed=<k> --set
run=<study>-seed<k>` on top of the study's own overrides (and its tune's choice): its manifest, tables and seal are
those of any run, and `pipeline verify` checks it as one. The study record says what the seeds share (config file,
overrides, the tune's choice applied to every seed, the stages asked for, the fingerprint of the resolved config
without `seed` and `run`), which seeds it holds and their folders (names only: the record and its seed folders
move together), what the seed governs and what it does not. It is written through the results store's atomic
write with a seal of the same kind as a manifest's, so an edit shows.

What `verify` checks of a study (`problems`): the seal; every seed folder present and passing `verify` on its own;
each seed's manifest made from the study's shared settings (config path, overrides + the seed's two, tuned
overrides, stages, resolved config without seed and run) with its own seed; and the same data sample in every
seed (equal samples tables: the data stage reads no seed, records/graph.py).

Torch-free: the report reads studies through here.
"""
from __future__ import annotations

import json
from pathlib import Path

from records.config import PROJECT_ROOT
from records.errors import BadInput, shown
from records.hashing import fingerprint
from records.manifest import Manifest, ManifestError, loads, seal_of
from records.store import atomic_write_json
from records.verify import problems as run_problems

SUFFIX = ".study.json"
SCHEMA_VERSION = 1
# What `seed` drives in this pipeline (the config field's help, records/config.py; pipeline/model/loading.py seeds
# torch before the head is built and the LoRA adapters are added; pipeline/engine/loop.py draws each epoch's order).
GOVERNS = ("the classification head's initialisation", "the LoRA adapters' initialisation",
           "the dropout masks (LoRA dropout, and the model's own where it has any)",
           "the order of the training rows in each epoch")
RANDOM_WEIGHTS = "the base model's random weights (model.source: random draws them from the seed)"
FIXED = ("the data sample: the data stage reads no seed (records/graph.py), so every seed trains, validates and is "
         "scored on the same rows (verify checks that the seeds' samples tables are identical)")


class StudyError(BadInput):
    """A study record that cannot be read; str(err) names the file."""


def seed_run(study: str, seed: int) -> str:
    return f"{study}-seed{seed}"


def seed_overrides(study: str, seed: int) -> list[str]:
    """What one seed's run adds to the study's overrides: its seed and its own run name (folder)."""
    return [f"seed={seed}", f"run={seed_run(study, seed)}"]


def record_path(results_dir: Path, study: str) -> Path:
    return Path(results_dir) / f"{study}{SUFFIX}"


def shared_fingerprint(config: dict) -> str:
    """The fingerprint of a resolved config without what differs between the seeds of one study."""
    return fingerprint({k: v for k, v in config.items() if k not in ("seed", "run")})


def build(*, study: str, description: str, config_path: str, overrides: list[str], tuned: dict | None,
          stages: list[str] | None, seeds: list[int], config: dict, weights: str, command: str) -> dict:
    """The study record (unsealed): plain data, written by `write`."""
    governs = [*GOVERNS, *([RANDOM_WEIGHTS] if weights == "random" else [])]
    return {"schema_version": SCHEMA_VERSION, "kind": "seed study", "study": study, "description": description,
            "config_path": config_path, "overrides": list(overrides), "tuned": tuned,
            "stages_requested": list(stages) if stages else None, "seeds": [
                {"seed": s, "run": seed_run(study, s), "overrides": seed_overrides(study, s)} for s in seeds],
            "shared_config_fingerprint": shared_fingerprint(config), "weights": weights,
            "seed_governs": governs, "same_for_every_seed": FIXED, "command": command}


def write(path: Path, record: dict) -> None:
    atomic_write_json(Path(path), {**record, "seal": seal_of(record)})


def read(path: Path) -> dict:
    """The study record at `path`, seal checked; StudyError (one line naming the file) otherwise."""
    path = Path(path)
    try:
        raw = loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StudyError(f"{path}: no such study record (fix: run `python -m pipeline run CONFIG --seeds ...`)") \
            from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise StudyError(f"{path}: cannot be read as a study record ({shown(str(e).splitlines()[0], 200)})") from None
    if not isinstance(raw, dict) or raw.get("kind") != "seed study":
        raise StudyError(f"{path}: not a seed study record (fix: name a <study>{SUFFIX} file the pipeline wrote)")
    if raw.get("seal") != seal_of(raw):
        raise StudyError(f"{path} was changed after the pipeline wrote it (its seal does not match; fix: run the "
                         f"study again instead of editing the record)")
    if not isinstance(raw.get("seeds"), list) or not all(
            isinstance(s, dict) and isinstance(s.get("seed"), int) and isinstance(s.get("run"), str)
            for s in raw["seeds"]):
        raise StudyError(f"{path}: `seeds` must be a list of {{seed, run}} (fix: run the study again)")
    return raw


def seed_folders(path: Path, record: dict) -> dict[int, Path]:
    """seed -> its run folder, beside the study record (the record names the folder, never a path elsewhere)."""
    return {s["seed"]: Path(path).parent / Path(s["run"]).name for s in record["seeds"]}


def problems(path: Path, root: Path | None = None) -> list[str]:
    """What keeps the study at `path` from passing `verify`, one line each (empty: it passes)."""
    try:
        record = read(path)
    except StudyError as e:
        return [str(e)]
    out, samples = [], {}
    for seed, folder in seed_folders(path, record).items():
        if not (folder / "manifest.json").is_file():
            out.append(f"{path}: seed {seed}'s run folder {folder} is missing (fix: run the study again; finished "
                       f"seeds are skipped)")
            continue
        out += run_problems(folder, root or PROJECT_ROOT)
        try:
            m = Manifest.read(folder / "manifest.json")
        except ManifestError:
            continue  # run_problems said so
        out += _shared(path, record, seed, m)
        samples[seed] = ((m.tables or {}).get("samples") or {}).get("sha256")
    if len(set(samples.values())) > 1:
        out.append(f"{path}: the seeds' data samples differ ({', '.join(f'seed {s}: {str(h)[:12]}' for s, h in samples.items())}); "
                   f"a seed study compares seeds on the same rows (fix: run the study again from one config)")
    return out


def _shared(path: Path, record: dict, seed: int, m: Manifest) -> list[str]:
    """Lines where seed `seed`'s manifest was not made from the study's shared settings with that seed."""
    study = record.get("study")
    want = {"config_path": record.get("config_path"),
            "overrides": [*(record.get("overrides") or []), *seed_overrides(study, seed)],
            "tuned overrides": ((record.get("tuned") or {}).get("overrides")),
            "stages asked for": record.get("stages_requested"),
            "seed": seed, "run": seed_run(study, seed),
            "resolved config without seed and run": record.get("shared_config_fingerprint")}
    have = {"config_path": m.config_path, "overrides": m.overrides,
            "tuned overrides": (m.tuned or {}).get("overrides"),
            "stages asked for": m.stages_requested if record.get("stages_requested") else None,
            "seed": (m.config or {}).get("seed"), "run": m.run,
            "resolved config without seed and run": shared_fingerprint(m.config or {})}
    return [f"{path}: seed {seed}'s manifest has {key} {shown(json.dumps(have[key]), 200)}, the study "
            f"{shown(json.dumps(want[key]), 200)} (fix: run the study again)" for key in want if have[key] != want[key]]


def summary(path: Path) -> str:
    """One line for a study that passes."""
    record = read(path)
    seeds = [s["seed"] for s in record["seeds"]]
    tuned = f", tune trial {record['tuned'].get('chosen_trial')}" if record.get("tuned") else ""
    return (f"{path}: verified seed study ({len(seeds)} seeds: {', '.join(map(str, seeds))}; config "
            f"{record.get('config_path')} + {len(record.get('overrides') or [])} overrides{tuned}; every seed "
            f"folder verified)")


def find(targets: list[str], results: Path) -> list[Path]:
    """The study records named (a path or a study name under results/); none named: every one under results/."""
    if not targets:
        return sorted(Path(results).glob(f"*{SUFFIX}")) if Path(results).is_dir() else []
    out = []
    for t in targets:
        p = Path(t)
        out.append(p if p.name.endswith(SUFFIX) and (p.is_file() or "/" in t) else Path(results) / f"{t}{SUFFIX}")
    return out


def is_study(target: str, results: Path) -> bool:
    """Whether a `verify` argument names a study record rather than a run folder."""
    p = Path(target)
    return p.name.endswith(SUFFIX) or (not p.is_dir() and not (Path(results) / target).is_dir()
                                       and record_path(results, target).is_file())
