"""One synthetic referring video in memory: what the demo's camera player and training consume directly."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from strvos_core.datasets.synthetic.config import SyntheticConfig
from strvos_core.datasets.synthetic.expressions import Expression, generate_expressions
from strvos_core.datasets.synthetic.predicates import SceneFacts
from strvos_core.datasets.synthetic.render import intrinsics, paste_masks, render_video
from strvos_core.datasets.synthetic.scene import SceneObject, sample_scene
from strvos_core.datasets.synthetic.sprites import Sprite, make_sprite


@dataclass
class SyntheticVideo:
    """Frames, depth, ground truth and expressions of one generated video.

    `masks[obj_id]` is the object's visible mask in every frame: empty before it appears, after it has
    left and while it is fully occluded. `labels` holds the same as one id image per frame.
    """

    seed: int
    frames: np.ndarray  # uint8 [T, H, W, 3] RGB
    depth_mm: np.ndarray  # uint16 [T, H, W], millimetres, 0 = invalid
    labels: np.ndarray  # uint8 [T, H, W], visible object id, 0 = background
    K: np.ndarray  # float64 [3, 3] pinhole intrinsics of both RGB and depth
    expressions: list[Expression]
    objects: list[SceneObject]
    sprites: dict[int, Sprite] = field(repr=False)

    @cached_property
    def masks(self) -> dict[int, np.ndarray]:
        """obj_id -> bool [T, H, W] visible mask (computed once from `labels`)."""
        return {o.obj_id: self.labels == o.obj_id for o in self.objects}

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    def amodal_masks(self) -> dict[int, np.ndarray]:
        """Each object's full footprint (ignoring occlusion) in every frame, clipped to the image."""
        _, h, w = self.labels.shape
        return {o.obj_id: paste_masks(self.sprites[o.obj_id], o.centres, h, w) for o in self.objects}

    def facts(self) -> SceneFacts:
        _, h, w = self.labels.shape
        return SceneFacts(self.objects, w, h)


def generate_video(seed: int, config: SyntheticConfig | None = None) -> SyntheticVideo:
    """The video of `seed`: the same seed and config always give byte-identical arrays."""
    config = config or SyntheticConfig()
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    objects = sample_scene(rng, config)
    sprites = {o.obj_id: make_sprite(o.shape, o.colour, o.texture, o.radius, config.scale) for o in objects}
    rendered = render_video(objects, sprites, config, rng)
    facts = SceneFacts(objects, config.width, config.height)
    expressions = generate_expressions(facts, rng, config.expressions_per_kind,
                                       visible=_clearly_visible(objects, sprites, rendered.labels))
    return SyntheticVideo(seed=int(seed), frames=rendered.frames, depth_mm=rendered.depth_mm,
                          labels=rendered.labels, K=intrinsics(config), expressions=expressions,
                          objects=objects, sprites=sprites)


MIN_VISIBLE_FRACTION = 0.5  # of an object's footprint, in its best frame, for it to be referred to


def _clearly_visible(objects: list[SceneObject], sprites: dict[int, Sprite], labels: np.ndarray) -> set[int]:
    """Objects seen at least half unoccluded and in view in some frame."""
    counts = np.stack([np.bincount(frame.ravel(), minlength=256) for frame in labels])  # [T, 256]
    return {o.obj_id for o in objects
            if counts[:, o.obj_id].max() >= MIN_VISIBLE_FRACTION * sprites[o.obj_id].mask.sum()}
