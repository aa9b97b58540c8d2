"""sensor_msgs/Image straight from its serialized (CDR) bytes: the header fields parsed, the pixels a zero-copy view.

The node subscribes to the camera with ``raw=True``: rclpy then hands over the CDR bytes as they came off the
middleware instead of building a Python Image (a 900 KB array.array for 640x480 rgb8, copied once more from the
middleware's C message). This module reads those bytes. Plain CDR (XCDR1) in either byte order is parsed here;
any other representation (e.g. XCDR2) goes through rclpy's own deserialisation, so nothing that rclpy could read
is refused. Malformed or truncated bytes raise ValueError, which the node counts and logs as bad input.

Layout (OMG CDR): a 4-byte encapsulation header (representation id, options), then the fields in order,
each aligned to its size relative to the end of the encapsulation header; a string is a uint32 length
(terminating NUL included), the characters and a NUL; a sequence<uint8> is a uint32 count and the bytes.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Header

ENCAPSULATION_BYTES = 4
CDR_BE, CDR_LE = b"\x00\x00", b"\x00\x01"     # representation ids of plain (XCDR1) CDR
_STAMP = {"<": struct.Struct("<iI"), ">": struct.Struct(">iI")}
_UINT32 = {"<": struct.Struct("<I"), ">": struct.Struct(">I")}
_HEIGHT_WIDTH = {"<": struct.Struct("<II"), ">": struct.Struct(">II")}


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
    try:
        return deserialize_message(bytes(serialized), Image)
    except Exception as exc:  # rclpy raises RuntimeError / UnicodeDecodeError / ... on malformed data
        raise ValueError(f"serialized {what} could not be deserialised: {exc}") from None
