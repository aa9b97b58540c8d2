"""The node's executor loop survives a callback that raises (rclpy's spin() re-raises it and the process ends):
found building tools/soak.py's fuzzer (issue 15). Real rclpy, a context of its own."""
from __future__ import annotations

import threading

import pytest

rclpy = pytest.importorskip("rclpy")
pytestmark = pytest.mark.ros

from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402

from strvos_ros.node import spin_guarded  # noqa: E402


def test_a_raising_callback_is_reported_and_spinning_goes_on():
    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node("spin_guarded_test", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    calls, errors, done = [], [], threading.Event()

    def tick() -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise ValueError(f"bad message {len(calls)}")
        done.set()

    node.create_timer(0.01, tick)
    spinner = threading.Thread(target=spin_guarded, args=(executor, context, errors.append), daemon=True)
    spinner.start()
    try:
        assert done.wait(10.0), "the timer stopped being served after its callback raised"
    finally:
        rclpy.try_shutdown(context=context)  # as Ctrl-C does: spin_guarded returns
        spinner.join(5.0)
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
    assert not spinner.is_alive()
    assert [str(e) for e in errors] == ["bad message 1", "bad message 2"]
