"""python -m pipeline {run,status,params,tune} CONFIG   |   python -m pipeline {export,verify,reproduce} RUN
python -m pipeline {run,status} CONFIG --seeds 0-4   (a seed study: one run per seed)
python -m pipeline {manifest-doc,data-doc}

Exit codes: 0 ok; 2 bad input (a config field, a data file, a manifest, a stage order, a command-line
argument, a results folder in use by another run, a damaged checkpoint: one line naming it and the fix,
nothing written), or an output folder that cannot take a write (disk full, read-only: one line naming the
file, the previous results kept); 3 training diverged (NaN/inf loss); 4 `reproduce`: the run came out with
differences (a table that should be identical differs; the record says which rows); 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from analysis.errors import ReportError
from analysis.export import export
from pipeline import docs
from pipeline.configs import load_config, load_tuned
from pipeline.status import status
from pipeline.study import SeedsFailed, Study, parse_seeds, run_study, study_status
from pipeline.tune import TrialsFailed, chosen_overrides, tune
from records import manifest
from records import study as study_records
from records.config import project_path
from records.errors import BadInput, ConfigError, shown
from records.graph import NAMES
from records.reproduction import EXIT_DIFFERS
from records.tuned import refuse_untuned
from records.verify import folders, problems, summary

BAD_INPUT, DIVERGED, INTERRUPTED = 2, 3, 130
REPRODUCED_WITH_DIFFERENCES = EXIT_DIFFERS  # 4


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name, help in (("run", "run the experiment's stages (skips what is up to date)"),
                       ("tune", "train trial settings on the validation rows; record them in results/"),
                       ("status", "show each stage's state against the current config"),
                       ("params", "print the parameter counts as JSON without loading weights")):
        sp = sub.add_parser(name, help=help)
        sp.add_argument("config", help="YAML config, e.g. configs/tiny-cpu.yaml")
        sp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config field, e.g. --set train.epochs=3 (repeatable)")
        if name in ("run", "tune"):
            sp.add_argument("--wait", action="store_true",
                            help="if another run holds this results folder, wait for it instead of refusing")
        if name in ("run", "status", "params"):
            sp.add_argument("--tuned", action="store_true",
                            help="apply the trial `pipeline tune` chose for this run (recorded in its manifest)")
            sp.add_argument("--tuned-from", default=None, metavar="RUN",
                            help="apply the trial another run's tune chose (a run name beside this one, or its folder)")
        if name == "tune":
            sp.add_argument("grid", help="YAML of trials, e.g. configs/smollm2-tuning.yaml")
            sp.add_argument("--print-overrides", action="store_true",
                            help="only print the recorded chosen trial as --set arguments")
            sp.add_argument("--then-run", action="store_true",
                            help="then run every stage with the chosen trial (the test rows are scored once, "
                                 "for it); the manifest records the choice as `tuned`")
            sp.add_argument("--jobs", type=int, default=None,
                            help="trials run at once, each its own process on its own GPU (default: one per "
                                 "visible GPU, 1 without a GPU)")
        if name in ("run", "status"):
            sp.add_argument("--seeds", default=None, metavar="SEEDS",
                            help="a seed study: the same settings once per seed, e.g. 0-4 or 0,3,7; each seed is the "
                                 "run <run>-seed<k>, tied together by results/<run>.study.json (status: each seed's state)")
        if name == "run":
            sp.add_argument("--jobs", type=int, default=None,
                            help="with --seeds: seeds run at once, each its own process on its own GPU (default: one "
                                 "per visible GPU, 1 without a GPU)")
            sp.add_argument("--stages", default=None,
                            help=f"comma-separated subset of {','.join(NAMES)} (default: all)")
        if name in ("run", "tune"):
            sp.add_argument("--restart", action="store_true",
                            help="ignore finished stages and checkpoints; start over (tune: the trials and the "
                                 "--then-run run)")
    ex = sub.add_parser("export", help="write a run's figures as a tidy CSV and a JSON summary (accuracies with "
                        "intervals, McNemar, time, parameters, peaks)")
    ex.add_argument("run", help="a run folder (results/<run>), a config file, or a run name under results/")
    ex.add_argument("--out", default="exports", help="folder for <run>.csv and <run>.json (default: exports)")
    ex.add_argument("--partial", action="store_true",
                    help="export an incomplete run (interrupted, failed, in progress) as <run>.partial.csv/.json, "
                         "marked incomplete; without it such a run is refused")
    ex.add_argument("--force", action="store_true", help="replace an earlier export of the run")
    ve = sub.add_parser("verify", help="check results folders: sealed manifest, tables as written, the config "
                        "rebuilt from the committed file, code a commit of this repository")
    ve.add_argument("runs", nargs="*", help="run folders or run names under results/ (default: every run there)")
    ve.add_argument("--results", default="results", help="where run names are looked up (default: results)")
    rp = sub.add_parser("reproduce", help="run a committed run again from its manifest, compare it table by table, "
                        "and write a sealed record beside it (exit 4: reproduced with differences)")
    rp.add_argument("run", help="a run folder, or a run name under --results")
    rp.add_argument("--results", default="results", help="where run names are looked up (default: results)")
    rp.add_argument("--out", default=None, metavar="DIR",
                    help="keep the reproduction's results and checkpoints in DIR/results, DIR/checkpoints (default: "
                         "a temporary folder, removed afterwards)")
    rp.add_argument("--allow-code-change", action="store_true",
                    help="compare even when this checkout's commit is not the run's (the record says so)")
    sub.add_parser("manifest-doc", help="print the documentation of results/<run>/manifest.json (markdown)")
    sub.add_parser("data-doc", help="print the data dictionary of the results tables (markdown, docs/DATA.md)")
    return p


def parse_stages(text: str | None) -> list[str] | None:
    """`--stages data,train` -> ["data", "train"]; None (not given) means all. Empty is an error, not all."""
    if text is None:
        return None
    stages = [s.strip() for s in text.split(",") if s.strip()]
    if not stages:
        raise ConfigError(f"--stages: empty (choose from {', '.join(NAMES)}, or leave --stages out for all)")
    unknown = [s for s in stages if s not in NAMES]
    if unknown:
        raise ConfigError(f"--stages: unknown stage {unknown[0]!r} (choose from {', '.join(NAMES)})")
    return stages


def _command(args) -> int:
    if args.command in ("manifest-doc", "data-doc"):
        print((manifest if args.command == "manifest-doc" else docs).documentation(), end="")
        return 0
    if args.command == "export":
        return _export(args.run, args.out, args.partial, args.force)
    if args.command == "verify":
        return _verify(args.runs, args.results)
    if args.command == "reproduce":
        from pipeline.reproduce import reproduce  # torch, through the runner
        return reproduce(args.run, args.results, args.out, args.allow_code_change)
    stages = parse_stages(getattr(args, "stages", None))
    if getattr(args, "seeds", None) is not None:
        return _study(args, stages)
    if getattr(args, "jobs", None) is not None and args.command == "run":
        raise ConfigError("--jobs: only with --seeds in `run` (fix: add --seeds 0-4, or drop --jobs)")
    tuned = None
    if getattr(args, "tuned", False) or getattr(args, "tuned_from", None):
        if args.tuned and args.tuned_from:
            raise ConfigError("--tuned and --tuned-from: give one (--tuned: this run's own tune)")
        cfg, tuned = load_tuned(args.config, args.overrides, args.tuned_from, check_files=args.command != "params")
    else:
        cfg = load_config(args.config, args.overrides, check_files=args.command != "params")
        if args.command in ("run", "status"):
            try:
                refuse_untuned(cfg, args.config, args.overrides)
            except ConfigError as e:
                if args.command == "run":
                    raise
                print(f"note: {e}")  # status still answers: for these settings, every stage reads as stale
    if args.command == "params":
        from pipeline.model.params import account, totals  # torch
        df = account(cfg)
        print(json.dumps({**totals(df), "components": df.to_dict(orient="records")}, indent=2))
    elif args.command == "status":
        print(status(cfg))
    elif args.command == "tune":
        if args.print_overrides:
            print(" ".join(f"--set {o}" for o in chosen_overrides(args.config, args.overrides)))
        else:
            if args.jobs is not None and args.jobs < 1:
                raise ConfigError(f"--jobs: must be 1 or more, got {args.jobs}")
            try:
                tune(args.config, args.grid, args.overrides, jobs=args.jobs, wait=args.wait, restart=args.restart)
            except TrialsFailed as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            if args.then_run:
                _then_run(args)
    else:
        from pipeline.run import Runner  # torch
        Runner(cfg, args.config, tuple(args.overrides), tuned=tuned).run(stages, restart=args.restart, wait=args.wait)
    return 0


def _then_run(args) -> None:
    """The final run of `tune --then-run`: every stage, with the trial the tune just recorded."""
    from pipeline.run import Runner  # torch
    cfg, tuned = load_tuned(args.config, args.overrides, None)
    command = (f"python -m pipeline tune {shlex.quote(project_path(args.config))} "
               f"{shlex.quote(project_path(args.grid))}"
               + "".join(f" --set {shlex.quote(o)}" for o in args.overrides) + " --then-run")
    print(f"=== final run with the chosen trial {tuned['chosen_trial']}: {' '.join(tuned['overrides'])}", flush=True)
    Runner(cfg, args.config, tuple(args.overrides), tuned=tuned, command=command).run(
        None, restart=args.restart, wait=args.wait)


def _study(args, stages: list[str] | None) -> int:
    """`run --seeds` / `status --seeds`: a seed study (pipeline/study.py)."""
    if args.tuned and args.tuned_from:
        raise ConfigError("--tuned and --tuned-from: give one (--tuned: this run's own tune)")
    jobs = getattr(args, "jobs", None)
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs: must be 1 or more, got {jobs}")
    plan = Study(args.config, args.overrides, parse_seeds(args.seeds), args.tuned, args.tuned_from, stages)
    if args.command == "status":
        print(study_status(plan))
        return 0
    try:
        run_study(plan, jobs, restart=args.restart, wait=args.wait)
    except SeedsFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _verify(runs: list[str], results: str) -> int:
    """Torch-free: it runs in the report environment too. Run folders, and seed studies (records/study.py)."""
    named_studies = [t for t in runs if study_records.is_study(t, results)]
    named_runs = [t for t in runs if t not in named_studies]
    targets = folders(named_runs, results) if named_runs or not runs else []
    studies = study_records.find(named_studies, results) if named_studies or not runs else []
    if not targets and not studies:
        raise BadInput(f"verify: no run folders under {results}/ (fix: name a run folder)")
    bad = 0
    for path, check, ok in [*((f, problems, summary) for f in targets),
                            *((s, study_records.problems, study_records.summary) for s in studies)]:
        found = check(path)
        bad += bool(found)
        print("\n".join(f"error: {line}" for line in found) if found else ok(path),
              file=sys.stderr if found else sys.stdout)
    return BAD_INPUT if bad else 0


def _export(run: str, out: str, partial: bool = False, force: bool = False) -> int:
    """Torch-free (analysis/ computes every figure), so it runs in the report environment too."""
    try:
        paths = export(run, out, partial, force)
    except ReportError as e:
        raise BadInput(str(e)) from None
    print("\n".join(f"wrote {p}" for p in paths))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # argparse itself exits 2 on a bad command line
    # Quieter third-party logs: our own progress bars say what is happening.
    from pipeline.telemetry import progress, quiet  # tqdm: not in the report environment, which runs verify
    quiet.install()
    if not progress.is_terminal(sys.stderr):  # transformers' loading bars would smear a log (pipeline/telemetry/progress.py)
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return _command(args)
    except BadInput as e:  # control characters of an echoed value (a terminal escape in --set) shown escaped
        print(f"error: {shown(e, 20_000)}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted: finished epochs are checkpointed; run the same command to resume", file=sys.stderr)
        return INTERRUPTED
    except Exception as e:
        train = sys.modules.get("pipeline.engine.loop")  # loaded once training began; never import torch just for this
        if train is not None and isinstance(e, train.TrainingDiverged):
            print(f"error: {e}", file=sys.stderr)
            return DIVERGED
        raise
