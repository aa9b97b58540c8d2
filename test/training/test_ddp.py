"""`strvos train` under `torchrun --nproc_per_node 2` (gloo, CPU): both ranks train, replicas stay identical."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml


@pytest.mark.slow  # two processes each build the model: ~50 s on 2 shared cores
def test_torchrun_two_cpu_processes_keep_replicas_in_sync(micro_config, tmp_path):
    config = json.loads(json.dumps(micro_config(run={"steps": 2, "save_every": 2}).to_dict()))
    config_path = tmp_path / "ddp.yaml"
    config_path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "strvos_core.cli.main", "train", "--config", str(config_path), "--out", str(tmp_path / "run"),
               "--no-progress"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoint = tmp_path / "run" / "checkpoints" / "step_000002"
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state == {"step": 2, "world_size": 2, "replicas_in_sync": True}
    assert (checkpoint / "rng_rank0.pt").exists() and (checkpoint / "rng_rank1.pt").exists()
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2] and all(r["loss"] > 0 for r in log)
