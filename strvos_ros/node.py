"""strvos_node: a lifecycle node that segments referred targets in a camera stream with strvos_core.

Thin layer: message conversion, QoS, parameters and threads. Everything between a converted frame and its
results (the target registry, prompt checks, the model session, tracking state, depth, poses) is
strvos_core.realtime.pipeline, tested without ROS: the node converts messages, calls `Pipeline.submit` /
`Pipeline.process`, and publishes what they return.

Threads: camera topics are taken by a thread of their own (subscription_thread.py), which only checks and
matches messages (colour with depth and camera infos, by stamp) and hands the newest match to the worker thread
(older ones are dropped and counted), so the node is never more than one frame plus one inference behind the
camera. The rclpy executor serves prompts, target commands, the ~/set_target service, parameters, lifecycle and
the diagnostics timer; every prompt is answered there at once (~/status, or the service's response).

Cost: camera images are taken, and results published, as CDR bytes (strvos_ros/cdr.py: no rclpy Python
message objects per frame); outputs nobody subscribes to are not built; /diagnostics reports wall and CPU
time per stage (stage.*) and the node's own latency besides the model (stage.in_node_ms). Between processes on
one machine, camera-sized images need a larger Fast DDS shared-memory segment than the default 512 KB, or depth
frames arrive hundreds of ms late: see config/fastdds_large_images.xml and benchmarks/node_cpu.md.

Lifecycle: configure loads the model and creates publishers, activate subscribes and starts the worker,
deactivate stops them (and frees the model unless release_on_deactivate is false), cleanup destroys
everything. With autostart (default) the node brings itself to active. Targets survive deactivate/activate.
"""
from __future__ import annotations

import collections
import signal
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header, String
from strvos_ros.msg import PromptStatus, SegmentationArray, TargetCommand
from strvos_ros.srv import SetTarget
from visualization_msgs.msg import MarkerArray

from strvos_core import backends
from strvos_core.realtime.commands import DEFAULT_TARGET, CommandAck, ResetTracking, SetPrompt
from strvos_core.realtime.encodings import check_layout, mask_to_mono8
from strvos_core.realtime.latest_slot import LatestSlot
from strvos_core.realtime.masks import colour_for
from strvos_core.realtime.memory import keep_freed_memory
from strvos_core.realtime.overlay import draw_targets
from strvos_core.realtime.pipeline import CameraFrame, FrameResult, Pipeline
from strvos_core.realtime.prompts import PromptError
from strvos_core.realtime.stats import LatencyStats, RateMeter, StageStats
from strvos_core.realtime.sync import ApproximateTimeMatcher
from strvos_ros import cdr, conversions, parameters, visuals
from strvos_ros.subscription_thread import SubscriptionThread, ThreadTakenGroup

GIL_SWITCH_INTERVAL_S = 0.0001
IDLE_WAIT_S = 0.5                       # longest worker sleep without news (stop() wakes it anyway)
NO_IMAGE_WARN_S = 5.0                   # say so when no image came for this long while active


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


@dataclass
class TargetPublishers:
    """~/mask/<id> and ~/pose/<id> of one target (made on its first frame, destroyed when it goes)."""

    mask: Any = None
    pose: Any = None


class StrvosNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("strvos_node", **kwargs)
        self.settings = parameters.declare(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._pipeline = Pipeline(parameters.pipeline_settings(self.settings))
        self._target_pubs: dict[str, TargetPublishers] = {}  # worker thread only
        self._slot = LatestSlot()
        self._sync_lock = threading.Lock()
        self._matcher: ApproximateTimeMatcher | None = None
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        # Not self._subscriptions / self._timers: those are rclpy.Node's own lists. Sharing them made the executor
        # wait on every subscription and the timer twice (and take each message twice: the second take empty).
        self._io_subscriptions: list = []
        self._io_timers: list = []
        self._io_services: list = []
        self._pubs: dict[str, Any] = {}
        self._io_group = MutuallyExclusiveCallbackGroup()
        self._camera_group = ThreadTakenGroup()           # camera subscriptions: taken by self._camera_thread
        self._camera_thread: SubscriptionThread | None = None
        self._timer_group = MutuallyExclusiveCallbackGroup()
        self._counts: collections.Counter = collections.Counter()
        self._counts_lock = threading.Lock()
        self._last_warn: dict[str, float] = {}
        self._input_rate = RateMeter()
        self._processed_rate = RateMeter()
        self._latency = LatencyStats()
        self._inference = LatencyStats()
        self._overhead = LatencyStats()              # worker wall time per frame besides the model step
        self._cpu_seconds: collections.Counter = collections.Counter()  # thread CPU besides the model
        self._stages = StageStats()                  # wall / CPU per stage of a frame (see _process_frame)
        self._frames = 0
        self._step_cpu = self._step_wall = 0.0      # of the frame in flight (worker thread only)
        self._image_topic = ""
        self._activated: float | None = None         # monotonic time of the last activate, while active
        self._last_image: float | None = None        # monotonic time of the last colour image

    def _on_set_parameters(self, params):
        result = parameters.validate_and_apply(self.settings, params)
        if result.successful:
            self._pipeline.settings = parameters.pipeline_settings(self.settings)
        return result

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.settings.prompt.strip() and not self._pipeline.active_targets:
            ack = self._pipeline.submit(SetPrompt(self.settings.prompt))
            if not ack.accepted:
                self.get_logger().error(f"parameter prompt refused: {ack.message}")
        try:
            self._load_model()
        except Exception as exc:  # a bad model path, device or dtype: say so, stay unconfigured
            self.get_logger().error(f"configure failed: could not load model {self.settings.model!r}: {exc}")
            return TransitionCallbackReturn.FAILURE
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        events = self._publisher_events()
        for name, msg_type, depth in [
            ("~/mask", Image, 5), ("~/segmentation", SegmentationArray, 5), ("~/overlay", Image, 2),
            ("~/markers", MarkerArray, 5), ("~/status", PromptStatus, 100), ("/diagnostics", DiagnosticArray, 10),
        ]:
            profile = QoSProfile(depth=depth, reliability=reliable.reliability, history=reliable.history)
            self._pubs[name] = self.create_publisher(
                msg_type, name, profile, event_callbacks=events,
                qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self.get_logger().info(f"configured: model {self.settings.model} on {self.settings.device}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if not self._pipeline.ready:
            try:
                self._load_model()
            except Exception as exc:
                self.get_logger().error(f"activate failed: could not reload the model: {exc}")
                return TransitionCallbackReturn.FAILURE
        secondaries = ["depth", "depth_info", "color_info"] if self.settings.use_depth else []
        self._matcher = ApproximateTimeMatcher(secondaries, self.settings.sync_tolerance,
                                               self.settings.sync_max_wait)
        self._subscribe()
        self._io_timers.append(self.create_timer(self.settings.diagnostics_period, self._publish_diagnostics,
                                                 callback_group=self._timer_group))
        self._stop.clear()
        self._slot.reopen()
        self._worker = threading.Thread(target=self._run_worker, name="strvos-inference", daemon=True)
        self._worker.start()
        self._activated, self._last_image = time.monotonic(), None
        inputs = [subscription.topic_name for subscription in self._io_subscriptions
                  if subscription.callback_group is self._camera_group]
        self._image_topic = inputs[0]
        self.get_logger().info(f"active: targets {self._pipeline.active_targets or 'none yet'}; waiting for images "
                               f"on {', '.join(inputs)}; prompts on /strvos/prompt, "
                               f"{self.get_fully_qualified_name()}/targets and the set_target service")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_io()
        if self.settings.release_on_deactivate:
            self._release_model()
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_io()
        self._release_model()
        self._destroy_publishers()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        return TransitionCallbackReturn.SUCCESS

    def stop(self, join_timeout: float = 30.0) -> None:
        """Stop threads and free the model (idempotent; also called on process exit)."""
        self._stop_io(join_timeout)
        self._release_model()
        self._destroy_publishers()

    def autostart(self) -> bool:
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    # ------------------------------------------------------------------ model
    def _load_model(self) -> None:
        s = self.settings
        started = time.monotonic()
        self._pipeline.attach(backends.create(s.backend, model=s.model, device=s.device, dtype=s.dtype))
        self.get_logger().info(f"model {s.model} loaded in {time.monotonic() - started:.1f} s")

    def _release_model(self) -> None:
        self._pipeline.release()

    # ------------------------------------------------------------------ subscriptions
    def _subscribe(self) -> None:
        s = self.settings
        reliability = ReliabilityPolicy.RELIABLE if s.input_reliability == "reliable" else ReliabilityPolicy.BEST_EFFORT
        camera = QoSProfile(depth=s.input_depth, reliability=reliability, history=HistoryPolicy.KEEP_LAST)
        overrides = QoSOverridingOptions.with_default_policies()

        # Camera topics are waited on and taken by a thread of their own, not by the executor (see
        # subscription_thread.py); prompts, commands, services, timers and QoS events stay on the executor.
        self._camera_thread = SubscriptionThread(self.context, "strvos-camera", self._camera_thread_error)

        def sub(msg_type, topic, callback, qos, stage: str | None = None, raw_as: str | None = None):
            """raw_as: take the CDR bytes (no Python message built by rclpy) and parse them with cdr.parse_image;
            unreadable bytes are bad input of that kind. stage: a camera topic (timed; on the camera thread)."""
            events = SubscriptionEventCallbacks(incompatible_qos=lambda info, t=topic: self._qos_warning(t, info),
                                                use_default_callbacks=False)  # see _publisher_events

            def timed(msg, info):
                started = time.thread_time()
                try:
                    if raw_as is not None:
                        try:
                            msg = cdr.parse_image(msg, raw_as)
                        except ValueError as exc:
                            self._bad_input(raw_as, str(exc))
                            return
                    if stage is not None:
                        self._record_arrival(stage, info)
                    if stage == "image":
                        callback(msg, info.get("received_timestamp") or time.time_ns())
                    else:
                        callback(msg)
                finally:
                    self._add_cpu("callbacks", time.thread_time() - started)

            subscription = self.create_subscription(
                msg_type, topic, timed, qos, callback_group=self._io_group if stage is None else self._camera_group,
                event_callbacks=events, qos_overriding_options=overrides, raw=raw_as is not None)
            self._io_subscriptions.append(subscription)
            if stage is not None:
                self._camera_thread.add(subscription, timed)

        if s.compressed_input:
            sub(CompressedImage, "image/compressed", self._on_image, camera, "image")
        else:
            sub(Image, "image", self._on_image, camera, "image", raw_as="colour image")
        if s.use_depth:
            sub(Image, "depth", self._on_depth, camera, "depth", raw_as="depth image")
            sub(CameraInfo, "camera_info", lambda m: self._on_secondary("color_info", m), camera, "color_info")
            sub(CameraInfo, "depth_camera_info", lambda m: self._on_secondary("depth_info", m), camera, "depth_info")
        prompts = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        sub(String, "/strvos/prompt", self._on_prompt, prompts)
        sub(TargetCommand, "~/targets", self._on_target_command, prompts)
        self._io_services.append(self.create_service(SetTarget, "~/set_target", self._on_set_target,
                                                     callback_group=self._io_group))
        self._camera_thread.start()

    def _camera_thread_error(self, exc: BaseException) -> None:
        """An exception in a camera callback (each callback already counts bad input itself): count and warn."""
        self._count("callback_errors")
        self._warn("camera_thread", f"camera callback failed: {exc!r}\n"
                   + "".join(traceback.format_exception(exc, limit=3)))

    def _record_arrival(self, stage: str, info) -> None:
        """DDS transport (publish -> received by the middleware) and dispatch (received -> this callback: the
        camera thread's wake-up, taking and converting the message) of one message; system-clock nanoseconds."""
        now = time.time_ns()
        source, received = info.get("source_timestamp", 0), info.get("received_timestamp", 0)
        if source > 0 and received >= source:
            self._stages.add(f"{stage}_transport", (received - source) * 1e-9)
            self._stages.add(f"{stage}_dispatch", max(now - received, 0) * 1e-9)

    def _stop_io(self, join_timeout: float = 30.0) -> None:
        self._stop.set()
        self._activated = None
        self._slot.close()
        if self._camera_thread is not None:  # before its subscriptions are destroyed
            self._camera_thread.stop(min(join_timeout, 2.0))
            self._camera_thread = None
        if self.context.ok():
            for subscription in self._io_subscriptions:
                self.destroy_subscription(subscription)
            for timer in self._io_timers:
                self.destroy_timer(timer)
            for service in self._io_services:
                self.destroy_service(service)
        self._io_subscriptions, self._io_timers, self._io_services = [], [], []
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=join_timeout)  # a frame in flight finishes (or is abandoned at exit)
        self._worker = None
        self._slot.clear()

    def _destroy_publishers(self) -> None:
        if not self.context.ok():
            self._pubs.clear()
            return
        for target_id in list(self._target_pubs):
            self._destroy_target_publishers(target_id)
        for publisher in self._pubs.values():
            self.destroy_publisher(publisher)
        self._pubs.clear()

    # ------------------------------------------------------------------ camera callbacks (camera thread)
    def _on_image(self, msg: Image | CompressedImage | cdr.RawImage, received_ns: int) -> None:
        now = time.monotonic()
        self._input_rate.tick(now)
        try:
            conversions.check_colour(msg)
        except ValueError as exc:
            self._bad_input("colour image", str(exc))
            return
        first, self._last_image = self._last_image is None, now
        if first:
            size = "compressed" if isinstance(msg, CompressedImage) else f"{msg.width}x{msg.height} {msg.encoding}"
            self.get_logger().info(f"first image received ({size})")
        stamp = conversions.stamp_seconds(msg.header)
        with self._sync_lock:
            backwards = self._matcher.backwards
            resets = self._matcher.resets
            matches = self._matcher.push_primary(stamp, (msg, now, received_ns), now)
            if self._matcher.backwards > backwards:
                self._bad_input("stamp", f"colour stamp {stamp:.3f} went backwards: frame dropped")
            if self._matcher.resets > resets:
                self._warn("time_jump", "stamps jumped back in time (bag loop?): restarting the video state")
                self._pipeline.submit(ResetTracking())
            waiting = self._matcher.next_deadline() is not None
        self._hand_over(matches)
        if waiting:
            self._slot.wake()  # the worker sleeps until this frame's sync deadline (see _poll_matcher)

    def _on_depth(self, msg: Image | cdr.RawImage) -> None:
        try:  # the buffer only: what the depth means (encoding, unit, size) is checked with the frame it goes with
            check_layout(msg.height, msg.width, msg.step, msg.encoding, len(msg.data))
        except ValueError as exc:
            self._bad_input("depth image", str(exc))
            return
        self._on_secondary("depth", msg)

    def _on_secondary(self, name: str, msg) -> None:
        now = time.monotonic()
        with self._sync_lock:
            backwards = self._matcher.backwards
            matches = self._matcher.push(name, conversions.stamp_seconds(msg.header), msg, now)
            if self._matcher.backwards > backwards:
                self._bad_input("stamp", f"{name} stamp went backwards: message dropped")
        self._hand_over(matches)

    def _poll_matcher(self) -> float:
        """Hand over colour frames whose depth wait timed out; returns how long the worker may sleep.

        Arriving messages complete matches themselves; this runs on the worker thread only for timeouts,
        exactly when the oldest frame's wait expires (no fixed-period timer: no latency, no idle wake-ups)."""
        now = time.monotonic()
        with self._sync_lock:
            if self._matcher is None:
                return IDLE_WAIT_S
            matches = self._matcher.poll(now)
            deadline = self._matcher.next_deadline()
        self._hand_over(matches)
        return IDLE_WAIT_S if deadline is None else min(max(deadline - now, 0.0), IDLE_WAIT_S)

    def _hand_over(self, matches) -> None:
        for match in matches:
            msg, received, received_ns = match.primary
            now = time.monotonic()
            job = Job(msg.header, msg, received, match.secondaries.get("depth"),
                      match.secondaries.get("color_info"), match.secondaries.get("depth_info"), now, received_ns)
            self._stages.add("sync_wait", now - received)
            if self._slot.put(job):
                self._count("dropped_frames")

    # ------------------------------------------------------------------ prompts and targets (executor thread)
    def _on_prompt(self, msg: String) -> None:
        self._answer(TargetCommand.ADD, DEFAULT_TARGET, msg.data)

    def _on_target_command(self, msg: TargetCommand) -> None:
        self._answer(msg.action, msg.target_id, msg.prompt)

    def _on_set_target(self, request: SetTarget.Request, response: SetTarget.Response) -> SetTarget.Response:
        ack = self._answer(request.action, request.target_id, request.prompt)
        response.accepted, response.message = ack.accepted, ack.message
        response.frame_index, response.active_targets = ack.frame_index, ack.active_targets
        return response

    def _answer(self, action: int, target_id: str, prompt: str) -> CommandAck:
        """Submit one request to the pipeline and publish its answer on ~/status at once."""
        try:
            ack = self._pipeline.submit(conversions.command(action, target_id, prompt))
        except PromptError as exc:
            ack = self._pipeline.refuse(str(exc))
        if ack.accepted:
            self.get_logger().info(ack.message)
        else:
            self._count("refused_prompts")
            self._warn("prompt", f"prompt refused ({target_id!r}): {ack.message}")
        self._publish_status(Header(stamp=self.get_clock().now().to_msg()), ack, action, target_id,
                             prompt if isinstance(prompt, str) else "")
        return ack

    def _publish_status(self, header: Header, ack: CommandAck, action: int, target_id: str, prompt: str) -> None:
        publisher = self._pubs.get("~/status")
        if publisher is None:
            return
        publisher.publish(PromptStatus(
            header=header, action=conversions.action_of(ack.command, action if 0 <= action < 256 else 0),
            target_id=ack.target_id or target_id, prompt=ack.prompt if ack.accepted else prompt[:200],
            accepted=ack.accepted, applied=ack.applied, frame_index=ack.frame_index, message=ack.message,
            active_targets=ack.active_targets))

    # ------------------------------------------------------------------ worker thread
    def _run_worker(self) -> None:
        while not self._stop.is_set():
            job = self._slot.take(timeout=self._poll_matcher())
            if job is None:
                continue
            started = time.monotonic()
            try:
                self._process(job)
            except Exception as exc:  # never let one frame kill the node
                if self._stop.is_set() or not self.context.ok():
                    break  # shutting down (Ctrl-C) while a frame was in flight: nothing left to publish to
                self._count("processing_errors")
                self._warn("processing", f"frame processing failed: {exc}\n{traceback.format_exc(limit=3)}")
            if self.settings.max_rate > 0:
                remaining = 1.0 / self.settings.max_rate - (time.monotonic() - started)
                if remaining > 0:
                    self._stop.wait(remaining)

    def _process(self, job: Job) -> None:
        if not self._pipeline.ready:
            return
        cpu_started, wall_started = time.thread_time(), time.monotonic()
        self._stages.add("slot_wait", wall_started - job.submitted)
        self._step_cpu = self._step_wall = 0.0
        try:
            self._process_frame(job)
        finally:
            self._add_cpu("worker", time.thread_time() - cpu_started - self._step_cpu)
            self._overhead.add(time.monotonic() - wall_started - self._step_wall)

    def _add_cpu(self, key: str, seconds: float) -> None:
        with self._counts_lock:
            self._cpu_seconds[key] += seconds

    def _camera_frame(self, job: Job) -> CameraFrame | None:
        """The job's messages as the pipeline's input; None when the colour image is unusable (counted)."""
        try:
            rgb = conversions.rgb_from_msg(job.image)
        except ValueError as exc:
            self._bad_input("colour image", str(exc))
            return None
        if job.depth is None:
            if self.settings.use_depth:
                self._count("frames_without_depth")
            return CameraFrame(rgb)
        try:
            depth = conversions.depth_image(job.depth, job.depth_info)
        except ValueError as exc:
            self._bad_input("depth", str(exc))
            return CameraFrame(rgb)
        return CameraFrame(rgb, depth, conversions.intrinsics(job.color_info))

    def _process_frame(self, job: Job) -> None:
        header = job.header
        laps = self._stages.timer()
        frame = self._camera_frame(job)
        if frame is None:
            return
        laps.lap("decode")
        # Outputs nobody subscribes to are neither built nor published (overlay and markers cost the most).
        listened = {name: publisher.get_subscription_count() > 0 for name, publisher in self._pubs.items()}
        want_overlay = self.settings.publish_overlay and listened["~/overlay"]
        want_markers = self.settings.publish_markers and listened["~/markers"]
        want_segmentation = listened["~/segmentation"]
        want_all_poses = want_segmentation or want_markers
        result = self._pipeline.process(frame, True if want_all_poses else self._pose_subscribed, laps)
        self._step_cpu, self._step_wall = result.step_cpu_seconds, result.step_wall_seconds
        self._inference.add(result.step_seconds)
        for problem in result.problems:
            self._bad_input(problem.kind, problem.message)
        for ack in result.applied:
            if not isinstance(ack.command, ResetTracking):
                self._publish_status(header, ack, 0, "", "")
        self._sync_target_publishers(result)
        laps.lap("messages")
        # The results go out as CDR bytes written from plain values (cdr.serialize_*): no Python message objects.
        out: list[cdr.TargetFields] = []
        markers = MarkerArray(markers=[visuals.delete_all(header)]) if want_markers else None
        default_mask = self._pubs["~/mask"] if listened["~/mask"] else None
        for target in result.targets:
            pubs = self._target_pubs[target.target_id]
            mask_pubs = [pubs.mask] + ([default_mask] if target.target_id == DEFAULT_TARGET else [])
            mask_subscribers = [pub for pub in mask_pubs if pub is not None and pub.get_subscription_count() > 0]
            seg = cdr.TargetFields(target.target_id, target.prompt, target.score, int(target.state), target.has_seg,
                                   mask_to_mono8(target.mask) if want_segmentation or mask_subscribers else None,
                                   target.area, target.bbox)
            estimate = target.pose
            if estimate is not None:
                seg.set_pose(estimate)
                pose_subscribed = pubs.pose is not None and pubs.pose.get_subscription_count() > 0
                if estimate.position_valid and (pose_subscribed or want_markers):
                    pose = conversions.pose_msg(estimate, header)
                    if pose_subscribed:
                        pubs.pose.publish(pose)
                    if want_markers:
                        markers.markers += visuals.target_markers(
                            header, target.index, target.target_id, pose, conversions.extent_msg(estimate),
                            colour_for(target.index), estimate.orientation_valid)
            out.append(seg)
            laps.lap("messages")
            if mask_subscribers:
                mask_bytes = cdr.serialize_image(header, seg.mask, "mono8")
                for publisher in mask_subscribers:
                    publisher.publish(mask_bytes)
            laps.lap("publish")
        if want_segmentation:
            self._pubs["~/segmentation"].publish(cdr.serialize_segmentation_array(header, out, result.step_seconds))
            laps.lap("publish")
        # The node's own latency: colour image received by the middleware -> results handed back to it.
        self._stages.add("in_node", (time.time_ns() - job.received_ns) * 1e-9 - self._step_wall)
        if want_overlay:
            overlay = draw_targets(frame.rgb, result.targets, result.camera_K, self.settings.overlay_alpha,
                                   self.settings.score_threshold)
            laps.lap("overlay")
            self._pubs["~/overlay"].publish(cdr.serialize_image(header, overlay, "rgb8"))
            laps.lap("publish_overlay")
        if want_markers:
            self._pubs["~/markers"].publish(markers)
            laps.lap("publish")
        laps.finish()
        now = time.monotonic()
        self._latency.add(now - job.received)
        self._processed_rate.tick(now)
        self._frames += 1

    def _pose_subscribed(self, target_id: str) -> bool:
        pubs = self._target_pubs.get(target_id)
        return pubs is not None and pubs.pose is not None and pubs.pose.get_subscription_count() > 0

    def _sync_target_publishers(self, result: FrameResult) -> None:
        """~/mask/<id> (and ~/pose/<id>) for each target of this frame; those of targets gone are destroyed."""
        ids = {target.target_id for target in result.targets}
        for target_id in [t for t in self._target_pubs if t not in ids]:
            self._destroy_target_publishers(target_id)
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
        for target_id in ids - self._target_pubs.keys():
            pubs = TargetPublishers()
            pubs.mask = self.create_publisher(Image, f"~/mask/{target_id}", qos,
                                              event_callbacks=self._publisher_events())
            if self.settings.use_depth:
                pubs.pose = self.create_publisher(PoseStamped, f"~/pose/{target_id}", qos,
                                                  event_callbacks=self._publisher_events())
            self._target_pubs[target_id] = pubs

    def _destroy_target_publishers(self, target_id: str) -> None:
        pubs = self._target_pubs.pop(target_id)
        for publisher in (pubs.mask, pubs.pose):
            if publisher is not None:
                self.destroy_publisher(publisher)

    # ------------------------------------------------------------------ outputs, warnings, diagnostics
    def _count(self, key: str, n: int = 1) -> None:
        with self._counts_lock:
            self._counts[key] += n

    def _bad_input(self, kind: str, message: str) -> None:
        self._count("bad_input")
        self._count(f"bad_input.{kind}")
        self._warn("bad:" + kind, f"bad input ({kind}): {message}")

    def _warn(self, key: str, message: str) -> None:
        """Log a warning at most once per warn_throttle seconds per kind (with the count of skipped ones)."""
        now = time.monotonic()
        with self._counts_lock:
            last = self._last_warn.get(key)
            if last is not None and now - last < self.settings.warn_throttle:
                return
            self._last_warn[key] = now
        self.get_logger().warning(message)

    def _qos_warning(self, topic: str, info) -> None:
        self._count("incompatible_qos")
        self._warn("qos:" + topic, f"a publisher on {topic} has incompatible QoS (policy "
                   f"{info.last_policy_kind}, {info.total_count} so far): check reliability/durability; "
                   "the camera subscriptions are best-effort unless input.reliability says otherwise")

    def _publisher_events(self) -> PublisherEventCallbacks:
        """Incompatible-QoS events only (warned and counted). rclpy would add a logging-only incompatible-type
        handler per publisher and subscription by default; the peer's rclpy/rclcpp logs that mismatch itself,
        and every handler is one more entity the executor rebuilds into its wait set twice per message
        (measured: 30 -> 16 handlers, ~0.05 ms less Python per wake-up)."""
        return PublisherEventCallbacks(incompatible_qos=self._publisher_qos_warning, use_default_callbacks=False)

    def _publisher_qos_warning(self, info) -> None:
        self._count("incompatible_qos")
        self._warn("qos:out", f"a subscriber of strvos_node requested incompatible QoS (policy "
                   f"{info.last_policy_kind})")

    def _publish_diagnostics(self) -> None:
        publisher = self._pubs.get("/diagnostics")
        if publisher is None:
            return
        now = time.monotonic()
        latency, inference = self._latency.summary(), self._inference.summary()
        with self._counts_lock:
            counts = dict(self._counts)
        with self._sync_lock:
            sync_dropped = self._matcher.dropped_primary if self._matcher else 0
        values = {
            "input_rate_hz": self._input_rate.rate(now),
            "processing_rate_hz": self._processed_rate.rate(now),
            "latency_mean_s": latency["mean"], "latency_p95_s": latency["p95"], "latency_max_s": latency["max"],
            "inference_mean_s": inference["mean"],
            "overhead_mean_s": self._overhead.summary()["mean"],
            "overhead_p95_s": self._overhead.summary()["p95"],
            "cpu_callbacks_s": self._cpu_seconds["callbacks"],
            "cpu_worker_besides_model_s": self._cpu_seconds["worker"],
            **{f"stage.{key}": value for key, value in self._stages.summary().items()},
            "frames_received": self._input_rate.total, "frames_processed": self._frames,
            "dropped_frames": self._slot.dropped + sync_dropped,
            **{key: value for key, value in sorted(counts.items()) if key != "dropped_frames"},
        }
        problems = []
        if self._input_rate.rate(now) == 0.0:
            problems.append("no camera frames")
            quiet_since = self._last_image if self._last_image is not None else self._activated
            if quiet_since is not None and now - quiet_since > NO_IMAGE_WARN_S:
                self._warn("no_image", f"no image on {self._image_topic} for {now - quiet_since:.0f} s: waiting "
                           f"(is the camera publishing there? `ros2 topic info -v {self._image_topic}` shows "
                           "its publishers and their QoS)")
        if counts.get("bad_input"):
            problems.append(f"{counts['bad_input']} bad inputs")
        name = self.get_fully_qualified_name()
        statuses = [visuals.pipeline_status(name, values, problems)]
        for target in self._pipeline.targets():
            statuses.append(visuals.target_status(name, target.target_id, target.prompt, target.state,
                                                  target.score, target.frames_since_seen))
        publisher.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()), status=statuses))


