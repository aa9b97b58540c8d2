"""Project-wide test setup.

ROS network safety is applied at import time, before any test module can import rclpy: DDS discovery stays
on loopback and every test session gets its own random domain id, so parallel runs and other machines on the
network never see each other. Child processes inherit both through os.environ.
"""
from __future__ import annotations

import os
import random

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(1, 100))
os.environ.pop("ROS_STATIC_PEERS", None)
os.environ.pop("ROS_DISCOVERY_SERVER", None)
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a model hub
