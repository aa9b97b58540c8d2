"""ROS messages <-> strvos_core values: images and camera infos in, commands in, poses out (no cv_bridge).

Only conversion here: what the values mean and whether they are usable is checked once, in strvos_core
(realtime.encodings for image buffers, realtime.depth_input for depth and intrinsics, realtime.prompts for
prompts).
"""
from __future__ import annotations

import array

import numpy as np
from geometry_msgs.msg import PoseStamped, Vector3
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from strvos_ros.msg import TargetCommand

from strvos_core.pose.pca import PoseEstimate
from strvos_core.realtime.commands import AddTarget, ClearTargets, Command, RemoveTarget, SetPrompt
from strvos_core.realtime.depth_input import DepthImage, Intrinsics
from strvos_core.realtime.encodings import (
    COLOR_ENCODINGS,
    check_layout,
    decode_compressed,
    image_from_buffer,
    to_rgb,
)
from strvos_core.realtime.prompts import PromptError
from strvos_ros.cdr import RawImage


def stamp_seconds(header: Header) -> float:
    """The stamp in seconds; ValueError for a stamp that is no time (nanosec must be below 1e9)."""
    if header.stamp.nanosec >= 1_000_000_000:
        raise ValueError(f"stamp nanosec {header.stamp.nanosec} is not below 1e9: not a time")
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def check_colour(msg: Image | RawImage | CompressedImage) -> None:
    """Cheap checks of a colour image on receipt (no copy), so that a malformed one never displaces a good
    frame waiting for the worker; ValueError when it is unusable."""
    if isinstance(msg, CompressedImage):
        if len(msg.data) == 0:
            raise ValueError("compressed image is empty")
        return
    if msg.encoding not in COLOR_ENCODINGS:
        raise ValueError(f"colour encoding {msg.encoding!r} is not supported; use one of {COLOR_ENCODINGS}")
    check_layout(msg.height, msg.width, msg.step, msg.encoding, len(msg.data))


def rgb_from_msg(msg: Image | RawImage | CompressedImage) -> np.ndarray:
    """HxWx3 uint8 RGB of a colour Image (rgb8, bgr8, mono8, rgba8, bgra8) or CompressedImage; a view of the
    message's bytes where no conversion is needed (rgb8 with step = 3 x width)."""
    if isinstance(msg, CompressedImage):
        return decode_compressed(msg.data)
    image = image_from_buffer(msg.data, msg.height, msg.width, msg.step, msg.encoding, bool(msg.is_bigendian))
    return to_rgb(image, msg.encoding)


def intrinsics(msg: CameraInfo | None) -> Intrinsics | None:
    return None if msg is None else Intrinsics(np.asarray(msg.k, dtype=np.float64), msg.width, msg.height)


def depth_image(msg: Image | RawImage, info: CameraInfo | None) -> DepthImage:
    """The depth pixels as published (ValueError when the buffer does not hold the image its fields describe)."""
    pixels = image_from_buffer(msg.data, msg.height, msg.width, msg.step, msg.encoding, bool(msg.is_bigendian))
    return DepthImage(pixels, msg.encoding, intrinsics(info))


def command(action: int, target_id: str, prompt: str) -> Command:
    """The typed command of a TargetCommand's (or SetTarget request's) fields; PromptError for an unknown
    action. ADD with an empty target id sets the default target (as /strvos/prompt does)."""
    if action == TargetCommand.ADD:
        return SetPrompt(prompt) if target_id == "" else AddTarget(target_id, prompt)
    if action == TargetCommand.REMOVE:
        return RemoveTarget(target_id)
    if action == TargetCommand.CLEAR:
        return ClearTargets()
    raise PromptError(f"unknown action {action}; use ADD=0, REMOVE=1 or CLEAR=2")


def action_of(command: Command | None, fallback: int = 0) -> int:
    """The TargetCommand action number of a command (``fallback`` for none)."""
    if isinstance(command, (AddTarget, SetPrompt)):
        return TargetCommand.ADD
    if isinstance(command, RemoveTarget):
        return TargetCommand.REMOVE
    if isinstance(command, ClearTargets):
        return TargetCommand.CLEAR
    return fallback


def _byte_array(pixels: np.ndarray) -> array.array:
    """The bytes of a uint8 array as the array.array('B') an Image's data field holds, in one copy (passing
    bytes or a numpy array to the message constructor costs one more copy, or a per-element loop)."""
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(pixels, dtype=np.uint8))
    return data


def rgb_msg(rgb: np.ndarray, header: Header) -> Image:
    height, width = rgb.shape[:2]
    msg = Image(header=header, height=height, width=width, encoding="rgb8", is_bigendian=0, step=width * 3)
    msg.data = _byte_array(rgb)
    return msg


def pose_msg(estimate: PoseEstimate, header: Header) -> PoseStamped:
    pose = PoseStamped(header=header)
    if estimate.position_valid:
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in estimate.position)
    q = estimate.orientation
    pose.pose.orientation.x, pose.pose.orientation.y, pose.pose.orientation.z, pose.pose.orientation.w = q
    return pose


def extent_msg(estimate: PoseEstimate) -> Vector3:
    if not estimate.position_valid:
        return Vector3()
    x, y, z = (float(v) for v in estimate.extent)
    return Vector3(x=x, y=y, z=z)
