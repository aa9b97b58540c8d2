"""Scenario 2: lifecycle cycles with frames flowing. From active: deactivate, cleanup (unconfigured), configure,
activate, each with `ros2 lifecycle set` as users type it, while a camera publishes all along; a cycle ends when
the node answers frames again. After every cycle, in the same state, the node must hold what it held after the
first: threads, open descriptors, subscriptions and publishers in the ROS graph, and memory (RSS and the Python
heap: last quarter / first quarter <= 1.05)."""
from __future__ import annotations

import threading
import time

from reliability.launcher import NODE, LaunchedNode, lifecycle_set
from reliability.outcome import Outcome, number, quarter_ratio
from reliability.rig import Rig

FLAT = 1.05
SETTLE_S = 10.0  # what the graph and the thread list show catches up within this (discovery, threads ending)
TRANSITIONS = ("deactivate", "cleanup", "configure", "activate")


class Camera(threading.Thread):
    """The rig's camera at ``rate`` Hz on a thread, until stop()."""

    def __init__(self, rig: Rig, rate: float) -> None:
        super().__init__(name="soak-camera", daemon=True)
        self.rig, self.period, self._halt = rig, 1.0 / rate, threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.period):
            self.rig.send_frame(round(time.time(), 6))

    def stop(self) -> None:
        self._halt.set()
        self.join(5.0)


def graph(rig: Rig, name: str = NODE) -> tuple[int, int]:
    """(subscriptions, publishers) the ROS graph shows for the node (what `ros2 node info` lists)."""
    node_name = name.rsplit("/", 1)[-1]
    namespace = name.rsplit("/", 1)[0] or "/"
    subs = rig.node.get_subscriber_names_and_types_by_node(node_name, namespace)
    pubs = rig.node.get_publisher_names_and_types_by_node(node_name, namespace)
    return len(subs), len(pubs)


def run(node: LaunchedNode, rig: Rig, cycles: int, rate: float = 15.0, frames_per_cycle: int = 3,
        settle_s: float = 1.5, progress: bool = False) -> Outcome:
    out = Outcome("lifecycle")
    started = time.monotonic()
    camera = Camera(rig, rate)
    camera.start()
    try:
        for cycle in range(1, cycles + 1):
            row: dict = {"cycle": cycle}
            for transition in TRANSITIONS:
                ok, text = lifecycle_set(transition)
                if not out.check(ok, f"cycle {cycle}: `ros2 lifecycle set {NODE} {transition}` failed: {text[-300:]}"):
                    return _finish(out, node, started)
                if transition == "cleanup":  # unconfigured: nothing of a configuration may be left
                    time.sleep(settle_s)
                    row.update(_held(node, rig, "unconfigured", out.table[0] if out.table else None))
            answered = rig.answered_count()
            deadline = time.monotonic() + 120
            while rig.answered_count() < answered + frames_per_cycle:
                if not out.check(time.monotonic() < deadline, f"cycle {cycle}: no frames answered after activate"):
                    return _finish(out, node, started)
                time.sleep(0.05)
            time.sleep(settle_s)
            values, _ = rig.latest_diagnostics()
            row.update(_held(node, rig, "active", out.table[0] if out.table else None))
            row["heap_blocks_active"] = int(number(values, "python_heap_blocks"))
            out.table.append(row)
            if progress:
                print("     " + ", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    finally:
        camera.stop()
    return _finish(out, node, started)


def _held(node: LaunchedNode, rig: Rig, state: str, first: dict | None) -> dict:
    """Threads, descriptors, graph entities and RSS of the node in ``state``. Counts that differ from the first
    cycle's are read again for up to SETTLE_S (discovery and ending threads lag); what stays different is kept."""
    keys = [f"{k}_{state}" for k in ("threads", "fds", "subs", "pubs")]
    deadline = time.monotonic() + SETTLE_S
    while True:
        proc = node.sample()
        subs, pubs = graph(rig)
        row = dict(zip(keys, (proc.threads, proc.fds, subs, pubs), strict=True))
        if first is None or all(row[k] <= first[k] for k in keys) or time.monotonic() > deadline:
            row[f"rss_{state}_mib"] = round(proc.rss_mib, 1)
            return row
        time.sleep(0.25)


def _finish(out: Outcome, node: LaunchedNode, started: float) -> Outcome:
    rows = out.table
    out.figures["cycles"] = len(rows)
    for key in ("threads_unconfigured", "fds_unconfigured", "subs_unconfigured", "pubs_unconfigured",
                "threads_active", "fds_active", "subs_active", "pubs_active"):
        if not rows:
            break
        values = [row[key] for row in rows[1:]]  # after the first cycle (one-time start-up)
        out.figures[key.replace("_", " ")] = " -> ".join(str(v) for v in _changes([rows[0][key], *values]))
        out.check(len(set(values)) <= 1 and (not values or values[0] <= rows[0][key]),
                  f"{key} changed over the cycles: {_changes([rows[0][key], *values])}")
    for key in ("rss_unconfigured_mib", "rss_active_mib", "heap_blocks_active"):
        values = [row[key] for row in rows[1:]]
        if values:
            out.figures[f"{key.replace('_', ' ')} first / last"] = f"{values[0]} / {values[-1]}"
            out.figures[f"{key.replace('_', ' ')} last / first quarter"] = round(quarter_ratio(values), 4)
            out.check(quarter_ratio(values) <= FLAT, f"{key} grew: last / first quarter {quarter_ratio(values):.3f}")
    out.check(node.alive(), "the node died")
    out.seconds = time.monotonic() - started
    return out


def _changes(values: list) -> list:
    """The values with repeats collapsed: [22, 22, 23, 23] -> [22, 23]."""
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]
