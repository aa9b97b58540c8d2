#!/usr/bin/env python3
"""Benchmark strvos_node's own cost (everything except the model step) over real DDS, in separate processes.

For each resolution:
1. lock-step: publish colour + depth + camera infos, wait for the mask, repeat. No queueing, so
   overhead = (mask receipt - image publish) - inference_time (the core step the node reports in
   SegmentationArray.inference_time): DDS both ways, decoding, sync, pose, overlay, markers, publishing.
2. a 30 Hz camera for --seconds: published / processed / dropped frames, the node's CPU besides the model
   (thread CPU time of callbacks + worker outside `session.step`, from /diagnostics) and whole-process CPU.

Usage: tools/benchmark_node.py [--model random:tiny] [--frames 10] [--seconds 20] [--out benchmarks/node_cpu.md]
ROS network safety: LOCALHOST discovery and a random ROS_DOMAIN_ID are set here for this process and the node.
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ["ROS_DOMAIN_ID"] = str(random.SystemRandom().randint(1, 100))

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from strvos_ros.msg import SegmentationArray  # noqa: E402
from visualization_msgs.msg import MarkerArray  # noqa: E402

from strvos_core.realtime.memory import keep_freed_memory  # noqa: E402

# Reliable camera QoS (and input.reliability:=reliable on the node) unless --best-effort: with the default Fast DDS
# transport best effort loses most ~1 MB messages on loopback here (UDP fragments), which would measure the
# network, not the node; with the large-image SHM profile it can be measured (--best-effort).
SENSOR = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
BEST_EFFORT = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT, history=HistoryPolicy.KEEP_LAST)
LOST_AFTER_S = 5.0  # --best-effort lock-step: a frame without a result by then was lost (counted, not timed)
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)


def seconds(header) -> float:
    return round(header.stamp.sec + header.stamp.nanosec * 1e-9, 6)


def set_stamp(msg, t: float, frame: str = "camera_color_optical_frame"):
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(t), int(round((t - int(t)) * 1e9))
    msg.header.frame_id = frame
    return msg


class Camera:
    """Publishes a synthetic RGB-D camera and records strvos_node's outputs with receipt times."""

    def __init__(self, width: int, height: int, watch_all: bool = False, lean: bool = False,
                 camera_qos: QoSProfile = SENSOR) -> None:
        self.node = rclpy.create_node(f"strvos_bench_camera_{width}")
        self.lean = lean
        self.width, self.height = width, height
        rgb = np.full((height, width, 3), 90, np.uint8)
        rgb[height // 4: 3 * height // 4, width // 3: 2 * width // 3] = (220, 30, 30)
        self.rgb = Image(height=height, width=width, encoding="rgb8", step=width * 3, data=rgb.tobytes())
        depth = np.full((height, width), 1200, np.uint16)
        self.depth = Image(height=height, width=width, encoding="16UC1", step=width * 2, data=depth.tobytes())
        focal = 0.8 * width
        self.info = CameraInfo(width=width, height=height, distortion_model="plumb_bob",
                               k=[focal, 0.0, (width - 1) / 2, 0.0, focal, (height - 1) / 2, 0.0, 0.0, 1.0])
        self.pub_rgb = self.node.create_publisher(Image, "image", camera_qos)
        self.pub_depth = self.node.create_publisher(Image, "depth", camera_qos)
        self.pub_info = self.node.create_publisher(CameraInfo, "camera_info", camera_qos)
        self.pub_depth_info = self.node.create_publisher(CameraInfo, "depth_camera_info", camera_qos)
        self.pub_prompt = self.node.create_publisher(String, "/strvos/prompt", RELIABLE)
        self.sent: dict[float, float] = {}
        self.publish_call: dict[float, float] = {}            # stamp -> seconds spent in the colour publish call
        self.results: dict[float, tuple[float, float]] = {}   # stamp -> (receipt time, inference_time)
        self.return_path: dict[float, tuple[float, float]] = {}  # stamp -> (result DDS, our take + executor) s
        self.diagnostics: dict[str, str] = {}
        self.lock = threading.Lock()
        # lean: take the result as CDR bytes and deserialise it after noting the receipt time, so rclpy building
        # a Python SegmentationArray (its 300 KB mask) in this process is not counted as the node's overhead.
        self.node.create_subscription(SegmentationArray, "/strvos_node/segmentation", self._on_seg, RELIABLE,
                                      raw=lean)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, RELIABLE)
        if watch_all:  # the node builds only what someone subscribes to: also take every visual output
            for msg_type, topic in ((Image, "overlay"), (MarkerArray, "markers"), (Image, "mask"),
                                    (Image, "mask/default"), (PoseStamped, "pose/default")):
                self.node.create_subscription(msg_type, f"/strvos_node/{topic}", lambda msg: None, RELIABLE)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def _on_seg(self, msg: SegmentationArray | bytes, info) -> None:
        now_ns, now = time.time_ns(), time.monotonic()
        if self.lean:
            msg = deserialize_message(msg, SegmentationArray)
        with self.lock:
            self.results[seconds(msg.header)] = (now, float(msg.inference_time))
            source, received = info["source_timestamp"], info["received_timestamp"]
            self.return_path[seconds(msg.header)] = ((received - source) * 1e-9, (now_ns - received) * 1e-9)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith("pipeline"):
                with self.lock:
                    self.diagnostics = {kv.key: kv.value for kv in status.values}

    def publish(self, t: float) -> None:
        for pub, msg in ((self.pub_info, self.info), (self.pub_depth_info, self.info), (self.pub_depth, self.depth)):
            if pub.get_subscription_count():
                pub.publish(set_stamp(msg, t))
        if self.lean:  # what a driver that serialises its frames itself hands over: CDR bytes
            rgb = serialize_message(set_stamp(self.rgb, t))
        else:
            rgb = set_stamp(self.rgb, t)
        self.sent[round(t, 6)] = time.monotonic()
        self.pub_rgb.publish(rgb)
        self.publish_call[round(t, 6)] = time.monotonic() - self.sent[round(t, 6)]

    def wait_ready(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while not (self.pub_rgb.get_subscription_count() and self.pub_prompt.get_subscription_count()):
            if time.monotonic() > deadline:
                raise TimeoutError("strvos_node did not come up")
            time.sleep(0.2)
        time.sleep(0.5)

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_environment(source: Path | None) -> dict[str, str]:
    """The node's environment; with ``source`` (a checkout, e.g. of another commit), its strvos_ros/*.py
    modules and strvos_core replace the installed ones while the messages still come from the venv."""
    env = dict(os.environ)
    if source is None:
        return env
    import strvos_ros  # the installed package (messages + node modules)

    overlay = Path(tempfile.mkdtemp(prefix="strvos_bench_overlay_"))
    (overlay / "strvos_ros").mkdir()
    paths = [str((source / "strvos_ros").resolve()), *strvos_ros.__path__]
    (overlay / "strvos_ros" / "__init__.py").write_text(f"__path__ = {paths!r}\n")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(overlay), str(source.resolve()), env.get("PYTHONPATH")) if p)
    return env


