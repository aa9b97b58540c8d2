"""sensor_msgs / geometry_msgs <-> numpy, with the checks in strvos_core.realtime.encodings (no cv_bridge)."""
from __future__ import annotations

import array

import numpy as np
from geometry_msgs.msg import PoseStamped, Vector3
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from strvos_core.pose import check_intrinsics
from strvos_core.pose.pca import PoseEstimate
from strvos_core.realtime.encodings import decode_compressed, image_from_buffer, to_rgb
from strvos_ros.cdr import RawImage


def stamp_seconds(header: Header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def rgb_from_msg(msg: Image | RawImage | CompressedImage) -> np.ndarray:
    """HxWx3 uint8 RGB of a colour Image (rgb8, bgr8, mono8, rgba8, bgra8) or CompressedImage; a view of the
    message's bytes where no conversion is needed (rgb8 with step = 3 x width)."""
    if isinstance(msg, CompressedImage):
        return decode_compressed(msg.data)
    image = image_from_buffer(msg.data, msg.height, msg.width, msg.step, msg.encoding, bool(msg.is_bigendian))
    return to_rgb(image, msg.encoding)


def depth_from_msg(msg: Image | RawImage) -> np.ndarray:
    """Raw HxW depth array (uint16 mm or float32 m, see encoding) of a depth Image."""
    if msg.encoding not in ("16UC1", "mono16", "32FC1"):
        raise ValueError(f"depth encoding {msg.encoding!r} is not supported; expected 16UC1 (mm) or 32FC1 (m)")
    return image_from_buffer(msg.data, msg.height, msg.width, msg.step, msg.encoding, bool(msg.is_bigendian))


def intrinsics_from_msg(msg: CameraInfo, name: str) -> np.ndarray:
    """3x3 K of a CameraInfo; ValueError when it is zero/non-finite (e.g. an uncalibrated camera)."""
    if msg.width == 0 or msg.height == 0:
        raise ValueError(f"{name} has zero image size")
    return check_intrinsics(np.asarray(msg.k, dtype=np.float64).reshape(3, 3), name)


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
