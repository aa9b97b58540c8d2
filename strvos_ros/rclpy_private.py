"""Every rclpy API strvos uses that is not rclpy's public interface, in one place, for one pinned rclpy.

The camera thread (subscription_thread.py) waits on its subscriptions in a wait set of its own instead of the
executor's (why: see that module). rclpy has no public API for that, so this module uses, and only this module:

1. `rclpy.impl.implementation_singleton.rclpy_implementation.WaitSet` (the C extension's wait set: its
   constructor's entity counts, clear_entities, add_subscription, add_guard_condition, wait,
   get_ready_entities) - what rclpy's own `wait_for_message` uses;
2. entity handles as context managers (`context.handle`, `subscription.handle`, `GuardCondition.handle`) that
   keep an entity alive while it is waited on, and `handle.pointer` to recognise ready subscriptions;
3. `subscription.handle.take_message(msg_type, raw)` -> (message or CDR bytes, message info dict) or None;
4. `EventHandler.add_to_wait_set`, `is_ready`, `take_data` and `callback` of a subscription's QoS event
   handlers (`Subscription.event_handlers`), served on the same thread;
5. the executor skipping every entity whose callback group's `can_execute` / `beginning_execution` say no
   (ThreadTakenGroup), so the camera subscriptions are never waited on or taken by the executor.

test/ros/test_rclpy_private.py checks each of these against the installed rclpy and fails, naming this module,
when the installed version is not TESTED_RCLPY_VERSION: re-check the list above against the new rclpy's
sources (rclpy/wait_for_message.py uses 1-3; rclpy/executors.py 4-5), then update the version.
"""
from __future__ import annotations

from contextlib import ExitStack
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.context import Context
from rclpy.event_handler import EventHandler
from rclpy.guard_condition import GuardCondition
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.subscription import Subscription

TESTED_RCLPY_VERSION = "9.1.2"  # ROS 2 Kilted's rclpy, as pinned in requirements/lock.txt


def installed_rclpy_version() -> str:
    try:
        return version("rclpy")
    except PackageNotFoundError:  # a source / apt install without dist-info: the package.xml version
        import rclpy

        return getattr(rclpy, "__version__", "unknown")


class ThreadTakenGroup(ReentrantCallbackGroup):
    """Callback group the executor never waits on or runs (5.): its subscriptions and their event handlers are
    served by a TakeWaitSet on a thread of their own."""

    def can_execute(self, entity: Any) -> bool:
        return False

    def beginning_execution(self, entity: Any) -> bool:
        return False


class TakeWaitSet:
    """A wait set made once for fixed subscriptions, their QoS event handlers and one guard condition."""

    def __init__(self, context: Context, subscriptions: list[Subscription], guard: GuardCondition) -> None:
        self._context = context
        self._subscriptions = list(subscriptions)
        self._events: list[EventHandler] = [e for s in self._subscriptions for e in s.event_handlers]
        self._guard = guard
        with context.handle:
            self._wait_set = _rclpy.WaitSet(len(self._subscriptions), 1, 0, 0, 0, len(self._events), context.handle)

    def wait(self, timeout_ns: int) -> tuple[list[tuple[int, Any, dict]], list[tuple[EventHandler, Any]]]:
        """Wait up to ``timeout_ns`` (the GIL released); then take what is ready: ([(subscription index,
        message or CDR bytes, message info)], [(event handler, event data)])."""
        with ExitStack() as stack:  # entered handles cannot be destroyed while waited on / taken from
            handles = [subscription.handle for subscription in self._subscriptions]
            for handle in (self._context.handle, *handles, self._guard.handle, *self._events):
                stack.enter_context(handle)
            wait_set = self._wait_set
            wait_set.clear_entities()
            for handle in handles:
                wait_set.add_subscription(handle)
            wait_set.add_guard_condition(self._guard.handle)
            for event in self._events:
                event.add_to_wait_set(wait_set)
            wait_set.wait(timeout_ns)
            events = []
            for event in self._events:
                if event.is_ready(wait_set):
                    data = event.take_data()
                    if data:
                        events.append((event, data))
            ready = wait_set.get_ready_entities("subscription")
            messages = []
            for index, (handle, subscription) in enumerate(zip(handles, self._subscriptions, strict=True)):
                if handle.pointer in ready:
                    taken = handle.take_message(subscription.msg_type, subscription.raw)
                    if taken is not None:
                        messages.append((index, *taken))
            return messages, events
