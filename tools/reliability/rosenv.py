"""ROS network safety for every process the reliability tools start (set before rclpy is imported): DDS
discovery on loopback only, a random domain id per run, no static peers or discovery server."""
from __future__ import annotations

import os
import random


def isolate(domain_id: int | None = None) -> int:
    """Set the variables in os.environ (children inherit them); returns the domain id."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    if domain_id is None:
        domain_id = int(os.environ.get("STRVOS_SOAK_DOMAIN_ID") or random.SystemRandom().randint(1, 100))
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    os.environ.pop("ROS_STATIC_PEERS", None)
    os.environ.pop("ROS_DISCOVERY_SERVER", None)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return domain_id


isolate(int(os.environ["ROS_DOMAIN_ID"]) if os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST"
        and os.environ.get("ROS_DOMAIN_ID") else None)
