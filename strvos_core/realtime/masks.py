"""Mask geometry and the debug overlay image."""
from __future__ import annotations

import cv2
import numpy as np

PALETTE = np.array(
    [[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180], [70, 240, 240],
     [240, 50, 230], [210, 245, 60], [250, 190, 190], [0, 128, 128]],
    dtype=np.uint8,
)


def colour_for(index: int) -> tuple[int, int, int]:
    r, g, b = PALETTE[index % len(PALETTE)]
    return int(r), int(g), int(b)


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight (x_offset, y_offset, width, height) of a boolean mask; all zero when empty."""
    mask = np.asarray(mask, dtype=bool)
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return 0, 0, 0, 0
    y0, y1 = np.flatnonzero(rows)[[0, -1]]
    x0, x1 = np.flatnonzero(cols)[[0, -1]]
    return int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)


def draw_overlay(rgb: np.ndarray, targets: list[tuple[str, np.ndarray, tuple[int, int, int]]],
                 alpha: float = 0.5) -> np.ndarray:
    """RGB copy with each (label, mask, colour) blended in, its box drawn and its label written."""
    out = np.array(rgb, dtype=np.uint8, copy=True)
    for label, mask, colour in targets:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != out.shape[:2]:
            raise ValueError(f"mask {mask.shape} does not match the image {out.shape[:2]}")
        if not mask.any():
            continue
        x, y, w, h = mask_bbox(mask)  # blend only inside the box: cost follows the target's size
        box = np.ascontiguousarray(out[y:y + h, x:x + w])
        tint = np.empty_like(box)
        tint[:] = np.asarray(colour, dtype=np.uint8)
        blended = cv2.addWeighted(box, 1.0 - alpha, tint, alpha, 0.0)
        cv2.copyTo(blended, np.ascontiguousarray(mask[y:y + h, x:x + w]).view(np.uint8), box)
        out[y:y + h, x:x + w] = box
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), colour, 1)
        cv2.putText(out, label, (x, max(y - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    return out
