"""Scenario 3: a hostile publisher. Every malformed message (hostile.cases: encodings, sizes, steps, truncated and
oversized data, cut CDR, lying length fields, random bytes, invalid stamps, 1 MB prompts, invalid UTF-8, bad
target commands) must be counted in /diagnostics, one by one; 1,000 targets are refused beyond max_targets; stamps
in the past and the future, NaN/inf depth and hostile CameraInfo values are handled without garbage; good frames
are answered before and after, and the node never dies."""
from __future__ import annotations

import math
import random
import time

import numpy as np
from strvos_ros.msg import TargetCommand

from reliability import hostile
from reliability.launcher import LaunchedNode
from reliability.outcome import Outcome, number
from reliability.rig import Rig

COUNT_WAIT_S = 10.0


def counted(rig: Rig, key: str, before: float, expected: float = 1, timeout: float = COUNT_WAIT_S) -> float:
    """Wait until /diagnostics' ``key`` reaches ``before + expected``; returns the last value seen."""
    deadline, value = time.monotonic() + timeout, before
    while time.monotonic() < deadline:
        values, _ = rig.latest_diagnostics(after=time.monotonic() - 0.5)
        value = number(values, key)
        if value >= before + expected:
            return value
        time.sleep(0.1)
    return value


def run(node: LaunchedNode, rig: Rig, seed: int = 0, rounds: int = 1, max_targets: int = 16) -> Outcome:
    out = Outcome("fuzz")
    started = time.monotonic()
    rng = random.Random(seed)
    clock = [time.time()]

    def stamp(step: float = 0.05) -> float:
        clock[0] = round(max(clock[0] + step, time.time()), 6)
        return clock[0]

    out.check(rig.answer_good_frame(stamp()), "a good frame before the fuzzing was not answered")
    sent = missed = 0
    by_counter: dict[str, int] = {}
    for _ in range(rounds):
        for case in hostile.cases(rng, stamp(), rig.width, rig.height):
            key = case.counter
            before = number(rig.latest_diagnostics(after=time.monotonic() - 0.5)[0], key)
            rig.publish_bytes(case.topic, case.data)
            sent += 1
            if counted(rig, key, before) < before + 1:
                missed += 1
                out.failures.append(f"not counted: {case.name} ({case.topic}; {key} stayed {before:.0f})")
            by_counter[key] = by_counter.get(key, 0) + 1
    out.figures["hostile messages sent"] = sent
    out.figures["counted in /diagnostics"] = sent - missed
    out.figures["by counter"] = ", ".join(f"{k} {v}" for k, v in sorted(by_counter.items()))
    _targets(out, rig, max_targets)
    _stamps(out, rig, stamp)
    _odd_depth(out, rig, stamp)
    out.check(rig.answer_good_frame(stamp()), "a good frame after the fuzzing was not answered")
    out.check(node.alive(), "the node died")
    log = node.log()
    out.check("Traceback" not in log, "a traceback in the node's log")
    out.figures["node alive, good frames answered before and after"] = node.alive() and not out.failures
    out.seconds = time.monotonic() - started
    return out


def _targets(out: Outcome, rig: Rig, max_targets: int) -> None:
    """1,000 ADDs: each answered, at most max_targets targets in all, the rest refused and counted."""
    before = number(rig.latest_diagnostics()[0], "refused_prompts")
    statuses = len(rig.statuses)
    for i, data in enumerate(hostile.thousand_targets()):  # a flood, in bursts the queues of the QoS can hold
        rig.publish_bytes("targets", data)
        if i % 50 == 49:
            time.sleep(0.1)
    deadline = time.monotonic() + 60
    while len(rig.statuses) < statuses + 1000 and time.monotonic() < deadline:
        time.sleep(0.1)
    answers = [s for s in rig.statuses[statuses:] if s.target_id.startswith("t") and s.target_id[1:].isdigit()]
    accepted = sum(s.accepted for s in answers)
    refused = counted(rig, "refused_prompts", before, 1000 - accepted) - before
    active = max((len(s.active_targets) for s in answers), default=0)
    out.figures["1,000 targets: answered / accepted / refused (counted)"] = f"{len(answers)} / {accepted} / {refused:.0f}"
    out.check(len(answers) == 1000, f"1,000 target commands got {len(answers)} answers")
    out.check(active <= max_targets, f"{active} targets active, more than max_targets {max_targets}")
    out.check(refused == 1000 - accepted, f"{1000 - accepted} refused but {refused:.0f} counted")
    for s in answers:
        if s.accepted:
            rig.target(TargetCommand.REMOVE, s.target_id)


