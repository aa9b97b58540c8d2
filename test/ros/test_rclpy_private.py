"""The rclpy APIs that are not rclpy's public interface (strvos_ros/rclpy_private.py), checked against the installed
rclpy: a version other than the one they were written for fails loudly, and each API is exercised for real (a raw
subscription taken on a wait set of its own, its QoS event, a guard condition waking it, the executor leaving it
alone). In-process, in an rclpy context of its own."""
from __future__ import annotations

import time

import pytest

rclpy = pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from rclpy.context import Context  # noqa: E402
from rclpy.event_handler import SubscriptionEventCallbacks  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.guard_condition import GuardCondition  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rclpy.serialization import deserialize_message  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from strvos_ros import rclpy_private  # noqa: E402


def test_the_installed_rclpy_is_the_one_the_private_apis_were_checked_against():
    installed = rclpy_private.installed_rclpy_version()
    assert installed == rclpy_private.TESTED_RCLPY_VERSION, (
        f"rclpy is {installed}, but strvos_ros/rclpy_private.py was written and tested against "
        f"{rclpy_private.TESTED_RCLPY_VERSION}: re-check every API its docstring lists against the new rclpy "
        "(rclpy/wait_for_message.py, rclpy/executors.py), then update TESTED_RCLPY_VERSION")


@pytest.fixture
def node():
    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node("strvos_rclpy_private_test", context=context, namespace="/strvos_rclpy_private")
    try:
        yield node
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def wait_until(wait_set, predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages, events = wait_set.wait(100_000_000)
        if predicate(messages, events):
            return messages, events
    raise TimeoutError("nothing ready on the wait set")


def test_take_wait_set_takes_raw_messages_and_qos_events_the_executor_never_sees(node):
    group = rclpy_private.ThreadTakenGroup()
    incompatible = []
    events = SubscriptionEventCallbacks(incompatible_qos=incompatible.append, use_default_callbacks=False)
    reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    subscription = node.create_subscription(String, "topic", lambda *_: None, reliable, callback_group=group,
                                            event_callbacks=events, raw=True)
    executor = SingleThreadedExecutor(context=node.context)
    assert not executor.can_execute(subscription)
    assert not any(executor.can_execute(handler) for handler in subscription.event_handlers)
    guard = GuardCondition(None, None, context=node.context)
    wait_set = rclpy_private.TakeWaitSet(node.context, [subscription], guard)

    publisher = node.create_publisher(String, "topic", reliable)
    deadline = time.monotonic() + 10
    while not publisher.get_subscription_count():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    publisher.publish(String(data="hello"))
    messages, _ = wait_until(wait_set, lambda m, e: bool(m))
    (index, raw, info), = messages
    assert index == 0 and isinstance(raw, bytes) and deserialize_message(raw, String).data == "hello"
    assert info["received_timestamp"] >= info["source_timestamp"] > 0

    guard.trigger()  # a guard condition wakes the wait at once, with nothing taken
    started = time.monotonic()
    assert wait_set.wait(5_000_000_000) == ([], [])
    assert time.monotonic() - started < 2.0

    node.create_publisher(String, "topic", QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
    _, ready = wait_until(wait_set, lambda m, e: bool(e))
    (handler, data), = ready
    handler.callback(data)
    assert incompatible and incompatible[0].total_count >= 1
    guard.destroy()
