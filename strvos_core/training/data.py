"""Training samples from the synthetic referring-video world, drawn statelessly from (seed, step, micro, rank, i).

Stage 1 ("image"): one frame in which the target is visible, with an appearance or relation expression (motion
needs time). Stage 2 ("video"): `clip_frames` distinct frames sorted in time (the reference samples 5 at random),
any expression kind, a ground-truth mask per frame (empty where the target is out of view or occluded).
Every sample is a pure function of its indices, so resuming or sharding over ranks never needs loader state.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from strvos_core.config import StreamingRVOSConfig
from strvos_core.datasets.synthetic import SyntheticConfig, generate_video, video_seed
from strvos_core.processing import image as image_processing
from strvos_core.training.config import DataSection


@dataclass
class Sample:
    """One expression over one or more frames, with the answer the LLM is taught to give."""

    expression: str
    answer: str
    frames: list[np.ndarray]  # uint8 [H, W, 3] RGB
    masks: list[np.ndarray]  # bool [H, W]
    video: int  # pool index, for debugging


@dataclass
class PreparedFrame:
    """The model inputs of one frame, computed by the same processing code as inference."""

    tiles: torch.Tensor  # [n_tiles, 3, tile, tile]
    sam_image: torch.Tensor  # [1, 3, S, S]
    gt_low_res: torch.Tensor  # [h, w] {0, 1} float at the low-res logits size (S / 4)


@dataclass
class _PooledVideo:
    frames: np.ndarray
    labels: np.ndarray
    expressions: list[tuple[str, int, str]]  # (text, obj_id, kind)


class SyntheticPool:
    """`num_videos` training videos, generated on first use and kept (frames and labels only)."""

    def __init__(self, config: DataSection) -> None:
        self.config = config
        self.world = SyntheticConfig(width=config.width, height=config.height, num_frames=config.frames_per_video)
        self._videos: dict[int, _PooledVideo] = {}

    def video(self, index: int) -> _PooledVideo:
        if index not in self._videos:
            video = generate_video(video_seed("train", self.config.seed, index), self.world)
            self._videos[index] = _PooledVideo(video.frames, video.labels,
                                               [(e.text, e.obj_id, e.kind) for e in video.expressions])
        return self._videos[index]

    def sample(self, step: int, micro: int, rank: int, index: int) -> Sample:
        rng = np.random.default_rng([self.config.seed, step, micro, rank, index])
        kinds = self.config.expression_kinds()
        for _ in range(100):
            video_index = int(rng.integers(self.config.num_videos))
            video = self.video(video_index)
            options = [e for e in video.expressions if e[2] in kinds]
            if options:
                break
        else:
            raise RuntimeError(f"no synthetic video among {self.config.num_videos} has an expression of kinds {kinds}")
        text, obj_id, _ = options[int(rng.integers(len(options)))]
        answer = self.config.answers[int(rng.integers(len(self.config.answers)))]
        masks = video.labels == obj_id  # [T, H, W]
        if self.config.stage == "image":
            visible = np.flatnonzero(masks.reshape(len(masks), -1).any(axis=1))
            pool = visible if len(visible) else np.arange(len(masks))
            chosen = [int(pool[int(rng.integers(len(pool)))])]
        else:
            chosen = sorted(int(i) for i in rng.choice(len(masks), size=self.config.clip_frames, replace=False))
        return Sample(text, answer, [video.frames[i] for i in chosen], [masks[i] for i in chosen], video_index)


def prepare_frame(frame: np.ndarray, mask: np.ndarray, config: StreamingRVOSConfig) -> PreparedFrame:
    """LLM tiles and SAM 2 input as `StreamingRVOSModel.encode_frame` makes them; the ground truth resized with
    nearest to the low-res logits (the reference: F.interpolate(..., mode='nearest') to 256x256)."""
    tiles = image_processing.llm_tiles(frame, config.tile_size, config.min_dynamic_patch, config.max_dynamic_patch,
                                       config.use_thumbnail)
    sam_image = image_processing.sam2_image(frame, config.grounding.image_size)
    low = config.grounding.image_size // 4
    gt = F.interpolate(torch.from_numpy(mask.astype(np.float32))[None, None], size=(low, low), mode="nearest")[0, 0]
    return PreparedFrame(tiles, sam_image, gt)
