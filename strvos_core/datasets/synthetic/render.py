"""Rendering a scene through a pinhole camera: RGB, 16UC1 depth and the visible-object label image.

Objects are fronto-parallel cards at their own depth in front of a tilted background plane; painting them
far to near (a z-buffer with one depth per object) makes the label image, and so every ground-truth mask,
occlusion-aware by construction.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from strvos_core.datasets.synthetic.config import SyntheticConfig
from strvos_core.datasets.synthetic.scene import SceneObject
from strvos_core.datasets.synthetic.sprites import Sprite

MAX_PLANE_SLOPE = 0.5  # bounds the denominator of the plane's depth so it never blows up


@dataclass(frozen=True)
class RenderedVideo:
    frames: np.ndarray  # uint8 [T, H, W, 3] RGB
    depth_mm: np.ndarray  # uint16 [T, H, W], 0 = invalid
    labels: np.ndarray  # uint8 [T, H, W], visible object id, 0 = background


def intrinsics(config: SyntheticConfig) -> np.ndarray:
    """3x3 pinhole K (square pixels, principal point at the image centre) for the configured FOV."""
    focal = (config.width / 2.0) / np.tan(np.deg2rad(config.horizontal_fov_deg) / 2.0)
    return np.array([[focal, 0.0, (config.width - 1) / 2.0],
                     [0.0, focal, (config.height - 1) / 2.0],
                     [0.0, 0.0, 1.0]])


def paste_masks(sprite: Sprite, centres: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool [T, H, W]: the sprite's full (amodal) footprint at each frame, clipped to the image."""
    out = np.zeros((len(centres), height, width), bool)
    for t, (window, sub) in enumerate(_windows(sprite.radius, centres, height, width)):
        if window is not None:
            out[t][window] = sprite.mask[sub]
    return out


def render_video(objects: list[SceneObject], sprites: dict[int, Sprite], config: SyntheticConfig,
                 rng: np.random.Generator) -> RenderedVideo:
    h, w, frames_count = config.height, config.width, config.num_frames
    K = intrinsics(config)
    background_rgb, background_depth = render_background(rng, config, K)
    frames = np.broadcast_to(background_rgb, (frames_count, h, w, 3)).copy()
    depth = np.broadcast_to(background_depth, (frames_count, h, w)).copy()
    labels = np.zeros((frames_count, h, w), np.uint8)
    for obj in sorted(objects, key=lambda o: -o.depth_mm):  # far to near: nearer ones overwrite
        sprite = sprites[obj.obj_id]
        for t, (window, sub) in enumerate(_windows(sprite.radius, obj.centres, h, w)):
            if window is None:
                continue
            mask = sprite.mask[sub]
            frames[t][window][mask] = sprite.rgb[sub][mask]
            depth[t][window][mask] = obj.depth_mm
            labels[t][window][mask] = obj.obj_id
    if config.pixel_noise:
        _add_sensor_noise(frames, config.pixel_noise, rng)
    if config.invalid_depth_fraction:
        # Sparse dropouts, as a depth sensor's: sampled positions (a few may repeat) set to 0.
        holes = rng.integers(0, depth.size, size=int(round(config.invalid_depth_fraction * depth.size)))
        depth.reshape(-1)[holes] = 0
    return RenderedVideo(frames=frames, depth_mm=depth, labels=labels)


def _add_sensor_noise(frames: np.ndarray, amplitude: int, rng: np.random.Generator) -> None:
    """In place, +-amplitude per pixel and channel, different every frame.

    Each frame takes a random window of one noise bank twice the frame's size (far cheaper than fresh
    noise per pixel); cv2's saturating add/subtract keep it in uint8.
    """
    _, h, w, _ = frames.shape
    bank = rng.integers(0, 2 * amplitude + 1, size=(2 * h, 2 * w, 3), dtype=np.uint8)
    offsets = rng.integers(0, [h, w], size=(len(frames), 2))
    for frame, (oy, ox) in zip(frames, offsets, strict=True):
        noise = np.ascontiguousarray(bank[oy:oy + h, ox:ox + w]).reshape(h, w * 3)
        flat = frame.reshape(h, w * 3)
        cv2.subtract(cv2.add(flat, noise, dst=flat), amplitude, dst=flat)


def render_background(rng: np.random.Generator, config: SyntheticConfig,
                      K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A tilted plane behind the objects: (RGB uint8 [H, W, 3], depth uint16 [H, W] in mm).

    Plane points satisfy Z = Zc / (1 + a * x' + b * y') with x' = (u - cx) / fx, y' = (v - cy) / fy,
    i.e. a real 3D plane seen through K; the slopes are bounded so it stays behind the nearest allowed
    object depth plus the depth gap.
    """
    h, w = config.height, config.width
    centre_depth = rng.uniform(*config.background_depth_mm)
    x = (np.arange(w) - K[0, 2]) / K[0, 0]
    y = (np.arange(h) - K[1, 2]) / K[1, 1]
    a, b = rng.uniform(-0.15, 0.15), rng.uniform(0.2, 0.6)  # mostly a floor-like tilt (nearer below)
    reach = abs(a) * np.abs(x).max() + abs(b) * np.abs(y).max()
    nearest_allowed = config.object_depth_mm[1] + config.min_depth_gap_mm
    limit = min(MAX_PLANE_SLOPE, centre_depth / nearest_allowed - 1.0)
    if reach > limit:
        a, b = a * limit / reach, b * limit / reach
    depth = centre_depth / (1.0 + a * x[None, :] + b * y[:, None])
    depth = np.clip(np.round(depth), 1, 65535).astype(np.uint16)

    base = rng.uniform(95, 175, size=3) * 0.35 + rng.uniform(110, 160) * 0.65  # muted, low saturation
    blotches = cv2.resize(rng.uniform(-1, 1, size=(6, 8)).astype(np.float32), (w, h),
                          interpolation=cv2.INTER_CUBIC)
    shade = 1.0 + 0.12 * blotches - 0.25 * (depth / centre_depth - 1.0)  # nearer floor is brighter
    rgb = np.clip(base[None, None, :] * shade[..., None], 0, 255).astype(np.uint8)
    return rgb, depth


def _windows(radius: int, centres: np.ndarray, height: int, width: int):
    """Per frame: (image slices, sprite slices) of the overlap, or (None, None) when out of view."""
    size = 2 * radius + 1
    for cx, cy in centres:
        x0, y0 = int(cx) - radius, int(cy) - radius
        ix0, iy0 = max(x0, 0), max(y0, 0)
        ix1, iy1 = min(x0 + size, width), min(y0 + size, height)
        if ix0 >= ix1 or iy0 >= iy1:
            yield None, None
            continue
        yield ((slice(iy0, iy1), slice(ix0, ix1)),
               (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0)))
