"""Streaming sessions: a set of named targets (expressions) segmented frame by frame.

The temporal state of a target is one tensor on the model's device (the last [SEG] hidden state, or None); the
only host transfer per frame and target is the output mask. Per-frame image work (ViT tiles, SAM 2 image encoder)
runs once per frame and is shared by all targets; the LLM and the SAM 2 decoder run per target.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from strvos_core.errors import StrvosError
from strvos_core.processing.image import as_rgb_frame
from strvos_core.processing.prompt import clean_expression

STAGES = ("preprocess", "vision", "llm", "sam2", "total")


@dataclass
class TargetResult:
    target_id: str
    expression: str
    mask: np.ndarray  # bool HxW at the frame's size
    score: float  # in [0, 1]; see modeling/streamingrvos.py for the definition
    has_seg: bool
    text: str
    # models with grounding.attention_click: where the [SEG] token looked (its attention over the square image-token
    # grid, [side, side], sums to 1) and the click SAM 2 got there, in frame pixels (x, y); None otherwise
    attention: np.ndarray | None = None
    click: tuple[float, float] | None = None


@dataclass
class StepResult:
    frame_index: int
    targets: dict[str, TargetResult]
    timings: dict[str, float] = field(default_factory=dict)


def normalise_targets(targets: dict[str, str] | list[str] | str | None) -> dict[str, str]:
    """A dict, a list (ids "0", "1", ...) or one expression (id "0") -> {target_id: expression}."""
    if targets is None:
        return {}
    if isinstance(targets, str):
        targets = [targets]
    if isinstance(targets, (list, tuple)):
        targets = {str(i): expression for i, expression in enumerate(targets)}
    if not isinstance(targets, dict):
        raise StrvosError(f"targets must be a dict, a list or a string, got {type(targets).__name__}")
    out = {}
    for target_id, expression in targets.items():
        if not isinstance(target_id, str) or not target_id:
            raise StrvosError(f"target id must be a non-empty string, got {target_id!r}")
        out[target_id] = clean_expression(expression)
    return out


class Session:
    """Target bookkeeping shared by every backend's session; subclasses implement `_run(frame)`."""

    def __init__(self, targets: dict[str, str] | list[str] | str | None = None) -> None:
        self._targets: dict[str, str] = {}
        self._lock = threading.RLock()
        self.frame_index = -1
        for target_id, expression in normalise_targets(targets).items():
            self.add_target(target_id, expression)

    @property
    def targets(self) -> dict[str, str]:
        return dict(self._targets)

    def add_target(self, target_id: str, expression: str) -> None:
        """Add a target, or replace its expression (its temporal state restarts)."""
        (target_id, expression), = normalise_targets({target_id: expression}).items()
        with self._lock:
            self._targets[target_id] = expression
            self._forget(target_id)

    def remove_target(self, target_id: str) -> None:
        with self._lock:
            if target_id not in self._targets:
                raise StrvosError(f"no target {target_id!r}; targets are {sorted(self._targets)}")
            del self._targets[target_id]
            self._forget(target_id)

    def clear(self) -> None:
        with self._lock:
            for target_id in list(self._targets):
                self.remove_target(target_id)

    def reset(self) -> None:
        """Forget all temporal state (targets stay)."""
        with self._lock:
            for target_id in self._targets:
                self._forget(target_id)
            self.frame_index = -1

    def step(self, frame: np.ndarray, color_order: str = "rgb") -> StepResult:
        """Segment every target in one frame (HxWx3 uint8 RGB; see processing.image.as_rgb_frame)."""
        rgb = as_rgb_frame(frame, color_order)
        with self._lock:
            start = time.perf_counter()
            self.frame_index += 1
            timings = dict.fromkeys(STAGES, 0.0)
            results = self._run(rgb, timings)
            timings["total"] = time.perf_counter() - start
            return StepResult(self.frame_index, results, timings)

    # -- for subclasses -------------------------------------------------------------------------------------
    def _forget(self, target_id: str) -> None:
        """Drop the temporal state of one target."""

    def _run(self, frame: np.ndarray, timings: dict[str, float]) -> dict[str, TargetResult]:
        raise NotImplementedError


class StreamingSession(Session):
    """StreamingRVOS: per target, the previous frame's [SEG] hidden state is the memory; a model with
    `vision.motion_input` also reads the previous frame's tiles (one per session, shared by the targets).

    use_state=False is the ablation without that memory: no state and no previous frame is kept, so every frame
    is segmented exactly as a first frame is (what the streaming memory is worth).
    """

    def __init__(self, model, targets=None, max_new_tokens: int | None = None, use_state: bool = True) -> None:
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.use_state = use_state
        self._states: dict[str, torch.Tensor | None] = {}
        self._previous: torch.Tensor | None = None  # the last frame's tiles (motion input), None before the first
        super().__init__(targets)

    def state(self, target_id: str) -> torch.Tensor | None:
        """The [1, C] time-context vector the next frame will use for this target (None: the learned token)."""
        return self._states.get(target_id)

    def _forget(self, target_id: str) -> None:
        self._states.pop(target_id, None)

    def reset(self) -> None:
        with self._lock:
            self._previous = None
            super().reset()

    def _run(self, frame: np.ndarray, timings: dict[str, float]) -> dict[str, TargetResult]:
        results: dict[str, TargetResult] = {}
        if not self._targets:
            self._previous = None  # the frame was not encoded: the next one has no previous frame
            return results
        features = self.model.encode_frame(frame, timings, self._previous)
        if self.use_state and self.model.uses_previous_frame:
            self._previous = features.tiles
        for target_id, expression in self._targets.items():
            out = self.model.segment(features, expression, self._states.get(target_id), self.max_new_tokens)
            if self.use_state:
                self._states[target_id] = out.state
            for stage, seconds in out.timings.items():
                timings[stage] += seconds
            results[target_id] = TargetResult(target_id, expression, out.mask, out.score, out.has_seg, out.text,
                                              out.attention, out.click)
        return results
