"""`grounding.mask_refine_radius`: SAM 2's low-res mask brought to the frame along the frame's own edges (ours).

SAM 2 predicts logits at a quarter of its input; the reference resizes them bilinearly to the frame, so a small
model's mask boundary is as coarse as its 40x40 grid (at 160 px: 8 frame pixels a cell). A colour guided filter
(He, Sun and Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013) treats the upsampled probability as the input
and the frame as the guide: within each window the output is a linear function of the frame's colour, so the
0.5 level follows colour edges where the coarse mask changes. It runs only on the box around the mask's uncertain
band (plus the filter's reach), so its cost follows the object's size, not the frame's.
"""
from __future__ import annotations

import cv2
import numpy as np

UNCERTAIN = (0.02, 0.98)  # probabilities outside this band are left as the bilinear upsampling gave them
# Chosen on train-split videos (never the test split) with the shipped tiny model at radius 16: eps 1e-3 of [0, 1]
# colour variance, and the filter's coefficients on every 2nd pixel (the same frame J as every pixel, a third of the
# time). Training README, "Where the misses are".
EPS = 1e-3
STEP = 2


def _box(image: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(image, -1, (2 * radius + 1, 2 * radius + 1), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float, step: int = 1) -> np.ndarray:
    """Colour guided filter: guide float32 [H, W, 3] in [0, 1], source float32 [H, W] -> float32 [H, W]. With
    `step` > 1 the linear coefficients are computed on every `step`-th pixel and resized back (He and Sun, "Fast
    Guided Filter", 2015): step**2 fewer pixels to filter, the output still follows the full-resolution guide."""
    height, width = source.shape
    if step > 1:
        small = (max(width // step, 1), max(height // step, 1))
        guide_small = cv2.resize(guide, small, interpolation=cv2.INTER_AREA)
        source_small = cv2.resize(source, small, interpolation=cv2.INTER_AREA)
        radius = max(radius // step, 1)
    else:
        guide_small, source_small = guide, source
    slope, offset = _coefficients(guide_small, source_small, radius, eps)
    slope, offset = _box(slope, radius), _box(offset, radius)
    if step > 1:
        slope = cv2.resize(slope, (width, height), interpolation=cv2.INTER_LINEAR)
        offset = cv2.resize(offset, (width, height), interpolation=cv2.INTER_LINEAR)
    return (slope * guide).sum(-1) + offset


def _coefficients(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per window: the linear map from the guide's colour to the source (slope [H, W, 3], offset [H, W])."""
    mean_i = _box(guide, radius)
    mean_p = _box(source, radius)
    cov_ip = _box(guide * source[..., None], radius) - mean_i * mean_p[..., None]
    products = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    second = np.concatenate([_box(np.stack([guide[..., a] * guide[..., b] for a, b in products[k:k + 3]], -1), radius)
                             for k in (0, 3)], -1)
    # the window's colour covariance + eps I, a symmetric 3x3 per pixel, inverted by cofactors
    a00 = second[..., 0] - mean_i[..., 0] ** 2 + eps
    a01 = second[..., 1] - mean_i[..., 0] * mean_i[..., 1]
    a02 = second[..., 2] - mean_i[..., 0] * mean_i[..., 2]
    a11 = second[..., 3] - mean_i[..., 1] ** 2 + eps
    a12 = second[..., 4] - mean_i[..., 1] * mean_i[..., 2]
    a22 = second[..., 5] - mean_i[..., 2] ** 2 + eps
    c00, c01, c02 = a11 * a22 - a12 * a12, a02 * a12 - a01 * a22, a01 * a12 - a02 * a11
    c11, c12, c22 = a00 * a22 - a02 * a02, a01 * a02 - a00 * a12, a00 * a11 - a01 * a01
    det = a00 * c00 + a01 * c01 + a02 * c02
    x, y, z = cov_ip[..., 0], cov_ip[..., 1], cov_ip[..., 2]
    slope = np.stack([c00 * x + c01 * y + c02 * z, c01 * x + c11 * y + c12 * z, c02 * x + c12 * y + c22 * z],
                     -1) / det[..., None]
    offset = mean_p - (slope * mean_i).sum(-1)
    return slope, offset


def refine_mask(probability: np.ndarray, frame: np.ndarray, radius: int, eps: float = EPS, step: int = STEP
                ) -> np.ndarray:
    """float [H, W] upsampled mask probability, uint8 [H, W, 3] frame -> bool [H, W] mask (probability > 0.5 where
    nothing is uncertain, the guided filter's output > 0.5 around the uncertain band)."""
    mask = probability > 0.5
    band = (probability > UNCERTAIN[0]) & (probability < UNCERTAIN[1])
    if not band.any():
        return mask
    rows, cols = np.flatnonzero(band.any(axis=1)), np.flatnonzero(band.any(axis=0))
    reach = 2 * radius + 1  # the filter's output at a pixel depends on inputs up to 2 radii away
    top, bottom = max(rows[0] - reach, 0), min(rows[-1] + reach + 1, mask.shape[0])
    left, right = max(cols[0] - reach, 0), min(cols[-1] + reach + 1, mask.shape[1])
    guide = frame[top:bottom, left:right].astype(np.float32) / 255.0
    source = probability[top:bottom, left:right].astype(np.float32)
    mask[top:bottom, left:right] = guided_filter(guide, source, radius, eps, step) > 0.5
    return mask
