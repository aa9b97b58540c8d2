"""scripts/setup.sh is idempotent: a rerun on a set-up machine changes nothing in the venv and is quick."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup.sh"


def _venv() -> Path:
    out = subprocess.run(["bash", str(SETUP), "--print-venv"], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def _snapshot(venv: Path) -> dict[str, tuple[int, int]]:
    snap = {}
    for dirpath, dirnames, filenames in os.walk(venv):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]  # bytecode caches are not setup's doing
        for name in filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            snap[str(p.relative_to(venv))] = (st.st_size, st.st_mtime_ns)
    return snap


@pytest.mark.skipif(not SETUP.exists(), reason="scripts/setup.sh missing")
def test_second_run_changes_nothing_and_is_quick():
    venv = _venv()  # make sure everything is set up
    before = _snapshot(venv)
    t0 = time.monotonic()
    out = subprocess.run(["bash", str(SETUP)], check=True, capture_output=True, text=True)
    elapsed = time.monotonic() - t0
    after = _snapshot(venv)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == [], f"setup.sh rerun changed {len(changed)} file(s), e.g. {changed[:10]}"
    assert "dependencies up to date" in out.stderr
    assert "colcon build" not in out.stderr and "pip install" not in out.stderr, out.stderr
    assert elapsed < 30, f"rerun took {elapsed:.1f} s (target < 30 s)"
    assert len(before) > 10_000  # it really looked at a full venv


def test_env_file_sets_ros_network_safety():
    env_file = _venv() / "strvos-env.sh"
    text = env_file.read_text()
    assert "ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST" in text and "ROS_DOMAIN_ID" in text


def test_venv_has_messages_cli_and_launch():
    venv = _venv()
    py = venv / "bin" / "python"
    code = "from strvos_ros.msg import SegmentationArray, TargetSegmentation, TargetCommand, PromptStatus"
    subprocess.run([str(py), "-c", code], check=True)
    help_out = subprocess.run([str(venv / "bin" / "strvos"), "--help"], check=True, capture_output=True, text=True)
    assert "segment" in help_out.stdout
    assert (venv / "lib" / "strvos_ros" / "strvos_node").exists()
    assert (venv / "share" / "strvos_ros" / "launch" / "segment.launch.py").exists()
