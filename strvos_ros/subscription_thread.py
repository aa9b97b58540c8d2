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
rclpy's own `wait_for_message` uses the same wait-set / take calls.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.context import Context
from rclpy.event_handler import EventHandler
from rclpy.guard_condition import GuardCondition
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.subscription import Subscription

WAIT_NS = 500_000_000  # longest wait without news: a context shut down under the thread is noticed within it


class ThreadTakenGroup(ReentrantCallbackGroup):
    """Callback group the executor never waits on or runs: its subscriptions and their event handlers are
    served by a SubscriptionThread."""

    def can_execute(self, entity: Any) -> bool:
        return False

    def beginning_execution(self, entity: Any) -> bool:
        return False


class SubscriptionThread:
    """Waits on a fixed set of subscriptions and calls ``callback(message, message_info)`` for each message
    taken, on one thread, in arrival order per subscription. An exception in a callback goes to ``on_error``
    and the thread goes on (one bad message must not silence the camera)."""

    def __init__(self, context: Context, name: str, on_error: Callable[[BaseException], None]) -> None:
        self._context = context
        self._name = name
        self._on_error = on_error
        self._entries: list[tuple[Subscription, Callable[[Any, dict], None]]] = []
        self._events: list[EventHandler] = []
        self._stop = threading.Event()
        self._wake = GuardCondition(None, None, context=context)  # not the node's: the executor ignores it
        self._thread: threading.Thread | None = None

    def add(self, subscription: Subscription, callback: Callable[[Any, dict], None]) -> None:
        if self._thread is not None:
            raise RuntimeError("add subscriptions before start()")
        self._entries.append((subscription, callback))
        self._events.extend(subscription.event_handlers)

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
            with self._context.handle:
                wait_set = _rclpy.WaitSet(len(self._entries), 1, 0, 0, 0, len(self._events), self._context.handle)
            while not self._stop.is_set() and self._context.ok():
                self._wait_and_take(wait_set)
        except Exception as exc:  # the wait itself failed: unless shutting down, say so (the thread ends)
            if not self._stop.is_set() and self._context.ok():
                self._on_error(exc)

    def _wait_and_take(self, wait_set: Any) -> None:
        with ExitStack() as stack:  # entered handles cannot be destroyed while waited on / taken from
            handles = [subscription.handle for subscription, _ in self._entries]
            for handle in (self._context.handle, *handles, self._wake.handle, *self._events):
                stack.enter_context(handle)
            wait_set.clear_entities()
            for handle in handles:
                wait_set.add_subscription(handle)
            wait_set.add_guard_condition(self._wake.handle)
            for event in self._events:
                event.add_to_wait_set(wait_set)
            wait_set.wait(WAIT_NS)  # releases the GIL
            if self._stop.is_set():
                return
            for event in self._events:
                if event.is_ready(wait_set):
                    data = event.take_data()
                    if data:
                        try:
                            event.callback(data)
                        except Exception as exc:
                            self._on_error(exc)
            ready = wait_set.get_ready_entities("subscription")
            for handle, (subscription, callback) in zip(handles, self._entries, strict=True):
                if handle.pointer in ready:
                    taken = handle.take_message(subscription.msg_type, subscription.raw)
                    if taken is not None:
                        try:
                            callback(*taken)
                        except Exception as exc:
                            self._on_error(exc)
