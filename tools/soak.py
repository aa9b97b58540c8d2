#!/usr/bin/env python3
"""Reliability of strvos under load, faults and hostile input, measured (issue 15). Five scenarios, each on the
real node started with `ros2 launch` (tiny model) and driven over real DDS from this process:

  soak       frames at a camera's rate for a long time (colour + depth + CameraInfos, prompt changes, target
             churn): RSS and Python heap every --sample-every frames must stay flat (last / first quarter
             <= 1.05), threads and descriptors constant, latency bounded, and sent = answered + dropped
             (counted by the node) + lost in transport
  lifecycle  deactivate / cleanup / configure / activate with `ros2 lifecycle set`, frames flowing: no leaked
             threads, descriptors, subscriptions, publishers or memory
  fuzz       a hostile publisher (tools/reliability/hostile.py): every bad message counted in /diagnostics, good
             frames answered before and after, the node never dies
  crash      `strvos train` (micro config) and `strvos eval` (tiny model) SIGKILLed at random points and resumed:
             the same log, weights, records and scores as an uninterrupted run
  camera     the camera driver (a process of its own) killed and restarted: STALE / LOST reported on
             /diagnostics, frames answered again without touching the node

Figures go to --out (between markers; the rest of the file is kept), each scenario's section naming the
machine, its load and this command; a run replaces the sections of the scenarios it ran and keeps the others'
(run scenarios separately and they accumulate). ROS network safety: LOCALHOST discovery and a random ROS_DOMAIN_ID for this process and its children.

  nice -n 5 python tools/soak.py --out benchmarks/reliability.md --load-note "what else ran"
  python tools/soak.py --quick          # the sizes CI runs (test/reliability), a few minutes
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reliability import rosenv  # noqa: E402,F401 - ROS network safety before anything imports rclpy
from reliability.outcome import Outcome  # noqa: E402
from reliability.report import SCENARIOS  # noqa: E402

TITLE = "# Reliability under load, faults and hostile input"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated subset of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="CI sizes: 300 frames, 3 cycles, one fuzz round, one kill each, short camera loss")
    parser.add_argument("--model", default="random:tiny", help="node model (random:tiny, default, or an export)")
    parser.add_argument("--frames", type=int, default=10_000, help="soak: frames the camera sends")
    parser.add_argument("--rate", type=float, default=15.0, help="camera rate in Hz (soak, lifecycle, camera)")
    parser.add_argument("--size", default="640x480", help="soak: WIDTHxHEIGHT of the camera images")
    parser.add_argument("--sample-every", type=int, default=500, help="soak: frames between memory samples")
    parser.add_argument("--reliable", action="store_true",
                        help="soak: reliable camera QoS on both sides (default: best effort, the node's default)")
    parser.add_argument("--no-shm", action="store_true",
                        help="do not use the node's large-image Fast DDS profile (config/fastdds_large_images.xml)")
    parser.add_argument("--cycles", type=int, default=100, help="lifecycle: configure/activate/deactivate/cleanup cycles")
    parser.add_argument("--fuzz-rounds", type=int, default=1, help="fuzz: rounds of every hostile case")
    parser.add_argument("--kills", type=int, default=5, help="crash: SIGKILLs per command (train, eval)")
    parser.add_argument("--seed", type=int, default=0, help="random kill points and fuzz bytes")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/strvos-soak"), help="logs and run folders")
    parser.add_argument("--out", type=Path, help="write the figures into this markdown file (between markers)")
    parser.add_argument("--json", type=Path, help="also write every outcome as JSON here")
    parser.add_argument("--load-note", default="", help="what else ran on the machine (named in the report)")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.cycles, args.kills, args.size, args.sample_every = 300, 3, 1, "64x48", 50
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {SCENARIOS}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Ctrl-C (or kill -INT, also of a background job, which starts with SIGINT ignored) raises KeyboardInterrupt:
    # the scenario's node is stopped and what was measured is kept
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if not args.no_shm:
        from reliability.launcher import shm_profile

        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(shm_profile())
    from reliability import report
    from reliability.runner import run_scenario

    chosen = [s for s in SCENARIOS if s in args.scenarios.split(",")]
    load = report.LoadWatch()
    load.start()
    measured: list[tuple[Outcome, report.Context]] = []
    command = "python tools/soak.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    host = report.machine()
    for name in chosen:
        print(f"== {name}", flush=True)
        started, revision, outcomes = time.time(), report.commit(), []
        try:
            for outcome in run_scenario(name, args):
                outcomes.append(outcome)
                _print(outcome)
        except Exception as exc:  # a scenario that breaks is a failed scenario; the others still run
            traceback.print_exc()
            outcomes.append(Outcome(name, failures=[f"the scenario raised {exc!r}"]))
        context = report.Context(started, load.summary(since=started), args.load_note, command.strip(), revision,
                                 host)
        measured += [(outcome, context) for outcome in outcomes]
        _save(args, measured)  # what is measured is never lost
    load.stop()
    if args.out:
        print(f"figures written to {args.out}")
    return 0 if all(o.held for o, _ in measured) else 1


def _print(outcome: Outcome) -> None:
    print(f"   {outcome.name}: {'held' if outcome.held else 'FAILED'} in {outcome.seconds:.0f} s", flush=True)
    for key, value in outcome.figures.items():
        print(f"     {key}: {value}", flush=True)
    for failure in outcome.failures:
        print(f"     FAILED: {failure}", flush=True)


def _save(args: argparse.Namespace, measured: list) -> None:
    from reliability import report

    if args.out:  # replaces the sections of the scenarios run now; the others' stay
        report.write(args.out, measured, TITLE)
    if args.json:
        args.json.write_text(json.dumps([{**asdict(o), "context": asdict(c)} for o, c in measured], indent=1,
                                        default=str))


if __name__ == "__main__":
    raise SystemExit(main())
