"""Test harness: start strvos_node (or `ros2 launch`) in its own process group, and talk to it from this process
with a real rclpy node: camera/prompt publishers, output collectors, lifecycle and parameter service calls.

ROS network safety (LOCALHOST + a random ROS_DOMAIN_ID) comes from test/conftest.py through os.environ.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, String
from strvos_ros.msg import PromptStatus, SegmentationArray, TargetCommand
from strvos_ros.srv import SetTarget

NODE = "/strvos_node"
WIDTH, HEIGHT = 64, 48
FOCAL = 60.0
BEST_EFFORT = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST)
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)


def node_executable() -> str:
    venv = os.environ.get("VIRTUAL_ENV", "")
    path = Path(venv) / "lib" / "strvos_ros" / "strvos_node"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run scripts/setup.sh (it builds strvos_ros into the venv)")
    return str(path)


def start_process(argv: list[str], log_path: Path) -> subprocess.Popen:
    """A child in its own session/process group, so SIGINT reaches it (and its children) like Ctrl-C."""
    log = open(log_path, "wb")  # noqa: SIM115 - closed by stop_process
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    proc.log_file = log  # type: ignore[attr-defined]
    proc.log_path = log_path  # type: ignore[attr-defined]
    return proc


def stop_process(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    """SIGINT the process group; SIGKILL it if it does not exit in time. Returns the exit code."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    proc.log_file.close()  # type: ignore[attr-defined]
    return proc.returncode


def start_node(log_path: Path, model: str = "random:tiny", **params) -> subprocess.Popen:
    """strvos_node with `-p key:=value` parameters. The model is random:tiny unless asked otherwise: the node's own
    default (`default`, the trained model) need not exist in a checkout, and tests must not depend on it."""
    argv = [node_executable(), "--ros-args", "-p", f"model:={model}"]
    for key, value in params.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        argv += ["-p", f"{key}:={text}"]
    return start_process(argv, log_path)


def ros2_launch_available() -> str | None:
    return shutil.which("ros2")


def stamp(seconds: float):
    header = Header()
    header.stamp.sec = int(seconds)
    header.stamp.nanosec = int(round((seconds - int(seconds)) * 1e9))
    return header.stamp


