"""Scenario 4: `strvos train` and `strvos eval` killed with SIGKILL at random points, then resumed, must give
what an uninterrupted run gives: the same training log (every loss, bit for bit) and final weights, the same
evaluation records and scores. Training uses a micro config (the real modules at the smallest sizes, as
test/training/conftest.py's MICRO), evaluation the tiny random model on a small synthetic split."""
from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from reliability.outcome import Outcome

SMALL_HIERA = {
    "image_encoder.trunk.embed_dim": 32, "image_encoder.trunk.num_heads": 1,
    "image_encoder.trunk.stages": [1, 1, 2, 1], "image_encoder.trunk.global_att_blocks": [3],
    "image_encoder.trunk.window_spec": [8, 4, 4, 4], "image_encoder.trunk.window_pos_embed_bkg_spatial_size": [4, 4],
    "image_encoder.neck.backbone_channel_list": [256, 128, 64, 32],
}
MICRO = {  # test/training/conftest.py's MICRO: every mechanism of training at the smallest sizes
    "model": {"preset": "tiny", "tokenizer": "synthetic",
              "overrides": {"vision": {"image_size": 112}, "max_dynamic_patch": 1,
                            "grounding": {"image_size": 128, "sam2_overrides": SMALL_HIERA}}},
    "lora": {"rank": 4, "alpha": 8},
    "loss": {"num_points": 64},
    "optim": {"lr": 2e-3, "grad_accum_steps": 1, "warmup_ratio": 0.0},
    "data": {"stage": "image", "num_videos": 2, "width": 96, "height": 64, "frames_per_video": 8,
             "clip_frames": 2, "answers": ["Sure, [SEG].", "[SEG]."]},
    "run": {"steps": 6, "save_every": 1, "keep_checkpoints": 2, "threads": 1},
}
LOG_KEYS = ("step", "lr", "loss", "lm", "bce", "dice", "grad_norm")  # "seconds" is wall time


def strvos(*args: str) -> list[str]:
    return [sys.executable, "-m", "strvos_core.cli.main", *args]


def _timed_run(argv: list[str], log: Path, watch: Path | None = None) -> tuple[int, float, float]:
    """(exit code, duration, seconds until ``watch`` first had content: the end of start-up)."""
    started, first = time.monotonic(), None
    with open(log, "ab") as handle:
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            if first is None and watch is not None and watch.exists() and watch.stat().st_size > 0:
                first = time.monotonic() - started
            time.sleep(0.02)
    duration = time.monotonic() - started
    return proc.returncode, duration, duration if first is None else first


def _killed_run(argv: list[str], log: Path, after: float) -> bool:
    """Run ``argv``, SIGKILL it ``after`` seconds in; False when it finished first."""
    with open(log, "ab") as handle:
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(after)
            return False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
            return True


def kill_after(rng: random.Random, startup: float, work: float, remaining: float, kills_left: int = 1) -> float:
    """A random moment of a run that starts up for ``startup`` s and then works ``work`` s when uninterrupted,
    ``remaining`` (0-1) of that work still to do. Half the kills fall in start-up (loading, resuming), half in
    the work (steps and saves), within its next 1 / ``kills_left`` share (of 90 % of it: the kill must come
    before the end on a machine as busy as when it was timed), so that work is left for the kills after it.
    Drawn over the whole run instead, the first kill often took most of the work and the later ones landed
    almost only in start-up, the micro config's steps being a small part of a run."""
    if rng.random() < 0.5:
        return rng.uniform(0.0, startup)
    return startup + rng.uniform(0.0, 0.9 * remaining * work / max(kills_left, 1))


# ---------------------------------------------------------------------------------------------------- training
def train(workdir: Path, kills: int, seed: int = 0, steps: int = 24) -> Outcome:
    out = Outcome("train kill/resume")
    started = time.monotonic()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    config = json.loads(json.dumps(MICRO))
    config["run"]["steps"] = steps
    config_path = workdir / "micro.yaml"
    config_path.write_text(yaml.safe_dump(config))
    log = workdir / "runs.log"
    straight = workdir / "straight"
    code, duration, startup = _timed_run(strvos("train", "--config", str(config_path), "--out", str(straight),
                                                "--no-progress"), log, straight / "log.jsonl")
    if not out.check(code == 0, f"the uninterrupted run failed ({code}): see {log}"):
        return out
    rng = random.Random(seed)
    run_dir = workdir / "killed"
    done_kills = attempts = 0
    while done_kills < kills and attempts < 4 * kills:  # a run that finished before its kill is no kill
        attempts += 1
        # as a user types it: the first run plain, every run after a kill with --resume (also when the kill came
        # before the first checkpoint: the run then starts over)
        resume = ["--resume"] if attempts > 1 else []
        state = _progress(run_dir)
        remaining = 1.0 - _last_step(run_dir) / steps
        if remaining <= 0:
            break
        after = kill_after(rng, startup, duration - startup, remaining, kills - done_kills)
        if _killed_run(strvos("train", "--config", str(config_path), "--out", str(run_dir), "--no-progress",
                              *resume), log, after):
            done_kills += 1
            out.table.append({"kill": done_kills, "after (s)": round(after, 2), "checkpoints before": state,
                              "checkpoints after the kill": _progress(run_dir),
                              "log records after the kill": len(_log(run_dir))})
    resume = ["--resume"] if attempts else []
    code, _, _ = _timed_run(strvos("train", "--config", str(config_path), "--out", str(run_dir), "--no-progress",
                                   *resume), log)
    out.check(code == 0, f"the resumed run failed ({code}): see {log}")
    straight, killed = _log(workdir / "straight"), _log(run_dir)
    same_log = straight == killed
    out.check(same_log, f"the resumed log differs from the uninterrupted one: {straight[-1:]} vs {killed[-1:]}")
    same_weights = _same_weights(workdir / "straight", run_dir)
    out.check(same_weights, "the final weights differ from the uninterrupted run's")
    leftovers = sorted(p.name for p in (run_dir / "checkpoints").glob("*.tmp")) if (run_dir / "checkpoints").is_dir() else []
    out.figures.update({"steps (a checkpoint after each)": steps, "uninterrupted run (s)": round(duration, 1),
                        "of which start-up (s)": round(startup, 1), "kills": done_kills,
                        "kills before the first checkpoint": sum(row["checkpoints after the kill"] == "none"
                                                                 for row in out.table),
                        "log equal (every loss bit for bit)": same_log, "final weights equal": same_weights,
                        "half-written checkpoints left (ignored)": ", ".join(leftovers) or "none"})
    out.seconds = time.monotonic() - started
    return out


