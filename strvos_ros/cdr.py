"""CDR bytes of camera images read, and of the node's results written, without building rclpy Python messages.

Reading: sensor_msgs/Image from its serialized (CDR) bytes, the header fields parsed, the pixels a zero-copy view.

The node subscribes to the camera with ``raw=True``: rclpy then hands over the CDR bytes as they came off the
middleware instead of building a Python Image (a 900 KB array.array for 640x480 rgb8, copied once more from the
middleware's C message). This module reads those bytes. Plain CDR (XCDR1) in either byte order is parsed here;
any other representation (e.g. XCDR2) goes through rclpy's own deserialisation, so nothing that rclpy could read
is refused. Malformed or truncated bytes raise ValueError, which the node counts and logs as bad input.

Writing: strvos_ros/SegmentationArray and the mono8 mask Images as CDR bytes, which rclpy publishes as they are
(``Publisher.publish(bytes)``): the node's per-frame results go out without constructing a TargetSegmentation,
its Image, PoseStamped, RegionOfInterest and Vector3 (and their headers) in Python and converting them to C.

Layout (OMG CDR): a 4-byte encapsulation header (representation id, options), then the fields in order,
each aligned to its size relative to the end of the encapsulation header; a string is a uint32 length
(terminating NUL included), the characters and a NUL; a sequence<uint8> is a uint32 count and the bytes.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Header

ENCAPSULATION_BYTES = 4
CDR_BE, CDR_LE = b"\x00\x00", b"\x00\x01"     # representation ids of plain (XCDR1) CDR
_STAMP = {"<": struct.Struct("<iI"), ">": struct.Struct(">iI")}
_UINT32 = {"<": struct.Struct("<I"), ">": struct.Struct(">I")}
_HEIGHT_WIDTH = {"<": struct.Struct("<II"), ">": struct.Struct(">II")}
_FLOAT32 = struct.Struct("<f")
_SCORE_STATE = struct.Struct("<fBB")               # score, state, has_seg
_ROI = struct.Struct("<IIIIIB")                    # mask_area, bbox x_offset, y_offset, height, width, do_rectify
_POSE = struct.Struct("<7d")                       # position xyz, orientation xyzw
_FLAGS = struct.Struct("<BB")                      # pose_valid, orientation_valid
_VECTOR3 = struct.Struct("<3d")


@dataclass(slots=True)
class RawImage:
    """The fields of a sensor_msgs/Image, with ``data`` a read-only view into the serialized bytes (no copy).

    Duck-types Image for the node (header, height, width, encoding, is_bigendian, step, data)."""

    header: Header
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: memoryview


class _Reader:
    """Cursor over CDR bytes; every read checks the bounds (ValueError on truncated data)."""

    __slots__ = ("buf", "order", "pos", "what")

    def __init__(self, buf: memoryview, order: str, what: str) -> None:
        self.buf, self.order, self.pos, self.what = buf, order, ENCAPSULATION_BYTES, what

    def _need(self, size: int, align: int) -> int:
        pos = self.pos + (-(self.pos - ENCAPSULATION_BYTES) % align)
        if pos + size > len(self.buf):
            raise ValueError(f"serialized {self.what} is truncated: {len(self.buf)} bytes, a field needs "
                             f"{pos + size}")
        self.pos = pos + size
        return pos

    def unpack(self, fmt: dict[str, struct.Struct], align: int = 4) -> tuple:
        layout = fmt[self.order]
        return layout.unpack_from(self.buf, self._need(layout.size, align))

    def uint32(self) -> int:
        return self.unpack(_UINT32)[0]

    def uint8(self) -> int:
        return self.buf[self._need(1, 1)]

    def string(self) -> str:
        """As rclpy reads it: up to the first NUL, invalid UTF-8 replaced by U+FFFD."""
        length = self.uint32()
        start = self._need(length, 1)
        raw = bytes(self.buf[start: start + length])
        end = raw.find(0)
        return raw[: len(raw) if end < 0 else end].decode("utf-8", "replace")

    def octets(self) -> memoryview:
        count = self.uint32()
        start = self._need(count, 1)
        return self.buf[start: start + count]

    def header(self) -> Header:
        sec, nanosec = self.unpack(_STAMP)
        frame_id = self.string()
        # The generated setters check the ranges; build the message with the parsed values.
        return Header(stamp=Time(sec=sec, nanosec=nanosec), frame_id=frame_id)


def parse_image(serialized: bytes, what: str = "image") -> RawImage | Image:
    """The Image in ``serialized`` (CDR bytes, as a raw subscription delivers them).

    Plain CDR gives a RawImage whose ``data`` views ``serialized`` (keep it alive with the view, as the view
    does); other representations give rclpy's Image. ValueError when the bytes are not a valid Image."""
    buf = memoryview(serialized).cast("B")
    if len(buf) < ENCAPSULATION_BYTES:
        raise ValueError(f"serialized {what} has {len(buf)} bytes, not even a CDR encapsulation header")
    representation = bytes(buf[:2])
    if representation not in (CDR_LE, CDR_BE):
        return _deserialize(serialized, what)
    reader = _Reader(buf, "<" if representation == CDR_LE else ">", what)
    header = reader.header()
    height, width = reader.unpack(_HEIGHT_WIDTH)
    encoding = reader.string()
    is_bigendian = reader.uint8()
    step = reader.uint32()
    data = reader.octets()
    return RawImage(header, height, width, encoding, is_bigendian, step, data)


