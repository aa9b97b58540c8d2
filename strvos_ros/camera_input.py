"""The camera side of strvos_node: colour (+ depth + both CameraInfos) subscriptions, matched by stamp, the
newest match handed to the worker thread.

The camera topics are created by the node (remappings, QoS overrides and graph introspection as usual) but
waited on and taken by a thread of their own (subscription_thread.py), which only checks messages on receipt
(a malformed one must never displace a good frame waiting for the worker), matches them
(realtime.sync.ApproximateTimeMatcher) and puts the match in a keep-newest slot (older ones are dropped and
counted): the worker is never more than one frame plus one inference behind the camera.
"""
from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from strvos_core.realtime.encodings import check_layout
from strvos_core.realtime.latest_slot import LatestSlot
from strvos_core.realtime.sync import ApproximateTimeMatcher
from strvos_ros import cdr, conversions
from strvos_ros.health import NodeHealth
from strvos_ros.parameters import Settings
from strvos_ros.subscription_thread import SubscriptionThread, ThreadTakenGroup

IDLE_WAIT_S = 0.5  # longest worker sleep without news (stop() wakes it anyway)


@dataclass
class Job:
    """One matched camera frame waiting for inference."""

    header: Header
    image: Image | CompressedImage | cdr.RawImage
    received: float                      # time.monotonic() at receipt
    depth: Image | cdr.RawImage | None = None
    color_info: CameraInfo | None = None
    depth_info: CameraInfo | None = None
    submitted: float = 0.0               # time.monotonic() when matched and handed to the worker
    received_ns: int = 0                 # system time (ns) the middleware received the colour image


