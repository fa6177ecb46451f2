"""Stages, in order: data -> params -> baseline -> train -> evaluate.

Each stage has a fingerprint: its config sections plus the fingerprints of the stages it reads. A stage
whose fingerprint matches a `done` record in the manifest is skipped, so an unchanged re-run does no
work (and loads no model), and changing one field re-runs exactly the stages downstream of it.
"""
from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from pipeline.config import STAGE_UPSTREAM, ExperimentConfig, fingerprint, stage_config
from pipeline.data import load_samples, samples_fingerprint, source_identity
from pipeline.schema import STAGES
from pipeline.store import RunStore, StageTimer


class StageError(RuntimeError):
    """A stage cannot run (e.g. its input stage has not run). One line for the user, exit code 2."""


@dataclass
class Runner:
    cfg: ExperimentConfig
    config_path: str
    overrides: tuple = ()

    @cached_property
    def store(self) -> RunStore:
        return RunStore(self.cfg.results_path)

    # --- fingerprints ---
    @cached_property
    def fingerprints(self) -> dict[str, str]:
        fps: dict[str, str] = {}
        for stage in STAGES:
            extra = {"source": source_identity(self.cfg)} if stage == "data" else {}
            upstream = {u: fps[u] for u in STAGE_UPSTREAM[stage]}
            fps[stage] = fingerprint({"config": stage_config(self.cfg, stage), "upstream": upstream, **extra})
        return fps

    def stage_state(self, stage: str) -> str:
        rec = self.store.stage(stage)
        if not rec:
            return "not run"
        if rec.get("status") == "done":
            return "up to date" if rec.get("fingerprint") == self.fingerprints[stage] else "stale (inputs changed)"
        if self.store.is_interrupted(stage):
            return "interrupted (run again to resume)"
        return rec.get("status", "unknown")

    # --- lazily built context, only when a stage needs a model ---
    @cached_property
    def samples(self) -> pd.DataFrame:
        return self.store.read("samples")

    @cached_property
    def device(self):
        from pipeline.model import pick_device
        return pick_device(self.cfg)

    @cached_property
    def dtype(self):
        from pipeline.model import pick_dtype
        return pick_dtype(self.cfg, self.device)

    @cached_property
    def prompter(self):
        from pipeline.prompts import Prompter
        return Prompter(self.cfg.path(self.cfg.prompt.template), self.cfg.prompt.label_words)

    @cached_property
    def tokenizer(self):
        from pipeline.tokenizer import load_tokenizer
        tr = self.samples[self.samples["split"] == "train"]
        texts = self.prompter.many(tr["premise"], tr["hypothesis"]) + list(self.cfg.prompt.label_words)
        return load_tokenizer(self.cfg, self.pretrained_location, texts)

    @cached_property
    def pretrained_location(self) -> str | None:
        """Hub id or folder of pretrained weights; None for random weights (built after the tokenizer,
        whose size they must cover)."""
        from pipeline.model import base_location
        return None if self.cfg.model.source == "random" else base_location(self.cfg)

    @cached_property
    def location(self) -> str:
        from pipeline.model import base_location
        return self.pretrained_location or base_location(self.cfg, self.tokenizer)

    @cached_property
    def sampler(self):
        from pipeline.profile import ResourceSampler
        disk = self.cfg.checkpoint_path.parent
        disk.mkdir(parents=True, exist_ok=True)
        return ResourceSampler(interval_s=self.cfg.runtime.sample_interval_s, disk_path=disk)

    # --- running ---
    def _header(self, stages: list[str] | None) -> dict:
        from pipeline.config import PROJECT_ROOT
        from pipeline.environment import capture_environment
        cmd = "python -m pipeline run " + shlex.quote(self.config_path)
        cmd += "".join(f" --set {shlex.quote(o)}" for o in self.overrides)
        if stages and list(stages) != list(STAGES):
            cmd += " --stages " + ",".join(stages)
        m = self.store.manifest()
        commands = list(dict.fromkeys([*m.get("commands", []), cmd]))
        return {"run": self.cfg.run, "description": self.cfg.description, "config_path": self.config_path,
                "config": self.cfg.to_dict(), "config_fingerprint": fingerprint(self.cfg.to_dict()),
                "weights": "random" if self.cfg.model.source == "random" else "pretrained",
                "code_version": self._code_version(PROJECT_ROOT), "environment": capture_environment(),
                "commands": commands, "stages_requested": list(stages or STAGES)}

    @staticmethod
    def _code_version(root) -> dict:
        """git's view of the checkout; where the code was copied without .git (a lent GPU machine),
        the commit it was copied from, handed over in PIPELINE_GIT_COMMIT."""
        import os

        from pipeline.environment import code_version
        v = code_version(root)
        if v.get("git_commit") is None and os.environ.get("PIPELINE_GIT_COMMIT"):
            v = {**v, "git_commit": os.environ["PIPELINE_GIT_COMMIT"], "source": "PIPELINE_GIT_COMMIT (copy without .git)"}
        return v

    def run(self, stages: list[str] | None = None, restart: bool = False) -> dict:
        wanted = list(STAGES) if not stages else [s for s in STAGES if s in stages]
        t0 = time.perf_counter()
        todo = [s for s in wanted if restart or not self.store.is_done(s, self.fingerprints[s])]
        for s in todo:
            for up in STAGE_UPSTREAM[s]:
                if up not in todo and not self.store.is_done(up, self.fingerprints[up]):
                    raise StageError(f"stage {s} needs stage {up}, which is {self.stage_state(up)} "
                                     f"(fix: --stages {up},{s} or run all stages)")
        # Bad data is bad input too: find out before anything is written.
        self._fresh_samples = load_samples(self.cfg) if "data" in todo else None
        if not todo:
            print(f"{self.cfg.run}: all {len(wanted)} stages up to date in {self.store.folder} "
                  f"(nothing to do, {time.perf_counter() - t0:.1f} s). Use --restart to run again.")
            return {"ran": []}
        self.store.update_manifest(**self._header(wanted))
        self._apply_runtime()
        try:
            for s in wanted:
                if s not in todo:
                    print(f"[{s}] up to date (fingerprint {self.fingerprints[s]}), skipped")
                    continue
                print(f"[{s}] running...", flush=True)
                with self.sampler.stage(s), StageTimer(self.store, s, self.fingerprints[s]):
                    extra = getattr(self, f"stage_{s}")(restart=restart) or {}
                self.store.set_stage(s, **extra, peaks=self.sampler.peaks(s))
                self.store.replace_rows("resources", self.sampler.frame(s), [s])
                print(f"[{s}] done in {self.store.stage(s)['seconds']:.1f} s", flush=True)
        finally:
            # A failed stage still leaves its resource samples (what led up to the failure) and no thread.
            for s in self.sampler.stages():
                if self.store.stage(s).get("status") == "failed":
                    self.store.replace_rows("resources", self.sampler.frame(s), [s])
            self.sampler.close()
        self._print_summary(time.perf_counter() - t0)
        return {"ran": todo}

    def _apply_runtime(self):
        import torch
        if self.cfg.runtime.threads:
            torch.set_num_threads(self.cfg.runtime.threads)
        from pipeline.model import apply_gpu_cap
        cap = apply_gpu_cap(self.cfg, self.device)
        self.store.update_manifest(compute_dtype=str(self.dtype).removeprefix("torch."),
                                   device=str(self.device), gpu_memory_cap_bytes=cap)

    # --- the stages ---
    def stage_data(self, restart: bool) -> dict:
        samples, summary = self._fresh_samples or load_samples(self.cfg)
        self.store.write("samples", samples)
        self.__dict__["samples"] = samples
        src = (f"hub:{self.cfg.data.name}" if self.cfg.data.source == "hub" else f"local:{self.cfg.data.path}")
        self.store.update_manifest(data={"source": src, "fingerprint": samples_fingerprint(samples),
                                         "note": self.cfg.data.note, "splits": summary})
        dropped = sum(v["rows_dropped_no_label"] for v in summary.values())
        print("  " + ", ".join(f"{k}: {v['rows']} rows" for k, v in summary.items()) +
              f"; {dropped} without a gold label dropped")
        return {}

    def stage_params(self, restart: bool) -> dict:
        from pipeline.params import account, totals
        df = account(self.cfg)
        self.store.write("params", df)
        self.store.update_manifest(params_summary=totals(df))
        return totals(df)

    def _predict_rows(self, fn, model, name: str, **kw) -> pd.DataFrame:
        from pipeline.predict import to_frame
        frames = []
        for split in ("validation", "test"):
            rows = self.samples[self.samples["split"] == split].reset_index(drop=True)
            prompts = self.prompter.many(rows["premise"], rows["hypothesis"])
            common = dict(batch_size=self.cfg.eval.batch_size, max_length=self.cfg.tokenizer.max_length,
                          multiple=self.cfg.train.pad_to_multiple_of, device=self.device, desc=f"{name} {split}")
            out = fn(model, self.tokenizer, prompts, **kw, **common)
            probs = out[0] if isinstance(out, tuple) else out
            frames.append(to_frame(rows, probs, name))
        return pd.concat(frames, ignore_index=True)

    def stage_baseline(self, restart: bool) -> dict:
        from pipeline.model import free, load_causal_lm, load_classifier
        from pipeline.predict import predict_head, predict_zeroshot
        lm = load_causal_lm(self.cfg, self.location, self.device, self.dtype)
        zs = self._predict_rows(predict_zeroshot, lm, "baseline_zeroshot", label_words=self.cfg.prompt.label_words)
        del lm
        free()
        clf = load_classifier(self.cfg, self.location, self.tokenizer, self.device, self.dtype)
        head = self._predict_rows(predict_head, clf, "baseline_head", labels=None)
        del clf
        free()
        preds = pd.concat([head, zs], ignore_index=True)
        self.store.replace_rows("predictions", preds, ["baseline_head", "baseline_zeroshot"])
        return {}

    def stage_train(self, restart: bool) -> dict:
        from pipeline.model import add_lora, free, load_classifier
        from pipeline.params import measured
        from pipeline.train import train
        model = add_lora(self.cfg, load_classifier(self.cfg, self.location, self.tokenizer, self.device, self.dtype))
        counts = measured(model)

        def on_epoch(epochs: pd.DataFrame, steps: pd.DataFrame, info: dict):
            self.store.write("epochs", epochs)
            self.store.write("steps", steps)
            self.store.set_stage("train", **info)

        summary = train(self.cfg, model, self.tokenizer, self.prompter, self.samples, device=self.device,
                        dtype=self.dtype, fingerprint=self.fingerprints["train"], restart=restart, on_epoch=on_epoch)
        del model
        free()
        return {**summary, "measured_params": counts}

    def stage_evaluate(self, restart: bool) -> dict:
        from peft import PeftModel, set_peft_model_state_dict
        from safetensors.torch import load_file

        from pipeline.model import free, load_classifier
        from pipeline.predict import predict_head
        ckpt = self.cfg.checkpoint_path
        final = ckpt / "final"
        if not (final / "adapter_config.json").is_file():
            raise StageError(f"stage evaluate: no final adapter in {final} (fix: run the train stage)")
        base = load_classifier(self.cfg, self.location, self.tokenizer, self.device, self.dtype)
        model = PeftModel.from_pretrained(base, str(final), is_trainable=False)
        frames = [self._predict_rows(predict_head, model, "finetuned", labels=None)]
        names = ["finetuned"]
        for k in range(1, self.cfg.train.epochs + 1):
            path = ckpt / f"epoch_{k}" / "adapter_model.safetensors"
            if not path.is_file():
                raise StageError(f"stage evaluate: checkpoint {path} is missing (fix: --restart the train stage)")
            set_peft_model_state_dict(model, load_file(str(path)))
            frames.append(self._predict_rows(predict_head, model, f"epoch_{k}", labels=None))
            names.append(f"epoch_{k}")
        self.store.replace_rows("predictions", pd.concat(frames, ignore_index=True), names)
        del model, base
        free()
        return {}

    def _print_summary(self, seconds: float):
        preds = self.store.read("predictions")
        samples = self.store.read("samples")
        lines = [f"Done in {seconds:.1f} s. Results: {self.store.folder}"]
        if len(preds):
            test = preds[preds["split"] == "test"].merge(samples[samples["split"] == "test"][["idx", "label"]], on="idx")
            acc = test.assign(ok=test["pred"] == test["label"]).groupby("model")["ok"].mean()
            for name in ("baseline_head", "baseline_zeroshot", "finetuned"):
                if name in acc:
                    lines.append(f"  test accuracy {name:<18} {acc[name]:.3f}")
        tr = self.store.stage("train")
        if tr.get("finetune_seconds") is not None:
            lines.append(f"  fine-tuning time {tr['finetune_seconds']:.1f} s over {tr.get('epochs_done')} epochs")
        if self.store.manifest().get("weights") == "random":
            lines.append("  (random weights: a shape-only run; accuracies mean nothing)")
        print("\n".join(lines))


def status(cfg: ExperimentConfig, config_path: str) -> str:
    r = Runner(cfg, config_path)
    lines = [f"{cfg.run}: {r.store.folder}"]
    for s in STAGES:
        rec = r.store.stage(s)
        secs = f", {rec['seconds']:.1f} s" if rec.get("seconds") is not None else ""
        extra = ""
        if s == "train" and rec.get("epochs_total"):
            extra = f", {rec.get('epochs_done', 0)}/{rec['epochs_total']} epochs"
        err = f" - {rec['error']}" if rec.get("error") else ""
        lines.append(f"  {s:<9} {r.stage_state(s)}{secs}{extra}{err}")
    return "\n".join(lines)
