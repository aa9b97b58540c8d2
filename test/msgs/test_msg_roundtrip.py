"""The generated strvos_ros messages survive a round trip through a second process (real rclpy, DDS)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 wheels) not installed: run scripts/setup.sh")
from msg_samples import SAMPLES  # noqa: E402
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

HERE = Path(__file__).parent


def leaf_fields(a, b, path="msg"):
    """Compares two messages field by field; returns the number of leaf fields compared."""
    if hasattr(a, "get_fields_and_field_types"):
        assert type(a) is type(b), path
        n = 0
        for name in a.get_fields_and_field_types():
            n += leaf_fields(getattr(a, name), getattr(b, name), f"{path}.{name}")
        return n
    if isinstance(a, (list, tuple)) and a and hasattr(a[0], "get_fields_and_field_types"):
        assert len(a) == len(b), path
        return sum(leaf_fields(x, y, f"{path}[{i}]") for i, (x, y) in enumerate(zip(a, b, strict=True)))
    if hasattr(a, "tobytes"):  # uint8[] arrives as array.array / numpy
        assert bytes(a) == bytes(b), path
        return 1
    if isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-6), path  # float32 fields
        return 1
    assert list(a) == list(b) if isinstance(a, (list, tuple)) else a == b, f"{path}: {a!r} != {b!r}"
    return 1


def test_every_field_round_trips_between_processes():
    peer = subprocess.Popen(
        [sys.executable, str(HERE / "echo_peer.py"), "60"],
        env={**os.environ, "PYTHONPATH": str(HERE)},
        stdout=subprocess.PIPE,
        text=True,
    )
    # A context of its own: other suites in the same pytest process (test/ros) keep rclpy's default context
    # initialised, and a second rclpy.init() on it fails ("Context.init() must only be called once").
    context = Context()
    try:
        assert peer.stdout.readline().strip() == "echo ready"
        rclpy.init(context=context)
        node = rclpy.create_node("strvos_msg_roundtrip", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
        sent = {name: make() for name, make in SAMPLES.items()}
        received: dict = {}
        pubs = {}
        for name, msg in sent.items():
            pubs[name] = node.create_publisher(type(msg), f"/strvos_test/{name}", qos)
            node.create_subscription(
                type(msg), f"/strvos_test/{name}_echo", lambda m, n=name: received.setdefault(n, m), qos
            )
        deadline = time.monotonic() + 30
        while len(received) < len(sent) and time.monotonic() < deadline:
            for name, msg in sent.items():
                if name not in received:
                    pubs[name].publish(msg)
            executor.spin_once(timeout_sec=0.2)
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
        peer.send_signal(signal.SIGINT)
        assert peer.wait(10) == 0
    assert set(received) == set(sent), f"missing echoes: {set(sent) - set(received)}"
    counts = {name: leaf_fields(sent[name], received[name]) for name in sent}
    # every leaf of the three sample messages was compared (3 targets x 36 leaves + array header etc.)
    assert counts["segmentation"] > 100 and counts["command"] == 3 and counts["status"] == 11, counts
    assert received["segmentation"] == sent["segmentation"]