def _last_step(run_dir: Path) -> int:
    from strvos_core.training import checkpointing

    found = checkpointing.list_checkpoints(run_dir)
    return int(found[-1].name.split("_")[1]) if found else 0


def _progress(run_dir: Path) -> str:
    from strvos_core.training import checkpointing

    steps = [int(p.name.split("_")[1]) for p in checkpointing.list_checkpoints(run_dir)]
    return ", ".join(map(str, steps)) or "none"


def _log(run_dir: Path) -> list[dict]:
    path = run_dir / "log.jsonl"
    if not path.exists():
        return []
    return [{k: record[k] for k in LOG_KEYS if k in record}
            for record in map(json.loads, path.read_text().splitlines())]


def _same_weights(a: Path, b: Path) -> bool:
    from safetensors.torch import load_file

    from strvos_core.training import checkpointing

    last_a, last_b = checkpointing.list_checkpoints(a), checkpointing.list_checkpoints(b)
    if not last_a or not last_b or last_a[-1].name != last_b[-1].name:
        return False
    wa, wb = (load_file(str(p[-1] / "model.safetensors")) for p in (last_a, last_b))
    return wa.keys() == wb.keys() and all(bool((wa[k] == wb[k]).all()) for k in wa)


# ---------------------------------------------------------------------------------------------------- evaluation
def evaluate(workdir: Path, kills: int, seed: int = 0, videos: int = 2, frames: int = 8) -> Outcome:
    out = Outcome("eval kill/resume")
    started = time.monotonic()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    log = workdir / "runs.log"
    data = workdir / "synthetic"
    code, _, _ = _timed_run(strvos("synthetic", "--root", str(data), "--split", "valid", "--videos", str(videos),
                                "--frames", str(frames), "--size", "96x64", "--no-progress"), log)
    if not out.check(code == 0, f"writing the synthetic split failed: see {log}"):
        return out

    def command(folder: str) -> list[str]:
        return strvos("eval", "--dataset", "synthetic", "--data-root", str(data), "--model", "random:tiny",
                      "--out", str(workdir / folder), "--no-progress")

    code, duration, startup = _timed_run(command("straight"), log, workdir / "straight" / "items")
    if not out.check(code == 0, f"the uninterrupted evaluation failed ({code}): see {log}"):
        return out
    rng, total = random.Random(seed), _records(workdir / "straight")
    done_kills = attempts = 0
    while done_kills < kills and attempts < 4 * kills:
        attempts += 1
        before = _records(workdir / "killed")
        if before >= total:
            break
        after = kill_after(rng, startup, duration - startup, 1.0 - before / total, kills - done_kills)
        if _killed_run(command("killed"), log, after):
            done_kills += 1
            out.table.append({"kill": done_kills, "after (s)": round(after, 2), "items done before": before,
                              "items done after the kill": _records(workdir / "killed")})
    code, _, _ = _timed_run(command("killed"), log)
    out.check(code == 0, f"the resumed evaluation failed ({code}): see {log}")
    a, b = _rows(workdir / "straight"), _rows(workdir / "killed")
    same_rows = a == b and bool(a)
    out.check(same_rows, "per_expression.csv differs from the uninterrupted run's (timing aside)")
    sa, sb = (_scores(workdir / f) for f in ("straight", "killed"))
    out.check(sa == sb, f"summary scores differ: {sa} vs {sb}")
    duplicates = _duplicates(workdir / "killed")
    out.check(not duplicates, f"items computed more than once: {duplicates}")
    out.figures.update({"items (video, expression)": len(a), "uninterrupted run (s)": round(duration, 1),
                        "of which start-up (s)": round(startup, 1),
                        "kills": done_kills, "per-expression results equal": same_rows, "scores equal": sa == sb,
                        "items computed twice": len(duplicates)})
    out.seconds = time.monotonic() - started
    return out


def _records(folder: Path) -> int:
    from strvos_core.evaluation import ResultStore

    return len(list(ResultStore(folder / "items").records()))


def _duplicates(folder: Path) -> list:
    from strvos_core.evaluation import ResultStore

    keys = [(r.get("video_id"), r.get("exp_id")) for r in ResultStore(folder / "items").records()]
    return sorted({k for k in keys if keys.count(k) > 1})


def _rows(folder: Path) -> list[dict]:
    path = folder / "per_expression.csv"
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: v for k, v in row.items() if k != "seconds_per_frame"} for row in csv.DictReader(f)]


def _scores(folder: Path) -> dict:
    path = folder / "summary.json"
    return json.loads(path.read_text()).get("metrics", {}) if path.exists() else {}
