"""Depth -> pose maths against ray-cast geometry with a known pose (position 1 mm, orientation 1 degree)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from scene import convention, encode, intrinsics, render_rectangle, rotation

from strvos_core.pose import create_pose_estimator, depth_to_metres, mask_on_depth_grid
from strvos_core.pose.geometry import matrix_from_quaternion, rotation_angle_between

SHAPE = (480, 640)
K = intrinsics(640, 480, 525.0)
ENCODINGS = ["16UC1", "32FC1"]


def assert_pose(est, centre, R_true, *, position_tol=1e-3, angle_tol_deg=1.0):
    assert est.position_valid and est.orientation_valid
    assert np.linalg.norm(est.position - centre) < position_tol, est.position - centre
    angle = np.degrees(rotation_angle_between(matrix_from_quaternion(est.orientation), convention(R_true, centre)))
    assert angle < angle_tol_deg, angle


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_fronto_parallel_rectangle_rotated_in_plane(encoding):
    R, centre = rotation(rz_deg=30.0), np.array([0.05, -0.03, 1.2])
    depth, mask = render_rectangle(K, SHAPE, R, centre, (0.30, 0.10))
    est = create_pose_estimator("pca").estimate(mask, depth_to_metres(encode(depth, encoding), encoding), K)
    assert_pose(est, centre, R)
    np.testing.assert_allclose(est.extent[:2], [0.30, 0.10], atol=0.01)
    assert est.extent[2] < 2e-3
    assert est.num_points == mask.sum()


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("angles", [(20.0, 35.0, 10.0), (-40.0, 15.0, -60.0), (0.0, 50.0, 90.0)])
def test_tilted_rectangle(encoding, angles):
    R, centre = rotation(*angles), np.array([-0.1, 0.08, 0.9])
    depth, mask = render_rectangle(K, SHAPE, R, centre, (0.28, 0.12))
    est = create_pose_estimator("pca").estimate(mask, depth_to_metres(encode(depth, encoding), encoding), K)
    assert_pose(est, centre, R)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_box_in_front_of_wall_with_bleeding_mask(encoding):
    """The front face of a box; the mask bleeds 6 px onto a wall 0.8 m behind it: outliers are rejected."""
    R, centre = rotation(rz_deg=-20.0), np.array([0.0, 0.02, 1.0])
    box, box_mask = render_rectangle(K, SHAPE, R, centre, (0.25, 0.12))
    wall, _ = render_rectangle(K, SHAPE, np.eye(3), np.array([0.0, 0.0, 1.8]), (10.0, 10.0))
    depth = np.where(box_mask, box, wall)
    grown = box_mask.copy()
    for _ in range(6):  # 4-neighbour dilation, 6 pixels
        grown[1:] |= grown[:-1].copy()
        grown[:-1] |= grown[1:].copy()
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
    assert (grown & ~box_mask).sum() > 0.1 * box_mask.sum()
    est = create_pose_estimator("pca").estimate(grown, depth_to_metres(encode(depth, encoding), encoding), K)
    assert_pose(est, centre, R)
    assert est.num_points == box_mask.sum()


def test_noisy_depth_still_within_tolerance():
    rng = np.random.default_rng(0)
    R, centre = rotation(10.0, -25.0, 40.0), np.array([0.02, 0.0, 1.1])
    depth, mask = render_rectangle(K, SHAPE, R, centre, (0.3, 0.1))
    noisy = np.where(mask, depth + rng.normal(0, 0.002, depth.shape), depth).astype(np.float32)
    noisy[rng.random(depth.shape) < 0.05] = np.nan  # 5 % dropouts
    est = create_pose_estimator("pca").estimate(mask, depth_to_metres(noisy, "32FC1"), K)
    assert_pose(est, centre, R, angle_tol_deg=1.0)


def test_registered_depth_at_half_resolution():
    """Colour 640x480, aligned depth 320x240: the mask is carried over by intrinsics scaling."""
    R, centre = rotation(15.0, -30.0, 25.0), np.array([0.06, 0.04, 1.3])
    _, color_mask = render_rectangle(K, SHAPE, R, centre, (0.3, 0.12))
    K_depth = K.copy()
    K_depth[0, 0] = K_depth[1, 1] = K[0, 0] / 2
    K_depth[0, 2], K_depth[1, 2] = (K[0, 2] + 0.5) / 2 - 0.5, (K[1, 2] + 0.5) / 2 - 0.5
    depth, depth_mask = render_rectangle(K_depth, (240, 320), R, centre, (0.3, 0.12))
    registered = mask_on_depth_grid(color_mask, K, K_depth, (240, 320))
    assert registered.shape == (240, 320)
    assert (registered != depth_mask).sum() <= 0.05 * depth_mask.sum()  # boundary pixels only
    est = create_pose_estimator("pca").estimate(registered, depth_to_metres(encode(depth, "16UC1"), "16UC1"), K_depth)
    assert_pose(est, centre, R)


def test_registration_never_indexes_out_of_bounds():
    mask = np.ones((48, 64), dtype=bool)
    K_color = intrinsics(64, 48, 50.0)
    K_depth = intrinsics(200, 150, 60.0)  # a much wider view than the colour image
    out = mask_on_depth_grid(mask, K_color, K_depth, (150, 200))
    assert out.shape == (150, 200) and out.any() and not out.all()
    assert not out[0].any() and not out[:, 0].any()


def test_square_has_no_preferred_axis():
    depth, mask = render_rectangle(K, SHAPE, rotation(rz_deg=10), np.array([0, 0, 1.0]), (0.2, 0.2))
    est = create_pose_estimator("pca").estimate(mask, depth.astype(np.float32), K)
    assert est.position_valid and not est.orientation_valid
    assert est.orientation == (0.0, 0.0, 0.0, 1.0)
    np.testing.assert_allclose(est.position, [0, 0, 1.0], atol=1e-3)


def test_too_few_or_no_valid_points():
    depth = np.full(SHAPE, np.nan, dtype=np.float32)
    mask = np.zeros(SHAPE, dtype=bool)
    mask[100:110, 100:110] = True
    est = create_pose_estimator("pca").estimate(mask, depth, K)
    assert not est.position_valid and not est.orientation_valid and est.num_points == 0
    depth[100:102, 100:105] = 1.0  # 10 points < min_points
    est = create_pose_estimator("pca").estimate(mask, depth, K)
    assert not est.position_valid and est.num_points == 10


def test_depth_units_and_invalid_values():
    raw = np.array([[0, 1000, 65535]], dtype=np.uint16)
    np.testing.assert_array_equal(depth_to_metres(raw, "16UC1"), np.array([[np.nan, 1.0, 65.535]], np.float32))
    flt = np.array([[np.nan, np.inf, -np.inf, 0.0, -1.0, 2.5]], dtype=np.float32)
    out = depth_to_metres(flt, "32FC1")
    assert np.isnan(out[0, :5]).all() and out[0, 5] == 2.5


@pytest.mark.parametrize(
    ("array", "encoding", "match"),
    [
        (np.zeros((2, 2), np.uint16), "8UC1", "encoding"),
        (np.zeros((2, 2), np.float32), "16UC1", "uint16"),
        (np.zeros((2, 2), np.uint16), "32FC1", "float32"),
        (np.zeros((0, 4), np.uint16), "16UC1", "non-empty"),
        (np.zeros((2, 2, 2), np.uint16), "16UC1", "HxW"),
    ],
)
def test_bad_depth_is_refused_clearly(array, encoding, match):
    with pytest.raises(ValueError, match=match):
        depth_to_metres(array, encoding)


def test_bad_intrinsics_and_shapes_are_refused_clearly():
    est = create_pose_estimator("pca")
    depth = np.ones((4, 4), np.float32)
    with pytest.raises(ValueError, match="focal length"):
        est.estimate(np.ones((4, 4), bool), depth, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="same size"):
        est.estimate(np.ones((4, 5), bool), depth, K)
    with pytest.raises(ValueError, match="unknown pose estimator"):
        create_pose_estimator("nope")


def test_large_masks_are_subsampled_without_losing_accuracy():
    K_hd = intrinsics(1280, 720, 900.0)
    R, centre = rotation(25.0, -20.0, 35.0), np.array([0.0, 0.05, 0.6])
    depth, mask = render_rectangle(K_hd, (720, 1280), R, centre, (0.5, 0.25))
    assert mask.sum() > 100000
    est = create_pose_estimator("pca", max_points=5000).estimate(mask, depth.astype(np.float32), K_hd)
    assert 1000 < est.num_points <= 5000
    assert_pose(est, centre, R)


@pytest.mark.parametrize("shift_px", [0.0, 0.25, 0.5, 0.75])
@pytest.mark.parametrize("angles", [(0.0, 0.0, 0.0), (5.0, 3.0, 0.0), (20.0, -30.0, 25.0)])
def test_default_subsampling_of_a_large_mask_keeps_the_tolerances(angles, shift_px):
    """A 640x480 mask of ~50-65k pixels is sampled (default max_points / sample_points). Axis-aligned edges are the worst case of
    a plain grid (whole node columns in or out: 1.2-1.5 mm off here); the weighted cells must stay within the
    tolerances and within 0.1 mm / 0.1 degree of the estimate from every pixel."""
    R = rotation(*angles)
    centre = np.array([shift_px * 1.0 / 525.0, 0.5 * shift_px / 525.0, 1.0])  # sub-pixel moves of the edges
    depth, mask = render_rectangle(K, SHAPE, R, centre, (0.6, 0.4))
    estimator = create_pose_estimator("pca")
    assert mask.sum() > 4 * estimator.config.max_points and not mask[[0, -1]].any() and not mask[:, [0, -1]].any()
    depth_m = depth_to_metres(encode(depth, "32FC1"), "32FC1")
    est = estimator.estimate(mask, depth_m, K)
    assert est.num_points <= estimator.config.sample_points < estimator.config.max_points
    assert_pose(est, centre, R)
    full = create_pose_estimator("pca", max_points=mask.size).estimate(mask, depth_m, K)
    assert full.num_points == mask.sum()
    assert np.linalg.norm(est.position - full.position) < 1e-4
    assert np.degrees(rotation_angle_between(est.rotation, full.rotation)) < 0.1


def test_large_bleeding_mask_with_depth_holes_is_sampled_within_tolerance():
    """A large tilted plate (~90k pixels) in front of a wall, 5 % depth dropouts, the mask bled 8 px onto the
    wall: cells cut by the plate's edge hold wall pixels, which the per-sample outlier test must still drop."""
    rng = np.random.default_rng(3)
    R, centre = rotation(15.0, -20.0, 10.0), np.array([0.0, 0.0, 0.7])
    plate, plate_mask = render_rectangle(K, SHAPE, R, centre, (0.5, 0.35))
    wall, _ = render_rectangle(K, SHAPE, np.eye(3), np.array([0.0, 0.0, 1.5]), (10.0, 10.0))
    depth = np.where(plate_mask, plate, wall).astype(np.float32)
    depth[rng.random(SHAPE) < 0.05] = np.nan
    grown = cv2.dilate(plate_mask.astype(np.uint8), np.ones((17, 17), np.uint8)).astype(bool)
    assert plate_mask.sum() > 4 * create_pose_estimator("pca").config.max_points
    assert (grown & ~plate_mask).sum() > 0.1 * plate_mask.sum()
    for encoding in ENCODINGS:
        est = create_pose_estimator("pca").estimate(grown, encode(depth, encoding), K, encoding=encoding)
        assert_pose(est, centre, R)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_raw_depth_with_its_encoding_equals_metres(encoding):
    """The node passes the driver's image and its encoding: only sampled pixels are converted, same pose."""
    R, centre = rotation(10.0, 25.0, -15.0), np.array([0.03, -0.02, 1.1])
    depth, mask = render_rectangle(K, SHAPE, R, centre, (0.5, 0.3))
    raw = encode(depth, encoding)
    raw[::7, ::5] = 0 if encoding == "16UC1" else np.inf  # invalid returns inside the mask (inf: REP-117)
    for max_points in (10000, mask.size):
        estimator = create_pose_estimator("pca", max_points=max_points)
        from_raw = estimator.estimate(mask, raw, K, encoding=encoding)
        from_metres = estimator.estimate(mask, depth_to_metres(raw, encoding), K)
        assert from_raw.num_points == from_metres.num_points
        np.testing.assert_allclose(from_raw.position, from_metres.position, atol=1e-6)
        np.testing.assert_allclose(from_raw.rotation, from_metres.rotation, atol=1e-5)
        assert_pose(from_raw, centre, R)
    with pytest.raises(ValueError, match="uint16" if encoding == "16UC1" else "float32"):
        estimator.estimate(mask, raw.astype(np.float64), K, encoding=encoding)


def test_sampling_counts_every_valid_pixel_once():
    """Weights of the cell samples add up to the valid pixels, whatever the mask's shape (also scattered)."""
    from strvos_core.pose.pca import _grid_samples

    rng = np.random.default_rng(0)
    for trial in range(100):
        height, width = (int(v) for v in rng.integers(20, 160, 2))
        valid = rng.random((height, width)) < rng.uniform(0.05, 1.0)
        if trial % 2:  # a compact blob
            valid[:] = False
            top, left = rng.integers(0, height // 2), rng.integers(0, width // 2)
            valid[top:top + rng.integers(1, height // 2), left:left + rng.integers(1, width // 2)] = True
        max_points = int(rng.integers(3, max(4, valid.sum())))
        sample_points = int(rng.integers(3, max_points + 1))
        rows, cols, weights = _grid_samples(valid, max_points, sample_points)
        assert valid[rows, cols].all() and len(set(zip(rows.tolist(), cols.tolist(), strict=True))) == rows.size
        if weights is None:
            assert rows.size == valid.sum()
        else:
            assert rows.size <= sample_points and weights.sum() == valid.sum()
    with pytest.raises(ValueError, match="sample_points"):
        create_pose_estimator("pca", max_points=100, sample_points=200)
