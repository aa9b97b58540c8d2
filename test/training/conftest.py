"""A micro training config: the real modules (InternViT, Qwen2, SAM 2 hiera-tiny) at the smallest sizes that run
every mechanism (112 px tiles -> 16 image tokens, SAM 2 at 128 with a shrunken Hiera trunk, LoRA rank 4,
64 sampled points)."""
from __future__ import annotations

import copy

import pytest
import torch

SMALL_HIERA = {  # hiera-tiny shrunk (as configs/train/tiny_synthetic.yaml): ~7x cheaper
    "image_encoder.trunk.embed_dim": 32, "image_encoder.trunk.num_heads": 1,
    "image_encoder.trunk.stages": [1, 1, 2, 1], "image_encoder.trunk.global_att_blocks": [3],
    "image_encoder.trunk.window_spec": [8, 4, 4, 4], "image_encoder.trunk.window_pos_embed_bkg_spatial_size": [4, 4],
    "image_encoder.neck.backbone_channel_list": [256, 128, 64, 32],
}
MICRO = {
    "model": {"preset": "tiny", "tokenizer": "synthetic",
              "overrides": {"vision": {"image_size": 112}, "max_dynamic_patch": 1,
                            "grounding": {"image_size": 128, "sam2_overrides": SMALL_HIERA}}},
    "lora": {"rank": 4, "alpha": 8},
    "loss": {"num_points": 64},
    "optim": {"lr": 2e-3, "grad_accum_steps": 1, "warmup_ratio": 0.0},
    "data": {"stage": "image", "num_videos": 2, "width": 96, "height": 64, "frames_per_video": 8,
             "clip_frames": 2, "answers": ["Sure, [SEG].", "[SEG]."]},
    "run": {"steps": 3, "save_every": 1, "keep_checkpoints": 5},
}


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    torch.set_num_threads(2)


@pytest.fixture
def micro_config():
    """A factory: micro_config(stage="video", run={"steps": 2}) -> TrainConfig."""
    from strvos_core.training import TrainConfig

    def make(**sections):
        data = copy.deepcopy(MICRO)
        for name, values in sections.items():
            data.setdefault(name, {}).update(values)
        return TrainConfig.from_dict(data)

    return make
