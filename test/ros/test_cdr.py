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


def depth_pixels(msg) -> np.ndarray:
    return conversions.depth_image(msg, None).image


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
            depth_pixels if encoding in DEPTH else None)
        if convert is not None:
            np.testing.assert_array_equal(convert(parsed), convert(reference))


def test_stamps_extremes_and_big_endian_pixels():
    for sec, nanosec in ((0, 0), (-1, 999_999_999), (2**31 - 1, 2**32 - 1), (-(2**31), 1)):
        msg = make_image("32FC1", 7, 5, sec=sec, nanosec=nanosec, is_bigendian=1)
        parsed = cdr.parse_image(serialize_message(msg))
        assert_same(parsed, msg)
        np.testing.assert_array_equal(depth_pixels(parsed), depth_pixels(msg))


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


# ------------------------------------------------------------------------------------------- writing results
def reference_mask(mask: np.ndarray, header) -> Image:
    """The mono8 mask Image as the node built it with rclpy messages (255 inside, step = width)."""
    from strvos_core.realtime.encodings import mask_to_mono8

    height, width = mask.shape
    return Image(header=header, height=height, width=width, encoding="mono8", is_bigendian=0, step=width,
                 data=mask_to_mono8(mask).tobytes())


def reference_roi(bbox):
    from sensor_msgs.msg import RegionOfInterest

    x, y, width, height = bbox
    return RegionOfInterest(x_offset=x, y_offset=y, width=width, height=height, do_rectify=False)


def reference_segmentation(header, targets, inference_time):
    """The SegmentationArray as the node built it with rclpy messages before it wrote CDR itself."""
    from strvos_ros.msg import SegmentationArray, TargetSegmentation

    from strvos_core.pose.pca import PoseEstimate

    out = SegmentationArray(header=header, inference_time=inference_time)
    for fields, mask, estimate in targets:
        seg = TargetSegmentation(header=header, target_id=fields.target_id, prompt=fields.prompt,
                                 score=fields.score, state=fields.state, has_seg=fields.has_seg,
                                 mask_area=fields.mask_area, bbox=reference_roi(fields.bbox))
        seg.mask = reference_mask(mask, header)
        seg.pose.header = header
        seg.pose.pose.orientation.w = 1.0
        if isinstance(estimate, PoseEstimate):
            seg.pose = conversions.pose_msg(estimate, header)
            seg.pose_valid, seg.orientation_valid = estimate.position_valid, estimate.orientation_valid
            seg.extent, seg.depth_points = conversions.extent_msg(estimate), estimate.num_points
        out.targets.append(seg)
    return out


def test_segmentation_array_bytes_deserialise_to_the_message_the_node_built_before():
    from strvos_ros.msg import SegmentationArray

    from strvos_core.pose.pca import PoseEstimate
    from strvos_core.realtime.encodings import mask_to_mono8
    from strvos_core.realtime.masks import mask_bbox

    rng = np.random.default_rng(3)
    header = make_image("mono8", 1, 1, frame_id="camera_color_optical_frame", sec=12, nanosec=345).header
    for count in (0, 1, 3):
        targets = []
        for index in range(count):
            height, width = [(48, 64), (5, 7), (1, 1)][index]
            mask = rng.random((height, width)) < [0.5, 0.0, 1.0][index]
            estimate = [
                PoseEstimate(position=rng.normal(size=3), orientation=(0.1, -0.2, 0.3, 0.927), position_valid=True,
                             orientation_valid=True, extent=rng.random(3), num_points=1234),
                PoseEstimate(num_points=3),  # too few points: nothing valid
                None,  # no depth: the default pose
            ][index]
            fields = cdr.TargetFields(f"t{index}", ["the red mug ünd ∂", "", "x" * 300][index],
                                      float(rng.random()), index % 3, bool(index % 2), mask_to_mono8(mask),
                                      int(mask.sum()), mask_bbox(mask))
            if estimate is not None:  # as StrvosNode._process_frame fills them
                fields.set_pose(estimate)
            targets.append((fields, mask, estimate))
        serialized = cdr.serialize_segmentation_array(header, [t[0] for t in targets], 0.1534)
        before = serialize_message(reference_segmentation(header, targets, 0.1534))
        # What a subscriber receives is the same message (float32 fields rounded the same way), the same size.
        assert deserialize_message(serialized, SegmentationArray) == deserialize_message(before, SegmentationArray)
        assert len(serialized) == len(before)


def test_image_bytes_deserialise_to_the_mask_and_overlay_messages():
    from strvos_core.realtime.encodings import mask_to_mono8

    header = make_image("mono8", 1, 1, frame_id="cam", sec=-4, nanosec=9).header
    mask = np.random.default_rng(1).random((48, 64)) < 0.3
    assert deserialize_message(cdr.serialize_image(header, mask_to_mono8(mask), "mono8"), Image) == \
        reference_mask(mask, header)
    rgb = np.random.default_rng(2).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert deserialize_message(cdr.serialize_image(header, rgb, "rgb8"), Image) == conversions.rgb_msg(rgb, header)
