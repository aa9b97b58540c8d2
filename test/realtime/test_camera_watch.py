"""The camera's liveness as the node reports it: WAITING, LIVE, STALE (no image), LOST (no publisher either), and
what a returning camera means for matching and tracking."""
from __future__ import annotations

import pytest

from strvos_core.realtime.camera_watch import CameraState, CameraWatch


def test_waiting_live_stale_lost_and_back():
    watch = CameraWatch(timeout=1.0)
    assert watch.check(0.0, publishers=0).state is CameraState.WAITING
    assert watch.check(5.0, publishers=1).state is CameraState.WAITING  # a publisher, no image yet
    assert watch.image(5.0) is None
    report = watch.check(5.5, publishers=1)
    assert report.state is CameraState.LIVE and report.changed and report.image_age == pytest.approx(0.5)
    assert not watch.check(5.9, publishers=1).changed
    stale = watch.check(6.5, publishers=1)  # the driver stalls: its publisher is still there
    assert (stale.state, stale.previous) == (CameraState.STALE, CameraState.LIVE)
    lost = watch.check(8.0, publishers=0)   # ... then it is gone
    assert lost.state is CameraState.LOST and lost.image_age == pytest.approx(3.0)
    resumed = watch.image(20.0)             # a restarted driver: a new stream
    assert resumed.was is CameraState.LOST and resumed.new_stream and resumed.after == pytest.approx(15.0)
    assert watch.check(20.1, publishers=1).state is CameraState.LIVE
    assert (watch.stale_events, watch.lost_events, watch.recoveries) == (1, 1, 1)


def test_a_restarted_driver_whose_publisher_comes_before_its_images_is_a_new_stream():
    """The restarted driver's publisher shows up a check before its first image (LOST -> STALE): still a new stream
    (found by the node's camera-loss test, which failed about one run in two on this race)."""
    watch = CameraWatch(timeout=1.0)
    watch.image(0.0)
    assert watch.check(2.0, publishers=0).state is CameraState.LOST
    assert watch.check(3.0, publishers=1).state is CameraState.STALE  # the new driver's publisher, no image yet
    resumed = watch.image(3.5)
    assert resumed.was is CameraState.LOST and resumed.new_stream
    watch.check(6.0, publishers=1)  # a later stall of the new driver: a STALE gap again, not LOST
    assert not watch.image(6.5).new_stream
    assert (watch.stale_events, watch.lost_events, watch.recoveries) == (2, 1, 2)


def test_a_stall_with_the_publisher_there_continues_the_stream():
    watch = CameraWatch(timeout=1.0)
    watch.image(0.0)
    assert watch.check(2.0, publishers=1).state is CameraState.STALE
    resumed = watch.image(3.0)
    assert resumed.was is CameraState.STALE and not resumed.new_stream
    assert watch.image(3.1) is None  # frames at the camera's rate: no gap
    assert (watch.stale_events, watch.lost_events, watch.recoveries) == (1, 0, 1)


def test_a_gap_no_check_saw_is_still_counted_once():
    watch = CameraWatch(timeout=1.0)
    watch.image(0.0)
    resumed = watch.image(1.5)  # the diagnostics timer did not run during the gap
    assert resumed is not None and resumed.was is CameraState.STALE
    assert (watch.stale_events, watch.recoveries) == (1, 1)


def test_reset_forgets_the_stream_and_the_timeout_is_checked():
    watch = CameraWatch(timeout=0.5)
    watch.image(0.0)
    watch.reset()
    assert watch.check(10.0, publishers=0).state is CameraState.WAITING
    assert watch.image(10.0) is None
    with pytest.raises(ValueError, match="timeout"):
        CameraWatch(timeout=0.0)
