"""Second process of the round-trip test: republishes every strvos_ros message it receives on <topic>_echo."""
from __future__ import annotations

import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from strvos_ros.msg import PromptStatus, SegmentationArray, TargetCommand

TYPES = {"segmentation": SegmentationArray, "command": TargetCommand, "status": PromptStatus}


def main(timeout: float) -> int:
    rclpy.init()
    node = rclpy.create_node("strvos_msg_echo")
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
    pubs = {name: node.create_publisher(cls, f"/strvos_test/{name}_echo", qos) for name, cls in TYPES.items()}
    for name, cls in TYPES.items():
        node.create_subscription(cls, f"/strvos_test/{name}", pubs[name].publish, qos)
    print("echo ready", flush=True)
    end = time.monotonic() + timeout
    try:
        while rclpy.ok() and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass  # the test stops us with SIGINT once it has its echoes
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1])))
