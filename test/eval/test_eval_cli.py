"""`strvos eval` as users run it: separate processes, RANK / WORLD_SIZE shards, a killed run resumed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eval_layouts import make_synthetic

from strvos_core.evaluation import ResultStore

# the multi-process tests are slow: each process loads the tiny model (~15 s on 2 cores) and steps it


def _command(root: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "strvos_core.cli.eval", "--dataset", "synthetic", "--data-root", str(root),
            "--model", "random:tiny", "--out", str(out), "--no-progress", *extra]


def _env(**kv: str) -> dict[str, str]:
    env = dict(os.environ, **kv)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return env


@pytest.mark.slow
def test_two_ranks_shard_and_rank0_merges(tmp_path):
    root = make_synthetic(tmp_path / "syn", {"a": (2, 24, 32), "b": (2, 24, 32)})
    out = tmp_path / "out"
    procs = [subprocess.Popen(_command(root, out, "--expressions-per-session", "2", "--wait-timeout", "600"),
                              env=_env(RANK=str(r), WORLD_SIZE="2", LOCAL_RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in (0, 1)]
    outputs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert "rank 1: shard done" in outputs[1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_expressions"] == 4 and summary["world_size"] == 2
    ranks = {r["video_id"]: r["rank"] for r in ResultStore(out / "items").records()}
    assert ranks == {"a": 0, "b": 1}


@pytest.mark.slow
def test_killed_run_resumes_without_recomputing(tmp_path):
    root = make_synthetic(tmp_path / "syn", {"a": (2, 24, 32), "b": (2, 24, 32), "c": (2, 24, 32)})
    out = tmp_path / "out"
    proc = subprocess.Popen(_command(root, out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = ResultStore(out / "items")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and len(list(store.records())) < 1:
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = list(store.records())
    assert 1 <= len(finished) < 6, "the run should have been killed part-way"

    done = subprocess.run(_command(root, out), env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    records = list(store.records())
    assert records[: len(finished)] == finished
    assert len(records) == 6  # each of the 6 items computed exactly once
    assert json.loads((out / "summary.json").read_text())["num_expressions"] == 6


def test_bad_input_is_a_one_line_error(tmp_path):
    bad = subprocess.run(_command(tmp_path / "missing", tmp_path / "out"), env=_env(), capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 1
    assert "strvos eval: error: data root of synthetic not found" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_plan_prints_the_work_size(tmp_path):
    root = make_synthetic(tmp_path / "syn", {"a": (2, 24, 32), "b": (3, 24, 32)})
    plan = subprocess.run([*_command(root, tmp_path / "out"), "--plan"], env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout) == {"dataset": "synthetic", "split": "valid", "videos": 2, "expressions": 4,
                                       "model_steps": 2 * 2 + 3 * 2}
