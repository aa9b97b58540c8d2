"""Object sprites: a shape mask and its textured colour, drawn once per object and pasted every frame.

Every shape's mask touches all four sides of its (2r+1)-pixel square, so "in view" is the same as "its
bounding square overlaps the image" (the scene's trajectories rely on it).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from strvos_core.datasets.synthetic.vocabulary import COLOURS, SHAPES, TEXTURES

TEXTURE_PERIOD = 8  # reference pixels
DARK = 0.45  # brightness of the texture's second tone


@dataclass(frozen=True)
class Sprite:
    """mask bool [2r+1, 2r+1] and rgb uint8 [2r+1, 2r+1, 3]; the centre pixel is (r, r)."""

    mask: np.ndarray
    rgb: np.ndarray

    @property
    def radius(self) -> int:
        return self.mask.shape[0] // 2


def shape_mask(shape: str, radius: int) -> np.ndarray:
    """bool [2r+1, 2r+1] mask of `shape` filling its square."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    if radius < 1:
        raise ValueError(f"sprite radius must be >= 1, got {radius}")
    r = radius
    v, u = np.mgrid[-r:r + 1, -r:r + 1]
    if shape == "circle":
        return u * u + v * v <= r * r + r  # + r: round the rim like a midpoint circle
    if shape == "square":
        return np.ones_like(u, dtype=bool)
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= r
    if shape == "cross":
        arm = max(1, r // 3)
        return (np.abs(u) <= arm) | (np.abs(v) <= arm)
    if shape == "triangle":  # apex up, base on the bottom row
        return 2 * np.abs(u) <= (v + r)
    # star: five points, the polygon stretched to fill the square.
    angles = -np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
    points = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    points = (points - points.min(0)) / (points.max(0) - points.min(0)) * (2 * r)
    mask = np.zeros((2 * r + 1, 2 * r + 1), np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def texture_pattern(texture: str, radius: int, scale: float) -> np.ndarray:
    """bool [2r+1, 2r+1]: True where the texture's dark tone is."""
    if texture not in TEXTURES:
        raise ValueError(f"unknown texture {texture!r}; expected one of {TEXTURES}")
    r = radius
    period = max(4, int(round(TEXTURE_PERIOD * scale)))
    v, u = np.mgrid[-r:r + 1, -r:r + 1]
    if texture == "plain":
        return np.zeros(u.shape, bool)
    if texture == "striped":  # diagonal bands
        return ((u + v) % period) < period // 2
    if texture == "checkered":
        half = period // 2
        return ((u // half + v // half) % 2) == 1
    # dotted: a grid of small discs
    du = (u % period) - period // 2
    dv = (v % period) - period // 2
    return du * du + dv * dv <= (0.3 * period) ** 2


def make_sprite(shape: str, colour: str, texture: str, radius: int, scale: float = 1.0) -> Sprite:
    if colour not in COLOURS:
        raise ValueError(f"unknown colour {colour!r}; expected one of {tuple(COLOURS)}")
    mask = shape_mask(shape, radius)
    base = np.asarray(COLOURS[colour], np.float32)
    dark = texture_pattern(texture, radius, scale)
    rgb = np.where(dark[..., None], base * DARK, base)
    # A soft rim darkening gives the flat shapes a little volume (and an edge to find).
    eroded = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), borderValue=0).astype(bool)
    rgb = np.where((mask & ~eroded)[..., None], rgb * 0.7, rgb)
    rgb = np.where(mask[..., None], rgb, 0)
    return Sprite(mask=mask, rgb=np.clip(rgb, 0, 255).astype(np.uint8))
