"""`pipeline run`: orchestration only. The stages' work lives in pipeline/stages/<name>.py; here is
- which stages run: those asked for whose fingerprint (pipeline/fingerprints.py) has no `done` record in
  the manifest, so an unchanged re-run does no work (and loads no model), and a changed field re-runs
  exactly the stages downstream of it;
- what is refused before the first write: a stage whose input stage is missing, each stage's own
  `prepare` checks (bad data, missing checkpoints), a device that is not there;
- the bookkeeping around every stage: its manifest record (running -> done | failed), its timing, and
  its resource samples. The done mark is the stage's last write: a stage is done only when everything
  it owns is on disk.
Under `accelerate launch --num_processes N` every rank runs the same plan and the same stage code (the
models shard their rows and sum their gradients, pipeline/distributed.py); rank 0 alone writes: the other
ranks' store is read-only, their printing is silenced, and their resource samples are merged into rank
0's resources table, tagged with their rank and GPU.
"""
from __future__ import annotations

import contextlib
import os
import shlex
import time

from pipeline import distributed
from pipeline.config import PROJECT_ROOT, ExperimentConfig, fingerprint
from pipeline.context import RunContext
from pipeline.errors import StageError
from pipeline.fingerprints import stage_fingerprints
from pipeline.stages import NAMES, body, order, stage
from pipeline.status import describe
from pipeline.store import RunStore


