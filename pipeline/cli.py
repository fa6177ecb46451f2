"""python -m pipeline {run,status,params,tune} CONFIG

Exit codes: 0 ok, 2 bad input (config, data, stage order: one line naming the field and the fix,
nothing written), 3 training diverged (NaN/inf loss), 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from pipeline.schema import STAGES


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
        if name == "tune":
            sp.add_argument("grid", help="YAML of trials, e.g. configs/smollm2-tuning.yaml")
            sp.add_argument("--print-overrides", action="store_true",
                            help="only print the recorded chosen trial as --set arguments")
        if name == "run":
            sp.add_argument("--stages", default=None,
                            help=f"comma-separated subset of {','.join(STAGES)} (default: all)")
            sp.add_argument("--restart", action="store_true",
                            help="ignore finished stages and checkpoints; start over")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Quieter third-party logs: our own progress bars say what is happening.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from pipeline.config import ConfigError, load_config
    try:
        cfg = load_config(args.config, args.overrides, check_files=args.command != "params")
        if args.command == "params":
            from pipeline.params import account, totals
            df = account(cfg)
            print(json.dumps({**totals(df), "components": df.to_dict(orient="records")}, indent=2))
            return 0
        from pipeline.runner import Runner, StageError, status
        if args.command == "tune":
            from pipeline.tune import chosen_overrides, tune
            if args.print_overrides:
                print(" ".join(f"--set {o}" for o in chosen_overrides(args.config, args.overrides)))
            else:
                tune(args.config, args.grid, args.overrides)
            return 0
        if args.command == "status":
            print(status(cfg, args.config))
            return 0
        stages = None
        if args.stages:
            stages = [s.strip() for s in args.stages.split(",") if s.strip()]
            unknown = [s for s in stages if s not in STAGES]
            if unknown:
                raise ConfigError(f"--stages: unknown stage {unknown[0]!r} (choose from {', '.join(STAGES)})")
        from pipeline.train import TrainingDiverged
        try:
            Runner(cfg, args.config, tuple(args.overrides)).run(stages, restart=args.restart)
        except StageError as e:
            raise ConfigError(str(e)) from None
        except TrainingDiverged as e:
            print(f"error: {e}", file=sys.stderr)
            return 3
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished epochs are checkpointed; run the same command to resume", file=sys.stderr)
        return 130
    return 0
