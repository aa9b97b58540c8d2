"""strvos_ros.cdr: an Image read from its CDR bytes equals rclpy's deserialisation of the same bytes (real rclpy
serialisation, every supported encoding, both byte orders), and bytes rclpy refuses are refused too."""
from __future__ import annotations

import random
import struct

import numpy as np
import pytest

pytest.importorskip("rclpy")

from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from strvos_core.realtime.encodings import IMAGE_ENCODINGS  # noqa: E402
from strvos_ros import cdr, conversions  # noqa: E402

COLOUR = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")
DEPTH = ("16UC1", "mono16", "32FC1")
FIELDS = ("height", "width", "encoding", "is_bigendian", "step")


def make_image(encoding: str, width: int, height: int, pad: int = 0, frame_id: str = "camera_optical",
               sec: int = 1_700_000_000, nanosec: int = 123_456_789, is_bigendian: int = 0, seed: int = 0) -> Image:
    channels, dtype = IMAGE_ENCODINGS[encoding]
    step = width * channels * dtype.itemsize + pad
    data = np.random.default_rng(seed).integers(0, 256, step * height, dtype=np.uint8).tobytes()
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=is_bigendian, step=step, data=data)
    msg.header.frame_id, msg.header.stamp.sec, msg.header.stamp.nanosec = frame_id, sec, nanosec
    return msg


def assert_same(parsed, reference: Image) -> None:
    assert parsed.header == reference.header
    for name in FIELDS:
        assert getattr(parsed, name) == getattr(reference, name), name
    assert bytes(parsed.data) == bytes(reference.data)


def hand_cdr(msg: Image, order: str) -> bytes:
    """An independent plain-CDR encoder (no padding garbage), for the big-endian case rclpy never writes."""
    out = bytearray(b"\x00\x00\x00\x00" if order == ">" else b"\x00\x01\x00\x00")

    def align(n: int) -> None:
        out.extend(b"\x00" * (-(len(out) - 4) % n))

    def u32(value: int, fmt: str = "I") -> None:
        align(4)
        out.extend(struct.pack(order + fmt, value))

    def string(text: str) -> None:
        raw = text.encode() + b"\x00"
        u32(len(raw))
        out.extend(raw)

    u32(msg.header.stamp.sec, "i")
    u32(msg.header.stamp.nanosec)
    string(msg.header.frame_id)
    u32(msg.height)
    u32(msg.width)
    string(msg.encoding)
    out.append(msg.is_bigendian)
    u32(msg.step)
    u32(len(msg.data))
    out.extend(bytes(msg.data))
    return bytes(out)


@pytest.mark.parametrize("encoding", COLOUR + DEPTH + ("8UC1",))
@pytest.mark.parametrize("pad", [0, 3])
def test_parse_equals_rclpy_for_every_encoding(encoding, pad):
    for width, height, frame_id in ((64, 48, "camera_color_optical_frame"), (5, 3, ""), (1, 1, "kamera_ü_∂")):
        msg = make_image(encoding, width, height, pad, frame_id, seed=width)
        serialized = serialize_message(msg)
        parsed = cdr.parse_image(serialized)
        assert isinstance(parsed, cdr.RawImage)
        reference = deserialize_message(serialized, Image)
        assert reference == msg
        assert_same(parsed, reference)
        # What the node makes of it is the same array too.
        convert = conversions.rgb_from_msg if encoding in COLOUR else (
            conversions.depth_from_msg if encoding in DEPTH else None)
        if convert is not None:
            np.testing.assert_array_equal(convert(parsed), convert(reference))


def test_stamps_extremes_and_big_endian_pixels():
    for sec, nanosec in ((0, 0), (-1, 999_999_999), (2**31 - 1, 2**32 - 1), (-(2**31), 1)):
        msg = make_image("32FC1", 7, 5, sec=sec, nanosec=nanosec, is_bigendian=1)
        parsed = cdr.parse_image(serialize_message(msg))
        assert_same(parsed, msg)
        np.testing.assert_array_equal(conversions.depth_from_msg(parsed), conversions.depth_from_msg(msg))


