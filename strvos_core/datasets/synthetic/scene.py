"""Sampling a scene: objects with attributes, a depth and a per-frame trajectory.

Trajectories are integer pixel centres, so sprites paste exactly and the frames where an object is in view
follow from plain integer geometry. Attributes are often shared between objects on purpose: then only a
relation or a motion can single an object out, which is what the expression generator needs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from strvos_core.datasets.synthetic.config import SyntheticConfig
from strvos_core.datasets.synthetic.vocabulary import ATTRIBUTE_VALUES, ATTRIBUTES, DIRECTIONS, MOTIONS

# Half-extent of a sprite, in reference pixels (see SyntheticConfig.scale).
RADIUS_RANGE: dict[str, tuple[float, float]] = {"small": (11.0, 15.0), "large": (23.0, 29.0)}
SPEED_RANGE: tuple[float, float] = (3.0, 6.0)  # reference pixels per frame
MOTION_WEIGHTS: dict[str, float] = {
    "still": 0.22, "left": 0.13, "right": 0.13, "up": 0.13, "down": 0.13, "appearing": 0.13, "leaving": 0.13,
}
SHARE_ATTRIBUTE_PROBABILITY = 0.45  # chance a new object copies some attributes of an earlier one
CROSS_PATH_PROBABILITY = 0.6  # chance a mover's path is aligned with another object (occlusions)

_UNIT = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}


@dataclass
class SceneObject:
    """One object of a scene. `centres[t]` is the integer (x, y) pixel centre at frame t (may be outside)."""

    obj_id: int
    shape: str
    colour: str
    size: str
    texture: str
    radius: int
    depth_mm: int
    motion: str  # the motion it was given: one of vocabulary.MOTIONS
    centres: np.ndarray  # int64 [T, 2]
    enter_frame: int = 0  # first frame in view (appearing objects)
    exit_frame: int = -1  # first frame out of view for good (leaving objects); -1: stays in view

    def attributes(self) -> dict[str, str]:
        return {"size": self.size, "colour": self.colour, "texture": self.texture, "shape": self.shape}

    def in_view(self, width: int, height: int) -> np.ndarray:
        """bool [T]: whether the object's bounding square overlaps the image at each frame."""
        x, y, r = self.centres[:, 0], self.centres[:, 1], self.radius
        return (x + r >= 0) & (x - r <= width - 1) & (y + r >= 0) & (y - r <= height - 1)


def sample_scene(rng: np.random.Generator, config: SyntheticConfig) -> list[SceneObject]:
    """Objects (ids 1..N) with attributes, distinct depths and trajectories."""
    count = int(rng.integers(config.min_objects, config.max_objects + 1))
    attributes = _sample_attributes(rng, count)
    depths = _sample_depths(rng, count, config)
    motions = rng.choice(list(MOTION_WEIGHTS), size=count, p=_normalised(MOTION_WEIGHTS.values()))
    objects: list[SceneObject] = []
    # Still objects first: movers may then aim their path across one of them.
    order = sorted(range(count), key=lambda i: motions[i] != "still")
    for i in order:
        attrs = attributes[i]
        low, high = RADIUS_RANGE[attrs["size"]]
        radius = max(3, int(round(rng.uniform(low, high) * config.scale)))
        obj = SceneObject(obj_id=i + 1, **attrs, radius=radius, depth_mm=depths[i], motion=str(motions[i]),
                          centres=np.zeros((config.num_frames, 2), np.int64))
        _place(obj, rng, config, objects)
        objects.append(obj)
    objects.sort(key=lambda o: o.obj_id)
    return objects


def _normalised(weights) -> np.ndarray:
    w = np.asarray(list(weights), dtype=np.float64)
    return w / w.sum()


def _sample_attributes(rng: np.random.Generator, count: int) -> list[dict[str, str]]:
    result: list[dict[str, str]] = []
    for _ in range(count):
        attrs = {name: str(rng.choice(ATTRIBUTE_VALUES[name])) for name in ATTRIBUTES}
        if result and rng.random() < SHARE_ATTRIBUTE_PROBABILITY:
            donor = result[int(rng.integers(len(result)))]
            shared = rng.choice(ATTRIBUTES, size=int(rng.integers(1, len(ATTRIBUTES) + 1)), replace=False)
            attrs.update({name: donor[name] for name in shared})
        result.append(attrs)
    return result


