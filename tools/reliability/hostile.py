"""Hostile messages as CDR bytes (any field may contradict the others), and the list of cases the fuzzer sends.

rclpy's message classes check their fields, so a hostile publisher is simulated the way a broken C++ driver or a
fuzzer on the wire would look: `Publisher.publish(bytes)` sends the bytes as they are. Each case names the topic,
the bytes, and the /diagnostics counter that must count it (None: a valid but unusual message that must be
answered without garbage, e.g. NaN depth)."""
from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

LE = b"\x00\x01\x00\x00"  # plain CDR, little endian


class Writer:
    """Little-endian plain CDR, fields written in order with their alignment."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def _align(self, n: int) -> None:
        self.buf += bytes(-len(self.buf) % n)

    def u32(self, v: int) -> Writer:
        self._align(4)
        self.buf += struct.pack("<I", v & 0xFFFFFFFF)
        return self

    def i32(self, v: int) -> Writer:
        self._align(4)
        self.buf += struct.pack("<i", v)
        return self

    def u8(self, v: int) -> Writer:
        self.buf += bytes([v & 0xFF])
        return self

    def f64(self, v: float) -> Writer:
        self._align(8)
        self.buf += struct.pack("<d", v)
        return self

    def raw_string(self, raw: bytes) -> Writer:
        self.u32(len(raw) + 1)
        self.buf += raw + b"\x00"
        return self

    def string(self, text: str) -> Writer:
        return self.raw_string(text.encode())

    def octets(self, data: bytes, count: int | None = None) -> Writer:
        self.u32(len(data) if count is None else count)
        self.buf += data
        return self

    def header(self, t: float, frame_id: str = "cam_optical", nanosec: int | None = None) -> Writer:
        sec = int(t) if t >= 0 else -int(-t) - 1
        ns = int(round((t - sec) * 1e9)) if nanosec is None else nanosec
        return self.i32(sec).u32(ns).string(frame_id)

    def bytes(self) -> bytes:
        return LE + bytes(self.buf)


def image(t: float, height: int, width: int, encoding: str | bytes, step: int, data: bytes,
          count: int | None = None, bigendian: int = 0, nanosec: int | None = None) -> bytes:
    """sensor_msgs/Image CDR with every field as given (``count``: the data length field, when it should lie)."""
    w = Writer().header(t, nanosec=nanosec).u32(height).u32(width)
    w.raw_string(encoding if isinstance(encoding, bytes) else encoding.encode())
    return w.u8(bigendian).u32(step).octets(data, count).bytes()


def good_image(t: float, rgb: np.ndarray) -> bytes:
    height, width = rgb.shape[:2]
    return image(t, height, width, "rgb8", width * 3, np.ascontiguousarray(rgb).tobytes())


def camera_info(t: float, width: int, height: int, k: list[float]) -> bytes:
    """sensor_msgs/CameraInfo CDR (no distortion, identity R, P from K)."""
    w = Writer().header(t).u32(height).u32(width).string("plumb_bob").u32(0)
    for v in k:
        w.f64(v)
    for v in (1, 0, 0, 0, 1, 0, 0, 0, 1):
        w.f64(float(v))
    p = [k[0], k[1], k[2], 0.0, k[3], k[4], k[5], 0.0, k[6], k[7], k[8], 0.0]
    for v in p:
        w.f64(v)
    w.u32(0).u32(0)  # binning
    w.u32(0).u32(0).u32(0).u32(0).u8(0)  # roi
    return w.bytes()


def string_msg(raw: bytes) -> bytes:
    return Writer().raw_string(raw).bytes()


def target_command(action: int, target_id: bytes, prompt: bytes) -> bytes:
    return Writer().u8(action).raw_string(target_id).raw_string(prompt).bytes()


@dataclass(frozen=True)
class Case:
    """One hostile message: where it goes, its bytes, and the counter that must count it."""

    name: str
    topic: str          # "image", "depth", "camera_info", "prompt", "targets"
    data: bytes
    counter: str | None  # /diagnostics key whose value must grow by one; None: valid, answered cleanly


def cases(rng: random.Random, t0: float, width: int, height: int) -> Iterator[Case]:
    """Every kind of hostile message once (stamps from t0 on, 0.01 s apart where they must be in order)."""
    rgb = np.full((height, width, 3), 90, np.uint8)
    data = rgb.tobytes()
    step = width * 3
    clock = iter(t0 + 0.01 * i for i in range(10_000))
    colour, depth_kind = "bad_input.colour image", "bad_input.depth image"
    for encoding in ("yuv422", "", "rgb16", "bayer_rggb8", "16UC1\x00rgb8", "x" * 10_000, "32FC1"):
        yield Case(f"colour encoding {encoding[:12]!r}", "image", image(next(clock), height, width, encoding, step,
                                                                      data), colour)
    yield Case("colour encoding not UTF-8", "image", image(next(clock), height, width, b"rgb\xff8", step, data),
               colour)
    for h, w_ in ((0, width), (height, 0), (1 << 31, 1 << 31), (20000, 20000), (height * 2, width)):
        yield Case(f"colour size {w_}x{h}", "image", image(next(clock), h, w_, "rgb8", w_ * 3, data), colour)
    for bad_step in (0, step - 1, 1 << 31, 0xFFFFFFFF):
        yield Case(f"colour step {bad_step}", "image", image(next(clock), height, width, "rgb8", bad_step, data),
                   colour)
    yield Case("colour data truncated", "image", image(next(clock), height, width, "rgb8", step, data[:-7]), colour)
    yield Case("colour data oversized", "image", image(next(clock), height, width, "rgb8", step, data + bytes(99)),
               colour)
    full = good_image(next(clock), rgb)
    for cut in (3, 11, 40, len(full) // 2, len(full) - 64):  # (DDS pads a payload to 4 bytes: cut well inside)
        yield Case(f"colour CDR cut at {cut} bytes", "image", full[:cut], colour)
    yield Case("colour CDR length field lies", "image",
               image(next(clock), height, width, "rgb8", step, data, count=len(data) * 50), colour)
    yield Case("colour random bytes", "image", bytes(rng.getrandbits(8) for _ in range(300)), colour)
    yield Case("colour stamp nanosec >= 1e9", "image", image(next(clock), height, width, "rgb8", step, data,
                                                             nanosec=2_000_000_000), "bad_input.stamp")
    # depth: same malformations on its own topic
    depth = np.full((height, width), 1000, np.uint16).tobytes()
    for name, msg in (("encoding 'bgr8x'", image(next(clock), height, width, "bgr8x", width * 2, depth)),
                      ("truncated", image(next(clock), height, width, "16UC1", width * 2, depth[:-1])),
                      ("oversized", image(next(clock), height, width, "16UC1", width * 2, depth + b"\0\0")),
                      ("size 0", image(next(clock), 0, 0, "16UC1", 0, b"")),
                      ("CDR cut", good_image(next(clock), rgb)[:25])):
        yield Case(f"depth {name}", "depth", msg, depth_kind)
    # camera infos that are no CameraInfo
    info = camera_info(next(clock), width, height, [60.0, 0, (width - 1) / 2, 0, 60.0, (height - 1) / 2, 0, 0, 1])
    yield Case("camera_info CDR cut", "camera_info", info[:50], "bad_input.camera_info")
    yield Case("camera_info random bytes", "camera_info", bytes(rng.getrandbits(8) for _ in range(64)),
               "bad_input.camera_info")
    # prompts: refused, each answered on ~/status and counted
    refused = "refused_prompts"
    for name, raw in (("1 MB", b"the red square " * 70_000), ("invalid UTF-8", b"the red \xff\xfe square"),
                      ("control characters", b"the red\x07 square"), ("[SEG] token", b"find the [SEG] token"),
                      ("empty", b""), ("whitespace", b" \t\n ")):
        yield Case(f"prompt {name}", "prompt", string_msg(raw), refused)
    yield Case("prompt CDR cut", "prompt", string_msg(b"the red square")[:9], refused)
    yield Case("prompt length field lies", "prompt", Writer().u32(1 << 30).bytes() + b"abc", refused)
    for name, action, tid, prompt in (("id 1 MB", 0, b"x/" * 500_000, b"a cup"), ("id invalid UTF-8", 0, b"m\xffug",
                                      b"a mug"), ("action 200", 200, b"mug", b"a mug"),
                                      ("remove unknown", 1, b"nobody", b"")):
        yield Case(f"target {name}", "targets", target_command(action, tid, prompt), refused)
    yield Case("target CDR cut", "targets", target_command(0, b"mug", b"a mug")[:7], refused)


def thousand_targets() -> list[bytes]:
    """1,000 ADDs of distinct targets: all but max_targets (less those already there) are refused."""
    return [target_command(0, f"t{i:04d}".encode(), b"the red square") for i in range(1000)]
