"""The camera side of strvos_node: colour (+ depth + both CameraInfos) subscriptions, matched by stamp, the
newest match handed to the worker thread.

The camera topics are created by the node (remappings, QoS overrides and graph introspection as usual) but
waited on and taken by a thread of their own (subscription_thread.py), which only checks messages on receipt
(a malformed one must never displace a good frame waiting for the worker), matches them
(realtime.sync.ApproximateTimeMatcher) and puts the match in a keep-newest slot (older ones are dropped and
counted): the worker is never more than one frame plus one inference behind the camera. Every camera topic is
taken as CDR bytes and parsed here, so bytes that hold no message are counted as bad input (rclpy would drop
them without a word). The camera's liveness (realtime.camera_watch: LIVE, STALE, LOST) is watched here too: a
camera that was LOST and comes back is a new stream (stamp matching and the targets' video state restart).
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

from strvos_core.realtime.camera_watch import CameraReport, CameraState, CameraWatch, Resumed
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
        self.watch = CameraWatch(timeout=1.0)  # its timeout follows the camera_timeout parameter (start, check)

    # ------------------------------------------------------------------ start / stop (lifecycle thread)
    def start(self, settings: Settings) -> None:
        secondaries = ["depth", "depth_info", "color_info"] if settings.use_depth else []
        self._matcher = ApproximateTimeMatcher(secondaries, settings.sync_tolerance, settings.sync_max_wait)
        reliability = (ReliabilityPolicy.RELIABLE if settings.input_reliability == "reliable"
                       else ReliabilityPolicy.BEST_EFFORT)
        qos = QoSProfile(depth=settings.input_depth, reliability=reliability, history=HistoryPolicy.KEEP_LAST)
        self._thread = SubscriptionThread(self._node.context, "strvos-camera", self._thread_error)
        if settings.compressed_input:
            self._subscribe(CompressedImage, "image/compressed", self._on_image, qos, "image", "colour image")
        else:
            self._subscribe(Image, "image", self._on_image, qos, "image", "colour image")
        if settings.use_depth:
            self._subscribe(Image, "depth", self._on_depth, qos, "depth", "depth image")
            self._subscribe(CameraInfo, "camera_info", lambda m: self._on_secondary("color_info", m), qos,
                            "color_info", "camera_info")
            self._subscribe(CameraInfo, "depth_camera_info", lambda m: self._on_secondary("depth_info", m), qos,
                            "depth_info", "camera_info")
        self.topics = [subscription.topic_name for subscription in self._subscriptions]
        self.last_image = None
        self.watch.timeout = settings.camera_timeout
        self.watch.reset()
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

    def _subscribe(self, msg_type, topic: str, callback, qos, stage: str, what: str) -> None:
        """Take the CDR bytes and parse them here: Images with cdr.parse_image (no Python message built by rclpy),
        the rest with rclpy's deserialiser; unreadable bytes are bad input of kind ``what``. Every callback is
        timed (stage.<stage>_*)."""
        health = self._health
        if msg_type is Image:
            def parse(data):
                return cdr.parse_image(data, what)
        else:
            def parse(data):
                return cdr.parse_message(data, msg_type, what)

        def timed(msg, info):
            started = time.thread_time()
            try:
                try:
                    msg = parse(msg)
                except ValueError as exc:
                    health.bad_input(what, str(exc))
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
            qos_overriding_options=QoSOverridingOptions.with_default_policies(), raw=True)
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
        try:
            stamp = conversions.stamp_seconds(msg.header)
        except ValueError as exc:
            self._health.bad_input("stamp", f"colour image: {exc}")
            return
        if self.last_image is None:
            size = "compressed" if isinstance(msg, CompressedImage) else f"{msg.width}x{msg.height} {msg.encoding}"
            self._node.get_logger().info(f"first image received on {self.topics[0]} ({size})")
        self.last_image = now
        resumed = self.watch.image(now)
        if resumed is not None:
            self._camera_back(resumed)
        with self._sync_lock:
            backwards, resets = self._matcher.backwards, self._matcher.resets
            matches = self._matcher.push_primary(stamp, (msg, now, received_ns), now)
            went_back, jumped = self._matcher.backwards > backwards, self._matcher.resets > resets
            waiting = self._matcher.next_deadline() is not None
        if went_back:
            self._health.bad_input("stamp", f"colour stamp {stamp:.3f} went backwards: frame dropped")
        if jumped:
            self._health.count("time_jumps")
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
        try:
            stamp = conversions.stamp_seconds(msg.header)
        except ValueError as exc:
            self._health.bad_input("stamp", f"{name}: {exc}")
            return
        with self._sync_lock:
            backwards, resets = self._matcher.backwards, self._matcher.resets
            matches = self._matcher.push(name, stamp, msg, now)
            went_back, jumped = self._matcher.backwards > backwards, self._matcher.resets > resets
        if went_back:
            self._health.bad_input("stamp", f"{name} stamp went backwards: message dropped")
        if jumped:  # matching restarts; the video state follows the colour stream's own jumps only
            self._health.count("time_jumps")
            self._health.warn("time_jump", f"{name} stamps jumped back in time: stamp matching restarted")
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

    # ------------------------------------------------------------------ liveness
    def _camera_back(self, resumed: Resumed) -> None:
        """A good colour image after a gap (camera thread): a camera that was LOST is a new stream."""
        self._health.count("camera_recovered")
        topic = self.topics[0] if self.topics else "image"
        if resumed.new_stream:
            with self._sync_lock:
                self._matcher.reset()
            self._on_time_jump()
            self._node.get_logger().info(f"camera back on {topic} after {resumed.after:.1f} s without images (it "
                                         "was LOST): a new stream, stamp matching and the video state restart")
        else:
            self._node.get_logger().info(f"camera back on {topic} after {resumed.after:.1f} s without images")

    def check(self, now: float) -> CameraReport:
        """The camera's state now (executor thread: the diagnostics timer); changes are logged and counted."""
        publishers = self._subscriptions[0].get_publisher_count() if self._subscriptions else 0
        self.watch.timeout = self._node.settings.camera_timeout  # a parameter: may change at run time
        report = self.watch.check(now, publishers)
        if report.changed and report.state in (CameraState.STALE, CameraState.LOST):
            self._health.count(f"camera_{report.state.value.lower()}")
            topic = self.topics[0] if self.topics else "image"
            why = "its publisher is still there" if publishers else "no publisher is left on it"
            self._node.get_logger().warning(
                f"camera {report.state.value}: no image on {topic} for {report.image_age:.1f} s and {why}; "
                f"masks and poses are not updated until it comes back")
        return report

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
