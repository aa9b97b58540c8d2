"""A run's checkpoint through the lent GPU's file limits and back (tools/device_pack.py), and resuming a checkpoint
that travelled without its optimizer moments (scripts/device_train.sh prepare)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from strvos_core.training import checkpointing, train

TOOL = Path(__file__).resolve().parents[2] / "tools" / "device_pack.py"


@pytest.fixture(scope="module")
def device_pack():
    spec = importlib.util.spec_from_file_location("device_pack", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pack_and_unpack_give_back_a_resumable_checkpoint(micro_config, tmp_path, device_pack):
    config = micro_config(run={"steps": 2})
    train(config, tmp_path / "run", stop_after=1, progress=False)
    files = device_pack.pack(tmp_path / "run", tmp_path / "out")
    assert len(files) <= 8 and all(f.stat().st_size <= 16 * 2**20 for f in files)
    assert files[-1].name == "run.manifest.json"
    restored = device_pack.unpack(tmp_path / "out", tmp_path / "back" / "run")
    original = checkpointing.list_checkpoints(tmp_path / "run")[-1]
    assert restored.name == original.name
    for name in ("model.safetensors", "trainer_state.json", "rng_rank0.pt"):
        assert (restored / name).read_bytes() == (original / name).read_bytes(), name
    a = torch.load(original / "optimizer.pt", weights_only=False)["optimizer"]["state"]
    b = torch.load(restored / "optimizer.pt", weights_only=False)["optimizer"]["state"]
    key = next(iter(a))
    assert b[key]["exp_avg"].dtype == torch.float32  # widened back
    torch.testing.assert_close(a[key]["exp_avg"], b[key]["exp_avg"], rtol=1e-2, atol=1e-6)  # bf16 rounding
    assert (tmp_path / "back" / "run" / "log.jsonl").exists()
    resumed = train(config, tmp_path / "back" / "run", resume=True, progress=False)
    assert resumed.steps_done == 2
    part = tmp_path / "out" / "run.part0"
    part.write_bytes(b"x" + part.read_bytes()[1:])
    with pytest.raises(SystemExit, match="do not join up"):
        device_pack.unpack(tmp_path / "out", tmp_path / "again" / "run")


def test_a_checkpoint_without_its_moments_resumes_on_the_same_schedule(micro_config, tmp_path):
    config = micro_config(run={"steps": 3}, optim={"warmup_ratio": 0.5})
    straight = train(config, tmp_path / "straight", progress=False)
    train(config, tmp_path / "light", stop_after=1, progress=False)
    (checkpointing.list_checkpoints(tmp_path / "light")[-1] / "optimizer.pt").unlink()
    resumed = train(config, tmp_path / "light", resume=True, progress=False)
    logs = [[json.loads(line) for line in r.log_path.read_text().splitlines()] for r in (straight, resumed)]
    assert [r["lr"] for r in logs[0]] == [r["lr"] for r in logs[1]]  # the schedule goes on where it was
    assert logs[0][1]["loss"] == logs[1][1]["loss"]  # the same weights went in
    assert logs[0][2]["loss"] != logs[1][2]["loss"]  # fresh moments: a different update from there on