def _deserialize(serialized: bytes, what: str) -> Image:
    return parse_message(serialized, Image, what)


def parse_message(serialized: bytes, msg_type, what: str):
    """rclpy's message of ``msg_type`` from CDR bytes; ValueError when they do not hold one. A subscription taken
    raw and parsed here counts what rclpy would drop without a word (the middleware cannot deserialise it)."""
    try:
        return deserialize_message(bytes(serialized), msg_type)
    except Exception as exc:  # rclpy raises RMWError / RuntimeError / UnicodeDecodeError / ... on malformed data
        raise ValueError(f"serialized {what} could not be deserialised: {exc}") from None


# ---------------------------------------------------------------------------------------------------- writing
@dataclass(slots=True)
class TargetFields:
    """One TargetSegmentation's values (its header, and its mask's and pose's headers, are the frame's header).

    ``mask``: the HxW mono8 array (255 inside) or None for an empty Image; ``bbox``: (x, y, width, height)."""

    target_id: str
    prompt: str
    score: float
    state: int
    has_seg: bool
    mask: np.ndarray | None
    mask_area: int
    bbox: tuple[int, int, int, int] = (0, 0, 0, 0)
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    orientation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    pose_valid: bool = False
    orientation_valid: bool = False
    extent: tuple[float, float, float] = (0.0, 0.0, 0.0)
    depth_points: int = 0

    def set_pose(self, estimate) -> None:
        """The pose fields from a strvos_core PoseEstimate; position and extent only where the position is valid
        (as the pose and extent messages leave them zero otherwise)."""
        self.orientation = tuple(float(v) for v in estimate.orientation)
        self.pose_valid, self.orientation_valid = bool(estimate.position_valid), bool(estimate.orientation_valid)
        self.depth_points = int(estimate.num_points)
        if estimate.position_valid:
            self.position = tuple(float(v) for v in estimate.position)
            self.extent = tuple(float(v) for v in estimate.extent)


class _Writer:
    """Little-endian plain CDR as a list of parts joined once at the end (padding written as zeros): the
    pixels are copied exactly once, into the bytes that are published."""

    __slots__ = ("parts", "size")

    def __init__(self) -> None:
        self.parts: list = [CDR_LE + b"\x00\x00"]
        self.size = 0  # bytes after the encapsulation header (the alignment origin)

    def _add(self, part) -> None:
        self.parts.append(part)
        self.size += len(part)

    def pack(self, layout: struct.Struct, *values, align: int = 4) -> None:
        pad = -self.size % align
        if pad:
            self._add(bytes(pad))
        self._add(layout.pack(*values))

    def string(self, text: str) -> None:
        raw = text.encode()
        self.pack(_UINT32["<"], len(raw) + 1)
        self._add(raw + b"\x00")

    def header(self, header: Header) -> None:
        self.pack(_STAMP["<"], header.stamp.sec, header.stamp.nanosec)
        self.string(header.frame_id)

    def image(self, header: Header | None, pixels: np.ndarray | None, encoding: str) -> None:
        """An Image of ``pixels`` (HxW or HxWxC uint8, row-major, step = row bytes); an empty Image for None."""
        if pixels is None:
            self.header(Header())
            self.pack(_HEIGHT_WIDTH["<"], 0, 0)
            self.string("")
            self._add(b"\x00")  # is_bigendian
            self.pack(_HEIGHT_WIDTH["<"], 0, 0)  # step, data count
            return
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        height, width = pixels.shape[:2]
        self.header(header)
        self.pack(_HEIGHT_WIDTH["<"], height, width)
        self.string(encoding)
        self._add(b"\x00")  # is_bigendian
        self.pack(_HEIGHT_WIDTH["<"], pixels.strides[0], pixels.size)  # step, data count
        self._add(memoryview(pixels).cast("B"))

    def bytes(self) -> bytes:
        return b"".join(self.parts)


def serialize_image(header: Header, pixels: np.ndarray, encoding: str) -> bytes:
    """CDR bytes of a sensor_msgs/Image of ``pixels`` (uint8, HxW or HxWxC) with that header and encoding."""
    writer = _Writer()
    writer.image(header, pixels, encoding)
    return writer.bytes()


def serialize_segmentation_array(header: Header, targets: list[TargetFields], inference_time: float) -> bytes:
    """CDR bytes of the strvos_ros/SegmentationArray the node publishes (see TargetFields)."""
    writer = _Writer()
    pack = writer.pack
    writer.header(header)
    pack(_UINT32["<"], len(targets))
    for target in targets:
        writer.header(header)
        writer.string(target.target_id)
        writer.string(target.prompt)
        pack(_SCORE_STATE, target.score, target.state, target.has_seg)
        writer.image(header, target.mask, "mono8")
        x, y, width, height = target.bbox
        pack(_ROI, target.mask_area, x, y, height, width, 0)
        writer.header(header)  # pose.header
        pack(_POSE, *target.position, *target.orientation, align=8)
        pack(_FLAGS, target.pose_valid, target.orientation_valid, align=1)
        pack(_VECTOR3, *target.extent, align=8)
        pack(_UINT32["<"], target.depth_points)
    pack(_FLOAT32, inference_time)
    return writer.bytes()
