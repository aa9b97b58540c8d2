"""The test rig around strvos_node: a synthetic RGB-D camera and a recorder of what the node says, in one rclpy
node of this process, over real DDS. Results are taken as CDR bytes and only their stamp is read (a 10,000-frame
soak must not spend its CPU building Python masks); the last few are kept whole for checks."""
from __future__ import annotations

import collections
import struct
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from strvos_ros.msg import PromptStatus, SegmentationArray, TargetCommand

from reliability import hostile

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
COMMANDS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
_STAMP = struct.Struct("<iI")


def qos(reliable: bool, depth: int = 5) -> QoSProfile:
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT)


def stamp_of(cdr: bytes) -> float:
    """The header stamp of a message that starts with a std_msgs/Header (plain little-endian CDR)."""
    sec, nanosec = _STAMP.unpack_from(cdr, 4)
    return round(sec + nanosec * 1e-9, 6)


def scene(width: int, height: int, t: float) -> np.ndarray:
    """A red square drifting over a grey background (the image changes every frame)."""
    rgb = np.full((height, width, 3), 90, np.uint8)
    x = int((width // 3) + (width // 6) * np.sin(t))
    rgb[height // 4: 3 * height // 4, max(x, 0): x + width // 3] = (220, 30, 30)
    return rgb


class Rig:
    def __init__(self, width: int = 64, height: int = 48, node_ns: str = "/strvos_node", reliable: bool = False,
                 camera: str = "", name: str = "strvos_soak_rig", recorder: bool = True) -> None:
        if not rclpy.ok():  # rclpy's SIGINT handler would end the context and leave the tool running: Ctrl-C
            rclpy.init(signal_handler_options=SignalHandlerOptions.NO)  # raises KeyboardInterrupt, node stopped
        self.node = rclpy.create_node(name)
        self.width, self.height, self.ns, self.reliable = width, height, node_ns, reliable
        cam = qos(reliable)
        topics = {"image": "image", "depth": "depth", "camera_info": "camera_info",
                  "depth_camera_info": "depth_camera_info"}
        if camera:
            topics = {"image": f"{camera}/color/image_raw", "depth": f"{camera}/aligned_depth_to_color/image_raw",
                      "camera_info": f"{camera}/color/camera_info",
                      "depth_camera_info": f"{camera}/aligned_depth_to_color/camera_info"}
        self.topics = topics
        n = self.node
        self.pub = {"image": n.create_publisher(Image, topics["image"], cam),
                    "depth": n.create_publisher(Image, topics["depth"], cam),
                    "camera_info": n.create_publisher(CameraInfo, topics["camera_info"], cam),
                    "depth_camera_info": n.create_publisher(CameraInfo, topics["depth_camera_info"], cam),
                    "prompt": n.create_publisher(String, "/strvos/prompt", COMMANDS),
                    "targets": n.create_publisher(TargetCommand, f"{node_ns}/targets", COMMANDS)}
        focal = 0.9 * width
        self.k = [focal, 0.0, (width - 1) / 2, 0.0, focal, (height - 1) / 2, 0.0, 0.0, 1.0]
        self.depth = np.full((height, width), 1200, np.uint16).tobytes()
        self.sent = 0                      # good colour frames published
        self.lock = threading.Lock()
        self.answered: dict[float, float] = {}       # stamp -> monotonic receipt time
        self.recent: collections.deque = collections.deque(maxlen=64)  # last raw SegmentationArrays
        self.statuses: list[PromptStatus] = []
        self.diagnostics: list[tuple[float, dict[str, str], dict[str, str]]] = []  # (time, pipeline, camera)
        self._camera_qos = cam
        if recorder:
            n.create_subscription(SegmentationArray, f"{node_ns}/segmentation", self._on_seg, RELIABLE, raw=True)
            n.create_subscription(PromptStatus, f"{node_ns}/status", self._on_status, COMMANDS)
            n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, RELIABLE)
        self.executor = None
        if recorder:  # a publisher only (the driver process) has nothing to spin
            self.executor = SingleThreadedExecutor()
            self.executor.add_node(n)
            threading.Thread(target=self.executor.spin, daemon=True).start()

    # ------------------------------------------------------------------ recording
    def _on_seg(self, data: bytes) -> None:
        now = time.monotonic()
        with self.lock:
            self.answered[stamp_of(data)] = now
            self.recent.append(data)

    def _on_status(self, msg: PromptStatus) -> None:
        with self.lock:
            self.statuses.append(msg)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        pipeline, camera = {}, {}
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            if status.name.endswith(": pipeline"):
                pipeline = values
            elif status.name.endswith(": camera"):
                camera = {**values, "level": str(int.from_bytes(status.level, "little") if isinstance(
                    status.level, bytes) else int(status.level)), "message": status.message}
        if pipeline:
            with self.lock:
                self.diagnostics.append((time.monotonic(), pipeline, camera))
                del self.diagnostics[:-200]

    def answered_count(self) -> int:
        with self.lock:
            return len(self.answered)

    def was_answered(self, t: float) -> bool:
        with self.lock:
            return round(t, 6) in self.answered

    def segmentation(self, t: float) -> SegmentationArray | None:
        """The whole SegmentationArray of stamp ``t`` when it is among the last 64 received."""
        with self.lock:
            recent = list(self.recent)
        for data in reversed(recent):
            if stamp_of(data) == round(t, 6):
                return deserialize_message(data, SegmentationArray)
        return None

    def latest_diagnostics(self, after: float | None = None, timeout: float = 30.0) -> tuple[dict, dict]:
        """(pipeline values, camera values) of the newest /diagnostics received after ``after`` (monotonic)."""
        after = time.monotonic() if after is None else after
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.diagnostics and self.diagnostics[-1][0] > after:
                    return self.diagnostics[-1][1], self.diagnostics[-1][2]
            time.sleep(0.05)
        raise TimeoutError(f"no /diagnostics from the node within {timeout} s")

    # ------------------------------------------------------------------ publishing
    def wait_subscribed(self, timeout: float = 180.0) -> None:
        """Until the node subscribes to the camera and the prompt topics (it is active)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.pub[k].get_subscription_count() for k in ("image", "prompt", "targets")):
                time.sleep(0.3)
                return
            time.sleep(0.1)
        raise TimeoutError("strvos_node did not subscribe to the camera within the timeout")

    def send_frame(self, t: float, rgb: np.ndarray | None = None, depth: bytes | None = None,
                   depth_encoding: str = "16UC1", k: list[float] | None = None) -> None:
        """Colour + depth + both CameraInfos stamped ``t`` (depth first, as drivers publish)."""
        rgb = scene(self.width, self.height, t) if rgb is None else rgb
        height, width = rgb.shape[:2]
        info = hostile.camera_info(t, width, height, k or self.k)
        self.pub["camera_info"].publish(info)
        self.pub["depth_camera_info"].publish(info)
        raw_depth = self.depth if depth is None else depth
        step = len(raw_depth) // height
        self.pub["depth"].publish(hostile.image(t, height, width, depth_encoding, step, raw_depth))
        self.pub["image"].publish(hostile.good_image(t, rgb))
        self.sent += 1

    def drop_camera(self) -> None:
        """Destroy this rig's camera publishers (another process is the camera: its loss must be visible)."""
        for key in ("image", "depth", "camera_info", "depth_camera_info"):
            self.node.destroy_publisher(self.pub.pop(key))

    def restore_camera(self) -> None:
        for key, msg_type in (("image", Image), ("depth", Image), ("camera_info", CameraInfo),
                              ("depth_camera_info", CameraInfo)):
            self.pub[key] = self.node.create_publisher(msg_type, self.topics[key], self._camera_qos)

    def publish_bytes(self, topic: str, data: bytes) -> None:
        self.pub[topic].publish(data)

    def prompt(self, text: str) -> None:
        self.pub["prompt"].publish(String(data=text))

    def target(self, action: int, target_id: str = "", prompt: str = "") -> None:
        self.pub["targets"].publish(TargetCommand(action=action, target_id=target_id, prompt=prompt))

    def wait_answered(self, t: float, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.was_answered(t):
                return True
            time.sleep(0.02)
        return False

    def answer_good_frame(self, t: float, attempts: int = 5, timeout: float = 10.0) -> bool:
        """Send good frames from stamp ``t`` on (best effort may lose one) until one is answered."""
        for i in range(attempts):
            self.send_frame(t + 0.001 * i)
            if self.wait_answered(t + 0.001 * i, timeout):
                return True
        return False

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