def run_resolution(args, width: int, height: int, use_depth: bool) -> dict:
    node_bin = Path(os.environ["VIRTUAL_ENV"]) / "lib" / "strvos_ros" / "strvos_node"
    log = open(Path(tempfile.gettempdir()) / f"strvos_bench_node_{width}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [str(node_bin), "--ros-args", "-p", f"model:={args.model}", "-p", f"device:={args.device}",
         "-p", "score_threshold:=0.0", "-p", f"input.reliability:={'best_effort' if args.best_effort else 'reliable'}",
         "-p", f"use_depth:={str(use_depth).lower()}",
         "-p", "diagnostics_period:=0.5", "-p", "prompt:=the red square", "-p", f"threads:={args.threads}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=node_environment(args.node_source))
    camera = Camera(width, height, args.watch_all, args.lean_client, BEST_EFFORT if args.best_effort else SENSOR)
    try:
        camera.wait_ready()
        t = 1000.0
        # 1. lock-step overhead (the first frame warms up and is not counted)
        overheads, latencies, steps, publish_calls, result_dds, result_take = [], [], [], [], [], []
        lockstep_before: dict[str, str] = {}
        lost = 0
        i = 0
        while i <= args.frames:
            if i == 1 and not lockstep_before:
                time.sleep(1.0)  # a diagnostics period after the warm-up frame
                lockstep_before = dict(camera.diagnostics)
            t += 1.0
            camera.publish(t)
            # The first frame waits for the model's warm-up; a best-effort frame may be lost (then another is sent).
            deadline = time.monotonic() + (LOST_AFTER_S if args.best_effort and i else 300)
            while round(t, 6) not in camera.results and time.monotonic() < deadline:
                time.sleep(0.001)
            if round(t, 6) not in camera.results:
                if not args.best_effort:
                    raise TimeoutError(f"no result for frame {t}")
                lost += 1
                continue
            received, step = camera.results[round(t, 6)]
            if i:
                latency = received - camera.sent[round(t, 6)]
                latencies.append(latency)
                steps.append(step)
                overheads.append(latency - step)
                publish_calls.append(camera.publish_call[round(t, 6)])
                result_dds.append(camera.return_path[round(t, 6)][0])
                result_take.append(camera.return_path[round(t, 6)][1])
            i += 1
            time.sleep(0.2)
        time.sleep(1.0)  # one more diagnostics period
        worker_overhead = float(camera.diagnostics.get("overhead_mean_s", "nan"))
        stages = {key[len("stage."):]: float(value) for key, value in camera.diagnostics.items()
                  if key.startswith("stage.")}
        for key, values in (("camera_publish", publish_calls), ("result_transport", result_dds),
                            ("result_dispatch", result_take)):
            stages[f"{key}_ms"] = 1000 * statistics.median(values)
        lockstep_cpu = sum(float(camera.diagnostics[key]) - float(lockstep_before[key])
                           for key in ("cpu_callbacks_s", "cpu_worker_besides_model_s"))
        lockstep_frames = float(camera.diagnostics["frames_processed"]) - float(lockstep_before["frames_processed"])
        # 2. a 30 Hz camera
        before = dict(camera.diagnostics)
        cpu_before, wall_before = process_cpu_seconds(proc.pid), time.monotonic()
        stamps = []
        next_tick = time.monotonic()
        while time.monotonic() - wall_before < args.seconds:
            t += 1.0 / 30
            stamps.append(round(t, 6))
            camera.publish(t)
            next_tick += 1.0 / 30
            time.sleep(max(0.0, next_tick - time.monotonic()))
        time.sleep(max(steps) * 2 + 1.5)
        cpu_after, wall_after = process_cpu_seconds(proc.pid), time.monotonic()
        after = dict(camera.diagnostics)
        processed = sum(1 for s in stamps if s in camera.results)
        delta = {key: float(after.get(key, 0)) - float(before.get(key, 0))
                 for key in ("frames_received", "frames_processed", "cpu_callbacks_s", "cpu_worker_besides_model_s")}
        node_cpu = delta["cpu_callbacks_s"] + delta["cpu_worker_besides_model_s"]
        return {
            "resolution": f"{width}x{height}",
            "depth": "yes" if use_depth else "no",
            "stages": stages,
            "overhead_ms": [1000 * statistics.median(overheads), 1000 * float(np.percentile(overheads, 95))],
            "worker_overhead_ms": 1000 * worker_overhead,
            "cpu_per_frame_ms": 1000 * lockstep_cpu / max(lockstep_frames, 1),
            "latency_ms": 1000 * statistics.median(latencies),
            "step_ms": 1000 * statistics.median(steps),
            "published": len(stamps),
            "received": int(delta["frames_received"]),
            "processed": processed,
            "drop_rate": 1.0 - processed / len(stamps),
            "lockstep_lost": lost,
            "node_cpu_ms_per_input_frame": 1000 * node_cpu / max(delta["frames_received"], 1),
            "node_cpu_core_share": node_cpu / (wall_after - wall_before),
            "process_cpu_core_share": (cpu_after - cpu_before) / (wall_after - wall_before),
        }
    finally:
        camera.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def hardware() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def table(results: list[dict], args) -> str:
    lines = [
        "# strvos_node overhead and CPU",
        "",
        f"Measured by `tools/benchmark_node.py --model {args.model} --device {args.device} --frames {args.frames} "
        f"--seconds {args.seconds} --resolutions {args.resolutions} --depth-modes {args.depth_modes}"
        + (f" --fastdds-profile {args.fastdds_profile}" if args.fastdds_profile else "")
        + (" --watch-all" if args.watch_all else "")
        + (f" --node-source {args.node_source}" if args.node_source else "")
        + (" --lean-client" if args.lean_client else "")
        + (" --best-effort" if args.best_effort else "")
        + (f" --threads {args.threads}" if args.threads else "")
        + f"` on {hardware()}; no GPU; load average (1 min) {args.load[0]:.2f} at the start, {args.load[1]:.2f} at "
        "the end. Node and camera in separate processes over "
        + ("Fast DDS on loopback with best-effort camera QoS (the node's default); "
           if args.best_effort else
           "Fast DDS on loopback with reliable camera QoS (with the default transport best effort loses most ~1 MB "
           "messages here); ")
        + "colour + 16UC1 "
        "depth + both CameraInfos per frame, one target, overlay and markers enabled; the benchmark subscribes to "
        + ("every output" if args.watch_all else "~/segmentation and /diagnostics only (the node skips the rest)")
        + ".",
        "",
        "Overhead = image publish -> SegmentationArray receipt minus the core step time the node reports "
        "(lock-step, no queueing; median / p95 of the timed frames). The 30 Hz run feeds a camera faster than the "
        "tiny CPU model can follow: frames are dropped by design (keep-newest), and the node's own CPU is the "
        "thread CPU time of its callbacks plus the worker outside `session.step`.",
        "",
        "| resolution | depth + pose | overhead median / p95 (ms) | of which in the worker (ms) | node CPU per frame besides model (ms) | end-to-end latency (ms) | core step (ms) | 30 Hz: published / "
        "reached node / processed | drop rate | node CPU per input frame (ms) | node CPU besides model "
        "(share of 1 core) | whole process CPU (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['resolution']} | {r['depth']} | {r['overhead_ms'][0]:.1f} / {r['overhead_ms'][1]:.1f} | "
            f"{r['worker_overhead_ms']:.1f} | {r['cpu_per_frame_ms']:.1f} | {r['latency_ms']:.0f} | "
            f"{r['step_ms']:.0f} | {r['published']} / {r['received']} / {r['processed']} | {r['drop_rate']:.1%} | "
            f"{r['node_cpu_ms_per_input_frame']:.2f} | {r['node_cpu_core_share']:.1%} | "
            f"{r['process_cpu_core_share']:.2f} |"
        )
    if args.best_effort:
        lines += ["", "Lock-step frames lost (best effort; re-sent, not timed): "
                  + ", ".join(f"{r['resolution']} depth {r['depth']}: {r['lockstep_lost']}" for r in results)]
    lines += ["", "Target: overhead < 5 ms per frame at 640x480.", ""]
    lines += stage_table(results)
    return "\n".join(lines)


# (stage key, column title); see strvos_ros/camera_input.py (arrival, sync), node.py (decode), the pipeline
# (commands, depth, masks, pose: strvos_core/realtime/pipeline.py) and outputs.py (messages, publish, overlay)
STAGES = [
    ("camera_publish", "camera's colour publish call"), ("in_node", "in the node, besides the step"),
    ("result_transport", "result DDS"), ("result_dispatch", "result take + executor (benchmark)"),
    ("image_transport", "colour DDS"), ("image_dispatch", "colour take + dispatch"),
    ("depth_transport", "depth DDS"), ("depth_dispatch", "depth take + dispatch"),
    ("sync_wait", "sync wait"), ("slot_wait", "slot -> worker"), ("commands", "commands"), ("decode", "decode"),
    ("depth", "depth image (+ to metres before 1cf7093)"), ("masks", "masks + tracking (pipeline, after a7086d3)"),
    ("messages", "mask + messages"), ("pose", "pose"), ("publish", "publish"),
    ("overlay", "overlay"), ("publish_overlay", "publish overlay"),
]


def stage_table(results: list[dict]) -> list[str]:
    """Lock-step per-stage medians: wall ms (thread CPU ms where measured); '-' where a stage did not run."""
    lines = [
        "Where the time goes (lock-step frames, median wall ms per frame, thread CPU ms in brackets). The "
        "overhead is about the camera's publish call + in the node + result DDS + result take; 'in the node' = "
        "colour image received by the node's middleware -> SegmentationArray handed back to it, minus the "
        "step, and splits into the stages after it: DDS = source -> receive timestamps of the middleware, "
        "take + dispatch = receive -> the node's callback (its camera thread since 48900ff, the executor before), "
        "sync wait = colour callback -> matched with depth, "
        "slot -> worker = matched -> the worker picks it up, then the worker's stages:",
        "",
        "| resolution | depth + pose | " + " | ".join(title for _, title in STAGES) + " |",
        "|---|---|" + "---|" * len(STAGES),
    ]
    for r in results:
        cells = []
        for key, _ in STAGES:
            wall, cpu = r["stages"].get(f"{key}_ms"), r["stages"].get(f"{key}_cpu_ms")
            cells.append("-" if wall is None else f"{wall:.1f}" + ("" if cpu is None else f" ({cpu:.1f})"))
        lines.append(f"| {r['resolution']} | {r['depth']} | " + " | ".join(cells) + " |")
    return lines + [""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random:tiny",
                        help="the node's model (default random:tiny: the real architecture, random weights)")
    parser.add_argument("--device", default="cpu", help="the node's torch device (default cpu)")
    parser.add_argument("--threads", type=int, default=0,
                        help="the node's threads parameter: torch CPU threads of its inference thread (0: torch's default)")
    parser.add_argument("--frames", type=int, default=10, help="lock-step frames per resolution")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the 30 Hz run per resolution")
    parser.add_argument("--resolutions", default="640x480,1280x720",
                        help="comma list of camera WIDTHxHEIGHT (default 640x480,1280x720)")
    parser.add_argument("--depth-modes", default="on,off", help="run with depth (on) and/or colour only (off)")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    parser.add_argument("--watch-all", action="store_true",
                        help="also subscribe to ~/overlay, ~/markers, ~/mask, ~/mask/default, ~/pose/default")
    parser.add_argument("--fastdds-profile", type=Path, default=None,
                        help="Fast DDS XML profile for the camera and the node (e.g. config/fastdds_large_images.xml)")
    parser.add_argument("--node-source", type=Path, default=None,
                        help="run the node modules (strvos_ros/*.py) and strvos_core of this checkout instead of the "
                        "installed ones (e.g. a copy of an older commit, for a before/after comparison)")
    parser.add_argument("--best-effort", action="store_true",
                        help="best-effort camera QoS on both sides (the node's default) instead of reliable; lock-step "
                        f"frames without a result after {LOST_AFTER_S:.0f} s count as lost and are not timed")
    parser.add_argument("--lean-client", action="store_true",
                        help="take less of this benchmark's own Python cost into the overhead: the camera publishes "
                        "pre-serialised CDR bytes (serialised before the send time is noted), results are taken as "
                        "CDR bytes and deserialised after the receipt time is noted, and this process keeps freed "
                        "memory for reuse (glibc mallopt)")
    args = parser.parse_args()
    if args.lean_client:
        keep_freed_memory()
    if args.fastdds_profile is not None:
        if not args.fastdds_profile.is_file():
            parser.error(f"--fastdds-profile {args.fastdds_profile} is not a file")
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(args.fastdds_profile.resolve())  # before rclpy.init
    rclpy.init()
    load_before = os.getloadavg()[0]
    try:
        results = []
        for spec in args.resolutions.split(","):
            width, height = (int(v) for v in spec.lower().split("x"))
            for mode in args.depth_modes.split(","):
                results.append(run_resolution(args, width, height, mode.strip() == "on"))
                print(results[-1], flush=True)
    finally:
        rclpy.try_shutdown()
    args.load = (load_before, os.getloadavg()[0])
    text = table(results, args)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
