"""Overlay drawing people can read on any image: masks, labels and 3D poses (the node's ~/overlay, the demo).

Rules, each for a failure seen in earlier overlays:
* text sits on a dark box of its own (no offset "shadow" copy: with OpenCV 5 a thick black copy of the text is
  wider than the white one and the two smear into each other);
* every line drawn over the scene has a black halo under a light core, so it stays visible on objects of any
  colour, including the target's own colour;
* a mask is filled only while its target is TRACKING; a mask below the score threshold is drawn as a dashed
  outline and labelled as not trusted, so the picture never shows a filled mask under "NOT_FOUND";
* the pose is drawn, not only printed: its axes projected into the image (x red, y green, z blue, as rviz), or a
  ring at its centre when the orientation is not known.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from strvos_core.realtime.masks import colour_for
from strvos_core.realtime.tracking import TrackingState

FONT = cv2.FONT_HERSHEY_SIMPLEX
BLACK, WHITE = (0, 0, 0), (255, 255, 255)
AXIS_COLOURS = ((255, 60, 60), (60, 230, 60), (70, 130, 255))  # x, y, z as rviz draws them
DASH_PX = 5


def text_scale(image: np.ndarray) -> float:
    """A font scale that stays legible and small enough from a 320x240 to a 1920x1080 image."""
    return float(np.clip(min(image.shape[:2]) / 1000.0, 0.35, 1.0))


def label_size(lines: Sequence[str], scale: float, swatch: bool = False) -> tuple[int, int]:
    """(width, height) in pixels of the box `draw_label` draws for ``lines``."""
    sizes = [cv2.getTextSize(line, FONT, scale, 1) for line in lines]
    line_height = max(h + base for (_, h), base in sizes) + 2
    pad = max(2, int(round(3 * scale)))
    bar = pad + 2 if swatch else 0
    return max(w for (w, _), _ in sizes) + 2 * pad + bar, line_height * len(lines) + pad


def draw_label(image: np.ndarray, lines: Sequence[str], org: tuple[int, int], scale: float | None = None,
               swatch: tuple[int, int, int] | None = None) -> tuple[int, int, int, int]:
    """White text lines on a dark box whose top-left corner is ``org`` (moved inside the image when needed);
    ``swatch``: a colour bar at the box's left edge (the target's colour). Returns the box (x, y, w, h)."""
    scale = text_scale(image) if scale is None else scale
    if not lines:
        return org[0], org[1], 0, 0
    width, height = label_size(lines, scale, swatch is not None)
    sizes = [cv2.getTextSize(line, FONT, scale, 1) for line in lines]
    line_height = max(h + base for (_, h), base in sizes) + 2
    pad = max(2, int(round(3 * scale)))
    bar = pad + 2 if swatch is not None else 0
    x = int(np.clip(org[0], 0, max(image.shape[1] - width, 0)))
    y = int(np.clip(org[1], 0, max(image.shape[0] - height, 0)))
    box = image[y: y + height, x: x + width]
    box[:] = (box.astype(np.float32) * 0.25).astype(np.uint8)  # darkened, the scene still faintly visible
    if swatch is not None:
        box[:, :bar - 2] = swatch
    for i, line in enumerate(lines):
        baseline = y + pad + line_height * (i + 1) - sizes[i][1] - 2
        cv2.putText(image, line, (x + pad + bar, baseline), FONT, scale, WHITE, 1, cv2.LINE_AA)
    return x, y, width, height


def place_label(size: tuple[int, int], image_shape: tuple[int, ...], anchors: Sequence[tuple[int, int]],
                taken: list[tuple[int, int, int, int]]) -> tuple[int, int]:
    """The first of ``anchors`` (top-left corners, moved inside the image) where a box of ``size`` overlaps
    none of the ``taken`` boxes; else the first free place further down the image; else the first anchor."""
    width, height = size
    max_x, max_y = max(image_shape[1] - width, 0), max(image_shape[0] - height, 0)

    def free(x: int, y: int) -> bool:
        return all(x + width <= tx or tx + tw <= x or y + height <= ty or ty + th <= y for tx, ty, tw, th in taken)

    candidates = [(int(np.clip(x, 0, max_x)), int(np.clip(y, 0, max_y))) for x, y in anchors]
    inside = [c for c, (_, y) in zip(candidates, anchors, strict=True) if c[1] == y]  # not pushed onto the target
    for x, y in inside + candidates:
        if free(x, y):
            return x, y
    x = candidates[0][0]
    for y in range(0, max_y + 1, max(height // 2, 1)):
        if free(x, y):
            return x, y
    return candidates[0]


def _contours(mask: np.ndarray) -> list[np.ndarray]:
    contours, _ = cv2.findContours(np.ascontiguousarray(mask, dtype=np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    return list(contours)


def draw_outline(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = WHITE,
                 dashed: bool = False, thickness: int = 1) -> None:
    """The mask's outer boundary: a black halo under a ``colour`` core (dashed: every other DASH_PX pixels)."""
    contours = _contours(mask)
    if not dashed:
        cv2.drawContours(image, contours, -1, BLACK, thickness + 2, cv2.LINE_8)
        cv2.drawContours(image, contours, -1, colour, thickness, cv2.LINE_8)
        return
    dashes = []
    for contour in contours:
        points = contour.reshape(-1, 2)
        for start in range(0, len(points), 2 * DASH_PX):
            piece = points[start: start + DASH_PX + 1]
            if len(piece) > 1:
                dashes.append(piece.reshape(-1, 1, 2))
    cv2.polylines(image, dashes, False, BLACK, thickness + 2, cv2.LINE_8)
    cv2.polylines(image, dashes, False, colour, thickness, cv2.LINE_8)


