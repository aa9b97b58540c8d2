"""strvos_node in its own process (tiny random model, 64x48 frames) driven from this process over real DDS.

One node serves the whole module (loading the model takes ~15 s here); tests run in file order and each uses
fresh, increasing stamps, so a test only ever looks at the outputs of its own frames.
"""
from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from ros_harness import (  # noqa: E402
    HEIGHT,
    WIDTH,
    Client,
    image_msg,
    plane_depth,
    scene_rgb,
    seconds_of,
    start_node,
    stop_process,
)
from strvos_ros.msg import TargetCommand, TargetSegmentation  # noqa: E402

_clock = itertools.count(1)


def next_stamp() -> float:
    """Strictly increasing frame stamps (100 s + 0.25 s steps) shared by all tests of the module."""
    return 100.0 + 0.25 * next(_clock)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    log = tmp_path_factory.mktemp("strvos_node") / "node.log"
    proc = start_node(log, score_threshold=0.0, warn_throttle=0.0, diagnostics_period=0.5)
    client = Client()
    try:
        client.wait_subscribed(timeout=180)
        yield client, proc
    finally:
        client.close()
        code = stop_process(proc)
        text = log.read_text(errors="replace")
        assert code == 0, f"strvos_node exited with {code}:\n{text[-3000:]}"
        assert "Traceback" not in text, text[-3000:]


def mask_array(msg) -> np.ndarray:
    assert msg.encoding == "mono8" and msg.step == msg.width
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width)


def answered(client, predicate, applied: bool):
    return client.wait_for("status", lambda m: m.applied == applied and predicate(m))


def test_prompt_and_frames_reach_the_node_with_best_effort_publisher(node):
    """The pipeline's results as messages: headers kept, masks lossless on every mask topic, the pose published
    as in the SegmentationArray. The prompt is answered at once, before any camera frame was sent (it used to
    wait for one), and again with the stamp of its first frame."""
    client, proc = node
    client.watch_target("default")
    client.prompt("the red square")
    now = answered(client, lambda m: m.target_id == "default" and m.accepted, applied=False)
    assert now.action == TargetCommand.ADD and now.active_targets == ["default"] and now.prompt == "the red square"
    t = next_stamp()
    client.send_frame(t, depth=plane_depth(1.25, encoding="16UC1"))
    status = answered(client, lambda m: m.target_id == "default" and m.accepted, applied=True)
    assert seconds_of(status.header) == pytest.approx(t)  # stamped with the first frame it applies to
    assert status.frame_index == now.frame_index
    client.wait_for_stamp("segmentation", t)
    # Per-target topics appear with the target; check them on the next frame, once discovery has matched.
    t = next_stamp()
    client.send_frame(t, depth=plane_depth(1.25, encoding="16UC1"))
    seg = client.wait_for_stamp("segmentation", t)
    mask = client.wait_for_stamp("mask", t)
    per_target = client.wait_for_stamp("mask/default", t)
    (target,) = seg.targets
    pose = client.wait_for_stamp("pose/default", t) if target.pose_valid else seg.targets[0].pose
    for header in (seg.header, mask.header, per_target.header, pose.header):
        assert header.frame_id == "cam_optical"
    assert (mask.width, mask.height) == (WIDTH, HEIGHT)
    assert target.target_id == "default" and target.prompt == "the red square"
    assert set(np.unique(mask_array(mask))) <= {0, 255}
    np.testing.assert_array_equal(mask_array(mask), mask_array(target.mask))
    np.testing.assert_array_equal(mask_array(per_target), mask_array(target.mask))
    area = int((mask_array(mask) > 0).sum())
    assert target.mask_area == area
    assert target.state == (TargetSegmentation.STATE_TRACKING if area else TargetSegmentation.STATE_NOT_FOUND)
    if area:
        rows, cols = np.nonzero(mask_array(mask))
        assert (target.bbox.x_offset, target.bbox.y_offset) == (cols.min(), rows.min())
        assert (target.bbox.width, target.bbox.height) == (cols.max() - cols.min() + 1, rows.max() - rows.min() + 1)
        assert target.pose_valid and target.depth_points == area
        assert target.pose.pose.position.z == pytest.approx(1.25, abs=1e-6)
        assert pose.pose == target.pose.pose
    log = proc.log_path.read_text(errors="replace")  # the node says what it waits for, and when it came
    assert "waiting for images on /image, /depth, /camera_info, /depth_camera_info" in log
    assert "first image received on /image (64x48 rgb8)" in log


