"""Stage 1 (images) / stage 2 (video, streaming recurrence) training of StreamingRVOS on synthetic data.

    from strvos_core.training import TrainConfig, train
    train(TrainConfig.from_yaml("configs/train/tiny_synthetic.yaml"), "runs/tiny")
See README.md in this folder for the recipe, the differences from the reference and the commands.
"""
from strvos_core.training.config import TrainConfig
from strvos_core.training.trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