def _sample_depths(rng: np.random.Generator, count: int, config: SyntheticConfig) -> list[int]:
    near, far = config.object_depth_mm
    gap = config.min_depth_gap_mm
    slots = (far - near) // gap + 1
    chosen = np.sort(rng.choice(slots, size=count, replace=False))
    jitter = rng.integers(0, max(1, gap // 4), size=count)  # stays below the gap: order is strict
    return [int(min(far, near + s * gap + j)) for s, j in zip(chosen, jitter, strict=True)]


def _place(obj: SceneObject, rng: np.random.Generator, config: SyntheticConfig, placed: list[SceneObject]) -> None:
    """Fill obj.centres (and enter/exit frames) for its motion."""
    assert obj.motion in MOTIONS
    w, h, frames, r = config.width, config.height, config.num_frames, obj.radius
    t = np.arange(frames)
    if obj.motion == "still":
        centre = np.array([rng.integers(r, w - r), rng.integers(r, h - r)])
        obj.centres[:] = centre
        return
    direction = obj.motion if obj.motion in DIRECTIONS else str(rng.choice(DIRECTIONS))
    ux, uy = _UNIT[direction]
    horizontal = ux != 0
    extent = w if horizontal else h  # along the motion
    across = h if horizontal else w
    preferred = rng.uniform(*SPEED_RANGE) * config.scale
    if obj.motion in DIRECTIONS:
        # Whole path inside the image.
        speed = _speed_within(preferred, 1, (extent - 2 * r - 2) // (frames - 1))
        start = int(rng.integers(r, max(r + 1, extent - r - speed * (frames - 1))))
        along = start + speed * t  # increasing coordinate; mirrored below for left/up
    elif obj.motion == "appearing":
        # Fully outside before enter_frame, touching the edge at enter_frame, fully in view (and not yet
        # touching the far edge) at the last frame.
        obj.enter_frame = int(rng.integers(1, max(2, frames // 2)))
        moving = frames - 1 - obj.enter_frame
        speed = _speed_within(preferred, -(-2 * r // moving), (extent - 1) // moving)
        along = -r + speed * (t - obj.enter_frame)
    else:  # leaving: fully in view at frame 0, gone for good from exit_frame on.
        obj.exit_frame = int(rng.integers(max(1, frames // 3), frames - 1))
        speed = _speed_within(preferred, -(-(2 * r + 1) // obj.exit_frame), extent // obj.exit_frame)
        along = extent + r + speed * (t - obj.exit_frame)
    if ux < 0 or uy < 0:
        along = (extent - 1) - along
    cross = _cross_coordinate(rng, r, across, horizontal, placed)
    if horizontal:
        obj.centres[:, 0], obj.centres[:, 1] = along, cross
    else:
        obj.centres[:, 0], obj.centres[:, 1] = cross, along


def _speed_within(preferred: float, low: int, high: int) -> int:
    """The preferred speed (pixels per frame) clipped to what the motion's geometry allows."""
    if low > high:  # only on tiny images: the geometry wins over the preferred look
        return max(1, high)
    return max(1, min(max(int(round(preferred)), low), high))


def _cross_coordinate(rng: np.random.Generator, r: int, across: int, horizontal: bool,
                      placed: list[SceneObject]) -> int:
    """Position across the motion: often aligned with an earlier object so the paths cross (occlusion)."""
    if placed and rng.random() < CROSS_PATH_PROBABILITY:
        other = placed[int(rng.integers(len(placed)))]
        target = int(other.centres[len(other.centres) // 2, 1 if horizontal else 0])
        value = target + int(rng.integers(-other.radius // 2, other.radius // 2 + 1))
    else:
        value = int(rng.integers(r, across - r))
    return int(np.clip(value, r, across - 1 - r))
