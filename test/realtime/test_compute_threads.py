"""The node's `threads` parameter: the inference thread's own torch thread count, other threads untouched."""
from __future__ import annotations

import threading

import cv2
import pytest
import torch

from strvos_core.realtime.compute_threads import MAX_THREADS, serial_opencv, use_compute_threads


def in_thread(function):
    """Run ``function`` in a fresh thread (as the node's inference thread); its result or exception."""
    out: dict = {}

    def run():
        try:
            out["value"] = function()
        except Exception as exc:  # re-raised in the caller
            out["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_the_count_holds_in_the_calling_thread_only():
    main = torch.get_num_threads()
    assert in_thread(lambda: (use_compute_threads(1), torch.get_num_threads())) == (1, 1)
    assert torch.get_num_threads() == main


def test_zero_keeps_what_torch_gives_the_thread():
    before, after = in_thread(lambda: (torch.get_num_threads(), use_compute_threads(0)))
    assert after == before >= 1


@pytest.mark.parametrize("count", [-1, MAX_THREADS + 1])
def test_out_of_range_counts_are_refused(count):
    with pytest.raises(ValueError, match="compute threads"):
        use_compute_threads(count)


def test_opencv_runs_in_the_calling_thread_after_serial_opencv():
    try:
        serial_opencv()
        assert cv2.getNumThreads() == 1  # OpenCV's report for "no pool: the caller's thread"
    finally:
        cv2.setNumThreads(-1)  # OpenCV's default again for the tests after this one
