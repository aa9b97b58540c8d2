"""Fully populated strvos_ros messages with deterministic, non-default values in every field."""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Vector3
from sensor_msgs.msg import Image, RegionOfInterest
from strvos_ros.msg import PromptStatus, SegmentationArray, TargetCommand, TargetSegmentation


def _mask(h: int, w: int, seed: int) -> Image:
    rng = np.random.default_rng(seed)
    img = Image()
    img.header.stamp.sec, img.header.stamp.nanosec = 1_700_000_000 + seed, 123_456_789
    img.header.frame_id = "camera_color_optical_frame"
    img.height, img.width, img.encoding, img.is_bigendian, img.step = h, w, "mono8", 0, w
    img.data = (rng.integers(0, 2, size=(h, w), dtype=np.uint8) * 255).tobytes()
    return img


def target(i: int) -> TargetSegmentation:
    t = TargetSegmentation()
    t.header.stamp.sec, t.header.stamp.nanosec = 1_700_000_000 + i, 987_654_321
    t.header.frame_id = "camera_color_optical_frame"
    t.target_id = f"mug-{i}"
    t.prompt = f"the red mug left of the laptop ü {i}"
    t.score = 0.25 + 0.125 * i
    t.state = TargetSegmentation.STATE_LOST if i % 2 else TargetSegmentation.STATE_TRACKING
    t.has_seg = bool(i % 2 == 0)
    t.mask = _mask(37 + i, 53, seed=i)
    t.mask_area = 1000 + i
    t.bbox = RegionOfInterest(x_offset=3 + i, y_offset=4, height=20, width=30 + i, do_rectify=True)
    t.pose.header.frame_id = "camera_color_optical_frame"
    t.pose.header.stamp.sec = 42 + i
    p, q = t.pose.pose.position, t.pose.pose.orientation
    p.x, p.y, p.z = 0.125, -0.5 + i, 1.75
    q.x, q.y, q.z, q.w = 0.5, 0.5, -0.5, 0.5
    t.pose_valid, t.orientation_valid = True, bool(i % 2)
    t.extent = Vector3(x=0.1, y=0.2 + i, z=0.3)
    t.depth_points = 4321 + i
    return t


def segmentation_array() -> SegmentationArray:
    m = SegmentationArray()
    m.header.stamp.sec, m.header.stamp.nanosec = 1_700_000_123, 5
    m.header.frame_id = "camera_color_optical_frame"
    m.targets = [target(0), target(1), target(2)]
    m.inference_time = 0.0625
    return m


def target_command() -> TargetCommand:
    return TargetCommand(action=TargetCommand.REMOVE, target_id="cup", prompt="the blue cup")


def prompt_status() -> PromptStatus:
    s = PromptStatus()
    s.header.stamp.sec, s.header.stamp.nanosec = 12, 34
    s.header.frame_id = "cam"
    s.action, s.target_id, s.prompt = TargetCommand.ADD, "cup", "the blue cup"
    s.accepted, s.applied, s.frame_index = True, True, 2**40 + 3
    s.message = "target 'cup' added: applies from frame 1099511627779"
    s.active_targets = ["default", "cup"]
    return s


SAMPLES = {
    "segmentation": segmentation_array,
    "command": target_command,
    "status": prompt_status,
}