def test_float_depth_from_a_reliable_publisher_and_depth_at_half_resolution(node):
    """Depth arrives through the camera thread's matcher with both CameraInfos, each given to the pipeline as
    what it is (the depth's own and the colour's): 32FC1 metres, and depth at half the colour resolution."""
    client, _ = node
    t = next_stamp()
    client.send_frame(t, depth=plane_depth(0.8, encoding="32FC1"), depth_encoding="32FC1", reliable=True)
    (target,) = client.wait_for_stamp("segmentation", t).targets
    if target.mask_area:
        assert target.pose_valid and target.pose.pose.position.z == pytest.approx(0.8, abs=1e-6)
    t = next_stamp()
    client.send_frame(t, depth=plane_depth(2.0, WIDTH // 2, HEIGHT // 2))
    (target,) = client.wait_for_stamp("segmentation", t).targets
    if target.mask_area:
        assert target.pose_valid and target.pose.pose.position.z == pytest.approx(2.0, abs=1e-6)


def test_targets_by_topic_and_service_with_their_own_mask_topics(node):
    client, _ = node
    client.watch_target("mug")
    client.target(TargetCommand.ADD, "mug", "the mug on the left")
    added = answered(client, lambda m: m.target_id == "mug" and m.accepted, applied=False)
    assert added.active_targets == ["default", "mug"]
    t = next_stamp()
    client.send_frame(t)
    assert [x.target_id for x in client.wait_for_stamp("segmentation", t).targets] == ["default", "mug"]
    t = next_stamp()
    client.send_frame(t)
    client.wait_for_stamp("mask/mug", t)

    response = client.set_target(TargetCommand.REMOVE, "mug")  # the service answers synchronously
    assert response.accepted and response.active_targets == ["default"] and "removed" in response.message
    unknown = client.set_target(TargetCommand.REMOVE, "nothing_here")
    assert not unknown.accepted and "no target" in unknown.message
    assert not client.set_target(7, "x").accepted
    t = next_stamp()
    client.send_frame(t)
    assert [x.target_id for x in client.wait_for_stamp("segmentation", t).targets] == ["default"]
    deadline = time.monotonic() + 30
    while client.node.count_publishers(f"{client.ns}/mask/mug"):  # the removed target's topic goes with it
        assert time.monotonic() < deadline, "~/mask/mug still has a publisher"
        time.sleep(0.1)

    client.target(TargetCommand.CLEAR)
    t = next_stamp()
    client.send_frame(t)
    cleared = answered(client, lambda m: m.action == TargetCommand.CLEAR, applied=True)
    assert cleared.accepted and cleared.active_targets == [] and seconds_of(cleared.header) == pytest.approx(t)
    assert client.wait_for_stamp("segmentation", t).targets == []

    response = client.set_target(TargetCommand.ADD, "", "the red square")  # empty id: the default target
    assert response.accepted and response.active_targets == ["default"]
    t = next_stamp()
    client.send_frame(t)
    assert [x.target_id for x in client.wait_for_stamp("segmentation", t).targets] == ["default"]


def test_a_special_token_prompt_is_refused_at_once_and_the_batch_goes_on(node):
    """Bug: a prompt with a special token passed the node's check, failed in the core while a frame was being
    processed, and took that frame and the rest of the queued changes with it, with no answer."""
    client, _ = node
    client.target(TargetCommand.ADD, "cup", "the cup")
    client.target(TargetCommand.ADD, "tok", "find the [SEG] token")
    client.target(TargetCommand.REMOVE, "cup")
    refused = answered(client, lambda m: m.target_id == "tok", applied=False)
    assert not refused.accepted and "[SEG]" in refused.message and refused.prompt == "find the [SEG] token"
    answered(client, lambda m: m.target_id == "cup" and m.action == TargetCommand.REMOVE, applied=False)
    t = next_stamp()
    client.send_frame(t)
    assert [x.target_id for x in client.wait_for_stamp("segmentation", t).targets] == ["default"]
    removed = answered(client, lambda m: m.target_id == "cup" and m.action == TargetCommand.REMOVE, applied=True)
    assert seconds_of(removed.header) == pytest.approx(t)


def test_parameters_change_at_run_time(node):
    client, _ = node
    assert client.set_parameter("score_threshold", 1.0)[0]
    t = next_stamp()
    client.send_frame(t)
    (target,) = client.wait_for_stamp("segmentation", t).targets
    assert target.score < 1.0 and target.state != TargetSegmentation.STATE_TRACKING
    assert client.set_parameter("score_threshold", 0.0)[0]
    ok, reason = client.set_parameter("score_threshold", 1.5)
    assert not ok  # out of the declared range
    ok, reason = client.set_parameter("model", "/somewhere/else")
    assert not ok and "read-only" in reason.lower()
    assert client.set_parameter("publish_overlay", False)[0]
    t = next_stamp()
    client.send_frame(t)
    (target,) = client.wait_for_stamp("segmentation", t).targets
    assert target.state == (TargetSegmentation.STATE_TRACKING if target.mask_area else TargetSegmentation.STATE_LOST)
    time.sleep(0.3)
    assert not any(abs(seconds_of(m.header) - t) < 1e-6 for m in client.messages("overlay"))
    assert client.set_parameter("publish_overlay", True)[0]


def test_outputs_without_subscribers_are_skipped_and_late_subscribers_served(node):
    client, _ = node
    from sensor_msgs.msg import Image
    from visualization_msgs.msg import MarkerArray

    def frame_with_depth() -> tuple[float, dict[str, str]]:
        t = next_stamp()
        client.send_frame(t, depth=plane_depth(1.0))
        client.wait_for_stamp("segmentation", t)
        return t, client.diagnostics_values()

    _, before = frame_with_depth()
    assert int(before["stage.overlay_n"]) >= 1  # this client watches ~/overlay from the start
    client.unwatch("overlay")
    deadline = time.monotonic() + 30
    while client.node.count_subscribers(f"{client.ns}/overlay"):
        assert time.monotonic() < deadline, "the overlay subscription did not go away"
        time.sleep(0.1)
    time.sleep(0.5)  # the node's side of the graph catches up
    _, unwatched = frame_with_depth()
    _, later = frame_with_depth()
    assert int(later["frames_processed"]) > int(unwatched["frames_processed"])
    assert later["stage.overlay_n"] == unwatched["stage.overlay_n"]  # nobody listens: overlay not drawn

    client.watch(MarkerArray, f"{client.ns}/markers")  # a late subscriber gets markers from then on
    client.watch(Image, f"{client.ns}/overlay")
    deadline = time.monotonic() + 60
    while True:
        t, _ = frame_with_depth()
        markers = [m for m in client.messages("markers") if m.markers and seconds_of(m.markers[0].header) == t]
        overlays = [m for m in client.messages("overlay") if seconds_of(m.header) == t]
        if markers and overlays:
            break
        assert time.monotonic() < deadline, "markers / overlay never reached a late subscriber"
    (target,) = client.wait_for_stamp("segmentation", t).targets
    if target.pose_valid:
        assert any(marker.type in (marker.CUBE, marker.SPHERE) for marker in markers[0].markers)


def test_bad_input_is_counted_logged_and_survived(node):
    """Malformed messages are dropped on receipt (so they never displace a good frame), counted and logged; what
    the pipeline finds wrong with depth (its own tests cover each case) is counted by kind the same way."""
    client, proc = node
    rgb = scene_rgb()
    bad_frames = []
    t = next_stamp()
    msg = image_msg(rgb, t, "yuv422")
    bad_frames.append(msg)
    short = image_msg(rgb, next_stamp())
    short.data = bytes(short.data)[:-10]
    bad_frames.append(short)
    empty = image_msg(rgb, next_stamp())
    empty.height = empty.width = empty.step = 0
    empty.data = b""
    bad_frames.append(empty)
    # Bytes that are no Image at all (the node takes camera images as CDR bytes and parses them itself).
    bad_frames.append(b"\x00\x01\x00\x00\x05\x00")
    for m in bad_frames:
        client.pub_image.publish(m)
        time.sleep(0.05)
    # A depth buffer shorter than its fields say: dropped on receipt; the frame goes on without depth.
    t_short = next_stamp()
    depth = image_msg(plane_depth(), t_short, "16UC1")
    depth.data = bytes(depth.data)[:-2]
    client.pub_depth.publish(depth)
    client.pub_image.publish(image_msg(rgb, t_short))
    (target,) = client.wait_for_stamp("segmentation", t_short).targets
    assert not target.pose_valid
    # Depth without any CameraInfo: the pipeline's problem, counted as bad camera_info input.
    t_noinfo = next_stamp()
    client.send_frame(t_noinfo, depth=plane_depth(), infos=False)
    (target,) = client.wait_for_stamp("segmentation", t_noinfo).targets
    assert not target.pose_valid
    # A stamp going backwards is dropped; the next good frame is processed.
    client.pub_image.publish(image_msg(rgb, t_noinfo - 0.1))
    t_good = next_stamp()
    client.send_frame(t_good, depth=plane_depth())
    client.wait_for_stamp("segmentation", t_good)
    assert not any(abs(seconds_of(m.header) - (t_noinfo - 0.1)) < 1e-6 for m in client.messages("segmentation"))
    values = client.diagnostics_values()
    assert int(values["bad_input.colour image"]) >= 4
    assert int(values["bad_input.depth image"]) >= 1
    assert int(values["bad_input.stamp"]) >= 1
    assert int(values["bad_input.camera_info"]) >= 1
    assert proc.poll() is None
    log = proc.log_path.read_text(errors="replace")
    for needle in ("yuv422", "expected step x height", "zero size", "is truncated", "went backwards",
                   "no CameraInfo"):
        assert needle in log, needle


def test_prompt_flood_at_100_hz(node):
    client, proc = node
    start = len(client.messages("status"))
    for i in range(150):
        client.prompt(["the red square", "   ", "x" * 5000][i % 3])
        time.sleep(0.01)
    t = next_stamp()
    client.send_frame(t)
    client.wait_for_stamp("segmentation", t, timeout=120)
    refused = client.wait_for("status", lambda m: not m.accepted and "limit" in m.message)
    assert "characters" in refused.message
    statuses = client.messages("status")[start:]
    assert sum(not m.accepted for m in statuses) >= 90  # whitespace and huge prompts, each acknowledged
    assert proc.poll() is None
    values = client.diagnostics_values()
    assert int(values["refused_prompts"]) >= 100


def test_burst_of_1000_frames_keeps_only_the_newest(node):
    client, proc = node
    before = client.diagnostics_values()
    stamps = [next_stamp() for _ in range(1000)]
    rgb = scene_rgb()
    started = time.monotonic()
    for t in stamps:
        client.pub_image.publish(image_msg(rgb, t))
    publish_time = time.monotonic() - started
    t_after = next_stamp()
    time.sleep(1.0)
    client.send_frame(t_after)
    client.wait_for_stamp("segmentation", t_after, timeout=120)
    burst = {round(t, 6) for t in stamps}
    processed = [m for m in client.messages("segmentation") if round(seconds_of(m.header), 6) in burst]
    # Never more than one frame plus one inference behind: while one inference runs, at most one frame waits.
    step = max(float(m.inference_time) for m in processed) if processed else 1.0
    assert len(processed) <= 2 + publish_time / max(step, 1e-3) + 1, (len(processed), publish_time, step)
    values = client.diagnostics_values()
    received = int(values["frames_received"]) - int(before["frames_received"])
    dropped = int(values["dropped_frames"]) - int(before["dropped_frames"])
    assert received >= 10  # best effort: DDS itself drops part of a burst on a busy 2-core machine
    assert dropped >= received - len(processed) - 2
    assert proc.poll() is None


def test_incompatible_qos_is_warned_and_counted(node):
    client, proc = node
    from ros_harness import BEST_EFFORT
    from std_msgs.msg import String

    before = int(client.diagnostics_values().get("incompatible_qos", 0))
    publisher = client.node.create_publisher(String, "/strvos/prompt", BEST_EFFORT)  # the node wants reliable
    try:
        deadline = time.monotonic() + 30
        while "incompatible QoS" not in proc.log_path.read_text(errors="replace"):
            assert time.monotonic() < deadline, "no incompatible-QoS warning in the node log"
            time.sleep(0.2)
        assert int(client.diagnostics_values()["incompatible_qos"]) > before
    finally:
        client.node.destroy_publisher(publisher)
