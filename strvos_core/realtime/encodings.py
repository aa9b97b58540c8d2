"""Raw image buffers (ROS sensor_msgs/Image layout: height, width, step, encoding) <-> numpy arrays.

The node gets bytes from the middleware; this module checks them (sizes, step, encoding) so that malformed
input becomes a clear ValueError instead of an exception deep inside numpy or the model.
"""
from __future__ import annotations

import sys

import cv2
import numpy as np

# encoding -> (channels, dtype)
IMAGE_ENCODINGS: dict[str, tuple[int, np.dtype]] = {
    "rgb8": (3, np.dtype(np.uint8)),
    "bgr8": (3, np.dtype(np.uint8)),
    "rgba8": (4, np.dtype(np.uint8)),
    "bgra8": (4, np.dtype(np.uint8)),
    "mono8": (1, np.dtype(np.uint8)),
    "8UC1": (1, np.dtype(np.uint8)),
    "mono16": (1, np.dtype(np.uint16)),
    "16UC1": (1, np.dtype(np.uint16)),
    "32FC1": (1, np.dtype(np.float32)),
}
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
MAX_SIDE = 16384  # larger images are refused rather than allocated


def check_layout(height: int, width: int, step: int, encoding: str, nbytes: int) -> str:
    """Cheap checks of an image's metadata against its data size (no copy); returns the encoding."""
    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"image encoding {encoding!r} is not supported; expected one of {sorted(IMAGE_ENCODINGS)}")
    channels, dtype = IMAGE_ENCODINGS[encoding]
    if height <= 0 or width <= 0:
        raise ValueError(f"image has zero size ({width}x{height})")
    if height > MAX_SIDE or width > MAX_SIDE:
        raise ValueError(f"image {width}x{height} is larger than {MAX_SIDE} pixels on a side")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ValueError(f"image step {step} is shorter than one {encoding} row of {width} pixels ({row_bytes} bytes)")
    if nbytes != step * height:  # sensor_msgs/Image: data holds step x height bytes, no more, no fewer
        raise ValueError(f"image data has {nbytes} bytes, expected step x height = {step * height}")
    return encoding


def _bytes(data):
    """A byte-addressable view of bytes, bytearray, array.array or memoryview data."""
    return data if isinstance(data, bytes | bytearray) else memoryview(data).cast("B")


def image_from_buffer(
    data, height: int, width: int, step: int, encoding: str, is_bigendian: bool = False
) -> np.ndarray:
    """HxW or HxWxC array (a copy, native byte order) of a raw image buffer; ValueError when malformed."""
    channels, dtype = IMAGE_ENCODINGS[check_layout(height, width, step, encoding, len(_bytes(data)))]
    buffer = _bytes(data)
    row_bytes = width * channels * dtype.itemsize
    rows = np.frombuffer(buffer, dtype=np.uint8, count=step * height).reshape(height, step)[:, :row_bytes]
    array = np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)
    if dtype.itemsize > 1 and bool(is_bigendian) != (sys.byteorder == "big"):
        array = array.byteswap()
    return array[:, :, 0] if channels == 1 else array


def to_rgb(image: np.ndarray, encoding: str) -> np.ndarray:
    """HxWx3 uint8 RGB (contiguous) of a colour image in one of COLOR_ENCODINGS."""
    if encoding not in COLOR_ENCODINGS:
        raise ValueError(f"colour encoding {encoding!r} is not supported; expected one of {COLOR_ENCODINGS}")
    if encoding == "rgb8":
        return np.ascontiguousarray(image)
    conversion = {
        "bgr8": cv2.COLOR_BGR2RGB,
        "rgba8": cv2.COLOR_RGBA2RGB,
        "bgra8": cv2.COLOR_BGRA2RGB,
        "mono8": cv2.COLOR_GRAY2RGB,
    }[encoding]
    return cv2.cvtColor(image, conversion)


def decode_compressed(data) -> np.ndarray:
    """HxWx3 uint8 RGB of a JPEG/PNG byte buffer (sensor_msgs/CompressedImage)."""
    raw = np.frombuffer(_bytes(data), np.uint8)
    if raw.size == 0:
        raise ValueError("compressed image is empty")
    bgr = cv2.imdecode(raw, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"compressed image ({raw.size} bytes) could not be decoded as JPEG/PNG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def mask_to_mono8(mask: np.ndarray) -> np.ndarray:
    """A boolean mask as a contiguous mono8 array (255 inside, 0 outside), row-major, step = width."""
    return np.multiply(np.asarray(mask, dtype=bool).view(np.uint8), np.uint8(255), dtype=np.uint8)
