"""What is true of a scene's objects: appearance, motion over the clip, and spatial relations.

Expressions are generated from these predicates and checked against them, so "refers to exactly one
object" means: evaluating the expression's predicate over all objects of the scene selects one object.
Motion and relations are read from the realised trajectories (the frames each object is in view), not
from the motion the sampler intended, so an appearing object that slides in from the left is also
"moving right".
"""
from __future__ import annotations

import numpy as np

from strvos_core.datasets.synthetic.scene import SceneObject

MIN_TRAVEL_FRACTION = 0.08  # of min(width, height): less than this is not "moving"
MIN_SHARED_FRAMES_FRACTION = 0.5  # a relation needs both objects in view together this often


class SceneFacts:
    """Predicates over one scene's objects at a given image size."""

    def __init__(self, objects: list[SceneObject], width: int, height: int):
        self.objects = {o.obj_id: o for o in objects}
        self.width, self.height = width, height
        self.in_view = {o.obj_id: o.in_view(width, height) for o in objects}
        self.min_travel = MIN_TRAVEL_FRACTION * min(width, height)
        self._attributes = {o.obj_id: o.attributes() for o in objects}
        self._motion_cache: dict[int, set[str]] = {}
        self._relation_cache: dict[tuple[int, str, int], bool] = {}

    @property
    def ids(self) -> list[int]:
        return sorted(self.objects)

    def matches(self, obj_id: int, attributes: dict[str, str]) -> bool:
        own = self._attributes[obj_id]
        return all(own[name] == value for name, value in attributes.items())

    def motion_labels(self, obj_id: int) -> set[str]:
        """The motion words true of an object: a direction, "still", "appearing", "leaving"."""
        if obj_id not in self._motion_cache:
            self._motion_cache[obj_id] = self._motion_labels(obj_id)
        return self._motion_cache[obj_id]

    def _motion_labels(self, obj_id: int) -> set[str]:
        seen = self.in_view[obj_id]
        labels: set[str] = set()
        if not seen.any():
            return labels
        if not seen[0] and seen[-1]:
            labels.add("appearing")
        if seen[0] and not seen[-1]:
            labels.add("leaving")
        centres = self.objects[obj_id].centres[seen].astype(np.float64)
        dx, dy = centres[-1] - centres[0]
        if seen.all() and np.all(centres == centres[0]):
            labels.add("still")
        if abs(dx) >= self.min_travel and abs(dy) <= 0.25 * abs(dx):
            labels.add("right" if dx > 0 else "left")
        if abs(dy) >= self.min_travel and abs(dx) <= 0.25 * abs(dy):
            labels.add("down" if dy > 0 else "up")
        return labels

    def relation_holds(self, obj_id: int, relation: str, landmark_id: int) -> bool:
        """`obj relation landmark` at every frame both are in view (and they share enough frames).

        "left of" means the centre is left of the landmark's centre by more than the larger half-extent,
        so the relation is clear to a viewer, not a matter of a pixel.
        """
        key = (obj_id, relation, landmark_id)
        if key not in self._relation_cache:
            self._relation_cache[key] = self._relation_holds(obj_id, relation, landmark_id)
        return self._relation_cache[key]

    def _relation_holds(self, obj_id: int, relation: str, landmark_id: int) -> bool:
        if obj_id == landmark_id:
            return False
        both = self.in_view[obj_id] & self.in_view[landmark_id]
        if both.sum() < MIN_SHARED_FRAMES_FRACTION * len(both):
            return False
        a, b = self.objects[obj_id], self.objects[landmark_id]
        margin = max(a.radius, b.radius)
        pa, pb = a.centres[both], b.centres[both]
        if relation == "left of":
            return bool(np.all(pa[:, 0] + margin < pb[:, 0]))
        if relation == "right of":
            return bool(np.all(pa[:, 0] > pb[:, 0] + margin))
        if relation == "above":
            return bool(np.all(pa[:, 1] + margin < pb[:, 1]))
        if relation == "below":
            return bool(np.all(pa[:, 1] > pb[:, 1] + margin))
        raise ValueError(f"unknown relation {relation!r}")
