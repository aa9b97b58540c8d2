"""A one-item hand-over between a producer (subscription callbacks) and a consumer (the inference thread).

Only the newest item is kept: putting a new one replaces an unconsumed older one, which is counted as
dropped. So the consumer is never more than one item (plus the one it is working on) behind the camera.
"""
from __future__ import annotations

import threading
from typing import Any


class LatestSlot:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: Any = None
        self._full = False
        self._closed = False
        self._woken = False
        self.dropped = 0
        self.accepted = 0

    def put(self, item: Any) -> bool:
        """Store ``item``; returns True when it replaced an unconsumed (now dropped) item."""
        with self._condition:
            replaced = self._full
            self.dropped += int(replaced)
            self.accepted += 1
            self._item, self._full = item, True
            self._condition.notify()
            return replaced

    def take(self, timeout: float | None = None) -> Any:
        """The newest item (waiting up to ``timeout`` s), or None on timeout, wake() or after close()."""
        with self._condition:
            self._condition.wait_for(lambda: self._full or self._closed or self._woken, timeout)
            self._woken = False
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def wake(self) -> None:
        """Make a waiting (or the next) take() return now, with None when no item is there: lets the
        producer tell the consumer that its reasons for waiting changed (e.g. a new deadline)."""
        with self._condition:
            self._woken = True
            self._condition.notify()

    def clear(self) -> bool:
        """Drop a waiting item (e.g. on deactivate); returns whether there was one."""
        with self._condition:
            had = self._full
            self._item, self._full = None, False
            return had

    def close(self) -> None:
        """Wake the consumer for good (take() returns None from now on unless an item is put)."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def reopen(self) -> None:
        with self._condition:
            self._closed = False
