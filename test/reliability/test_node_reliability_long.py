"""Longer versions of the node scenarios (slow suite): thousands of frames, ten lifecycle cycles, two fuzz rounds,
a crashed driver waited for until DDS reports its publisher gone. tools/soak.py runs the full sizes for
benchmarks/reliability.md."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("rclpy")
pytestmark = [pytest.mark.ros, pytest.mark.slow]

from reliability import camera_loss, cycles, fuzz, longrun  # noqa: E402
from reliability.launcher import stop_daemon  # noqa: E402
from reliability.runner import node_and_rig  # noqa: E402

if not shutil.which("ros2"):
    pytest.skip("no `ros2` command: the launch system is not installed", allow_module_level=True)


def test_soak_of_3000_frames_at_15_hz_stays_flat_and_accounted(tmp_path):
    with node_and_rig(tmp_path, "random:tiny", (320, 240)) as (node, rig, done):
        outcome = longrun.run(node, rig, frames=3000, rate=15.0, sample_every=250)
    assert outcome.held and done.held, outcome.failures + done.failures


def test_ten_lifecycle_cycles_and_two_fuzz_rounds(tmp_path):
    params = {"input.reliability": "reliable", "diagnostics_period": 0.25}
    with node_and_rig(tmp_path, "random:tiny", reliable=True, **params) as (node, rig, done):
        outcomes = [fuzz.run(node, rig, seed) for seed in (7, 8)] + [cycles.run(node, rig, cycles=10)]
        stop_daemon()
    assert all(o.held for o in outcomes) and done.held, [o.failures for o in outcomes] + done.failures


def test_a_crashed_driver_is_reported_lost_once_dds_lets_it_go(tmp_path):
    with node_and_rig(tmp_path, "random:tiny", diagnostics_period=0.25) as (node, rig, done):
        outcome = camera_loss.run(node, rig, tmp_path / "camera", lost_timeout=60.0)
    rounds = {row["driver stopped by"]: row for row in outcome.table}
    assert rounds["SIGKILL"]["LOST after (s)"] != "never", outcome.table
    assert outcome.held and done.held, outcome.failures + done.failures
