"""Metrics on cases small enough to compute by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from strvos_core.metrics import (
    ReferringImageScores,
    boundary_f_per_frame,
    boundary_map,
    disk,
    f_measure,
    foreground_intersection_union,
    jaccard_per_frame,
    jf_summary,
    pixel_accuracy_per_frame,
    revos_breakdown,
    robustness_per_frame,
    score_expression,
    sentence_iou,
)
from strvos_core.metrics.boundary import boundary_radius


def square(h: int, w: int, top: int, left: int, size: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[top:top + size, left:left + size] = 1
    return m


def test_jaccard_cases():
    a = square(10, 10, 0, 0, 4)  # 16 px
    b = square(10, 10, 2, 0, 4)  # overlaps a in 8 px, union 24
    assert jaccard_per_frame(a, b) == pytest.approx(8 / 24)
    empty = np.zeros((10, 10), np.uint8)
    assert jaccard_per_frame(empty, empty) == 1.0  # empty vs empty counts as perfect
    assert jaccard_per_frame(a, empty) == 0.0
    stack = jaccard_per_frame(np.stack([a, empty]), np.stack([b, empty]))
    np.testing.assert_allclose(stack, [8 / 24, 1.0])
    assert jaccard_per_frame(a * 2, b) == pytest.approx(8 / 24)  # any non-zero value is foreground


def test_disk_matches_the_skimage_definition():
    np.testing.assert_array_equal(disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    d2 = disk(2.0)
    assert d2.shape == (5, 5) and d2.sum() == 13 and d2[0, 0] == 0 and d2[0, 2] == 1
    assert disk(3).sum() == 29


def test_boundary_map_and_radius():
    m = square(6, 6, 1, 1, 3)
    b = boundary_map(m)
    # seg2bmap marks a pixel whose right, lower or lower-right neighbour differs: the 3x3 square's outline
    # becomes the ring of the 4x4 box at rows/cols 0..3 (half a pixel towards the origin)
    expected = np.zeros((6, 6), bool)
    expected[0:4, 0:4] = True
    expected[1:3, 1:3] = False
    np.testing.assert_array_equal(b, expected)
    assert boundary_radius((480, 854)) == 8.0  # ceil(0.008 * 979.6)
    assert boundary_radius((24, 32)) == 1.0
    assert boundary_radius((24, 32), bound_th=3) == 3.0


def test_f_measure_cases():
    a = square(40, 40, 10, 10, 10)
    empty = np.zeros_like(a)
    assert f_measure(a, a) == 1.0
    assert f_measure(empty, empty) == 1.0
    assert f_measure(a, empty) == 0.0 and f_measure(empty, a) == 0.0
    far = square(40, 40, 25, 25, 10)  # no boundary pixel within 1 px of the other's
    assert f_measure(far, a) == 0.0
    near = square(40, 40, 11, 10, 10)  # shifted by one pixel: every boundary pixel within the radius
    assert f_measure(near, a) == 1.0
    np.testing.assert_allclose(boundary_f_per_frame(np.stack([a, empty]), np.stack([a, a])), [1.0, 0.0])


def test_expression_and_summary():
    gt = np.stack([square(20, 20, 0, 0, 10), np.zeros((20, 20), np.uint8)])
    pred = np.stack([square(20, 20, 0, 0, 10), square(20, 20, 0, 0, 2)])
    scores = score_expression(gt, pred)
    assert scores.J == pytest.approx(0.5) and scores.F == pytest.approx(0.5) and scores.JF == pytest.approx(0.5)
    s = jf_summary([(0.5, 0.7), (1.0, 0.9)])
    assert (s["J"], s["F"], s["J&F"]) == pytest.approx((0.75, 0.8, 0.775))
    assert (s["J%"], s["F%"], s["J&F%"]) == (75.0, 80.0, 77.5)
    with pytest.raises(ValueError, match="no expressions"):
        jf_summary([])
    with pytest.raises(ValueError, match="T x H x W"):
        score_expression(gt[0], pred[0])


def test_revos_accuracy_and_robustness():
    gt = square(10, 10, 0, 0, 5)  # 25 px
    pred = square(10, 10, 0, 0, 5)
    pred[9, 9] = 1  # one false positive
    fg = square(10, 10, 0, 0, 8)  # 64 px of annotated objects
    assert pixel_accuracy_per_frame(gt, pred) == pytest.approx(0.99)
    assert robustness_per_frame(gt, pred, fg) == pytest.approx(1 - 1 / (64 + 1e-6))
    everything = np.ones((10, 10), np.uint8)
    assert robustness_per_frame(gt, everything, np.zeros_like(gt)) == 0.0  # clipped at 0
    # overlapping objects make gt == 2: the reference's uint8 `1 - gt` wraps to 255 there
    gt2 = square(20, 20, 0, 0, 5)
    gt2[0, 0] = 2
    pred2 = square(20, 20, 0, 0, 5)
    pred2[19, 19] = 1
    all_fg = np.ones((20, 20), np.uint8)
    assert robustness_per_frame(gt2, pred2, all_fg) == pytest.approx(1 - (255 + 1) / (400 + 1e-6))
    assert pixel_accuracy_per_frame(gt2, pred2) == pytest.approx(398 / 400)


def test_revos_breakdown_rounds_per_expression_and_averages_categories():
    rows = [(0, 0.123456, 0.5, 0.9, 0.8), (0, 0.5, 0.5, 0.9, 0.8), (1, 1.0, 1.0, 1.0, 1.0), (2, 0.0, 0.0, 0.0, 0.0)]
    b = revos_breakdown(rows)
    assert b["referring"].J == pytest.approx((12.35 + 50.0) / 2)  # 12.3456 -> 12.35 before the mean
    assert b["reason"].JF == 100.0
    assert b["overall"].J == pytest.approx(((12.35 + 50.0) / 2 + 100.0) / 2)  # mean of the two categories
    only_referring = revos_breakdown(rows[:2])
    assert math.isnan(only_referring["reason"].J) and math.isnan(only_referring["overall"].J)


def test_refcoco_intersection_union_and_scores():
    target = square(10, 10, 0, 0, 4)
    target[0, 0] = 2  # overlapping polygon parts: neither foreground nor background for the reference
    pred = square(10, 10, 0, 0, 4).astype(bool)
    inter, union = foreground_intersection_union(pred, target)
    assert (inter, union) == (15, 16)
    assert sentence_iou(0, 0) == 1.0 and sentence_iou(15, 16) == pytest.approx(15 / (16 + 1e-5))
    scores = ReferringImageScores()
    scores.add(inter, union)
    scores.add(0, 0)  # empty truth and prediction
    scores.add(None, None)  # no [SEG]: 0 for gIoU, nothing for cIoU
    assert scores.count == 3 and scores.missing == 1
    assert scores.giou == pytest.approx((15 / (16 + 1e-5) + 1.0) / 3)
    assert scores.ciou == pytest.approx(15 / 16)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match=r"ground truth shape \(4, 4\) does not match prediction shape \(4, 5\)"):
        jaccard_per_frame(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="H x W or T x H x W"):
        boundary_f_per_frame(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match="numpy arrays"):
        jaccard_per_frame([[1]], np.zeros((1, 1)))