def fill_mask(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], alpha: float) -> None:
    """Blend ``colour`` into the masked pixels, only inside the mask's box (cost follows the target's size)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    box = np.ascontiguousarray(image[y0:y1, x0:x1])
    tint = np.empty_like(box)
    tint[:] = np.asarray(colour, dtype=np.uint8)
    blended = cv2.addWeighted(box, 1.0 - alpha, tint, alpha, 0.0)
    cv2.copyTo(blended, np.ascontiguousarray(mask[y0:y1, x0:x1]).view(np.uint8), box)
    image[y0:y1, x0:x1] = box


def _project(points: np.ndarray, K: np.ndarray) -> np.ndarray | None:
    """Pixel coordinates (N x 2) of camera-frame points, or None when one is not in front of the camera."""
    if np.any(points[:, 2] <= 1e-6):
        return None
    uvw = points @ np.asarray(K, dtype=np.float64).T
    return uvw[:, :2] / uvw[:, 2:3]


def draw_pose(image: np.ndarray, position: Sequence[float], rotation: np.ndarray | None, K: np.ndarray,
              axis_length: float = 0.05) -> bool:
    """The pose projected with ``K``: a ring at its centre and, with a ``rotation`` (columns = the x, y, z
    axes in the camera frame), its axes ``axis_length`` metres long. False when it is behind the camera."""
    centre = np.asarray(position, dtype=np.float64).reshape(1, 3)
    tips = centre + (np.asarray(rotation, dtype=np.float64).T * axis_length if rotation is not None
                     else np.zeros((0, 3)))
    pixels = _project(np.vstack([centre, tips]), K)
    if pixels is None or not np.all(np.isfinite(pixels)):
        return False
    limit = 4.0 * max(image.shape[:2])  # cv2 needs int coordinates; far-off tips are clipped by it
    points = [tuple(int(v) for v in np.clip(np.round(p), -limit, limit)) for p in pixels]
    radius = max(4, int(round(min(image.shape[:2]) / 50)))
    for tip, colour in zip(points[1:], AXIS_COLOURS, strict=False):
        cv2.line(image, points[0], tip, BLACK, 4, cv2.LINE_AA)
        cv2.line(image, points[0], tip, colour, 2, cv2.LINE_AA)
    x, y = points[0]
    for a, b in (((x - radius, y), (x + radius, y)), ((x, y - radius), (x, y + radius))):
        cv2.line(image, a, b, BLACK, 3, cv2.LINE_AA)
        cv2.line(image, a, b, WHITE, 1, cv2.LINE_AA)
    cv2.circle(image, points[0], radius, BLACK, 3, cv2.LINE_AA)
    cv2.circle(image, points[0], radius, WHITE, 1, cv2.LINE_AA)
    return True


def quaternion_to_rotation(q: Sequence[float]) -> np.ndarray:
    """3x3 rotation of a unit quaternion (x, y, z, w)."""
    x, y, z, w = (float(v) for v in q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def draw_click(image: np.ndarray, click: Sequence[float], colour: tuple[int, int, int]) -> None:
    """A cross in the target's colour on a black halo at ``click`` (x, y px): where the model looked, so a mask on
    the wrong object shows whether the attention or SAM 2 went astray."""
    size = max(9, int(round(0.06 * min(image.shape[:2]))))
    height, width = image.shape[:2]  # a point far off the image is drawn (not at all) at its edge, never overflows
    centre = (int(np.clip(round(float(click[0])), -size, width + size)),
              int(np.clip(round(float(click[1])), -size, height + size)))
    cv2.drawMarker(image, centre, (0, 0, 0), cv2.MARKER_CROSS, size + 2, 4, cv2.LINE_AA)
    cv2.drawMarker(image, centre, tuple(int(c) for c in colour), cv2.MARKER_CROSS, size, 2, cv2.LINE_AA)


def state_text(state: TrackingState, score: float, threshold: float | None = None) -> str:
    """'TRACKING 0.82', 'LOST 0.31 < 0.50' (the score and why it is not tracking, when the threshold is known)."""
    text = f"{TrackingState(state).name} {score:.2f}"
    if state is not TrackingState.TRACKING and threshold is not None and score < threshold:
        text += f" < {threshold:.2f}"
    return text


def draw_targets(rgb: np.ndarray, targets: Sequence, K: np.ndarray | None = None, alpha: float = 0.5,
                 threshold: float | None = None) -> np.ndarray:
    """An RGB copy of ``rgb`` with each target (realtime.pipeline.TargetOutput) drawn: its mask (filled while
    TRACKING, a dashed outline otherwise), where the model looked (a cross at SAM 2's click, for models with an
    attention click), its label (id, state, score, distance) and, with ``K``, its pose.
    Labels sit next to their mask (the others at the top-left corner), never over another label."""
    out = np.array(rgb, dtype=np.uint8, copy=True)
    labels = []
    for target in targets:
        mask = np.asarray(target.mask, dtype=bool)
        if mask.shape != out.shape[:2]:
            raise ValueError(f"mask {mask.shape} does not match the image {out.shape[:2]}")
        colour = colour_for(target.index)
        tracking = target.state is TrackingState.TRACKING
        if target.area:
            if tracking:
                fill_mask(out, mask, colour, alpha)
            draw_outline(out, mask, WHITE, dashed=not tracking)
        lines = [f"{target.target_id}: {state_text(target.state, target.score, threshold)}"]
        if target.area and not tracking:
            lines.append("mask not trusted (dashed)")
        pose = target.pose
        if pose is not None and pose.position_valid:
            lines.append(f"z {float(pose.position[2]):.2f} m")
            if K is not None:
                rotation = pose.rotation if pose.orientation_valid else None
                length = float(np.clip(0.5 * float(np.max(pose.extent)), 0.02, 0.5))
                draw_pose(out, pose.position, rotation, K, length)
        click = getattr(target, "click", None)
        if click is not None and np.isfinite(click).all():  # after the pose, which often sits at the same spot
            draw_click(out, click, colour)
        labels.append((lines, colour, target.bbox if target.area else None))
    scale = text_scale(out)
    taken: list[tuple[int, int, int, int]] = []
    for lines, colour, bbox in labels:  # labels last: never covered by another target's mask
        size = label_size(lines, scale, swatch=True)
        if bbox is None:
            anchors = [(0, 0)]
        else:
            x, y, w, h = bbox
            anchors = [(x, y - size[1] - 2), (x, y + h + 2), (x + w + 2, y), (x - size[0] - 2, y)]
        taken.append(draw_label(out, lines, place_label(size, out.shape, anchors, taken), scale, swatch=colour))
    return out
