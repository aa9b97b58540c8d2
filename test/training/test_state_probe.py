from __future__ import annotations

import numpy as np
import torch

from strvos_core.checkpoint import build_random_model
from strvos_core.datasets.synthetic.config import SyntheticConfig
from strvos_core.datasets.synthetic.writer import write_dataset
from strvos_core.training.state_probe import main, probe_state


def test_state_probe_scores_seen_and_blind_frames_on_a_split_on_disk(tmp_path, capsys):
    write_dataset(tmp_path / "syn", "test", 2, seed=3, config=SyntheticConfig(width=96, height=64, num_frames=8))
    model = build_random_model("tiny", answer="seg")
    result = probe_state(model, str(tmp_path / "syn"), "test", videos=2, frames=3, expressions_per_video=2)
    # frames 1..2 of 2 expressions of 2 videos
    assert len(result.seen) == len(result.blind_state) == len(result.blind_none) == 8
    assert all(0.0 <= v <= 1.0 for v in result.seen + result.blind_state + result.blind_none)
    # [SEG]'s attention on <TIME_CONTEXT>, per expression and LLM layer: a share of the row
    attention = np.asarray(result.time_context_attention)
    assert attention.shape == (4, model.config.language.num_hidden_layers)
    assert ((attention > 0) & (attention < 1)).all()
    torch.manual_seed(0)
    assert main(["--model", "random:tiny", "--data-root", str(tmp_path / "syn"), "--videos", "1", "--frames", "2",
                 "--expressions", "1"]) == 0
    row = capsys.readouterr().out.splitlines()[-1]
    assert row.startswith("| random:tiny | 1 |")
