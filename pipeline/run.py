"""`pipeline run`: orchestration only. The stages' work lives in pipeline/recipe/<name>.py; here is
- which stages run: those asked for whose fingerprint (records/fingerprints.py) has no `done` record in
  the manifest, so an unchanged re-run does no work (and loads no model), and a changed field re-runs
  exactly the stages downstream of it;
- what is refused before the first write: a stage whose input stage is missing, each stage's own
  `prepare` checks (bad data, missing checkpoints), a device that is not there;
- outputs checked against the manifest's records (records/integrity.py): a done stage whose tables are
  damaged or missing runs again, and says why;
- one run per results folder at a time (records/lock.py), and the stray temporary files of a killed run
  cleaned before the first write;
- the bookkeeping around every stage: its manifest record (running -> done | failed), its timing, and
  its resource samples. The done mark is the stage's last write: a stage is done only when everything
  it owns is on disk. The run's header (config, code, environment, command) goes into the manifest with
  the first stage's `running` record: nothing is written before every check has passed.
Under `accelerate launch --num_processes N` every rank runs the same plan and the same stage code (the
models shard their rows and sum their gradients, pipeline/engine/distributed.py); rank 0 alone writes and holds
the lock: the other ranks' store is read-only, their printing is silenced, and their resource samples are
merged into rank 0's resources table, tagged with their rank and GPU.
"""
from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import socket
import time

import torch

from pipeline.engine import distributed
from pipeline.engine.devices import apply_gpu_cap
from pipeline.recipe import body
from pipeline.recipe.context import RunContext
from pipeline.status import describe
from pipeline.telemetry.effective import footprint, model_identity
from pipeline.telemetry.environment import capture_environment
from pipeline.telemetry.sampler import ResourceSampler
from records import faults
from records.code_version import run_code_version
from records.config import PROJECT_ROOT, ExperimentConfig, fingerprint, project_path
from records.config_reading import deep_merge as merge
from records.errors import BadInput, StageError, refuse_link
from records.fingerprints import stage_fingerprints
from records.graph import NAMES, order, stage
from records.history import entry, seeded, test_accuracies
from records.integrity import check as check_outputs
from records.integrity import foreign_checkpoints, links, stray_dirs
from records.lock import FolderLock, RunLock
from records.manifest import program
from records.parts import earlier_attempts, resource_rows
from records.schema import TABLES
from records.store import RunStore, stray_files, utc_now
from records.tuned import flag


