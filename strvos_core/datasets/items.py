"""What a benchmark is once read: videos with their referring expressions, and where the truth comes from."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

Scoring = Literal["jf", "revos", "submission"]


@dataclass(frozen=True)
class VideoExpression:
    """One referring expression of a video: the unit that is evaluated and resumed."""

    video_id: str
    exp_id: str
    expression: str
    type_id: int | None = None  # ReVOS: 0 referring, 1 reasoning, 2 no target
    # synthetic: the expression's "kind" (appearance / relation / motion), so scores can be reported per kind
    category: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.video_id, self.exp_id)


@dataclass(frozen=True)
class Video:
    """A video's frames in streaming order (sorted names, as the reference feeds them)."""

    video_id: str
    frames: tuple[str, ...]
    frame_dir: Path
    expressions: tuple[VideoExpression, ...]
    frame_ext: str = ".jpg"
    # index of each streamed frame in the annotation's own frame list (mask_dict entries follow it)
    annotation_index: tuple[int, ...] = ()

    def frame_path(self, index: int) -> Path:
        return self.frame_dir / f"{self.frames[index]}{self.frame_ext}"


class GroundTruth(Protocol):
    """Ground truth of a video benchmark, read lazily one frame at a time."""

    def frame_mask(self, video: Video, expression: VideoExpression, index: int, size: tuple[int, int]) -> np.ndarray:
        """H x W uint8: the sum of the expression's object masks on frame `index` (the reference's union)."""
        ...

    def foreground(self, video: Video, index: int, size: tuple[int, int]) -> np.ndarray | None:
        """H x W uint8 of every annotated object (ReVOS robustness), or None when not provided."""
        ...


@dataclass
class VideoBenchmark:
    """A read benchmark: its videos, its truth (None when a server scores it) and how it is scored."""

    name: str
    split: str
    root: Path
    videos: list[Video]
    ground_truth: GroundTruth | None
    scoring: Scoring
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def expressions(self) -> list[VideoExpression]:
        return [e for v in self.videos for e in v.expressions]

    def limited(self, max_videos: int | None) -> VideoBenchmark:
        """The first `max_videos` videos (a quick look, or a smoke test)."""
        if max_videos is None:
            return self
        if max_videos < 1:
            raise ValueError(f"--limit must be >= 1, got {max_videos}")
        return VideoBenchmark(self.name, self.split, self.root, self.videos[:max_videos], self.ground_truth,
                              self.scoring, dict(self.notes))
