"""One frame of the demo video: what the node published for it, drawn so that a person can read it.

The published mask is filled only while its target is TRACKING (a mask below the score threshold is a dashed
outline), the ground truth is a green outline, the pose is drawn as projected axes, and every text sits on a
box of its own (see realtime/overlay.py for why). The frame is enlarged before drawing, so lines and text are
drawn at the video's resolution, not blown up with the frame.
"""
from __future__ import annotations

import cv2
import numpy as np

from strvos_core.realtime.masks import colour_for
from strvos_core.realtime.overlay import (
    draw_label,
    draw_outline,
    draw_pose,
    fill_mask,
    label_size,
    quaternion_to_rotation,
    state_text,
)
from strvos_core.realtime.tracking import TrackingState

SCALE = 2
LEGEND_SCALE = 0.4
GROUND_TRUTH = (60, 230, 60)
MASK_COLOUR = colour_for(0)  # the colour the node gives its first target
LEGEND = ["filled, white outline: published mask (TRACKING)", "dashed: published mask below the score threshold",
          "green outline: ground truth (drawn just outside it)", "axes: pose x / y / z (red / green / blue)"]


def scaled_intrinsics(K: np.ndarray, scale: float) -> np.ndarray:
    """K of the image enlarged ``scale`` times (pixel centres at (i + 0.5) * scale - 0.5)."""
    out = np.asarray(K, dtype=np.float64).copy()
    out[0, 0] *= scale
    out[1, 1] *= scale
    out[0, 2] = (out[0, 2] + 0.5) * scale - 0.5
    out[1, 2] = (out[1, 2] + 0.5) * scale - 0.5
    return out


def _enlarge(mask: np.ndarray) -> np.ndarray:
    return cv2.resize(mask.astype(np.uint8), None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST).astype(bool)


def render_frame(recording, frame: int) -> np.ndarray:
    """The demo frame ``frame`` (global index) with its record (demo.report.FrameRecord) drawn, RGB uint8."""
    plan = recording.plan
    clip, t = plan.locate(frame)
    video = plan.videos[clip]
    change = plan.prompt_at(frame)
    image = cv2.resize(video.frames[t], None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_NEAREST)
    rec = recording.records.get(frame)
    lines = [f"frame {frame}   prompt: {change.text}"]
    if rec is None:
        lines.append("no result (frame dropped)")
    else:
        state = TrackingState(rec.state)
        if rec.mask is not None and rec.mask.any():
            mask = _enlarge(rec.mask)
            tracking = state is TrackingState.TRACKING
            if tracking:
                fill_mask(image, mask, MASK_COLOUR, 0.5)
            draw_outline(image, mask, (255, 255, 255), dashed=not tracking, thickness=2)
        text = state_text(state, rec.score, recording.score_threshold)
        if rec.latency is not None:
            text += f"   latency {rec.latency * 1000:.0f} ms"
        lines.append(text)
        if rec.position is not None:
            x, y, z = rec.position
            lines.append(f"pose (camera optical frame): x {x:+.2f}  y {y:+.2f}  z {z:.2f} m")
            rotation = quaternion_to_rotation(rec.orientation) if rec.orientation is not None else None
            draw_pose(image, rec.position, rotation, scaled_intrinsics(video.K, SCALE), 0.06)
    # Drawn 3 px outside the ground truth: a published mask that matches it keeps its own outline visible.
    gt = cv2.dilate(_enlarge(video.labels[t] == change.obj_id).astype(np.uint8), np.ones((7, 7), np.uint8))
    draw_outline(image, gt.astype(bool), GROUND_TRUTH, thickness=1)
    draw_label(image, lines, (0, 0))
    draw_label(image, LEGEND, (0, image.shape[0] - label_size(LEGEND, LEGEND_SCALE)[1]), LEGEND_SCALE)
    return image