def main(args: list[str] | None = None) -> None:
    # A thread woken by another (the worker by a callback's hand-over) waits for the GIL until the running
    # thread drops it, by default after up to 5 ms. After the image callback the executor thread still runs
    # ~0.3-0.5 ms of its own Python (rebuilding its wait set) before it waits and drops the GIL: with 0.1 ms
    # the worker takes over sooner (slot -> worker 0.7 -> 0.3 ms measured; 0.5 ms was the previous setting).
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    keep_freed_memory()
    rclpy.init(args=args)
    node = StrvosNode()
    # One thread: the callbacks only check and queue messages (the model runs on the worker thread), so it
    # keeps up, and it spends less Python (GIL time taken from inference) per message than the thread pool
    # of MultiThreadedExecutor, which also raced lifecycle cleanup (a publisher destroyed while another
    # executor thread was adding its event handler to a wait set: InvalidHandle). rclpy's experimental
    # EventsExecutor spun at 100 % CPU without serving the lifecycle services here.
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    exit_code = 0
    try:
        if node.settings.autostart and not node.autostart():
            node.get_logger().error("autostart failed (see above); exiting")
            exit_code = 1
        else:
            executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        # Ctrl-C reaches the whole process group, and launch forwards its own SIGINT too: ignore repeats so
        # cleanup is not interrupted half-way.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        node.stop(join_timeout=2.0)  # launch escalates to SIGTERM 5 s after SIGINT
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    if exit_code:
        raise SystemExit(exit_code)