def seconds_of(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


def scene_rgb(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """A red square on a grey background."""
    rgb = np.full((height, width, 3), 90, np.uint8)
    rgb[height // 4: 3 * height // 4, width // 3: 2 * width // 3] = (220, 30, 30)
    return rgb


def image_msg(array: np.ndarray, t: float, encoding: str = "rgb8", frame_id: str = "cam_optical") -> Image:
    array = np.ascontiguousarray(array)
    height, width = array.shape[:2]
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=0,
                step=array.strides[0], data=array.tobytes())
    msg.header.stamp, msg.header.frame_id = stamp(t), frame_id
    return msg


def plane_depth(z: float = 1.0, width: int = WIDTH, height: int = HEIGHT, encoding: str = "16UC1") -> np.ndarray:
    if encoding == "16UC1":
        return np.full((height, width), int(round(z * 1000)), np.uint16)
    return np.full((height, width), z, np.float32)


def info_msg(t: float, width: int = WIDTH, height: int = HEIGHT, focal: float = FOCAL,
             frame_id: str = "cam_optical") -> CameraInfo:
    msg = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    msg.k = [focal, 0.0, (width - 1) / 2, 0.0, focal, (height - 1) / 2, 0.0, 0.0, 1.0]
    msg.header.stamp, msg.header.frame_id = stamp(t), frame_id
    return msg


class Client:
    """An rclpy node in the test process, spun on a background thread, recording everything strvos_node says."""

    def __init__(self, name: str = "strvos_test_client", ns: str = NODE, image_topic: str = "image",
                 depth_topic: str = "depth", info_topic: str = "camera_info",
                 depth_info_topic: str = "depth_camera_info") -> None:
        if not rclpy.ok():
            rclpy.init()
        self.node = rclpy.create_node(name)
        self.ns = ns
        self.lock = threading.Lock()
        self.received: dict[str, list] = defaultdict(list)
        n = self.node
        self.pub_image = n.create_publisher(Image, image_topic, BEST_EFFORT)
        self.pub_image_reliable = n.create_publisher(Image, image_topic, RELIABLE)
        self.pub_depth = n.create_publisher(Image, depth_topic, BEST_EFFORT)
        self.pub_info = n.create_publisher(CameraInfo, info_topic, BEST_EFFORT)
        self.pub_depth_info = n.create_publisher(CameraInfo, depth_info_topic, BEST_EFFORT)
        self.pub_prompt = n.create_publisher(String, "/strvos/prompt", RELIABLE)
        self.pub_targets = n.create_publisher(TargetCommand, f"{ns}/targets", RELIABLE)
        self.watch(SegmentationArray, f"{ns}/segmentation")
        self.watch(PromptStatus, f"{ns}/status")
        self.watch(Image, f"{ns}/mask")
        self.watch(Image, f"{ns}/overlay")
        self.watch(DiagnosticArray, "/diagnostics")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(n)
        self._spin = threading.Thread(target=self.executor.spin, daemon=True)
        self._spin.start()

    def watch(self, msg_type, topic: str) -> None:
        def record(msg, topic=topic):
            with self.lock:
                self.received[topic].append(msg)

        self.node.create_subscription(msg_type, topic, record, RELIABLE)

    def unwatch(self, topic: str) -> None:
        """Stop recording ``topic`` (relative to the node's namespace unless absolute): unsubscribe."""
        topic = topic if topic.startswith("/") else f"{self.ns}/{topic}"
        for subscription in [s for s in self.node.subscriptions if s.topic_name == topic]:
            self.node.destroy_subscription(subscription)

    def watch_target(self, target_id: str) -> None:
        self.watch(Image, f"{self.ns}/mask/{target_id}")
        self.watch(PoseStamped, f"{self.ns}/pose/{target_id}")

    def messages(self, topic: str) -> list:
        with self.lock:
            return list(self.received[topic if topic.startswith("/") else f"{self.ns}/{topic}"])

    def wait_for(self, topic: str, predicate=lambda m: True, timeout: float = 90.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in self.messages(topic):
                if predicate(msg):
                    return msg
            time.sleep(0.05)
        raise TimeoutError(f"no message on {topic} matching the condition within {timeout} s")

    def wait_for_stamp(self, topic: str, t: float, timeout: float = 90.0):
        return self.wait_for(topic, lambda m: abs(seconds_of(m.header) - t) < 1e-6, timeout)

    def wait_subscribed(self, timeout: float = 120.0) -> None:
        """Until strvos_node subscribes to the camera (it is active) and to the prompt topics."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.pub_image.get_subscription_count() and self.pub_prompt.get_subscription_count()
                    and self.pub_targets.get_subscription_count()):
                time.sleep(0.3)  # let discovery settle both ways
                return
            time.sleep(0.1)
        raise TimeoutError("strvos_node did not subscribe to the camera within the timeout")

    def send_frame(self, t: float, rgb: np.ndarray | None = None, depth: np.ndarray | None = None,
                   depth_encoding: str = "16UC1", infos: bool = True, reliable: bool = False) -> None:
        rgb = scene_rgb() if rgb is None else rgb
        if depth is not None:
            if infos:
                self.pub_info.publish(info_msg(t, rgb.shape[1], rgb.shape[0]))
                self.pub_depth_info.publish(info_msg(t, depth.shape[1], depth.shape[0],
                                                     FOCAL * depth.shape[1] / rgb.shape[1]))
            self.pub_depth.publish(image_msg(depth, t, depth_encoding))
        (self.pub_image_reliable if reliable else self.pub_image).publish(image_msg(rgb, t))

    def prompt(self, text: str) -> None:
        self.pub_prompt.publish(String(data=text))

    def target(self, action: int, target_id: str = "", prompt: str = "") -> None:
        self.pub_targets.publish(TargetCommand(action=action, target_id=target_id, prompt=prompt))

    def set_target(self, action: int, target_id: str = "", prompt: str = "") -> SetTarget.Response:
        """Call the node's ~/set_target service (answered synchronously)."""
        return self.call(SetTarget, f"{self.ns}/set_target",
                         SetTarget.Request(action=action, target_id=target_id, prompt=prompt))

    def call(self, srv_type, name: str, request, timeout: float = 60.0):
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f"service {name} not available")
            future = client.call_async(request)
            deadline = time.monotonic() + timeout
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.02)
            if not future.done():
                raise TimeoutError(f"service {name} did not answer within {timeout} s")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def lifecycle_state(self) -> str:
        return self.call(GetState, f"{self.ns}/get_state", GetState.Request()).current_state.label

    def transition(self, transition_id: int, timeout: float = 120.0) -> bool:
        request = ChangeState.Request()
        request.transition.id = transition_id
        return self.call(ChangeState, f"{self.ns}/change_state", request, timeout).success

    def set_parameter(self, name: str, value) -> tuple[bool, str]:
        pv = ParameterValue()
        if isinstance(value, bool):
            pv.type, pv.bool_value = ParameterType.PARAMETER_BOOL, value
        elif isinstance(value, int):
            pv.type, pv.integer_value = ParameterType.PARAMETER_INTEGER, value
        elif isinstance(value, float):
            pv.type, pv.double_value = ParameterType.PARAMETER_DOUBLE, value
        else:
            pv.type, pv.string_value = ParameterType.PARAMETER_STRING, value
        request = SetParameters.Request(parameters=[ParameterMsg(name=name, value=pv)])
        (result,) = self.call(SetParameters, f"{self.ns}/set_parameters", request).results
        return result.successful, result.reason

    def diagnostics_values(self, timeout: float = 30.0, after: float | None = None) -> dict[str, str]:
        """Key/values of the newest pipeline diagnostics published after ``after`` (monotonic time)."""
        start = time.monotonic() if after is None else after
        count = len(self.messages("/diagnostics"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msgs = self.messages("/diagnostics")
            if len(msgs) > count and time.monotonic() > start:
                for status in msgs[-1].status:
                    if status.name.endswith("pipeline"):
                        return {kv.key: kv.value for kv in status.values}
            time.sleep(0.05)
        raise TimeoutError("no /diagnostics from strvos_node")

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
