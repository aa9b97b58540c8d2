"""What strvos_node counts, times and warns about, and its /diagnostics message.

Bad input is never a crash: it is counted by kind (bad_input.<kind>), logged at most once per warn_throttle
seconds per kind, and reported on /diagnostics with the rates, latencies and per-stage times a user or the
benchmark (tools/benchmark_node.py reads stage.*) needs to see where the time goes, the camera's liveness
(camera_watch: LIVE / STALE / LOST, also a status of its own) and the Python heap's allocated blocks
(python_heap_blocks: what tools/soak.py watches for leaks; sys.getallocatedblocks, ~0.2 ms).
"""
from __future__ import annotations

import collections
import sys
import threading
import time
from collections.abc import Callable

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from std_msgs.msg import Header

from strvos_core.realtime.camera_watch import CameraReport, CameraState
from strvos_core.realtime.pipeline import TargetStatus
from strvos_core.realtime.stats import LatencyStats, RateMeter, StageStats
from strvos_ros import visuals


class NodeHealth:
    def __init__(self, logger, warn_throttle: Callable[[], float]) -> None:
        self._logger = logger
        self._warn_throttle = warn_throttle
        self._lock = threading.Lock()
        self.counts: collections.Counter = collections.Counter()
        self._last_warn: dict[str, float] = {}
        self.input_rate = RateMeter()
        self.processed_rate = RateMeter()
        self.latency = LatencyStats()                # colour image received -> its results published
        self.inference = LatencyStats()              # the model's step
        self.overhead = LatencyStats()               # worker wall time per frame besides the model step
        self.cpu_seconds: collections.Counter = collections.Counter()  # thread CPU besides the model
        self.stages = StageStats()                   # wall / CPU per stage of a frame
        self.frames = 0

    # ------------------------------------------------------------------ counting and warning
    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def add_cpu(self, key: str, seconds: float) -> None:
        with self._lock:
            self.cpu_seconds[key] += seconds

    def bad_input(self, kind: str, message: str) -> None:
        self.count("bad_input")
        self.count(f"bad_input.{kind}")
        self.warn("bad:" + kind, f"bad input ({kind}): {message}")

    def warn(self, key: str, message: str) -> None:
        """Log a warning at most once per warn_throttle seconds per kind."""
        now = time.monotonic()
        with self._lock:
            last = self._last_warn.get(key)
            if last is not None and now - last < self._warn_throttle():
                return
            self._last_warn[key] = now
        self._logger.warning(message)

    # ------------------------------------------------------------------ QoS events
    def subscription_events(self, topic: str) -> SubscriptionEventCallbacks:
        """Incompatible-QoS events only, warned and counted (see publisher_events)."""
        return SubscriptionEventCallbacks(incompatible_qos=lambda info: self._subscription_qos(topic, info),
                                          use_default_callbacks=False)

    def publisher_events(self) -> PublisherEventCallbacks:
        """Incompatible-QoS events only (warned and counted). rclpy would add a logging-only incompatible-type
        handler per publisher and subscription by default; the peer's rclpy/rclcpp logs that mismatch itself,
        and every handler is one more entity the executor rebuilds into its wait set twice per message
        (measured: 30 -> 16 handlers, ~0.05 ms less Python per wake-up)."""
        return PublisherEventCallbacks(incompatible_qos=self._publisher_qos, use_default_callbacks=False)

    def _subscription_qos(self, topic: str, info) -> None:
        self.count("incompatible_qos")
        self.warn("qos:" + topic, f"a publisher on {topic} has incompatible QoS (policy "
                  f"{info.last_policy_kind}, {info.total_count} so far): check reliability/durability; "
                  "the camera subscriptions are best-effort unless input.reliability says otherwise")

    def _publisher_qos(self, info) -> None:
        self.count("incompatible_qos")
        self.warn("qos:out", f"a subscriber of strvos_node requested incompatible QoS (policy "
                  f"{info.last_policy_kind})")

    # ------------------------------------------------------------------ /diagnostics
    def diagnostics(self, stamp, node_name: str, dropped: int, targets: list[TargetStatus],
                    camera: CameraReport | None = None) -> DiagnosticArray:
        now = time.monotonic()
        latency, inference, overhead = self.latency.summary(), self.inference.summary(), self.overhead.summary()
        with self._lock:
            counts, cpu = dict(self.counts), dict(self.cpu_seconds)
        values = {
            "input_rate_hz": self.input_rate.rate(now),
            "processing_rate_hz": self.processed_rate.rate(now),
            "latency_mean_s": latency["mean"], "latency_p95_s": latency["p95"], "latency_max_s": latency["max"],
            "inference_mean_s": inference["mean"],
            "overhead_mean_s": overhead["mean"], "overhead_p95_s": overhead["p95"],
            "cpu_callbacks_s": cpu.get("callbacks", 0.0),
            "cpu_worker_besides_model_s": cpu.get("worker", 0.0),
            **{f"stage.{key}": value for key, value in self.stages.summary().items()},
            "frames_received": self.input_rate.total, "frames_processed": self.frames,
            "dropped_frames": dropped,
            **{key: value for key, value in sorted(counts.items()) if key != "dropped_frames"},
            "python_heap_blocks": sys.getallocatedblocks(),
        }
        problems = []
        if camera is not None:
            values["camera_state"] = camera.state.value
            values["camera_image_age_s"] = -1.0 if camera.image_age is None else camera.image_age
            values["camera_publishers"] = camera.publishers
            if camera.state in (CameraState.STALE, CameraState.LOST):
                problems.append(f"camera {camera.state.value}")
        if self.input_rate.rate(now) == 0.0:
            problems.append("no camera frames")
        if counts.get("bad_input"):
            problems.append(f"{counts['bad_input']} bad inputs")
        statuses = [visuals.pipeline_status(node_name, values, problems)]
        if camera is not None:
            statuses.append(visuals.camera_status(node_name, camera))
        for target in targets:
            statuses.append(visuals.target_status(node_name, target.target_id, target.prompt, target.state,
                                                  target.score, target.frames_since_seen))
        return DiagnosticArray(header=Header(stamp=stamp), status=statuses)
