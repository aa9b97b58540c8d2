"""Short versions of tools/soak.py's node scenarios (issue 15), on one node started with `ros2 launch` (tiny
random model) and driven over real DDS: a soak whose every frame is accounted for, hostile input counted message
by message, lifecycle cycles with frames flowing and nothing leaked, a camera driver that dies and comes back.
The long versions and their figures: tools/soak.py -> benchmarks/reliability.md (and the slow suite)."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from reliability import camera_loss, cycles, fuzz, longrun  # noqa: E402
from reliability.launcher import LaunchedNode, stop_daemon  # noqa: E402
from reliability.rig import Rig  # noqa: E402

if not shutil.which("ros2"):
    pytest.skip("no `ros2` command: the launch system is not installed", allow_module_level=True)


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """Reliable camera QoS (exact counts), diagnostics every 0.25 s (counts seen quickly)."""
    workdir = tmp_path_factory.mktemp("reliability")
    node = LaunchedNode(workdir, prompt="the red square", diagnostics_period=0.25,
                        **{"input.reliability": "reliable"})
    rig = Rig(reliable=True)
    try:
        rig.wait_subscribed()
        node.find_pid()
        yield node, rig, workdir
    finally:
        rig.close()
        stop_daemon()
        code = node.stop()
        text = node.log()
        assert code == 0, text[-3000:]
        assert "Traceback" not in text, text[-3000:]


def test_a_short_soak_accounts_for_every_frame(launched):
    node, rig, _ = launched
    outcome = longrun.run(node, rig, frames=300, rate=30.0, sample_every=50, prompt_every=50, churn_every=100)
    assert outcome.figures["frames sent"] == 300
    assert outcome.figures["lost in transport (sent - received)"] == 0  # reliable QoS
    assert outcome.figures["answered (results received)"] >= 10
    assert outcome.held, outcome.failures


def test_every_hostile_message_is_counted_and_good_frames_go_on(launched):
    node, rig, _ = launched
    outcome = fuzz.run(node, rig, seed=1)
    assert outcome.figures["hostile messages sent"] == outcome.figures["counted in /diagnostics"] >= 40
    assert outcome.held, outcome.failures


def test_lifecycle_cycles_with_frames_flowing_leak_nothing(launched):
    node, rig, _ = launched
    outcome = cycles.run(node, rig, cycles=2)
    assert outcome.figures["cycles"] == 2
    assert outcome.held, outcome.failures


def test_the_camera_driver_dies_and_the_node_recovers_by_itself(launched):
    """A clean stop: LOST at once; a crash (SIGKILL): STALE (LOST only once DDS's lease runs out, not waited
    for here); both times a new driver is answered without touching the node."""
    node, rig, workdir = launched
    outcome = camera_loss.run(node, rig, workdir / "camera", lost_timeout=3.0)
    rounds = {row["driver stopped by"]: row for row in outcome.table}
    assert rounds["SIGINT"]["LOST after (s)"] != "never"
    assert rounds["SIGKILL"]["STALE after (s)"] != "never"
    assert outcome.held, outcome.failures
    log = node.log()
    assert "camera LOST" in log and "it was LOST): a new stream" in log