@pytest.mark.parametrize("order", ["<", ">"])
def test_plain_cdr_in_both_byte_orders(order):
    msg = make_image("16UC1", 9, 4, pad=2, frame_id="depth", sec=-3, nanosec=5)
    serialized = hand_cdr(msg, order)
    if order == "<":  # the hand encoder agrees with rclpy where rclpy can check it
        assert deserialize_message(serialized, Image) == msg
    assert_same(cdr.parse_image(serialized), msg)


def test_the_pixels_are_a_view_of_the_bytes_not_a_copy():
    serialized = serialize_message(make_image("rgb8", 32, 24))
    parsed = cdr.parse_image(serialized)
    assert parsed.data.obj is serialized
    rgb = conversions.rgb_from_msg(parsed)
    assert not rgb.flags.writeable  # the model only reads its input
    assert np.shares_memory(rgb, np.frombuffer(serialized, np.uint8))


def test_every_truncation_is_refused_like_rclpy():
    serialized = serialize_message(make_image("bgr8", 3, 2, frame_id="abc"))
    for length in range(len(serialized)):
        with pytest.raises(ValueError):
            cdr.parse_image(serialized[:length], "colour image")
        with pytest.raises(Exception):  # noqa: B017 - rclpy raises its RMWError
            deserialize_message(serialized[:length], Image)


def test_huge_lengths_are_refused_without_allocating():
    serialized = bytearray(serialize_message(make_image("mono8", 4, 4)))
    serialized[-16 - 4: -16] = struct.pack("<I", 0xFFFFFFFF)  # the data sequence's count
    with pytest.raises(ValueError, match="truncated"):
        cdr.parse_image(bytes(serialized))
    string_length = bytearray(serialize_message(make_image("mono8", 4, 4)))
    string_length[12:16] = struct.pack("<I", 0xFFFFFFF0)  # header.frame_id's length
    with pytest.raises(ValueError, match="truncated"):
        cdr.parse_image(bytes(string_length))


def test_strings_read_like_rclpy_invalid_utf8_and_inner_nul():
    serialized = serialize_message(make_image("mono8", 2, 2, frame_id="abcdef"))
    for index, value in ((16, 0xFF), (18, 0x00), (21, 0x41), (17, 0xC3)):
        mutated = bytearray(serialized)
        mutated[index] = value
        mutated = bytes(mutated)
        assert cdr.parse_image(mutated).header == deserialize_message(mutated, Image).header


def test_other_representations_go_through_rclpy():
    serialized = serialize_message(make_image("rgb8", 4, 3))
    xcdr2 = b"\x00\x07" + serialized[2:]  # plain XCDR2 little endian: rclpy reads it, so do we (through rclpy)
    parsed = cdr.parse_image(xcdr2)
    assert isinstance(parsed, Image)
    assert parsed == deserialize_message(xcdr2, Image)
    with pytest.raises(ValueError, match="could not be deserialised"):
        cdr.parse_image(b"\x00\x02" + serialized[2:])
    with pytest.raises(ValueError, match="encapsulation"):
        cdr.parse_image(b"\x00\x01")


def test_random_corruption_accepted_or_refused_exactly_as_rclpy():
    """Mutate the bytes before the pixels (lengths, strings, sizes, the encapsulation header) at random: where
    rclpy reads a message, the parse gives the same fields; where rclpy refuses the bytes, so does the parse."""
    rng = random.Random(5)
    msg = make_image("bgra8", 5, 3, pad=1, frame_id="cam")
    serialized = serialize_message(msg)
    metadata_end = len(serialized) - len(msg.data)
    refused = accepted = 0
    for _ in range(2000):
        mutated = bytearray(serialized)
        for _ in range(rng.randint(1, 3)):
            index = rng.randrange(metadata_end)
            mutated[index] = rng.choice([0, 1, 2, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        mutated = bytes(mutated)
        try:
            reference = deserialize_message(mutated, Image)
        except Exception:
            reference = None
        if reference is None:
            with pytest.raises(ValueError):
                cdr.parse_image(mutated)
            refused += 1
        else:
            assert_same(cdr.parse_image(mutated), reference)
            accepted += 1
    assert refused > 100 and accepted > 100
