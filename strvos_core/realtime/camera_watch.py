"""Is the camera alive? From when its last good image came and whether anything still publishes it.

A robot's camera driver crashes, is restarted, or stalls on a USB reset. Planners must learn that the masks
they read are old (STALE: no image for ``timeout`` s although a publisher is there; LOST: its publisher is gone
too), and the node must pick the stream up again by itself when it comes back. A camera that was LOST and
returns is a new stream: its stamps and its video may restart, so the caller restarts stamp matching and the
targets' temporal state (``CameraWatch.image`` says so); one that was only STALE continues where it stopped.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import Enum


class CameraState(Enum):
    WAITING = "WAITING"  # no good image yet since the subscriptions were made
    LIVE = "LIVE"        # an image within the timeout
    STALE = "STALE"      # images came, none for longer than the timeout, a publisher is still there
    LOST = "LOST"        # images came, none within the timeout, and no publisher is left


@dataclass(frozen=True)
class CameraReport:
    state: CameraState
    previous: CameraState        # what the check before reported (equal when nothing changed)
    image_age: float | None      # seconds since the last good image; None before the first
    publishers: int

    @property
    def changed(self) -> bool:
        return self.state is not self.previous


@dataclass(frozen=True)
class Resumed:
    """What a good image after a gap ended (returned by `CameraWatch.image`)."""

    after: float                 # seconds since the image before it
    was: CameraState             # STALE, or LOST: a new stream (restart matching and tracking)

    @property
    def new_stream(self) -> bool:
        return self.was is CameraState.LOST


class CameraWatch:
    """Thread-safe: `image` from the thread that takes the camera, `check` from a periodic one (diagnostics)."""

    def __init__(self, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0, got {timeout}")
        self.timeout = timeout
        self._lock = threading.Lock()
        self._last: float | None = None
        self._state = CameraState.WAITING
        self._reported = CameraState.WAITING  # the state the last check returned
        # LOST at some check since the last image: a restarted driver's publisher appears before its first image
        # (the state goes LOST -> STALE), and that image still starts a new stream
        self._lost_in_gap = False
        self.stale_events = 0   # LIVE -> STALE or LOST
        self.lost_events = 0    # -> LOST
        self.recoveries = 0     # STALE or LOST -> LIVE (equals stale_events once the camera is back)

    def image(self, now: float) -> Resumed | None:
        """A good image at ``now`` (monotonic s); a Resumed when it ends a gap longer than the timeout."""
        with self._lock:
            last, state, lost = self._last, self._state, self._lost_in_gap
            self._last, self._state, self._lost_in_gap = now, CameraState.LIVE, False
            gap = last is not None and now - last > self.timeout
            if not gap and not lost:
                return None
            if state is CameraState.LIVE:  # a gap that no check saw: still a stale period
                self.stale_events += 1
            self.recoveries += 1
            return Resumed(now - last if last is not None else 0.0,
                           CameraState.LOST if lost else CameraState.STALE)

    def check(self, now: float, publishers: int) -> CameraReport:
        """The state at ``now`` given how many publishers the colour topic has; counts the changes."""
        with self._lock:
            previous, last = self._state, self._last
            age = None if last is None else max(now - last, 0.0)
            if last is None:
                state = CameraState.WAITING
            elif age <= self.timeout:
                state = CameraState.LIVE
            else:
                state = CameraState.STALE if publishers > 0 else CameraState.LOST
            if state is not previous:
                if previous is CameraState.LIVE and state in (CameraState.STALE, CameraState.LOST):
                    self.stale_events += 1
                if state is CameraState.LOST:
                    self.lost_events += 1
            if state is CameraState.LOST:
                self._lost_in_gap = True
            reported, self._state, self._reported = self._reported, state, state
            return CameraReport(state, reported, age, publishers)

    def reset(self) -> None:
        """Forget the stream (new subscriptions): WAITING until the first image."""
        with self._lock:
            self._last, self._state, self._reported = None, CameraState.WAITING, CameraState.WAITING
            self._lost_in_gap = False
