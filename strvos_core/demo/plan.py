"""What the demo camera plays and which prompts it sends when (no ROS here)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from strvos_core.datasets.synthetic import SyntheticConfig, SyntheticVideo, generate_video


@dataclass(frozen=True)
class PromptChange:
    frame: int  # global index of the first frame played after the prompt is sent
    text: str
    obj_id: int
    video: int  # index of the clip in DemoPlan.videos


@dataclass
class DemoPlan:
    videos: list[SyntheticVideo]
    prompts: list[PromptChange]

    @property
    def num_frames(self) -> int:
        return sum(v.num_frames for v in self.videos)

    def locate(self, frame: int) -> tuple[int, int]:
        """(clip index, frame index inside the clip) of a global frame index."""
        for i, video in enumerate(self.videos):
            if frame < video.num_frames:
                return i, frame
            frame -= video.num_frames
        raise IndexError(frame)

    def prompt_at(self, frame: int) -> PromptChange:
        return [p for p in self.prompts if p.frame <= frame][-1]


def _pick_two(video: SyntheticVideo, rng: np.random.Generator):
    """Two expressions about different objects, preferring kinds that differ, for a mid-clip target change."""
    expressions = list(video.expressions)
    rng.shuffle(expressions)
    for first in expressions:
        for second in expressions:
            if second.obj_id != first.obj_id and second.kind != first.kind:
                return first, second
    for first in expressions:
        for second in expressions:
            if second.obj_id != first.obj_id:
                return first, second
    return None


def make_plan(seed: int = 0, clips: int = 3, frames_per_clip: int = 40, width: int = 320,
              height: int = 240) -> DemoPlan:
    """`clips` synthetic videos; in each, one target for the first half and another for the second half."""
    if clips < 1 or frames_per_clip < 8:
        raise ValueError(f"need clips >= 1 and frames_per_clip >= 8, got {clips}, {frames_per_clip}")
    config = SyntheticConfig(width=width, height=height, num_frames=frames_per_clip, min_objects=3)
    rng = np.random.default_rng(seed)
    videos: list[SyntheticVideo] = []
    prompts: list[PromptChange] = []
    candidate = seed * 1000
    start = 0
    while len(videos) < clips:
        video = generate_video(candidate, config)
        candidate += 1
        pair = _pick_two(video, rng)
        if pair is None:
            continue  # a scene with a single referable object: no target change possible
        first, second = pair
        index = len(videos)
        prompts.append(PromptChange(start, first.text, first.obj_id, index))
        prompts.append(PromptChange(start + frames_per_clip // 2, second.text, second.obj_id, index))
        videos.append(video)
        start += frames_per_clip
    return DemoPlan(videos, prompts)
