"""Mask geometry and the colour of each target (the overlay itself: realtime/overlay.py)."""
from __future__ import annotations

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
