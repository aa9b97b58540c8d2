"""Bad and unusual frames: correct output or a clear StrvosError (a ValueError)."""
from __future__ import annotations

import numpy as np
import pytest

from strvos_core.errors import StrvosError
from strvos_core.processing.image import as_rgb_frame

RGB = np.random.default_rng(1).integers(0, 256, (6, 5, 3), dtype=np.uint8)


def test_grey_2d_and_1_channel():
    grey = RGB[:, :, 0]
    for frame in (grey, grey[:, :, None]):
        out = as_rgb_frame(frame)
        assert out.shape == (6, 5, 3) and out.dtype == np.uint8
        assert np.array_equal(out[:, :, 2], grey)


def test_rgba_drops_alpha_and_bgr_swaps():
    rgba = np.concatenate([RGB, np.full((6, 5, 1), 7, np.uint8)], axis=2)
    assert np.array_equal(as_rgb_frame(rgba), RGB)
    assert np.array_equal(as_rgb_frame(RGB[:, :, ::-1], color_order="bgr"), RGB)


def test_non_contiguous_and_float():
    wide = np.zeros((6, 10, 3), np.uint8)
    wide[:, ::2] = RGB
    view = wide[:, ::2]
    assert not view.flags.c_contiguous
    out = as_rgb_frame(view)
    assert out.flags.c_contiguous and np.array_equal(out, RGB)
    assert np.array_equal(as_rgb_frame(RGB / 255.0), RGB)
    assert np.array_equal(as_rgb_frame(RGB.astype(np.float32)), RGB)


@pytest.mark.parametrize(
    "frame",
    [np.zeros((0, 5, 3), np.uint8), np.zeros((4, 4, 2), np.uint8), np.zeros((4,), np.uint8),
     np.full((4, 4, 3), np.nan, np.float32), np.full((4, 4, 3), 300, np.int32), "not an array"],
)
def test_rejected(frame):
    with pytest.raises(StrvosError):
        as_rgb_frame(frame)


def test_bad_color_order():
    with pytest.raises(ValueError, match="color_order"):
        as_rgb_frame(RGB, color_order="hsv")
