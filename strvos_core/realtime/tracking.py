"""Per-target tracking state that planners read before trusting a mask."""
from __future__ import annotations

from enum import IntEnum


class TrackingState(IntEnum):
    """Values match strvos_ros/TargetSegmentation STATE_* constants."""

    NOT_FOUND = 0   # not found since its prompt was (re)set
    TRACKING = 1    # found in this frame: non-empty mask and score >= threshold
    LOST = 2        # tracked before, not found in this frame


class TargetTracker:
    """NOT_FOUND until the first hit after the prompt; TRACKING on a hit; LOST on a miss after a hit."""

    def __init__(self) -> None:
        self.state = TrackingState.NOT_FOUND
        self.frames_since_seen = 0

    def update(self, mask_area: int, score: float, threshold: float) -> TrackingState:
        if mask_area > 0 and score >= threshold:
            self.state, self.frames_since_seen = TrackingState.TRACKING, 0
        else:
            self.frames_since_seen += 1
            if self.state is not TrackingState.NOT_FOUND:
                self.state = TrackingState.LOST
        return self.state

    def reset(self) -> None:
        self.state, self.frames_since_seen = TrackingState.NOT_FOUND, 0
