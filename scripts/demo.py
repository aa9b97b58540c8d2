"""The main job: strvos_node on a synthetic RGB-D camera, driven by prompts, recorded and scored.

Starts the node (through `ros2 launch strvos_ros segment.launch.py` when the launch system is installed, else
through its own entry point), plays synthetic clips at 15 Hz as colour + 16UC1 depth + CameraInfo, sends a
referring expression per clip and changes the target half-way through each clip, records what the node
publishes on /strvos_node/segmentation and writes an overlay video and a summary (J&F against the ground truth,
latency, drops). Run it with scripts/demo.sh (which sets up the environment first).
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAMERA = "/demo/camera"
NODE = "/strvos_node"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "out" / "demo", help="output folder")
    p.add_argument("--model", default=None,
                   help="default (the shipped tiny model), a model folder or random:<preset> "
                        "(default: the shipped model if it was trained, else random:tiny)")
    p.add_argument("--clips", type=int, default=3, help="synthetic clips to play")
    p.add_argument("--frames-per-clip", type=int, default=40,
                   help="frames per clip; the target changes half-way through each (default 40)")
    p.add_argument("--rate", type=float, default=15.0, help="camera rate in Hz")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic clips and prompts (default 0)")
    p.add_argument("--threads", type=int, default=None,
                   help="the node's torch CPU threads (its `threads` parameter; default: config/segment.yaml's)")
    p.add_argument("--ready-timeout", type=float, default=180.0, help="seconds to wait for the node to come up")
    return p.parse_args()


def choose_model(requested: str | None) -> str:
    """The requested spec, else `default` (the shipped model, the folder the node itself will load) when it was
    trained, else random:tiny with a warning that the masks will not follow the prompt."""
    if requested:
        return requested
    from strvos_core.checkpoint import DEFAULT_MODEL_DIR, DEFAULT_MODEL_SPEC

    if (DEFAULT_MODEL_DIR / "config.json").is_file():
        print(f"demo: running the node on the shipped model ({DEFAULT_MODEL_SPEC}: {DEFAULT_MODEL_DIR})", flush=True)
        return DEFAULT_MODEL_SPEC
    print("demo: no trained model is shipped yet: running the node on random:tiny (the real architecture with "
          "random weights), so the masks are NOT expected to follow the prompt", flush=True)
    return "random:tiny"


def model_folder(model: str) -> Path:
    """The folder of a model spec (where its model card would be); random builds have none."""
    from strvos_core.checkpoint import DEFAULT_MODEL_DIR, DEFAULT_MODEL_SPEC

    return DEFAULT_MODEL_DIR if model == DEFAULT_MODEL_SPEC else Path(model)


def start_node(model: str, log_path: Path, threads: int | None = None) -> tuple[subprocess.Popen, str]:
    """The node in its own process group (so SIGINT reaches ros2 launch and its child)."""
    topics = [f"image:={CAMERA}/color/image_raw", f"camera_info:={CAMERA}/color/camera_info",
              f"depth:={CAMERA}/aligned_depth_to_color/image_raw",
              f"depth_camera_info:={CAMERA}/aligned_depth_to_color/camera_info"]
    if shutil.which("ros2") and _launch_importable():
        cmd = ["ros2", "launch", "strvos_ros", "segment.launch.py", f"model:={model}", "use_depth:=true", *topics]
        if threads is not None:
            cmd.append(f"threads:={threads}")
        how = "ros2 launch strvos_ros segment.launch.py"
    else:
        venv = Path(sys.prefix)
        cmd = [sys.executable, str(venv / "lib" / "strvos_ros" / "strvos_node"), "--ros-args",
               "-p", f"model:={model}", "-p", "use_depth:=true"]
        if threads is not None:
            cmd += ["-p", f"threads:={threads}"]
        for t in topics:
            cmd += ["-r", t]
        how = "the node's own entry point (no ROS launch system installed)"
    print(f"demo: starting strvos_node with {how}", flush=True)
    log = open(log_path, "w")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return proc, how


def _launch_importable() -> bool:
    try:
        import launch  # noqa: F401
        import launch_ros  # noqa: F401
    except ImportError:
        return False
    return True


def stop_node(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            return proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait(10)
    return proc.returncode


def main() -> int:
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 100)))
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    import numpy as np
    import rclpy
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header, String
    from strvos_ros.msg import PromptStatus, SegmentationArray

    from strvos_core.demo.plan import make_plan
    from strvos_core.demo.report import DemoRecording, FrameRecord, model_card_scores, write_outputs
    from strvos_ros.conversions import rgb_msg

    t_start = time.monotonic()
    plan = make_plan(args.seed, args.clips, args.frames_per_clip)
    model = choose_model(args.model)
    proc, how = start_node(model, args.out / "node.log", args.threads)
    # the node's default score threshold (config/segment.yaml), to say on the video why a mask is not trusted
    recording = DemoRecording(plan, model=model, launcher=how, rate_hz=args.rate, score_threshold=0.5,
                              model_card=model_card_scores(model_folder(model)))

    rclpy.init()
    node = rclpy.create_node("strvos_demo_camera")
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
    pub_rgb = node.create_publisher(Image, f"{CAMERA}/color/image_raw", reliable)
    pub_depth = node.create_publisher(Image, f"{CAMERA}/aligned_depth_to_color/image_raw", reliable)
    pub_info = node.create_publisher(CameraInfo, f"{CAMERA}/color/camera_info", reliable)
    pub_dinfo = node.create_publisher(CameraInfo, f"{CAMERA}/aligned_depth_to_color/camera_info", reliable)
    pub_prompt = node.create_publisher(String, "/strvos/prompt", QoSProfile(depth=10))

    published: dict[int, tuple[int, float]] = {}  # stamp ns -> (frame, wall time)
    lock = threading.Lock()

    def on_segmentation(msg: SegmentationArray) -> None:
        now = time.monotonic()
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        with lock:
            if stamp not in published:
                return
            frame, sent = published[stamp]
        target = next((t for t in msg.targets if t.target_id == "default"), None)
        if target is None:
            return
        mask = np.frombuffer(bytes(target.mask.data), np.uint8).reshape(target.mask.height, target.mask.width) > 0
        p, q = target.pose.pose.position, target.pose.pose.orientation
        recording.records[frame] = FrameRecord(
            mask=mask, prompt=target.prompt, state=int(target.state), score=float(target.score),
            position=(p.x, p.y, p.z) if target.pose_valid else None, latency=now - sent,
            orientation=(q.x, q.y, q.z, q.w) if target.pose_valid and target.orientation_valid else None)

    acks: list = []
    node.create_subscription(SegmentationArray, f"{NODE}/segmentation", on_segmentation, reliable)
    node.create_subscription(PromptStatus, f"{NODE}/status", acks.append, QoSProfile(depth=100))
    spinner = threading.Thread(target=rclpy.spin, args=(node,), daemon=True)
    spinner.start()

    def wait_for(condition, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not condition():
            if proc.poll() is not None:
                raise RuntimeError(f"strvos_node exited with {proc.returncode} while waiting for {what}; "
                                   f"see {args.out / 'node.log'}")
            if time.monotonic() > end:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}; see {args.out / 'node.log'}")
            time.sleep(0.05)

    exit_code = 0
    try:
        wait_for(lambda: pub_rgb.get_subscription_count() > 0 and pub_prompt.get_subscription_count() > 0
                 and node.count_publishers(f"{NODE}/segmentation") > 0, args.ready_timeout, "the node to come up")
        print(f"demo: node up after {time.monotonic() - t_start:.1f} s; playing {plan.num_frames} frames "
              f"at {args.rate:g} Hz", flush=True)
        video0 = plan.videos[0]
        height, width = video0.frames.shape[1:3]
        info = CameraInfo(width=width, height=height, distortion_model="plumb_bob", d=[0.0] * 5,
                          k=video0.K.reshape(-1).tolist(), r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
                          p=np.hstack([video0.K, np.zeros((3, 1))]).reshape(-1).tolist())
        changes = {c.frame: c for c in plan.prompts}
        period = 1.0 / args.rate
        next_time = time.monotonic()
        for frame in range(plan.num_frames):
            if frame in changes:
                text = changes[frame].text
                pub_prompt.publish(String(data=text))
                print(f"demo: frame {frame}: prompt -> {text!r}", flush=True)
                # the node answers at once on ~/status (accepted, and the index of the frame it applies from),
                # and again with that frame's stamp; results carry the prompt they answered (what scoring uses)
                time.sleep(0.3)
                next_time = time.monotonic()
            clip, t = plan.locate(frame)
            video = plan.videos[clip]
            header = Header(frame_id="demo_camera_color_optical_frame", stamp=node.get_clock().now().to_msg())
            depth = Image(header=header, height=height, width=width, encoding="16UC1", is_bigendian=0,
                          step=width * 2, data=np.ascontiguousarray(video.depth_mm[t]).tobytes())
            info.header = header
            with lock:
                published[header.stamp.sec * 10**9 + header.stamp.nanosec] = (frame, time.monotonic())
            pub_info.publish(info)
            pub_dinfo.publish(info)
            pub_depth.publish(depth)
            pub_rgb.publish(rgb_msg(video.frames[t], header))
            next_time += period
            time.sleep(max(0.0, next_time - time.monotonic()))
        time.sleep(3.0)  # results of the last frames
        # each prompt is answered twice: on receipt (applies from frame_index), and when applied (that frame's stamp)
        recording.acks = [{"prompt": a.prompt, "accepted": bool(a.accepted), "message": a.message,
                           "frame_index": int(a.frame_index),
                           "applied_at_stamp": a.header.stamp.sec + a.header.stamp.nanosec * 1e-9}
                          for a in acks if a.applied]
    except (RuntimeError, TimeoutError) as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        exit_code = 1
    finally:
        node_rc = stop_node(proc)
        rclpy.try_shutdown()
    if exit_code:
        return exit_code
    summary = write_outputs(recording, args.out)
    print((args.out / "summary.md").read_text())
    print(f"demo: node stopped with exit code {node_rc}; finished in {time.monotonic() - t_start:.0f} s")
    print(f"demo: outputs in {args.out}: overlay.mp4, overlay.gif, summary.json, summary.md, node.log")
    return 0 if summary["frames_with_result"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
