"""scripts/setup_lib.sh's run_logged: a long set-up step says where its log is and shows it is alive (the first
set-up used to be 3-4 minutes of silence), and a failing one shows the end of its log and the log's path."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_logged(tmp_path: Path, command: str) -> subprocess.CompletedProcess:
    script = f'. "{ROOT}/scripts/setup_lib.sh"; run_logged "{tmp_path}/step.log" "a long step" bash -c \'{command}\''
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "STRVOS_PROGRESS_EVERY": "1"})


def test_a_long_step_reports_its_log_and_progress(tmp_path):
    done = run_logged(tmp_path, "for i in 1 2 3; do echo downloading part $i; sleep 1; done")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].endswith(f"a long step (log: {tmp_path}/step.log)")
    progress = [line for line in lines[1:] if " ... " in line]
    assert len(progress) >= 2 and all("downloading part" in line for line in progress), lines
    assert (tmp_path / "step.log").read_text().count("downloading part") == 3


def test_a_failing_step_shows_the_end_of_its_log_and_its_path(tmp_path):
    failed = run_logged(tmp_path, "echo the reason it broke; exit 3")
    assert failed.returncode == 3
    assert "the reason it broke" in failed.stderr
    assert f"a long step failed (exit 3; full log: {tmp_path}/step.log)" in failed.stderr