class Runner:
    def __init__(self, cfg: ExperimentConfig, config_path: str, overrides: tuple = ()):
        self.cfg, self.config_path, self.overrides = cfg, config_path, tuple(overrides)
        self.dist = distributed.current()
        self.store = RunStore(cfg.results_path, writer=self.dist.main)
        self.fingerprints = stage_fingerprints(cfg)
        # What the stage bodies share; after a run, also what it built (samples, tokenizer, device, ...).
        self.ctx = RunContext(cfg, self.store, self.fingerprints)

    def plan(self, stages: list[str] | None, restart: bool) -> tuple[list[str], list[str]]:
        """(stages asked for, stages to run), in pipeline order; StageError if an input stage is missing."""
        wanted = order(stages) if stages else list(NAMES)
        manifest = self.store.manifest()
        fps = self.fingerprints
        todo = [s for s in wanted if restart or not manifest.is_done(s, fps[s])]
        for s in todo:
            for up in stage(s).upstream:
                if up not in todo and not manifest.is_done(up, fps[up]):
                    raise StageError(f"stage {s} needs stage {up}, which is {describe(manifest, up, fps[up])} "
                                     f"(fix: --stages {up},{s} or run all stages)")
        return wanted, todo

    def run(self, stages: list[str] | None = None, restart: bool = False) -> dict:
        if self.dist.main:
            return self._run(stages, restart)
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # rank 0 speaks for all
            return self._run(stages, restart)

    def _run(self, stages: list[str] | None, restart: bool) -> dict:
        t0 = time.perf_counter()
        # Every rank plans (so a bad stage order fails on every rank alike), then all take rank 0's plan:
        # the ranks must run the same stages even if the manifest changed between their reads.
        wanted, todo = distributed.broadcast_object(self.plan(stages, restart))
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
        self.store.update_manifest(**self._header(wanted), **runtime, processes=self._processes(ctx))

        from pipeline.sampler import ResourceSampler
        sampler = ResourceSampler(interval_s=self.cfg.runtime.sample_interval_s,
                                  disk_path=self.cfg.checkpoint_path.parent, rank=self.dist.rank)
        try:
            for s in wanted:
                if s in todo:
                    self._run_stage(s, ctx, sampler)
                else:
                    print(f"[{s}] up to date (fingerprint {self.fingerprints[s]}), skipped")
        finally:
            sampler.close()  # no thread outlives the run, whatever happened
        self._print_summary(time.perf_counter() - t0)
        return {"ran": todo}

    def _run_stage(self, name: str, ctx: RunContext, sampler) -> None:
        print(f"[{name}] running...", flush=True)
        self.store.begin_stage(name, self.fingerprints[name])
        t0 = time.perf_counter()
        try:
            with sampler.stage(name):
                facts = body(name).run(ctx) or {}
        except BaseException as e:
            self.store.fail_stage(name, round(time.perf_counter() - t0, 3), e)
            # What led up to the failure stays readable: the stage's resource samples.
            self.store.replace_rows("resources", sampler.frame(name), [name])
            raise
        seconds = round(time.perf_counter() - t0, 3)
        self._record_effective(ctx)
        frames = distributed.gather_objects(sampler.frame(name))  # every rank's samples, rank 0 writes them
        self.store.replace_rows("resources", _concat(frames), [name])
        peaks = distributed.gather_objects(sampler.peaks(name))
        by_rank = {"peaks_by_rank": peaks} if len(peaks) > 1 else {}
        self.store.finish_stage(name, seconds, **facts, peaks=peaks[0], **by_rank)
        print(f"[{name}] done in {seconds:.1f} s", flush=True)

    def _runtime(self, ctx: RunContext) -> dict:
        """Apply the runtime settings; the manifest fields that record them."""
        import torch

        from pipeline.model import apply_gpu_cap
        if self.cfg.runtime.threads:
            torch.set_num_threads(self.cfg.runtime.threads)
        cap = apply_gpu_cap(self.cfg, ctx.device)
        return {"compute_dtype": str(ctx.dtype).removeprefix("torch."), "device": str(ctx.device),
                "gpu_memory_cap_bytes": cap}

    def _record_effective(self, ctx: RunContext) -> None:
        """What the run actually used where the config left it open (manifest `effective`: the model's portable
        identity, what the loaded models are, torch's threads) and the disk the run takes (`footprint`);
        merged over earlier calls' records, since a stage skipped now keeps what it recorded then."""
        import torch

        from pipeline.effective import footprint, merge, model_identity
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
        import socket

        import torch
        me = {"rank": self.dist.rank, "local_rank": self.dist.local_rank, "host": socket.gethostname(),
              "device": str(ctx.device),
              "gpu": torch.cuda.get_device_name(ctx.device) if ctx.device.type == "cuda" else None}
        return {"world_size": self.dist.world, "ranks": distributed.gather_objects(me)}

    def _header(self, wanted: list[str]) -> dict:
        """The manifest fields that describe this call: config, code, environment, command."""
        from pipeline.environment import capture_environment
        cmd = "python -m pipeline run " + shlex.quote(self.config_path)
        cmd += "".join(f" --set {shlex.quote(o)}" for o in self.overrides)
        if wanted != list(NAMES):
            cmd += " --stages " + ",".join(wanted)
        commands = list(dict.fromkeys([*self.store.manifest().commands, cmd]))
        config = self.cfg.to_dict()
        return {"run": self.cfg.run, "description": self.cfg.description, "config_path": self.config_path,
                "config": config, "config_fingerprint": fingerprint(config),
                "weights": "random" if self.cfg.model.source == "random" else "pretrained",
                "code_version": _code_version(), "environment": capture_environment(),
                "commands": commands, "stages_requested": wanted}

    def _print_summary(self, seconds: float) -> None:
        preds, samples = self.store.read("predictions"), self.store.read("samples")
        lines = [f"Done in {seconds:.1f} s. Results: {self.store.folder}"]
        if len(preds):
            test = preds[preds["split"] == "test"].merge(samples[samples["split"] == "test"][["idx", "label"]],
                                                         on="idx")
            acc = test.assign(ok=test["pred"] == test["label"]).groupby("model")["ok"].mean()
            for name in ("baseline_head", "baseline_zeroshot", "finetuned"):
                if name in acc:
                    lines.append(f"  test accuracy {name:<18} {acc[name]:.3f}")
        manifest = self.store.manifest()
        train = manifest.stage("train")
        if train is not None and train.get("finetune_seconds") is not None:
            lines.append(f"  fine-tuning time {train.get('finetune_seconds'):.1f} s over "
                         f"{train.get('epochs_done')} epochs")
        if manifest.weights == "random":
            lines.append("  (random weights: a shape-only run; accuracies mean nothing)")
        print("\n".join(lines))


def _concat(frames: list):
    import pandas as pd
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else (frames[0] if frames else _empty())


def _empty():
    from pipeline.schema import TABLES
    return TABLES["resources"].empty_table().to_pandas()


def _code_version() -> dict:
    """git's view of the checkout; where the code was copied without .git (a lent GPU machine), the
    commit it was copied from, handed over in PIPELINE_GIT_COMMIT."""
    from pipeline.environment import code_version
    v = code_version(PROJECT_ROOT)
    if v.get("git_commit") is None and os.environ.get("PIPELINE_GIT_COMMIT"):
        v = {**v, "git_commit": os.environ["PIPELINE_GIT_COMMIT"], "source": "PIPELINE_GIT_COMMIT (copy without .git)"}
    return v