def _stamps(out: Outcome, rig: Rig, stamp) -> None:
    """Stamps going back a little (dropped, counted), far into the future and the past (time jumps, counted)."""
    t = stamp()
    rig.answer_good_frame(t)
    before = rig.latest_diagnostics(after=time.monotonic() - 0.5)[0]
    rig.send_frame(t - 0.5)                      # behind the last colour stamp: refused
    past = counted(rig, "bad_input.stamp", number(before, "bad_input.stamp"))
    out.check(past > number(before, "bad_input.stamp"), "a colour stamp going back 0.5 s was not counted")
    jumps0 = number(before, "time_jumps")
    rig.send_frame(t + 1e6)                      # 11 days ahead: accepted (a clock may jump forward)
    rig.answer_good_frame(stamp())               # back to now: a jump back, matching restarts
    rig.send_frame(1.0)                          # 1970
    rig.answer_good_frame(stamp())
    jumps = counted(rig, "time_jumps", jumps0, 2) - jumps0
    out.figures["stamps: 0.5 s back dropped and counted; +11 days and 1970 counted as time jumps"] = (
        f"{past - number(before, 'bad_input.stamp'):.0f} dropped, {jumps:.0f} jumps")
    out.check(jumps >= 2, f"time jumps counted {jumps:.0f}, expected >= 2")


def _odd_depth(out: Outcome, rig: Rig, stamp) -> None:
    """REP-117 depth (NaN, +-inf), negative and absurd depth, and CameraInfos that lie: frames answered, no NaN
    published, each bad CameraInfo counted."""
    h, w = rig.height, rig.width
    answered = garbage = 0
    for name, value in (("NaN", math.nan), ("+inf", math.inf), ("-inf", -math.inf), ("negative", -1.0),
                        ("1e30 m", 1e30), ("mixed", None)):
        depth = np.full((h, w), value if value is not None else 1.0, np.float32)
        if value is None:
            depth[::2] = np.nan
            depth[:, ::3] = np.inf
        t = stamp()
        rig.send_frame(t, depth=depth.tobytes(), depth_encoding="32FC1")
        if rig.wait_answered(t, 20.0):
            answered += 1
            seg = rig.segmentation(t)
            for target in seg.targets if seg else []:
                p = target.pose.pose
                numbers = [p.position.x, p.position.y, p.position.z, p.orientation.x, p.orientation.y,
                           p.orientation.z, p.orientation.w, target.extent.x, target.extent.y, target.extent.z]
                if not all(math.isfinite(v) for v in numbers):
                    garbage += 1
                    out.failures.append(f"depth {name}: non-finite pose published: {numbers}")
        else:
            out.failures.append(f"depth {name}: frame not answered")
    out.figures["NaN / inf / negative / 1e30 m depth frames answered, non-finite poses"] = f"{answered} / 6, {garbage}"
    focal = 0.9 * w
    bad_k = {"K zeros": [0.0] * 9, "K NaN": [math.nan] * 9,
             "K negative focal": [-focal, 0, w / 2, 0, -focal, h / 2, 0, 0, 1]}
    counted_k = 0
    for name, k in bad_k.items():
        before = number(rig.latest_diagnostics(after=time.monotonic() - 0.5)[0], "bad_input.depth")
        t = stamp()
        rig.send_frame(t, k=k)
        ok = rig.wait_answered(t, 20.0) and counted(rig, "bad_input.depth", before) > before
        counted_k += ok
        out.check(ok, f"CameraInfo {name}: frame not answered or not counted as bad depth input")
    out.figures["CameraInfos that lie (K zeros / NaN / negative focal) counted"] = f"{counted_k} / {len(bad_k)}"
