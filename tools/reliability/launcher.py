"""strvos_node as users start and drive it: `ros2 launch strvos_ros segment.launch.py ...` in a process group of
its own (SIGINT stops it like Ctrl-C), its parameters from a copy of the shipped config/segment.yaml with the
changes a scenario needs, and `ros2 lifecycle set` for transitions."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import yaml

from reliability import procstats

NODE = "/strvos_node"


def installed_config() -> Path:
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("strvos_ros")) / "config" / "segment.yaml"


def shm_profile() -> Path:
    """Fast DDS's large-image shared-memory profile shipped with the node (README: large images)."""
    return installed_config().parent / "fastdds_large_images.xml"


def write_config(path: Path, **overrides) -> Path:
    """config/segment.yaml with ``overrides`` (dotted names: input.reliability) applied."""
    data = yaml.safe_load(installed_config().read_text())
    params = data["/**"]["ros__parameters"]
    for name, value in overrides.items():
        *groups, key = name.split(".")
        section = params
        for group in groups:
            section = section.setdefault(group, {})
        section[key] = value
    path.write_text(yaml.safe_dump(data))
    return path


class LaunchedNode:
    """`ros2 launch` of strvos_node with a parameters file (``params``: dotted names) and the launch file's own
    arguments (model, camera topics, use_depth, prompt); ``pid`` is the node's own process (under launch)."""

    def __init__(self, workdir: Path, model: str = "random:tiny", camera: str = "", use_depth: bool = True,
                 prompt: str = "", env: dict[str, str] | None = None, **params) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "launch.log"
        config = write_config(workdir / "params.yaml", **params)
        argv = ["ros2", "launch", "strvos_ros", "segment.launch.py", f"model:={model}", f"config:={config}",
                f"use_depth:={'true' if use_depth else 'false'}", f"prompt:={prompt}"]
        if camera:
            argv.append(f"camera:={camera}")
        else:  # the rig's plain topic names
            argv += ["image:=/image", "depth:=/depth", "camera_info:=/camera_info",
                     "depth_camera_info:=/depth_camera_info"]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, **(env or {})},
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.pid: int | None = None

    def find_pid(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while self.pid is None and time.monotonic() < deadline:
            self.pid = procstats.find_child(self.proc.pid, "strvos_node")
            if self.pid is None:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"ros2 launch exited with {self.proc.returncode}: {self.log_tail()}")
                time.sleep(0.2)
        if self.pid is None:
            raise TimeoutError("no strvos_node process under ros2 launch")
        return self.pid

    def alive(self) -> bool:
        return self.proc.poll() is None and self.pid is not None and Path(f"/proc/{self.pid}").exists()

    def sample(self) -> procstats.ProcessSample:
        return procstats.sample(self.find_pid())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log()[-chars:]

    def stop(self, timeout: float = 30.0) -> int:
        """SIGINT to the launch process group (Ctrl-C); SIGKILL when it does not exit in time."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


def lifecycle_set(transition: str, node: str = NODE, timeout: float = 120.0, attempts: int = 5) -> tuple[bool, str]:
    """`ros2 lifecycle set <node> <transition>` as a user types it; (succeeded, its output). "Node not found"
    (the CLI's graph daemon has not discovered the node yet: nothing was sent) is tried again, as a user would."""
    for attempt in range(attempts):
        done = subprocess.run(["ros2", "lifecycle", "set", node, transition], capture_output=True, text=True,
                              timeout=timeout)
        out = (done.stdout + done.stderr).strip()
        if "Node not found" not in out:
            break
        time.sleep(1.0 + attempt)
    return done.returncode == 0 and "Transitioning successful" in out, out


def lifecycle_get(node: str = NODE, timeout: float = 60.0) -> str:
    done = subprocess.run(["ros2", "lifecycle", "get", node], capture_output=True, text=True, timeout=timeout)
    return (done.stdout + done.stderr).strip()


def stop_daemon() -> None:
    """The ros2 CLI daemon of this domain (started by the lifecycle verbs) goes with the scenario."""
    subprocess.run(["ros2", "daemon", "stop"], capture_output=True, timeout=60)
