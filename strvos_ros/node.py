"""strvos_node: a lifecycle node that segments referred targets in a camera stream with strvos_core.

Thin layer: message conversion, QoS, parameters and threads. Everything between a converted frame and its
results (the target registry, prompt checks, the model session, tracking state, depth, poses) is
strvos_core.realtime.pipeline, tested without ROS. This module wires the parts together:

  camera_input.py  camera subscriptions on a thread of their own, stamp matching, keep-newest hand-over
  (here)           lifecycle, parameters, prompts / target commands / ~/set_target answered at once,
                   the worker thread: Job -> conversions -> Pipeline.process -> outputs
  outputs.py       publishers; one FrameResult as messages (CDR bytes), ~/status answers
  health.py        counts, throttled warnings, timings, /diagnostics

Between processes on one machine, camera-sized images need a larger Fast DDS shared-memory segment than the
default 512 KB, or depth frames arrive hundreds of ms late: see config/fastdds_large_images.xml and
benchmarks/node_cpu.md.

Lifecycle: configure loads the model and creates publishers, activate subscribes and starts the worker,
deactivate stops them (and frees the model unless release_on_deactivate is false), cleanup destroys
everything. With autostart (default) the node brings itself to active. Targets survive deactivate/activate.
"""
from __future__ import annotations

import signal
import sys
import threading
import time
import traceback

import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.service import Service
from rclpy.subscription import Subscription
from std_msgs.msg import Header, String
from strvos_ros.msg import TargetCommand
from strvos_ros.srv import SetTarget

from strvos_core import backends
from strvos_core.realtime.commands import DEFAULT_TARGET, CommandAck, ResetTracking, SetPrompt
from strvos_core.realtime.compute_threads import serial_opencv, use_compute_threads
from strvos_core.realtime.memory import keep_freed_memory
from strvos_core.realtime.pipeline import CameraFrame, Pipeline
from strvos_core.realtime.prompts import PromptError, quoted
from strvos_ros import cdr, conversions, parameters
from strvos_ros.camera_input import CameraInput, Job
from strvos_ros.health import NodeHealth
from strvos_ros.outputs import Outputs

GIL_SWITCH_INTERVAL_S = 0.0001
NO_IMAGE_WARN_S = 5.0  # while active, say so when no image came for this long
PROMPT_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)


class StrvosNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("strvos_node", **kwargs)
        self.settings = parameters.declare(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.health = NodeHealth(self.get_logger(), lambda: self.settings.warn_throttle)
        self._pipeline = Pipeline(parameters.pipeline_settings(self.settings))
        self._camera = CameraInput(self, self.health, lambda: self._pipeline.submit(ResetTracking()))
        self._outputs = Outputs(self, self.health)
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        # Not self._subscriptions / self._timers / self._services: those are rclpy.Node's own lists. Sharing them
        # made the executor wait on every subscription and the timer twice (and take each message twice).
        self._io_entities: list = []  # prompt subscriptions, the service, the diagnostics timer
        self._io_group = MutuallyExclusiveCallbackGroup()
        self._timer_group = MutuallyExclusiveCallbackGroup()
        self._activated: float | None = None  # monotonic time of the last activate, while active

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
        self._outputs.create()
        self.get_logger().info(f"configured: model {self.settings.model} on {self.settings.device}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if not self._pipeline.ready:
            try:
                self._load_model()
            except Exception as exc:
                self.get_logger().error(f"activate failed: could not reload the model: {exc}")
                return TransitionCallbackReturn.FAILURE
        self._subscribe()
        self._stop.clear()
        self._worker = threading.Thread(target=self._run_worker, name="strvos-inference", daemon=True)
        self._worker.start()
        self._activated = time.monotonic()
        self.get_logger().info(
            f"active: targets {self._pipeline.active_targets or 'none yet'}; waiting for images on "
            f"{', '.join(self._camera.topics)}; prompts on /strvos/prompt, {self.get_fully_qualified_name()}/targets "
            f"and the service {self.get_fully_qualified_name()}/set_target")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_io()
        if self.settings.release_on_deactivate:
            self._pipeline.release()
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_io()
        self._pipeline.release()
        self._outputs.destroy()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.stop()
        return TransitionCallbackReturn.SUCCESS

    def stop(self, join_timeout: float = 30.0) -> None:
        """Stop threads and free the model (idempotent; also called on process exit)."""
        self._stop_io(join_timeout)
        self._pipeline.release()
        self._outputs.destroy()

    def autostart(self) -> bool:
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def _load_model(self) -> None:
        s = self.settings
        started = time.monotonic()
        self._pipeline.attach(backends.create(s.backend, model=s.model, device=s.device, dtype=s.dtype))
        self.get_logger().info(f"model {s.model} loaded in {time.monotonic() - started:.1f} s")

    def _subscribe(self) -> None:
        """What activate starts: the camera (its own thread), prompts, targets, the service, diagnostics."""
        self._camera.start(self.settings)
        overrides = QoSOverridingOptions.with_default_policies()
        for msg_type, topic, callback in ((String, "/strvos/prompt", self._on_prompt),
                                          (TargetCommand, "~/targets", self._on_target_command)):
            # Taken as bytes and parsed in the callback: bytes that hold no message are answered and counted
            # (rclpy would drop them without a word).
            self._io_entities.append(self.create_subscription(
                msg_type, topic, self._parsed(msg_type, callback), PROMPT_QOS, callback_group=self._io_group,
                event_callbacks=self.health.subscription_events(topic), qos_overriding_options=overrides, raw=True))
        self._io_entities.append(self.create_service(SetTarget, "~/set_target", self._on_set_target,
                                                     callback_group=self._io_group))
        self._io_entities.append(self.create_timer(self.settings.diagnostics_period, self._publish_diagnostics,
                                                   callback_group=self._timer_group))

    def _stop_io(self, join_timeout: float = 30.0) -> None:
        self._stop.set()
        self._activated = None
        self._camera.stop(join_timeout)
        if self.context.ok():
            for entity in self._io_entities:
                if isinstance(entity, Subscription):
                    self.destroy_subscription(entity)
                elif isinstance(entity, Service):
                    self.destroy_service(entity)
                else:
                    self.destroy_timer(entity)
        self._io_entities = []
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout=join_timeout)  # a frame in flight finishes (or is abandoned at exit)
        self._worker = None
        self._camera.clear()

    # ------------------------------------------------------------------ prompts and targets (executor thread)
    def _parsed(self, msg_type, callback):
        """A raw subscription's callback: the CDR bytes parsed into ``msg_type``, or refused on ~/status and
        counted as bad input of kind 'prompt'."""
        def on_bytes(data: bytes) -> None:
            try:
                msg = cdr.parse_message(data, msg_type, msg_type.__name__)
            except ValueError as exc:
                self.health.count("refused_prompts")
                self.health.bad_input("prompt", str(exc))
                self._outputs.status(Header(stamp=self.get_clock().now().to_msg()), self._pipeline.refuse(str(exc)))
                return
            callback(msg)
        return on_bytes

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
            self.health.count("refused_prompts")
            self.health.warn("prompt", f"prompt refused ({quoted(target_id)}): {ack.message}")
        self._outputs.status(Header(stamp=self.get_clock().now().to_msg()), ack, action, target_id, prompt)
        return ack

    # ------------------------------------------------------------------ worker thread
    def _run_worker(self) -> None:
        serial_opencv()
        threads = use_compute_threads(self.settings.threads)
        self.get_logger().info(f"inference thread: {threads} torch threads (parameter threads: "
                               f"{self.settings.threads or 'torch default'})")
        while not self._stop.is_set():
            job = self._camera.take()
            if job is None:
                continue
            started = time.monotonic()
            try:
                self._process(job)
            except Exception as exc:  # never let one frame kill the node
                if self._stop.is_set() or not self.context.ok():
                    break  # shutting down (Ctrl-C) while a frame was in flight: nothing left to publish to
                self.health.count("processing_errors")
                self.health.warn("processing", f"frame processing failed: {exc}\n{traceback.format_exc(limit=3)}")
            if self.settings.max_rate > 0:
                remaining = 1.0 / self.settings.max_rate - (time.monotonic() - started)
                if remaining > 0:
                    self._stop.wait(remaining)

    def _process(self, job: Job) -> None:
        """One frame: its messages converted, the pipeline run, its results published; every stage timed."""
        if not self._pipeline.ready:
            return
        health = self.health
        cpu_started, wall_started = time.thread_time(), time.monotonic()
        health.stages.add("slot_wait", wall_started - job.submitted)
        step_cpu = step_wall = 0.0
        try:
            laps = health.stages.timer()
            frame = self._camera_frame(job)
            if frame is None:
                return
            laps.lap("decode")
            want = self._outputs.wanted()
            result = self._pipeline.process(frame, True if want[3] else self._outputs.pose_subscribed, laps)
            step_cpu, step_wall = result.step_cpu_seconds, result.step_wall_seconds
            health.inference.add(result.step_seconds)
            for problem in result.problems:
                health.bad_input(problem.kind, problem.message)
            self._outputs.publish_frame(job.header, frame.rgb, result, laps, want, step_wall, job.received_ns)
            laps.finish()
            now = time.monotonic()
            health.latency.add(now - job.received)
            health.processed_rate.tick(now)
            health.frames += 1
        finally:
            health.add_cpu("worker", time.thread_time() - cpu_started - step_cpu)
            health.overhead.add(time.monotonic() - wall_started - step_wall)

    def _camera_frame(self, job: Job) -> CameraFrame | None:
        """The job's messages as the pipeline's input; None when the colour image is unusable (counted)."""
        try:
            rgb = conversions.rgb_from_msg(job.image)
        except ValueError as exc:
            self.health.bad_input("colour image", str(exc))
            return None
        if job.depth is None:
            if self.settings.use_depth:
                self.health.count("frames_without_depth")
            return CameraFrame(rgb)
        try:
            depth = conversions.depth_image(job.depth, job.depth_info)
        except ValueError as exc:
            self.health.bad_input("depth", str(exc))
            return CameraFrame(rgb)
        return CameraFrame(rgb, depth, conversions.intrinsics(job.color_info))

    def callback_failed(self, exc: BaseException) -> None:
        """An exception escaped an executor callback (spin_guarded): counted and logged; the node goes on."""
        self.health.count("callback_errors")
        self.health.warn("callback", f"a callback failed: {exc!r}\n" + "".join(traceback.format_exception(exc, limit=4)))

    # ------------------------------------------------------------------ diagnostics (timer, executor thread)
    def _publish_diagnostics(self) -> None:
        now, activated = time.monotonic(), self._activated
        quiet_since = self._camera.last_image if self._camera.last_image is not None else activated
        if activated is not None and now - quiet_since > NO_IMAGE_WARN_S:
            topic = self._camera.topics[0]
            self.health.warn("no_image", f"no image on {topic} for {now - quiet_since:.0f} s: waiting (is the camera "
                             f"publishing there? `ros2 topic info -v {topic}` lists its publishers and their QoS)")
        self._outputs.diagnostics(self.health.diagnostics(
            self.get_clock().now().to_msg(), self.get_fully_qualified_name(), self._camera.dropped,
            self._pipeline.targets(), self._camera.check(now)))


def spin_guarded(executor, context, on_error) -> None:
    """executor.spin(), except that an exception escaping one callback (or one take) is handed to ``on_error``
    and the node goes on: no message, request or timer can end the process (rclpy's spin() re-raises it).
    Returns when the context shuts down (Ctrl-C)."""
    while context.ok():
        try:
            executor.spin_once()
        except ExternalShutdownException:
            return
        except Exception as exc:
            if not context.ok():
                break
            on_error(exc)


def _interrupt_once(signum, frame) -> None:
    """SIGINT: ignore every later one, then interrupt the main thread (as Python's default handler does)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def main(args: list[str] | None = None) -> None:
    # A thread woken by another (the worker by a callback's hand-over) waits for the GIL until the running
    # thread drops it, by default after up to 5 ms. After the image callback the executor thread still runs
    # ~0.3-0.5 ms of its own Python (rebuilding its wait set) before it waits and drops the GIL: with 0.1 ms
    # the worker takes over sooner (slot -> worker 0.7 -> 0.3 ms measured; 0.5 ms was the previous setting).
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    keep_freed_memory()
    # Installed before rclpy's own handler, which chains to it: the first SIGINT interrupts spinning, every later
    # one is ignored from that moment. Ctrl-C reaches the whole process group and launch forwards its own SIGINT;
    # a repeat that landed between the first and the cleanup raised KeyboardInterrupt inside whatever ran then
    # (a Future's __del__ during garbage collection printed a traceback to the launch log).
    signal.signal(signal.SIGINT, _interrupt_once)
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
            spin_guarded(executor, node.context, node.callback_failed)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # shutting down for another reason: cleanup is not interrupted
        node.stop(join_timeout=2.0)  # launch escalates to SIGTERM 5 s after SIGINT
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    if exit_code:
        raise SystemExit(exit_code)