class CameraInput:
    def __init__(self, node, health: NodeHealth, on_time_jump: Callable[[], None]) -> None:
        self._node = node
        self._health = health
        self._on_time_jump = on_time_jump
        self._group = ThreadTakenGroup()  # the executor leaves these subscriptions to self._thread
        self._thread: SubscriptionThread | None = None
        self._subscriptions: list = []
        self._slot = LatestSlot()
        self._sync_lock = threading.Lock()
        self._matcher: ApproximateTimeMatcher | None = None
        self.topics: list[str] = []
        self.last_image: float | None = None  # monotonic time of the last good colour image

    # ------------------------------------------------------------------ start / stop (lifecycle thread)
    def start(self, settings: Settings) -> None:
        secondaries = ["depth", "depth_info", "color_info"] if settings.use_depth else []
        self._matcher = ApproximateTimeMatcher(secondaries, settings.sync_tolerance, settings.sync_max_wait)
        reliability = (ReliabilityPolicy.RELIABLE if settings.input_reliability == "reliable"
                       else ReliabilityPolicy.BEST_EFFORT)
        qos = QoSProfile(depth=settings.input_depth, reliability=reliability, history=HistoryPolicy.KEEP_LAST)
        self._thread = SubscriptionThread(self._node.context, "strvos-camera", self._thread_error)
        if settings.compressed_input:
            self._subscribe(CompressedImage, "image/compressed", self._on_image, qos, "image")
        else:
            self._subscribe(Image, "image", self._on_image, qos, "image", raw_as="colour image")
        if settings.use_depth:
            self._subscribe(Image, "depth", self._on_depth, qos, "depth", raw_as="depth image")
            self._subscribe(CameraInfo, "camera_info", lambda m: self._on_secondary("color_info", m), qos,
                            "color_info")
            self._subscribe(CameraInfo, "depth_camera_info", lambda m: self._on_secondary("depth_info", m), qos,
                            "depth_info")
        self.topics = [subscription.topic_name for subscription in self._subscriptions]
        self.last_image = None
        self._slot.reopen()
        self._thread.start()

    def stop(self, join_timeout: float) -> None:
        """Stop the camera thread and destroy the subscriptions; the worker's take() returns None from now on."""
        self._slot.close()
        if self._thread is not None:  # before its subscriptions are destroyed
            self._thread.stop(min(join_timeout, 2.0))
            self._thread = None
        if self._node.context.ok():
            for subscription in self._subscriptions:
                self._node.destroy_subscription(subscription)
        self._subscriptions = []

    def clear(self) -> None:
        self._slot.clear()

    @property
    def dropped(self) -> int:
        """Frames dropped before the worker: replaced in the slot, or never matched."""
        with self._sync_lock:
            unmatched = self._matcher.dropped_primary if self._matcher else 0
        return self._slot.dropped + unmatched

    def _subscribe(self, msg_type, topic: str, callback, qos, stage: str, raw_as: str | None = None) -> None:
        """raw_as: take the CDR bytes (no Python message built by rclpy) and parse them with cdr.parse_image;
        unreadable bytes are bad input of that kind. Every callback is timed (stage.<stage>_*)."""
        health = self._health

        def timed(msg, info):
            started = time.thread_time()
            try:
                if raw_as is not None:
                    try:
                        msg = cdr.parse_image(msg, raw_as)
                    except ValueError as exc:
                        health.bad_input(raw_as, str(exc))
                        return
                self._record_arrival(stage, info)
                if stage == "image":
                    callback(msg, info.get("received_timestamp") or time.time_ns())
                else:
                    callback(msg)
            finally:
                health.add_cpu("callbacks", time.thread_time() - started)

        subscription = self._node.create_subscription(
            msg_type, topic, timed, qos, callback_group=self._group, event_callbacks=health.subscription_events(topic),
            qos_overriding_options=QoSOverridingOptions.with_default_policies(), raw=raw_as is not None)
        self._subscriptions.append(subscription)
        self._thread.add(subscription, timed)

    def _thread_error(self, exc: BaseException) -> None:
        """An exception in a camera callback (each callback already counts bad input itself): count and warn."""
        self._health.count("callback_errors")
        self._health.warn("camera_thread", f"camera callback failed: {exc!r}\n"
                          + "".join(traceback.format_exception(exc, limit=3)))

    def _record_arrival(self, stage: str, info) -> None:
        """DDS transport (publish -> received by the middleware) and dispatch (received -> this callback: the
        camera thread's wake-up, taking and converting the message) of one message; system-clock nanoseconds."""
        now = time.time_ns()
        source, received = info.get("source_timestamp", 0), info.get("received_timestamp", 0)
        if source > 0 and received >= source:
            self._health.stages.add(f"{stage}_transport", (received - source) * 1e-9)
            self._health.stages.add(f"{stage}_dispatch", max(now - received, 0) * 1e-9)

    # ------------------------------------------------------------------ callbacks (camera thread)
    def _on_image(self, msg: Image | CompressedImage | cdr.RawImage, received_ns: int) -> None:
        now = time.monotonic()
        self._health.input_rate.tick(now)
        try:
            conversions.check_colour(msg)
        except ValueError as exc:
            self._health.bad_input("colour image", str(exc))
            return
        if self.last_image is None:
            size = "compressed" if isinstance(msg, CompressedImage) else f"{msg.width}x{msg.height} {msg.encoding}"
            self._node.get_logger().info(f"first image received on {self.topics[0]} ({size})")
        self.last_image = now
        stamp = conversions.stamp_seconds(msg.header)
        with self._sync_lock:
            backwards, resets = self._matcher.backwards, self._matcher.resets
            matches = self._matcher.push_primary(stamp, (msg, now, received_ns), now)
            went_back, jumped = self._matcher.backwards > backwards, self._matcher.resets > resets
            waiting = self._matcher.next_deadline() is not None
        if went_back:
            self._health.bad_input("stamp", f"colour stamp {stamp:.3f} went backwards: frame dropped")
        if jumped:
            self._health.warn("time_jump", "stamps jumped back in time (bag loop?): restarting the video state")
            self._on_time_jump()
        self._hand_over(matches)
        if waiting:
            self._slot.wake()  # the worker sleeps until this frame's sync deadline (see take)

    def _on_depth(self, msg: Image | cdr.RawImage) -> None:
        try:  # the buffer only: what the depth means (encoding, unit, size) is checked with its frame
            check_layout(msg.height, msg.width, msg.step, msg.encoding, len(msg.data))
        except ValueError as exc:
            self._health.bad_input("depth image", str(exc))
            return
        self._on_secondary("depth", msg)

    def _on_secondary(self, name: str, msg) -> None:
        now = time.monotonic()
        with self._sync_lock:
            backwards = self._matcher.backwards
            matches = self._matcher.push(name, conversions.stamp_seconds(msg.header), msg, now)
            went_back = self._matcher.backwards > backwards
        if went_back:
            self._health.bad_input("stamp", f"{name} stamp went backwards: message dropped")
        self._hand_over(matches)

    def _hand_over(self, matches) -> None:
        for match in matches:
            msg, received, received_ns = match.primary
            now = time.monotonic()
            job = Job(msg.header, msg, received, match.secondaries.get("depth"),
                      match.secondaries.get("color_info"), match.secondaries.get("depth_info"), now, received_ns)
            self._health.stages.add("sync_wait", now - received)
            if self._slot.put(job):
                self._health.count("dropped_frames")

    # ------------------------------------------------------------------ the worker's side
    def take(self) -> Job | None:
        """The newest matched frame, waiting at most until the oldest colour frame's depth wait expires (then
        that frame goes on without depth) or IDLE_WAIT_S; None when nothing came (or after stop)."""
        now = time.monotonic()
        with self._sync_lock:
            if self._matcher is None:
                matches, deadline = [], None
            else:
                matches, deadline = self._matcher.poll(now), self._matcher.next_deadline()
        self._hand_over(matches)
        timeout = IDLE_WAIT_S if deadline is None else min(max(deadline - now, 0.0), IDLE_WAIT_S)
        return self._slot.take(timeout=timeout)
