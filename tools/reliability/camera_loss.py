"""Scenario 5: the camera driver dies and comes back. A driver process (driver.py) feeds the node; it is killed
(SIGKILL: a crash) or stopped (SIGINT: its publisher leaves the graph at once). /diagnostics must report the camera
STALE, and LOST once its publisher is gone; a new driver process must be answered again without anyone touching the
node, and the camera reported LIVE. Times are measured from the kill / the restart. The clean stop comes first: a
killed process stays in the DDS graph until its participant's lease runs out (Fast DDS: 20 s), and would keep the
camera STALE, not LOST, for that long."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from reliability.launcher import LaunchedNode
from reliability.outcome import Outcome
from reliability.rig import Rig

DRIVER = Path(__file__).resolve().parent / "driver.py"


def start_driver(rate: float, width: int, height: int, log: Path, reliable: bool = False) -> subprocess.Popen:
    handle = open(log, "ab")  # noqa: SIM115 - the child keeps it; closed with the process
    return subprocess.Popen([sys.executable, str(DRIVER), "--rate", str(rate), "--width", str(width), "--height",
                             str(height), *(["--reliable"] if reliable else [])], stdout=handle,
                            stderr=subprocess.STDOUT, start_new_session=True)


def camera_state(rig: Rig, after: float) -> str:
    return rig.latest_diagnostics(after=after)[1].get("state", "?")


def wait_state(rig: Rig, states: tuple[str, ...], since: float, timeout: float) -> float | None:
    """Seconds from ``since`` until /diagnostics reports the camera in one of ``states`` (None: not in time)."""
    deadline = since + timeout
    while time.monotonic() < deadline:
        if camera_state(rig, time.monotonic() - 0.3) in states:
            return time.monotonic() - since
        time.sleep(0.05)
    return None


def wait_answers(rig: Rig, since: float, count: int, timeout: float) -> float | None:
    start = rig.answered_count()
    while time.monotonic() < since + timeout:
        if rig.answered_count() >= start + count:
            return time.monotonic() - since
        time.sleep(0.05)
    return None


def run(node: LaunchedNode, rig: Rig, workdir: Path, rate: float = 15.0, lost_timeout: float = 60.0,
        rounds: tuple[str, ...] = ("SIGINT", "SIGKILL")) -> Outcome:
    out = Outcome("camera loss")
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    rig.drop_camera()  # the driver process is the only camera
    driver = start_driver(rate, rig.width, rig.height, workdir / "driver.log", rig.reliable)
    try:
        out.check(wait_answers(rig, time.monotonic(), 5, 120) is not None, "the first driver was never answered")
        out.check(wait_state(rig, ("LIVE",), time.monotonic(), 10) is not None, "camera not LIVE with a driver")
        recovered0 = rig.latest_diagnostics()[0].get("camera_recovered", "0")
        for number_, how in enumerate(rounds, 1):
            killed = time.monotonic()
            os.killpg(driver.pid, signal.SIGKILL if how == "SIGKILL" else signal.SIGINT)
            driver.wait(30)
            stale = wait_state(rig, ("STALE", "LOST"), killed, 30)
            lost = wait_state(rig, ("LOST",), killed, lost_timeout)
            restarted = time.monotonic()
            driver = start_driver(rate, rig.width, rig.height, workdir / "driver.log", rig.reliable)
            answered = wait_answers(rig, restarted, 3, 120)
            live = wait_state(rig, ("LIVE",), restarted, 30)
            out.table.append({"round": number_, "driver stopped by": how, "STALE after (s)": _s(stale),
                              "LOST after (s)": _s(lost), "answered again after restart (s)": _s(answered),
                              "LIVE again after restart (s)": _s(live)})
            out.check(stale is not None, f"{how}: the camera was never reported STALE or LOST")
            if how == "SIGINT":  # a clean exit leaves the graph at once
                out.check(lost is not None, f"{how}: the camera was never reported LOST")
            out.check(answered is not None, f"{how}: frames of the restarted driver were never answered")
            out.check(live is not None, f"{how}: the camera was not reported LIVE again")
        values = rig.latest_diagnostics()[0]
        out.figures["camera_recovered (diagnostics)"] = f"{recovered0} -> {values.get('camera_recovered', '0')}"
        out.figures["camera_stale / camera_lost (diagnostics)"] = (
            f"{values.get('camera_stale', '0')} / {values.get('camera_lost', '0')}")
        out.check(int(values.get("camera_recovered", 0)) - int(recovered0) == len(rounds),
                  f"camera_recovered went {recovered0} -> {values.get('camera_recovered')}, expected +{len(rounds)}")
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGINT)
            driver.wait(30)
        rig.restore_camera()
    out.check(node.alive(), "the node died")
    out.seconds = time.monotonic() - started
    return out


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}"
