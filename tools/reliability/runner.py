"""Each scenario of tools/soak.py on a node of its own: started with `ros2 launch`, driven by a rig, stopped with
SIGINT (a clean exit and no traceback are criteria too)."""
from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reliability import camera_loss, crash, cycles, fuzz, longrun
from reliability.launcher import LaunchedNode, stop_daemon
from reliability.outcome import Outcome
from reliability.rig import Rig

PROMPT = "the red square"


@contextmanager
def node_and_rig(workdir: Path, model: str, size: tuple[int, int] = (64, 48), reliable: bool = False,
                 **params) -> Iterator[tuple[LaunchedNode, Rig, Outcome]]:
    """A launched node with a prompt and a rig subscribed to it; on exit the node is stopped with SIGINT and
    its exit recorded in the yielded Outcome (which the caller merges into its own)."""
    node = LaunchedNode(workdir, model=model, prompt=PROMPT, **params)
    rig = Rig(*size, reliable=reliable)
    exit_check = Outcome("exit")
    try:
        rig.wait_subscribed()
        node.find_pid()
        yield node, rig, exit_check
    finally:
        rig.close()
        code = node.stop()
        text = node.log()
        exit_check.check(code == 0, f"the node's launch exited with {code}")
        exit_check.check("Traceback" not in text, f"a traceback in {node.log_path}")


def _merge(outcome: Outcome, exit_check: Outcome) -> Outcome:
    outcome.failures += exit_check.failures
    return outcome


def run_scenario(name: str, args: argparse.Namespace) -> Iterator[Outcome]:
    workdir = args.workdir / name
    if name == "soak":
        width, height = (int(v) for v in args.size.split("x"))
        params = {"input.reliability": "reliable"} if args.reliable else {}
        with node_and_rig(workdir, args.model, (width, height), args.reliable, **params) as (node, rig, done):
            outcome = longrun.run(node, rig, args.frames, args.rate, args.sample_every, progress=True)
        outcome.figures["camera"] = f"{width}x{height} rgb8 + 16UC1 depth + 2 CameraInfos, " + (
            "reliable" if args.reliable else "best effort") + ("" if args.no_shm else ", SHM profile")
        yield _merge(outcome, done)
    elif name == "lifecycle":
        try:
            with node_and_rig(workdir, args.model) as (node, rig, done):
                outcome = cycles.run(node, rig, args.cycles, args.rate, progress=True)
        finally:  # the CLI daemon `ros2 lifecycle set` started goes too, also on Ctrl-C or a failure
            stop_daemon()
        yield _merge(outcome, done)
    elif name == "fuzz":
        params = {"input.reliability": "reliable", "diagnostics_period": 0.25}
        with node_and_rig(workdir, args.model, reliable=True, **params) as (node, rig, done):
            outcomes = [fuzz.run(node, rig, args.seed + i) for i in range(args.fuzz_rounds)]
        for outcome in outcomes:
            yield _merge(outcome, done)
    elif name == "camera":
        with node_and_rig(workdir, args.model, diagnostics_period=0.25) as (node, rig, done):
            outcome = camera_loss.run(node, rig, workdir, args.rate,
                                      lost_timeout=8.0 if args.quick else 60.0)
        yield _merge(outcome, done)
    elif name == "crash":
        yield crash.train(workdir / "train", args.kills, args.seed)
        yield crash.evaluate(workdir / "eval", args.kills, args.seed)
    else:
        raise ValueError(f"unknown scenario {name!r}")
