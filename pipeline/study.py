"""`pipeline run CONFIG --seeds 0-4`: the same resolved settings once per seed, each seed a full run of its own.

Seed k is the run `<run>-seed<k>` in the same results folder, made with `--set seed=<k> --set run=<run>-seed<k>` on
top of the call's overrides, and with the call's tune choice when it has one (`--tuned` takes the tuning record of
`<run>` itself, `--tuned-from RUN` another run's; the tune is never run again, let alone once per seed). Every seed
is planned and its config checked before anything runs; then the study record (records/study.py) is written, then
the seeds run: one after the other in this process, or with `--jobs N` (default: one per visible GPU) side by side,
each its own `pipeline run` on its own GPU (pipeline/jobs.py, as `tune --jobs` runs trials). A seed is an ordinary
run, so one that is done is skipped in seconds, and a killed study, run again, resumes the seed in progress from its
last complete epoch. `pipeline status CONFIG --seeds ...` lists each seed's state.

The study holds checkpoints/<run>/seeds/.lock while it works (two calls of one study would write one record), and
keeps its logs beside it (seeds/logs/seed<k>.log, side by side only).
"""
from __future__ import annotations

import re
import shlex

from pipeline.configs import load_config, load_tuned
from pipeline.jobs import Job, default_jobs, run_side_by_side, sets
from pipeline.status import status
from records import study as records_study
from records.config import ConfigError, ExperimentConfig, project_path
from records.errors import shown
from records.fingerprints import stage_fingerprints
from records.graph import NAMES, order
from records.history import test_accuracy
from records.lock import held
from records.store import RunStore
from records.tuned import flag, refuse_untuned

MAX_SEEDS = 1000  # a typo such as 0-40000 would make that many run folders
_PART = re.compile(r"^(\d+)(?:-(\d+))?$")
FIX = "fix: e.g. --seeds 0-4 or --seeds 0,3,7"


class SeedsFailed(RuntimeError):
    """Some seeds of a study run side by side failed; the message names them and their logs."""


def parse_seeds(text: str) -> list[int]:
    """`0-4` -> [0, 1, 2, 3, 4]; `0,3,7` -> [0, 3, 7]; both mixed (`0-2,7`). ConfigError naming --seeds otherwise."""
    seeds: list[int] = []
    for part in str(text).split(","):
        m = _PART.match(part.strip())
        if not m:
            raise ConfigError(f"--seeds: {shown_part(part)} is not a seed or a range of seeds ({FIX})")
        low, high = int(m[1]), int(m[2] if m[2] is not None else m[1])
        if high < low:
            raise ConfigError(f"--seeds: range {low}-{high} runs backwards ({FIX})")
        if high - low >= MAX_SEEDS:
            raise ConfigError(f"--seeds: {low}-{high} is more than {MAX_SEEDS} seeds ({FIX})")
        seeds += range(low, high + 1)
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise ConfigError(f"--seeds: seed {twice[0]} is given twice ({FIX})")
    if len(seeds) > MAX_SEEDS:
        raise ConfigError(f"--seeds: more than {MAX_SEEDS} seeds ({FIX})")
    return seeds


def shown_part(part: str) -> str:
    return repr(shown(part.strip(), 40)) if part.strip() else "an empty entry"


