"""Node building blocks without ROS: image buffers, stamp matching, keep-newest slot, states, prompts, stats."""
from __future__ import annotations

import sys
import threading
import time

import cv2
import numpy as np
import pytest

from strvos_core.realtime.encodings import (
    decode_compressed,
    image_from_buffer,
    mask_to_mono8,
    to_rgb,
)
from strvos_core.realtime.latest_slot import LatestSlot
from strvos_core.realtime.masks import mask_bbox
from strvos_core.realtime.prompts import PromptError, check_target_id, clean_prompt
from strvos_core.realtime.stats import LatencyStats, RateMeter, StageStats
from strvos_core.realtime.sync import ApproximateTimeMatcher
from strvos_core.realtime.tracking import TargetTracker, TrackingState

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("encoding", "raw"),
    [
        ("rgb8", RGB),
        ("bgr8", RGB[..., ::-1]),
        ("rgba8", np.dstack([RGB, np.full((5, 7), 9, np.uint8)])),
        ("bgra8", np.dstack([RGB[..., ::-1], np.full((5, 7), 9, np.uint8)])),
    ],
)
def test_colour_encodings_with_padded_rows_decode_to_rgb(encoding, raw):
    padded = np.zeros((5, raw.shape[1] * raw.shape[2] + 3), np.uint8)  # step has 3 padding bytes
    padded[:, : raw.shape[1] * raw.shape[2]] = raw.reshape(5, -1)
    image = image_from_buffer(padded.tobytes(), 5, 7, padded.shape[1], encoding)
    np.testing.assert_array_equal(to_rgb(image, encoding), RGB)


def test_mono_and_depth_buffers_respect_byte_order():
    gray = RGB[..., 0]
    np.testing.assert_array_equal(to_rgb(image_from_buffer(gray.tobytes(), 5, 7, 7, "mono8"), "mono8")[..., 2], gray)
    depth = RNG.integers(0, 5000, (5, 7)).astype(np.uint16)
    other = ">u2" if sys.byteorder == "little" else "<u2"
    swapped = depth.astype(other).tobytes()
    out = image_from_buffer(swapped, 5, 7, 14, "16UC1", is_bigendian=sys.byteorder == "little")
    np.testing.assert_array_equal(out, depth)
    metres = RNG.random((5, 7)).astype(np.float32)
    np.testing.assert_array_equal(image_from_buffer(metres.tobytes(), 5, 7, 28, "32FC1"), metres)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((b"\0" * 105, 5, 7, 21, "yuv422"), "not supported"),
        ((b"\0" * 100, 5, 7, 21, "rgb8"), "expected step x height"),
        ((b"\0" * 106, 5, 7, 21, "rgb8"), "expected step x height"),  # longer than its fields say: refused too
        ((b"", 0, 7, 21, "rgb8"), "zero size"),
        ((b"\0" * 105, 5, 7, 20, "rgb8"), "shorter than one"),
        ((b"\0" * 10, 100000, 7, 21, "rgb8"), "larger than"),
    ],
)
def test_malformed_buffers_are_refused_clearly(args, match):
    with pytest.raises(ValueError, match=match):
        image_from_buffer(*args)


def test_compressed_round_trip_and_garbage():
    ok, png = cv2.imencode(".png", cv2.cvtColor(RGB, cv2.COLOR_RGB2BGR))
    assert ok
    np.testing.assert_array_equal(decode_compressed(png.tobytes()), RGB)
    with pytest.raises(ValueError, match="could not be decoded"):
        decode_compressed(b"not an image")


def test_mask_bytes_and_bbox():
    mask = np.zeros((6, 8), bool)
    mask[2:4, 3:7] = True
    mono8 = mask_to_mono8(mask)
    assert mono8.dtype == np.uint8 and mono8.flags.c_contiguous
    assert mono8.tobytes() == (mask.astype(np.uint8) * 255).tobytes()
    assert mask_to_mono8(mask[:, ::2]).tobytes() == (mask[:, ::2].astype(np.uint8) * 255).tobytes()
    assert mask_bbox(mask) == (3, 2, 4, 2)
    assert mask_bbox(np.zeros((3, 3), bool)) == (0, 0, 0, 0)


def test_matcher_pairs_by_stamp_and_waits_only_when_useful():
    m = ApproximateTimeMatcher(["depth"], tolerance=0.01, max_wait=0.1)
    assert [x.missing for x in m.push_primary(1.00, "c0", now=0.0)] == [["depth"]]  # never published: no wait
    m.push("depth", 1.03, "d1", now=0.0)
    assert m.push_primary(1.035, "c1", now=0.0) == []  # best depth is older: a closer one may still come
    (match,) = m.push("depth", 1.036, "d2", now=0.01)
    assert match.primary == "c1" and match.secondaries == {"depth": "d2"} and not match.missing
    assert m.push_primary(1.10, "c2", now=0.02) == []
    (late,) = m.poll(now=0.2)  # waited max_wait: emitted without depth
    assert late.primary == "c2" and late.missing == ["depth"]
    m.push("depth", 1.30, "d3", now=0.3)
    (gone,) = m.push_primary(1.20, "c3", now=0.3)  # depth already past the tolerance window
    assert gone.missing == ["depth"]


