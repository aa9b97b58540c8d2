"""`strvos train`: stage 1 / stage 2 training from a YAML config, resumable, one process or `torchrun` DDP."""
from __future__ import annotations

import argparse
import dataclasses
import sys

HELP = "Train StreamingRVOS on synthetic referring videos (YAML config; resumable; works under torchrun)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training config YAML (see configs/train/)")
    parser.add_argument("--out", required=True, help="run directory: checkpoints/, log.jsonl")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in --out (from step 0, with a log line, when it has none)")
    parser.add_argument("--stop-after", type=int, default=None, metavar="STEP",
                        help="stop (with a checkpoint) after this optimizer step; continue later with --resume")
    parser.add_argument("--max-minutes", type=float, default=None, metavar="MIN",
                        help="stop (with a checkpoint) after the first step that ends past this much wall time")
    parser.add_argument("--device", default=None,
                        help="override the config's run.device (e.g. cuda to continue a CPU run on a GPU; --resume "
                             "accepts a different run section)")
    parser.add_argument("--threads", type=int, default=None,
                        help="override the config's run.threads (torch threads per process; on a machine shared with "
                             "other jobs 1 is faster than 2, measured 6x in training/README.md)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from strvos_core.errors import StrvosError
    from strvos_core.training import TrainConfig, train

    try:
        if args.stop_after is not None and args.stop_after < 1:
            raise StrvosError(f"--stop-after must be >= 1, got {args.stop_after}")
        if args.max_minutes is not None and args.max_minutes <= 0:
            raise StrvosError(f"--max-minutes must be > 0, got {args.max_minutes}")
        config = TrainConfig.from_yaml(args.config)
        if args.threads is not None and args.threads < 1:
            raise StrvosError(f"--threads must be >= 1, got {args.threads}")
        overrides = {k: v for k, v in (("device", args.device), ("threads", args.threads)) if v}
        if overrides:
            config = dataclasses.replace(config, run=dataclasses.replace(config.run, **overrides))
        result = train(config, args.out, resume=args.resume, stop_after=args.stop_after,
                       progress=not args.no_progress,
                       max_seconds=None if args.max_minutes is None else args.max_minutes * 60)
    except StrvosError as error:
        print(f"strvos train: error: {error}", file=sys.stderr)
        return 2
    if result.history:
        last = result.history[-1]
        print(f"step {last['step']}: loss {last['loss']:.4f} (lm {last['lm']:.4f}, bce {last['bce']:.4f}, "
              f"dice {last['dice']:.4f}); checkpoint {result.last_checkpoint}; log {result.log_path}")
    return 0
