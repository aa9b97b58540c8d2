"""Approximate-time matching of a primary stream (colour images) with optional secondary streams (depth,
camera infos), by header stamp, without message_filters.

For each primary message (oldest first) every secondary stream is *decided* as soon as the best message is
known for sure: a message within ``tolerance`` whose stream has already delivered something at or after the
primary stamp (a later message can only be farther away), or the stream having moved past the primary stamp
by more than the tolerance (no match), or ``max_wait`` seconds having passed since the primary arrived, or
the stream never having delivered anything (no point waiting for a topic nobody publishes). A match is then
emitted with ``None`` for undecided-as-missing streams, so colour frames keep flowing when depth is absent.
Stamps going backwards on a stream are refused and counted; a jump back beyond ``reset_after`` seconds
(e.g. a looping bag) resets the matcher instead.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Match:
    """A primary message and its best secondary partners (None when missing)."""

    stamp: float
    primary: Any
    secondaries: dict[str, Any]
    missing: list[str] = field(default_factory=list)


@dataclass
class _Pending:
    stamp: float
    item: Any
    arrival: float


class ApproximateTimeMatcher:
    """Pairs primary messages with secondary messages whose stamps are within ``tolerance`` seconds."""

    def __init__(
        self,
        secondaries: list[str],
        tolerance: float = 0.02,
        max_wait: float = 0.1,
        queue_size: int = 10,
        reset_after: float = 3.0,
    ) -> None:
        if tolerance < 0 or max_wait < 0 or queue_size < 1:
            raise ValueError("tolerance and max_wait must be >= 0 and queue_size >= 1")
        self.tolerance, self.max_wait, self.reset_after = tolerance, max_wait, reset_after
        self._queue_size = queue_size
        self._names = list(secondaries)
        self._primary: deque[_Pending] = deque()
        self._buffers: dict[str, deque[tuple[float, Any]]] = {name: deque(maxlen=queue_size) for name in secondaries}
        self._last_stamp: dict[str, float] = {}
        self.dropped_primary = 0      # primary messages pushed out of the pending queue unmatched
        self.backwards = 0            # messages refused because their stamp went backwards
        self.resets = 0               # jumps back in time that reset the matcher

    def push_primary(self, stamp: float, item: Any, now: float) -> list[Match]:
        if not self._accept("__primary__", stamp):
            return self.poll(now)
        if len(self._primary) >= self._queue_size:
            self._primary.popleft()
            self.dropped_primary += 1
        self._primary.append(_Pending(stamp, item, now))
        return self.poll(now)

    def push(self, name: str, stamp: float, item: Any, now: float) -> list[Match]:
        if name not in self._buffers:
            raise ValueError(f"unknown stream {name!r}; expected one of {self._names}")
        if self._accept(name, stamp):
            self._buffers[name].append((stamp, item))
        return self.poll(now)

    def poll(self, now: float) -> list[Match]:
        """Emit every pending primary whose partners are decided, oldest first."""
        matches = []
        while self._primary:
            pending = self._primary[0]
            decided = {name: self._decide(name, pending, now) for name in self._names}
            if any(result is _UNDECIDED for result in decided.values()):
                break
            self._primary.popleft()
            secondaries = {name: (None if result is _MISSING else result) for name, result in decided.items()}
            missing = [name for name, result in decided.items() if result is _MISSING]
            matches.append(Match(pending.stamp, pending.item, secondaries, missing))
        return matches

    def next_deadline(self) -> float | None:
        """When the oldest waiting primary times out (same clock as ``now``), or None when none waits.

        Messages arriving decide matches on their own (push/push_primary return them); only a timeout needs
        a ``poll`` at this time, so a consumer can sleep until then instead of polling on a fixed period."""
        return self._primary[0].arrival + self.max_wait if self._primary else None

    def reset(self) -> None:
        self._primary.clear()
        for buffer in self._buffers.values():
            buffer.clear()
        self._last_stamp.clear()

    def _accept(self, name: str, stamp: float) -> bool:
        last = self._last_stamp.get(name)
        if last is not None and stamp < last:
            if last - stamp > self.reset_after:
                self.reset()
                self.resets += 1
            else:
                self.backwards += 1
                return False
        self._last_stamp[name] = stamp
        return True

    def _decide(self, name: str, pending: _Pending, now: float):
        buffer = self._buffers[name]
        if not buffer:
            return _MISSING if name not in self._last_stamp or now - pending.arrival >= self.max_wait else _UNDECIDED
        best_stamp, best_item = min(buffer, key=lambda entry: abs(entry[0] - pending.stamp))
        newest = buffer[-1][0]
        timed_out = now - pending.arrival >= self.max_wait
        if abs(best_stamp - pending.stamp) <= self.tolerance:
            return best_item if newest >= pending.stamp or timed_out else _UNDECIDED
        if newest > pending.stamp + self.tolerance or timed_out:
            return _MISSING
        return _UNDECIDED


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_UNDECIDED = _Marker("UNDECIDED")
_MISSING = _Marker("MISSING")