class Runner:
    def __init__(self, cfg: ExperimentConfig, config_path: str, overrides: tuple = (), tuned: dict | None = None,
                 command: str | None = None):
        """`tuned`: the manifest's `tuned` block when cfg holds a tune's choice (records/tuned.py); `command`: the
        command line to record when it is not `run` itself (`pipeline tune ... --then-run`)."""
        # Recorded relative to the project root (or absolute), whatever the working directory.
        self.cfg, self.config_path, self.overrides = cfg, project_path(config_path), tuple(overrides)
        self.tuned, self.command = tuned, command
        self.call: str | None = None  # set with the header (_header)
        self.dist = distributed.current()
        self.store = RunStore(cfg.results_path, writer=self.dist.main)
        self.fingerprints = stage_fingerprints(cfg)
        # What the stage bodies share; after a run, also what it built (samples, tokenizer, device, ...).
        self.ctx = RunContext(cfg, self.store, self.fingerprints)
        self.damage: dict[str, list[str]] = {}  # done stages whose outputs are damaged -> what is wrong

    def plan(self, stages: list[str] | None, restart: bool) -> tuple[list[str], list[str]]:
        """(stages asked for, stages to run), in pipeline order; StageError if an input stage is missing.
        A done stage whose outputs are damaged runs again (`self.damage` says why)."""
        wanted = order(stages) if stages else list(NAMES)
        manifest = self.store.manifest()
        found = check_outputs(self.store.folder, manifest)
        self.damage = found.stages
        fps = self.fingerprints
        if manifest.is_done("train", fps["train"]):  # its adapters overwritten since by another config's run
            foreign = foreign_checkpoints(self.cfg.checkpoint_path, fps["train"], self.cfg.train.epochs)
            if foreign:
                self.damage.setdefault("train", []).extend(foreign)

        def ready(s: str) -> bool:
            return manifest.is_done(s, fps[s]) and s not in found.stages

        todo = [s for s in wanted if restart or not ready(s)]
        for s in todo:
            for up in stage(s).upstream:
                if up not in todo and not ready(up):
                    state = describe(manifest, up, fps[up], found.stages.get(up))
                    raise StageError(f"stage {s} needs stage {up}, which is {state} "
                                     f"(fix: --stages {up},{s} or run all stages)")
        return wanted, todo

    def run(self, stages: list[str] | None = None, restart: bool = False, wait: bool = False) -> dict:
        """`wait`: when another process holds this results folder, wait for it instead of refusing."""
        if self.dist.main:
            return self._run(stages, restart, wait)
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # rank 0 speaks for all
            return self._run(stages, restart, wait)

    def _run(self, stages: list[str] | None, restart: bool, wait: bool) -> dict:
        t0 = time.perf_counter()
        faults.new_run()
        lock = RunLock(self.store.folder, self._command(stages)) if self.dist.main else None
        # The checkpoint folder is keyed by run name only: a run of the same name into another results folder
        # must not train into it (or score its adapters) while this one works.
        ckpt_lock = FolderLock(self.cfg.checkpoint_path) if self.dist.main else None
        try:
            # Rank 0 takes the lock before it reads the manifest to plan; every rank plans (so a bad stage
            # order fails on every rank alike), then all take rank 0's plan, or its refusal.
            outcome: tuple = ()
            try:
                if lock is not None:
                    lock.acquire(wait)
                    self._refuse_links()
                    ckpt_lock.acquire(wait)
                outcome = ("plan", self.plan(stages, restart))
            except BadInput as e:
                outcome = ("refused", e)
            kind, value = distributed.broadcast_object(outcome)
            if kind == "refused":
                raise value
            return self._run_planned(*value, restart, t0)
        finally:
            if lock is not None:
                ckpt_lock.release()
                lock.release()

    def _run_planned(self, wanted: list[str], todo: list[str], restart: bool, t0: float) -> dict:
        ctx = self.ctx
        ctx.restart, ctx.todo = restart, tuple(todo)
        for s in todo:
            prepare = getattr(body(s), "prepare", None)
            if prepare is not None:
                prepare(ctx)
        if not todo:
            print(f"{self.cfg.run}: all {len(wanted)} stages up to date in {self.store.folder} "
                  f"(nothing to do, {time.perf_counter() - t0:.1f} s). Use --restart to run again.")
            return {"ran": []}
        runtime = self._runtime(ctx)  # a device that is not there is refused here, before any write
        header = {**self._header(wanted), **runtime, "processes": self._processes(ctx)}
        if self.dist.main:
            self._clean_strays()

        sampler = ResourceSampler(interval_s=self.cfg.runtime.sample_interval_s,
                                  disk_path=self.cfg.checkpoint_path.parent, rank=self.dist.rank)
        try:
            for s in wanted:
                if s in todo:
                    self._run_stage(s, ctx, sampler, header)
                    header = {}  # written once, with the first stage that runs
                else:
                    print(f"[{s}] up to date (fingerprint {self.fingerprints[s]}), skipped")
        finally:
            sampler.close()  # no thread outlives the run, whatever happened
        self._print_summary(time.perf_counter() - t0)
        return {"ran": todo}

    def _refuse_links(self) -> None:
        """A link planted in the results or checkpoint folder (a received folder can hold one) is refused before
        anything reads or writes through it."""
        for found in (links(self.store.folder) + links(self.cfg.checkpoint_path))[:1]:
            refuse_link(found)

    def _clean_strays(self) -> None:
        """Temporary files and half-written checkpoint folders left by a killed run: never read, only in the way."""
        for p in stray_files(self.store.folder):
            p.unlink(missing_ok=True)
        for d in stray_dirs(self.cfg.checkpoint_path):
            shutil.rmtree(d, ignore_errors=True)

    def _run_stage(self, name: str, ctx: RunContext, sampler, header: dict) -> None:
        why = "; ".join(self.damage.get(name, ()))
        print(f"[{name}] running{f' again: {why}' if why else ''}...", flush=True)
        with faults.stage(name):
            earlier = earlier_attempts(self.store, name, self.fingerprints[name], ctx.restart, self.dist.main)
            attempt = int(earlier["attempt"].max()) + 1 if len(earlier) else 1
            self.store.begin_stage(name, self.fingerprints[name], **header)
            part = self.store.open_part("resources", name)  # rank 0's samples on disk as they are taken
            t0 = time.perf_counter()
            try:
                with sampler.stage(name, spool=part.append if part else None, attempt=attempt):
                    facts = body(name).run(ctx) or {}
            except BaseException as e:
                # What led up to the failure stays readable: the record says why, the stage's resource samples
                # show how. Best effort: on a full disk these writes fail too, and the first error is the news.
                with contextlib.suppress(OSError, BadInput):
                    self.store.fail_stage(name, round(time.perf_counter() - t0, 3), e)
                    self.store.seal_rows("resources", resource_rows([earlier, sampler.frame(name)]), name)
                raise
            finally:
                if part is not None:
                    part.close()
            seconds = round(time.perf_counter() - t0, 3)
            self._record_effective(ctx)
            frames = distributed.gather_objects(sampler.frame(name))  # every rank's samples, rank 0 writes them
            self.store.seal_rows("resources", resource_rows([earlier, *frames]), name)
            peaks = distributed.gather_objects(sampler.peaks(name))
            by_rank = {"peaks_by_rank": peaks} if len(peaks) > 1 else {}
            fields = self._evaluated() if name == "evaluate" and self.dist.main else None
            self.store.finish_stage(name, seconds, fields, **facts, peaks=peaks[0], **by_rank)
        print(f"[{name}] done in {seconds:.1f} s", flush=True)

    def _runtime(self, ctx: RunContext) -> dict:
        """Apply the runtime settings; the manifest fields that record them."""
        if self.cfg.runtime.threads:
            torch.set_num_threads(self.cfg.runtime.threads)
        cap = apply_gpu_cap(self.cfg, ctx.device)
        return {"compute_dtype": str(ctx.dtype).removeprefix("torch."), "device": str(ctx.device),
                "gpu_memory_cap_bytes": cap}

    def _record_effective(self, ctx: RunContext) -> None:
        """What the run actually used where the config left it open (manifest `effective`: the model's portable
        identity, what the loaded models are, torch's threads) and the disk the run takes (`footprint`);
        merged over earlier calls' records, since a stage skipped now keeps what it recorded then."""
        m = self.store.manifest()
        location = ctx.built("location")
        effective = merge(m.effective or {}, merge(ctx.effective, {"runtime": {"threads": torch.get_num_threads()}}))
        model = effective.setdefault("model", {})
        model["name"] = model_identity(self.cfg, location, model.get("name"))
        self.store.update_manifest(effective=effective, footprint=footprint(self.cfg, location, m.footprint))

    def _processes(self, ctx: RunContext) -> dict | None:
        """World size and each rank's device, for a run launched over several processes."""
        if not self.dist.active:
            return None

        me = {"rank": self.dist.rank, "local_rank": self.dist.local_rank, "host": socket.gethostname(),
              "device": str(ctx.device),
              "gpu": torch.cuda.get_device_name(ctx.device) if ctx.device.type == "cuda" else None}
        return {"world_size": self.dist.world, "ranks": distributed.gather_objects(me)}

    def _evaluated(self) -> dict:
        """The test rows were just scored: the manifest's history of test evaluations gains this one, in the same
        write as the evaluate stage's done mark (records/history.py)."""
        m = self.store.manifest()
        new = entry(m, self._table_or_empty("predictions"), self._table_or_empty("samples"), self.call,
                    utc_now(), self.fingerprints["evaluate"])
        return {"test_evaluations": [*(m.test_evaluations or []), new]}

    def _table_or_empty(self, name: str):
        """For the history's accuracy only: a damaged table (the stage that owns it runs again) reads as empty,
        so the entry says `test_accuracy: null` rather than the run stopping over bookkeeping."""
        try:
            return self.store.read(name)
        except StageError:
            return TABLES[name].empty_table().to_pandas()

    def _command(self, stages: list[str] | None) -> str:
        """This call as a command line (the manifest's `commands`, the lock's holder)."""
        if self.command:
            return self.command
        wanted = order(stages) if stages else list(NAMES)
        cmd = f"{program(self.dist.world)} run " + shlex.quote(self.config_path)
        cmd += "".join(f" --set {shlex.quote(o)}" for o in self.overrides)
        if self.tuned:
            cmd += " " + flag(self.tuned.get("from_run"), self.cfg.run)
        if wanted != list(NAMES):
            cmd += " --stages " + ",".join(wanted)
        return cmd

    def _header(self, wanted: list[str]) -> dict:
        """The manifest fields that describe this call: config, code, environment, command."""
        m = self.store.manifest()
        self.call = self._command(wanted)  # this call's command line, for `commands` and the history's entry
        commands = list(dict.fromkeys([*m.commands, self.call]))
        history = seeded(m, self._table_or_empty)
        config = self.cfg.to_dict()
        return {"run": self.cfg.run, "description": self.cfg.description, "config_path": self.config_path,
                "config": config, "config_fingerprint": fingerprint(config),
                "weights": "random" if self.cfg.model.source == "random" else "pretrained",
                "code_version": run_code_version(PROJECT_ROOT), "environment": capture_environment(),
                "commands": commands, "stages_requested": wanted, "overrides": list(self.overrides),
                "tuned": self.tuned, "test_evaluations": history}

    def _print_summary(self, seconds: float) -> None:
        preds, samples = self.store.read("predictions"), self.store.read("samples")
        lines = [f"Done in {seconds:.1f} s. Results: {self.store.folder}"]
        if len(preds):
            acc = test_accuracies(preds, samples)
            for name in ("baseline_head", "baseline_zeroshot", "finetuned"):
                if name in acc:
                    lines.append(f"  test accuracy {name:<18} {acc[name][1]:.3f}")
        manifest = self.store.manifest()
        train = manifest.stage("train")
        if train is not None and train.get("finetune_seconds") is not None:
            lines.append(f"  fine-tuning time {train.get('finetune_seconds'):.1f} s over "
                         f"{train.get('epochs_done')} epochs")
        if manifest.weights == "random":
            lines.append("  (random weights: a shape-only run; accuracies mean nothing)")
        print("\n".join(lines))
