"""Camera subscriptions served by a thread of their own instead of the rclpy executor.

Why: rclpy's executor rebuilds its wait set from every entity of the node (~35 here: 12 parameter and
lifecycle services, 16 QoS event handlers, the timer, the subscriptions) each time it wakes, in Python, and it
wakes about twice per message (the message, then its own guard condition after the callback). For a camera
image that was ~0.3 ms of Python before the callback and ~0.6 ms after it, holding the GIL while the worker
thread wanted it for the frame just handed over. This thread waits on the camera subscriptions and a stop
guard only, in one wait set made once, and calls the same callbacks. The subscriptions are still created by
the node (`Node.create_subscription`: remappings, QoS overrides, lifecycle and graph introspection unchanged);
their callback group tells the executor to leave them alone. Their QoS event handlers (incompatible QoS: warned
and counted) are served here too: with Fast DDS a subscription's event wakes every wait set it is in whenever
a message arrives, so left on the executor they woke it ~1 extra time per image (measured: 3.1 instead of 2.1
wait-set rebuilds per image, and the camera thread waited for the GIL: p90 3.4-4.7 ms received -> callback).
rclpy's own `wait_for_message` uses the same wait-set / take calls; they are not rclpy's public API and live
in rclpy_private.py, with the test that fails when the pinned rclpy changes.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rclpy.context import Context
from rclpy.guard_condition import GuardCondition
from rclpy.subscription import Subscription

from strvos_ros.rclpy_private import TakeWaitSet, ThreadTakenGroup

WAIT_NS = 500_000_000  # longest wait without news: a context shut down under the thread is noticed within it
RETRY_S = 0.05  # pause after a failed wait before the next

__all__ = ["SubscriptionThread", "ThreadTakenGroup"]


class SubscriptionThread:
    """Waits on a fixed set of subscriptions and calls ``callback(message, message_info)`` for each message
    taken, on one thread, in arrival order per subscription. An exception in a callback, a take or a wait goes to
    ``on_error`` and the thread goes on (one bad message must not silence the camera)."""

    def __init__(self, context: Context, name: str, on_error: Callable[[BaseException], None]) -> None:
        self._context = context
        self._name = name
        self._on_error = on_error
        self._entries: list[tuple[Subscription, Callable[[Any, dict], None]]] = []
        self._stop = threading.Event()
        self._wake = GuardCondition(None, None, context=context)  # not the node's: the executor ignores it
        self._thread: threading.Thread | None = None

    def add(self, subscription: Subscription, callback: Callable[[Any, dict], None]) -> None:
        if self._thread is not None:
            raise RuntimeError("add subscriptions before start()")
        self._entries.append((subscription, callback))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and join (the subscriptions may be destroyed afterwards); idempotent."""
        self._stop.set()
        if self._thread is not None:
            try:
                self._wake.trigger()
            except Exception:  # the context is already gone (process exit): the wait times out instead
                pass
            if self._thread is not threading.current_thread():
                self._thread.join(timeout)
            self._thread = None
        try:
            self._wake.destroy()
        except Exception:  # already destroyed with its context
            pass

    def _run(self) -> None:
        try:
            wait_set = TakeWaitSet(self._context, [subscription for subscription, _ in self._entries], self._wake)
        except Exception as exc:  # cannot wait at all (the context is going away): say so, unless stopping
            if not self._stop.is_set() and self._context.ok():
                self._on_error(exc)
            return
        while not self._stop.is_set() and self._context.ok():
            try:
                messages, events = wait_set.wait(WAIT_NS)  # releases the GIL while waiting
            except Exception as exc:  # a wait or a take failed: say so and go on (the camera must not go silent)
                if self._stop.is_set() or not self._context.ok():
                    return
                self._on_error(exc)
                self._stop.wait(RETRY_S)  # no busy loop if it keeps failing
                continue
            if self._stop.is_set():
                return
            for event, data in events:
                self._call(event.callback, data)
            for index, message, info in messages:
                self._call(self._entries[index][1], message, info)

    def _call(self, callback: Callable, *args: Any) -> None:
        try:
            callback(*args)
        except Exception as exc:
            self._on_error(exc)
