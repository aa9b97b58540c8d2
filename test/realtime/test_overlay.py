"""realtime.overlay: what the node's ~/overlay and the demo video show, checked on the pixels (the PNGs were also
looked at: text on its own box, outlines visible on objects of the target's own colour, pose markers)."""
from __future__ import annotations

import numpy as np
import pytest

from strvos_core.pose import create_pose_estimator
from strvos_core.realtime.masks import colour_for, mask_bbox
from strvos_core.realtime.overlay import (
    draw_label,
    draw_pose,
    draw_targets,
    label_size,
    place_label,
    quaternion_to_rotation,
    state_text,
)
from strvos_core.realtime.pipeline import TargetOutput
from strvos_core.realtime.tracking import TrackingState

H, W = 240, 320
K = np.array([[300.0, 0, (W - 1) / 2], [0, 300.0, (H - 1) / 2], [0, 0, 1]])


def square(x0=100, y0=80, size=60) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[y0:y0 + size, x0:x0 + size] = True
    return mask


def target(mask, state=TrackingState.TRACKING, score=0.9, index=0, pose=None, target_id="mug") -> TargetOutput:
    area = int(mask.sum())
    return TargetOutput(target_id, "the mug", index, state, score, True, mask, area,
                        mask_bbox(mask) if area else (0, 0, 0, 0), pose)


def scene(colour=(90, 90, 90)) -> np.ndarray:
    image = np.empty((H, W, 3), np.uint8)
    image[:] = colour
    return image


def test_a_tracked_mask_is_filled_and_outlined_in_black_and_white_on_its_own_colour():
    red = colour_for(0)
    image = scene()
    mask = square()
    image[mask] = red  # the object has exactly the target's colour
    out = draw_targets(image, [target(mask)])
    assert (out[110, 130] == image[110, 130]).all()  # the fill of the same colour stays that colour ...
    edge = out[80 - 1: 80 + 2, 110]  # ... but the boundary has a white core and a black halo
    assert any((p == 255).all() for p in edge) and any((p == 0).all() for p in edge)
    assert (image == scene_with(mask, red)).all()  # the input is not drawn on


def scene_with(mask, colour):
    image = scene()
    image[mask] = colour
    return image


def test_an_untrusted_mask_is_a_dashed_outline_and_never_filled():
    image = scene()
    mask = square()
    out = draw_targets(image, [target(mask, TrackingState.LOST, 0.2)], threshold=0.5)
    assert (out[115:135, 115:135] == 90).all()  # inside untouched: not filled
    top = out[80, 100:160]
    white = np.all(top == 255, axis=1)
    assert 0.2 < white.mean() < 0.8  # dashes: white runs with gaps
    assert state_text(TrackingState.LOST, 0.2, 0.5) == "LOST 0.20 < 0.50"
    assert state_text(TrackingState.TRACKING, 0.9, 0.5) == "TRACKING 0.90"


def test_labels_sit_on_dark_boxes_and_never_on_each_other():
    image = scene((200, 200, 200))
    box = draw_label(image, ["default: TRACKING 0.90", "z 1.20 m"], (10, 10), 0.5)
    x, y, w, h = box
    inside = image[y:y + h, x:x + w]
    assert (inside <= 200 * 0.25 + 1).mean() > 0.6  # the box is dark ...
    assert (inside == 255).any()  # ... with white text on it
    assert (image[y + h + 2:, :] == 200).all()  # nothing drawn below it
    taken = [box]
    size = label_size(["another"], 0.5, swatch=True)
    x2, y2 = place_label(size, image.shape, [(10, 10)], taken)
    assert y2 >= y + h or x2 >= x + w  # the same anchor again: placed elsewhere


def test_pose_axes_and_centre_are_drawn_where_the_pose_projects():
    image = scene()
    position = np.array([0.0, 0.0, 1.0])  # on the optical axis: the image centre
    assert draw_pose(image, position, np.eye(3), K, 0.1)
    cx, cy = int(round(K[0, 2])), int(round(K[1, 2]))
    assert (image[cy - 12: cy + 13, cx - 12: cx + 13] != 90).any()
    x_tip = (int(round(cx + 300 * 0.1)) - 3, cy)  # +x axis (red) towards +u
    assert image[x_tip[1], x_tip[0], 0] > 200 and image[x_tip[1], x_tip[0], 2] < 120
    behind = scene()
    assert not draw_pose(behind, np.array([0.0, 0.0, -1.0]), None, K) and (behind == 90).all()


@pytest.fixture
def plate():
    """A tilted rectangular plate at 1 m: depth in metres and its mask."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    x, y = (u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]
    depth = 1.0 + 0.3 * x  # z grows to the right: a plate turned about the vertical axis
    mask = (np.abs(x) < 0.25) & (np.abs(y) < 0.1)
    return np.where(mask, depth, np.nan).astype(np.float32), mask


def test_targets_with_poses_get_axes_and_a_distance(plate):
    depth, mask = plate
    pose = create_pose_estimator("pca").estimate(mask, depth, K)
    assert pose.position_valid and pose.orientation_valid
    np.testing.assert_allclose(quaternion_to_rotation(pose.orientation), pose.rotation, atol=1e-6)
    plain = draw_targets(scene(), [target(mask)])
    out = draw_targets(scene(), [target(mask, pose=pose)], K)
    assert (out != plain).any()  # the axes
    empty = target(np.zeros((H, W), bool), TrackingState.NOT_FOUND, 0.0, 1, target_id="cup")
    out = draw_targets(scene(), [empty])
    assert (out[:20, :100] != 90).any() and (out[40:] == 90).all()  # a label in the corner, nothing else
    with pytest.raises(ValueError, match="does not match"):
        draw_targets(scene(), [target(np.ones((3, 3), bool))])


def test_the_click_is_marked_where_the_model_looked_and_only_there():
    mask = square()
    plain = draw_targets(scene(), [target(mask)])
    clicked = target(mask)
    clicked.click = (200.4, 40.6)  # outside the mask and away from the label
    out = draw_targets(scene(), [clicked])
    changed = np.argwhere((out != plain).any(axis=2))
    assert len(changed) and np.abs(changed - [41, 200]).max() <= 12  # a ~16 px cross around (x 200, y 41)
    assert (out[41, 200] == colour_for(0)).all()  # its centre in the target's colour
    for bad in [(float("nan"), 3.0), (1e9, -1e9), (1e30, 5.0)]:  # never a crash: a NaN is skipped, far points
        clicked.click = bad                                          # fall off the image
        assert (draw_targets(scene(), [clicked]) == plain).all()