def test_matcher_deadline_is_when_the_oldest_waiting_frame_times_out():
    m = ApproximateTimeMatcher(["depth"], tolerance=0.01, max_wait=0.1)
    m.push("depth", 1.0, "d0", now=0.0)
    assert m.next_deadline() is None
    assert m.push_primary(1.5, "c1", now=2.0) == [] and m.push_primary(1.6, "c2", now=2.05) == []
    assert m.next_deadline() == pytest.approx(2.1)
    assert m.poll(now=2.099) == []  # just before the deadline nothing is decided by time
    (first,) = m.poll(now=m.next_deadline())
    assert first.primary == "c1" and first.missing == ["depth"]
    assert m.next_deadline() == pytest.approx(2.15)
    (second,) = m.push("depth", 1.6, "d2", now=2.06)  # a message decides without waiting for the deadline
    assert second.secondaries == {"depth": "d2"} and m.next_deadline() is None


def test_matcher_refuses_backwards_stamps_and_resets_on_big_jumps():
    m = ApproximateTimeMatcher([], tolerance=0.01)
    assert len(m.push_primary(5.0, "a", 0)) == 1
    assert m.push_primary(4.9, "b", 0) == [] and m.backwards == 1
    assert len(m.push_primary(0.5, "c", 0)) == 1 and m.resets == 1


def test_latest_slot_keeps_newest_and_counts_drops():
    slot = LatestSlot()
    assert not slot.put(1) and slot.put(2) and slot.put(3)
    assert slot.take(0) == 3 and slot.dropped == 2 and slot.take(0.01) is None
    got = []
    worker = threading.Thread(target=lambda: got.append(slot.take(5)))
    worker.start()
    time.sleep(0.05)
    slot.close()
    worker.join(2)
    assert got == [None]


def test_latest_slot_wake_interrupts_one_wait_without_an_item():
    slot = LatestSlot()
    got = []
    worker = threading.Thread(target=lambda: got.append((slot.take(5), time.monotonic())))
    started = time.monotonic()
    worker.start()
    time.sleep(0.05)
    slot.wake()
    worker.join(2)
    assert got[0][0] is None and got[0][1] - started < 2
    slot.wake()  # a wake with no waiter is remembered once, then take() waits again
    assert slot.take(5) is None and slot.take(0.01) is None
    slot.put("frame")
    assert slot.take(0) == "frame" and slot.dropped == 0


def test_stage_stats_add_laps_per_frame_and_report_medians():
    stats = StageStats()
    for frame in range(3):
        laps = stats.timer()
        sum(range(20000 * (frame + 1)))
        laps.lap("work")
        laps.lap("publish")
        laps.lap("publish")  # a second lap of one stage adds to it within the frame
        laps.finish()
    stats.add("sync_wait", 0.004)
    stats.add("sync_wait", 0.010)
    stats.add("sync_wait", 0.002)
    summary = stats.summary()
    assert summary["sync_wait_ms"] == pytest.approx(4.0) and "sync_wait_cpu_ms" not in summary
    assert 0 < summary["work_cpu_ms"] <= summary["work_ms"] + 1.0
    assert summary["publish_ms"] < summary["work_ms"]
    assert summary["work_n"] == summary["publish_n"] == 3 and summary["sync_wait_n"] == 3
    assert set(summary) == {"sync_wait_ms", "work_ms", "work_cpu_ms", "publish_ms", "publish_cpu_ms",
                            "sync_wait_n", "work_n", "publish_n"}


def test_tracking_states():
    t = TargetTracker()
    assert t.update(0, 0.9, 0.5) is TrackingState.NOT_FOUND
    assert t.update(10, 0.3, 0.5) is TrackingState.NOT_FOUND  # score below threshold
    assert t.update(10, 0.6, 0.5) is TrackingState.TRACKING
    assert t.update(0, 0.9, 0.5) is TrackingState.LOST
    assert t.update(5, 0.9, 0.5) is TrackingState.TRACKING
    t.reset()
    assert t.state is TrackingState.NOT_FOUND


def test_prompts_and_ids():
    assert clean_prompt("  the red\n mug  ", 100) == "the red mug"
    for bad, match in [("   ", "empty"), ("x" * 101, "limit"), ("a\x00b", "control"),
                       ("find the [SEG] token", "special token"), ("<|im_end|> hi", "special token"),
                       ("x" * 1001, "1000")]:
        with pytest.raises(PromptError, match=match):
            clean_prompt(bad, 100 if len(bad) < 1000 else 5000)
    assert check_target_id("mug_2") == "mug_2"
    for bad in ["", "2mug", "a/b", "x" * 64, "with space"]:
        with pytest.raises(PromptError, match="invalid"):
            check_target_id(bad)



def test_hostile_prompts_and_ids_are_refused_with_short_answers():
    """Found fuzzing the node (tools/soak.py, issue 15): invalid UTF-8 reached the model as U+FFFD noise (rclpy decodes it so),
    and a refused 1 MB target id came back whole in the answer and the log."""
    invalid = b"the red \xff\xfe mug".decode("utf-8", "replace")  # what rclpy makes of the bytes
    with pytest.raises(PromptError, match="not valid UTF-8"):
        clean_prompt(invalid, 100)
    with pytest.raises(PromptError, match="invalid") as refused:
        check_target_id("x/" * 500_000)
    assert len(str(refused.value)) < 300 and "1000000 characters" in str(refused.value)


def test_rate_and_latency():
    meter = RateMeter(window=2.0)
    for i in range(31):
        meter.tick(i / 30)
    assert meter.rate(1.0) == pytest.approx(30.0)
    assert meter.rate(10.0) == 0.0
    stats = LatencyStats()
    for ms in range(1, 101):
        stats.add(ms / 1000)
    s = stats.summary()
    assert s["count"] == 100 and s["max"] == 0.1 and s["mean"] == pytest.approx(0.0505)
