"""Training samples from the synthetic referring-video world, drawn statelessly from (seed, step, micro, rank, i).

Stage 1 ("image"): one frame with appearance or relation expressions whose targets are visible in it (motion
needs time). Stage 2 ("video"): `clip_frames` distinct frames sorted in time (the reference samples 5 at random; `clip_max_gap`
draws them close together instead, as a stream sees them),
any expression kind, a ground-truth mask per frame (empty where the target is out of view or occluded).
A sample holds up to `expressions_per_sample` expressions over the same frames, distinct targets first (as the
reference samples several objects of one video): the model must tell them apart from the text alone, and the
image work is shared.
Every sample is a pure function of its indices, so resuming or sharding over ranks never needs loader state.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from strvos_core.config import StreamingRVOSConfig
from strvos_core.datasets.synthetic import SyntheticConfig, generate_video, video_seed
from strvos_core.processing import image as image_processing
from strvos_core.training.config import DataSection
from strvos_core.training.motion import frame_steps
from strvos_core.training.promptable import MIN_PROMPT_AREA, Prompt, sample_prompts
from strvos_core.training.targets import low_res_mask

MIN_CLICK_AREA = 16  # pixels: slivers of occluded objects are not clicked


@dataclass
class Target:
    """One expression of a sample, the answer the LLM is taught to give, and its mask in each of the frames."""

    expression: str
    answer: str
    masks: list[np.ndarray]  # bool [H, W], one per frame


@dataclass
class Click:
    """A positive click on a visible object (SAM 2's promptable task), in frame pixels, and that object's mask."""

    x: float
    y: float
    mask: np.ndarray  # bool [H, W]


@dataclass
class Sample:
    """One or more frames of a video and the expressions trained on them."""

    frames: list[np.ndarray]  # uint8 [H, W, 3] RGB
    targets: list[Target]
    video: int  # pool index, for debugging
    clicks: list[list[Click]] = field(default_factory=list)  # per frame (data.clicks_per_frame)
    labels: list[np.ndarray] = field(default_factory=list)  # uint8 [H, W] object ids per frame (0 = background)
    attributes: dict[int, dict[str, str]] = field(default_factory=dict)  # object id -> size/colour/texture/shape
    prompts: list[Prompt] = field(default_factory=list)  # stage "promptable": SAM 2 prompts on frames[0]
    # per frame: the LLM sees a blank image there (data.llm_blind_fraction); SAM 2 still sees the frame
    blind: list[bool] = field(default_factory=list)
    # per frame: the video's frame before it (None for its first frame), the stream's previous frame for a model
    # with vision.motion_input, and each object's step since then (training/motion.py; {} for a first frame)
    previous: list[np.ndarray | None] = field(default_factory=list)
    steps: list[dict[int, str]] = field(default_factory=list)

    @property
    def expression(self) -> str:
        return self.targets[0].expression

    @property
    def answer(self) -> str:
        return self.targets[0].answer

    @property
    def masks(self) -> list[np.ndarray]:
        return self.targets[0].masks


@dataclass
class PreparedFrame:
    """The model inputs of one frame, computed by the same processing code as inference."""

    tiles: torch.Tensor  # [n_tiles, 3, tile, tile]
    sam_image: torch.Tensor  # [1, 3, S, S]
    gt_low_res: torch.Tensor  # [h, w] {0, 1} float at the low-res logits size (S / 4)
    previous_tiles: torch.Tensor | None = None  # the previous frame's tiles (vision.motion_input), None: none


@dataclass
class _PooledVideo:
    frames: np.ndarray
    labels: np.ndarray
    expressions: list[tuple[str, int, str]]  # (text, obj_id, kind)
    attributes: dict[int, dict[str, str]]
    centres: dict[int, np.ndarray]  # object id -> int [frames, 2] (x, y) centre per frame (may be out of view)


class SyntheticPool:
    """`num_videos` training videos, generated on first use and kept (frames and labels only)."""

    def __init__(self, config: DataSection, keep_videos: bool = True) -> None:
        self.config = config
        self.world = SyntheticConfig(width=config.width, height=config.height, num_frames=config.frames_per_video,
                                     expressions_per_kind=config.expressions_per_kind)
        self.keep_videos = keep_videos  # False: regenerate on every use (a pool of thousands would not fit in memory)
        self._videos: dict[int, _PooledVideo] = {}

    def video(self, index: int) -> _PooledVideo:
        if index in self._videos:
            return self._videos[index]
        video = generate_video(video_seed("train", self.config.seed, index), self.world)
        pooled = _PooledVideo(video.frames, video.labels, [(e.text, e.obj_id, e.kind) for e in video.expressions],
                              {o.obj_id: o.attributes() for o in video.objects},
                              {o.obj_id: o.centres for o in video.objects})
        if self.keep_videos:
            self._videos[index] = pooled
        return pooled

    def sample(self, step: int, micro: int, rank: int, index: int) -> Sample:
        rng = np.random.default_rng([self.config.seed, step, micro, rank, index])
        if self.config.stage == "promptable":
            return self._promptable_sample(rng)
        kinds = self.config.expression_kinds()
        for _ in range(100):
            video_index = int(rng.integers(self.config.num_videos))
            video = self.video(video_index)
            options = [e for e in video.expressions if e[2] in kinds]
            if options:
                break
        else:
            raise RuntimeError(f"no synthetic video among {self.config.num_videos} has an expression of kinds {kinds}")
        visible: list[tuple[str, int, str]] = []
        absent: list[tuple[str, int, str]] = []
        if self.config.stage == "image":
            frame = self._visible_frame(video, options, rng)
            chosen = [frame]
            visible = [e for e in options if (video.labels[frame] == e[1]).any()]
            absent = [e for e in options if e not in visible]
            options = visible or options
        else:
            chosen = self._clip_frames(len(video.frames), rng)
        targets = []
        for text, obj_id, _ in _pick(options, self.config.expressions_per_sample, rng):
            answer = self.config.answers[int(rng.integers(len(self.config.answers)))]
            targets.append(Target(text, answer, [video.labels[i] == obj_id for i in chosen]))
        clicks = [self._clicks(video.labels[i], rng) for i in chosen] if self.config.clicks_per_frame else []
        # drawn last and only when asked for, so the samples of configs without it stay what they were
        blind = [t > 0 and bool(rng.random() < self.config.llm_blind_fraction) for t in range(len(chosen))] \
            if self.config.llm_blind_fraction > 0 else []
        if self.config.absent_per_sample and visible and absent:  # drawn last: samples without it stay as they were
            for text, obj_id, _ in _pick(absent, self.config.absent_per_sample, rng):
                targets.append(Target(text, self.config.absent_answer, [video.labels[i] == obj_id for i in chosen]))
        return Sample([video.frames[i] for i in chosen], targets, video_index, clicks,
                      [video.labels[i] for i in chosen], video.attributes, blind=blind,
                      previous=[video.frames[i - 1] if i > 0 else None for i in chosen],
                      steps=[frame_steps(video.centres, i) for i in chosen])

    def _clip_frames(self, num_frames: int, rng: np.random.Generator) -> list[int]:
        """A stage-2 clip's frame indices, in time order: anywhere (clip_max_gap 0) or with gaps of 1..clip_max_gap."""
        count = self.config.clip_frames
        if self.config.clip_max_gap == 0 or count == 1:
            return sorted(int(i) for i in rng.choice(num_frames, size=count, replace=False))
        largest = max(1, min(self.config.clip_max_gap, (num_frames - 1) // (count - 1)))  # the clip must fit
        gaps = rng.integers(1, largest + 1, size=count - 1)
        start = int(rng.integers(0, num_frames - int(gaps.sum())))
        return [start, *(start + int(g) for g in np.cumsum(gaps))]

    def _promptable_sample(self, rng: np.random.Generator) -> Sample:
        """Stage "promptable": a random frame with at least one promptable object and its SAM 2 prompts."""
        for _ in range(100):
            video_index = int(rng.integers(self.config.num_videos))
            video = self.video(video_index)
            frame = int(rng.integers(len(video.frames)))
            labels = video.labels[frame]
            prompts = sample_prompts(labels, self.config.prompts_per_frame, self.config.box_fraction,
                                     self.config.corrective_fraction, rng, self.config.exemplar_fraction)
            if prompts:
                return Sample([video.frames[frame]], [], video_index, labels=[labels], attributes=video.attributes,
                              prompts=prompts)
        raise RuntimeError(f"no frame among 100 drawn had an object of >= {MIN_PROMPT_AREA} px to prompt")

    def _clicks(self, labels: np.ndarray, rng: np.random.Generator) -> list[Click]:
        """Up to `clicks_per_frame` visible objects, each clicked at a random pixel of its own."""
        ids, counts = np.unique(labels[labels > 0], return_counts=True)
        ids = ids[counts >= MIN_CLICK_AREA]
        clicks = []
        for obj_id in rng.permutation(ids)[: self.config.clicks_per_frame]:
            mask = labels == obj_id
            ys, xs = np.nonzero(mask)
            k = int(rng.integers(len(xs)))
            clicks.append(Click(float(xs[k]) + 0.5, float(ys[k]) + 0.5, mask))
        return clicks

    @staticmethod
    def _visible_frame(video: _PooledVideo, options: list[tuple[str, int, str]], rng: np.random.Generator) -> int:
        """A frame where the target of a randomly drawn expression is visible (any frame if it never is)."""
        _, obj_id, _ = options[int(rng.integers(len(options)))]
        visible = np.flatnonzero((video.labels == obj_id).reshape(len(video.labels), -1).any(axis=1))
        pool = visible if len(visible) else np.arange(len(video.labels))
        return int(pool[int(rng.integers(len(pool)))])


def _pick(options: list[tuple[str, int, str]], count: int, rng: np.random.Generator) -> list[tuple[str, int, str]]:
    """Up to `count` expressions in random order, one per target object before any target is repeated."""
    order = [options[int(i)] for i in rng.permutation(len(options))]
    first, rest, seen = [], [], set()
    for expression in order:
        (rest if expression[1] in seen else first).append(expression)
        seen.add(expression[1])
    return (first + rest)[:count]


def prepare_frame(frame: np.ndarray, mask: np.ndarray, config: StreamingRVOSConfig,
                  previous: np.ndarray | None = None) -> PreparedFrame:
    """LLM tiles and SAM 2 input as `StreamingRVOSModel.encode_frame` makes them; the ground truth resized with
    nearest to the low-res logits (the reference: F.interpolate(..., mode='nearest') to 256x256). `previous`, the
    frame before, is tiled too for a model with vision.motion_input (ignored otherwise)."""
    def tiles_of(image: np.ndarray) -> torch.Tensor:
        return image_processing.llm_tiles(image, config.tile_size, config.min_dynamic_patch,
                                          config.max_dynamic_patch, config.use_thumbnail)

    sam_image = image_processing.sam2_image(frame, config.grounding.image_size)
    previous_tiles = tiles_of(previous) if previous is not None and config.vision.motion_input else None
    return PreparedFrame(tiles_of(frame), sam_image, low_res_mask(mask, config), previous_tiles)
