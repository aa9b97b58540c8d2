"""Generation speed: 200 videos of 20 frames at 320x240 in memory well under a minute of CPU."""
from __future__ import annotations

import time

import pytest

from strvos_core.datasets.synthetic import iter_split


@pytest.mark.slow
def test_two_hundred_videos_generate_well_under_a_minute():
    start = time.process_time()  # CPU time: the 2-core machine is shared, wall time is not ours alone
    expressions = sum(len(video.expressions) for _, video in iter_split("train", 200, seed=0))
    seconds = time.process_time() - start
    print(f"200 videos x 20 frames: {seconds:.1f} s CPU, {expressions} expressions")
    assert seconds < 30 and expressions > 200 * 4