class Study:
    """A study's plan: its name, shared settings and one (seed, overrides, config, tuned) per seed, all checked."""

    def __init__(self, config_path: str, overrides: list[str], seeds: list[int], tuned: bool = False,
                 tuned_from: str | None = None, stages: list[str] | None = None):
        if any(o.split("=", 1)[0].strip() == "seed" for o in overrides):
            raise ConfigError("--set seed: --seeds sets each seed's `seed` (fix: drop --set seed=..., or drop --seeds)")
        self.config_path, self.overrides, self.seeds = config_path, list(overrides), list(seeds)
        self.stages = order(stages) if stages else None
        self.tuned_from = (tuned_from or None) if (tuned or tuned_from) else None
        self.base, self.tuned = self._load(self.overrides, tuned, tuned_from)
        self.name = self.base.run
        if not (tuned or tuned_from):
            refuse_untuned(self.base, config_path, self.overrides)  # a tuned run's settings, or say so, as `run` does
        if tuned and not tuned_from:
            self.tuned_from = self.name  # every seed takes the tuning record of the study's own run
        # Every seed's config checked (a run name too long, say) before anything runs or is written.
        self.plans = []
        for s in self.seeds:
            seed_sets = [*self.overrides, *records_study.seed_overrides(self.name, s)]
            cfg, seed_tuned = self._load(seed_sets, tuned, self.tuned_from)
            self.plans.append((s, seed_sets, cfg, seed_tuned))

    def _load(self, overrides: list[str], tuned: bool, tuned_from: str | None) -> tuple[ExperimentConfig, dict | None]:
        if tuned or tuned_from:
            return load_tuned(self.config_path, overrides, tuned_from)
        return load_config(self.config_path, overrides), None

    @property
    def record_path(self):
        return records_study.record_path(self.base.results_path.parent, self.name)

    @property
    def seeds_text(self) -> str:
        return ",".join(map(str, self.seeds))

    def command(self) -> str:
        cmd = f"python -m pipeline run {shlex.quote(project_path(self.config_path))}"
        cmd += "".join(f" --set {shlex.quote(o)}" for o in self.overrides) + f" --seeds {self.seeds_text}"
        if self.tuned is not None:
            cmd += " " + flag(self.tuned.get("from_run"), self.name)
        if self.stages:
            cmd += " --stages " + ",".join(self.stages)
        return cmd

    def record(self) -> dict:
        return records_study.build(
            study=self.name, description=self.base.description, config_path=project_path(self.config_path),
            overrides=self.overrides, tuned=self.tuned, stages=self.stages, seeds=self.seeds,
            config=self.base.to_dict(), weights="random" if self.base.model.source == "random" else "pretrained",
            command=self.command())

    def seed_args(self, seed_sets: list[str], restart: bool, wait: bool) -> list[str]:
        """One seed's `pipeline run` arguments after the config (side by side, each in its own process)."""
        return [*sets(seed_sets), *(["--tuned-from", self.tuned_from] if self.tuned_from else []),
                *(["--stages", ",".join(self.stages)] if self.stages else []),
                *(["--restart"] if restart else []), *(["--wait"] if wait else [])]


def run_study(study: Study, jobs: int | None = None, restart: bool = False, wait: bool = False) -> None:
    """Write the study record, then run every seed (skipping what is done); SeedsFailed names the seeds that failed."""
    lock_folder = study.base.checkpoint_path / "seeds"
    with held(lock_folder, study.command(), wait):
        records_study.write(study.record_path, study.record())
        print(f"seed study {study.name}: seeds {study.seeds_text}; record {study.record_path}", flush=True)
        jobs = min(jobs or default_jobs(), len(study.plans))
        if jobs == 1:
            from pipeline.run import Runner  # torch
            for i, (s, seed_sets, cfg, seed_tuned) in enumerate(study.plans, 1):
                print(f"=== seed {s} ({i}/{len(study.plans)}): run {cfg.run}", flush=True)
                Runner(cfg, study.config_path, tuple(seed_sets), tuned=seed_tuned).run(study.stages, restart, wait)
        else:
            print(f"{len(study.plans)} seeds, {jobs} at a time", flush=True)
            failed = run_side_by_side(study.config_path, [
                Job(f"seed {s}", f"seed{s}.log", study.seed_args(seed_sets, restart, wait))
                for s, seed_sets, _, _ in study.plans], jobs, lock_folder / "logs")
            if failed:
                raise SeedsFailed("; ".join(failed) + " (fix: run the same command again: finished seeds are skipped)")
    print(summary(study))


def summary(study: Study) -> str:
    """Each seed's fine-tuned test accuracy and fine-tuning time, as its folder records them."""
    lines = [f"seed study {study.name}: {study.record_path}"]
    for s, _, cfg, _ in study.plans:
        store = RunStore(cfg.results_path, writer=False)
        rows, acc = test_accuracy(store.read("predictions"), store.read("samples"))
        train = store.manifest().stage("train")
        secs = train.get("finetune_seconds") if train is not None else None
        lines.append(f"  seed {s:<4} {cfg.run:<40} fine-tuned test accuracy "
                     f"{'not scored' if acc is None else f'{acc:.3f} on {rows} rows'}, fine-tuning "
                     f"{'not measured' if secs is None else f'{secs:.1f} s'}")
    return "\n".join(lines)


def study_status(study: Study) -> str:
    """Each seed's stages (`pipeline status` of its run), under one line for the whole study."""
    wanted = study.stages or list(NAMES)
    done = 0
    for _, _, cfg, _ in study.plans:
        m = RunStore(cfg.results_path, writer=False).manifest()
        fps = stage_fingerprints(cfg)
        done += all(m.is_done(s, fps[s]) for s in wanted)
    written = "written" if study.record_path.is_file() else "not written yet"
    head = (f"seed study {study.name}: {done} of {len(study.plans)} seeds complete (seeds {study.seeds_text}); "
            f"record {study.record_path} ({written})")
    return "\n".join([head, *(status(cfg) for _, _, cfg, _ in study.plans)])
