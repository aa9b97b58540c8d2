"""Per-video seeds of a split: disjoint between splits by construction, reproducible from (split, seed)."""
from __future__ import annotations

from collections.abc import Iterator

from strvos_core.datasets.synthetic.config import SPLITS, SyntheticConfig
from strvos_core.datasets.synthetic.video import SyntheticVideo, generate_video

MAX_VIDEOS_PER_SPLIT = 1_000_000


def video_seed(split: str, seed: int, index: int) -> int:
    """Seed of video `index` of `split` generated with base `seed`.

    The split is the seed's residue modulo len(SPLITS), so no train seed is ever a val or test seed,
    whatever base seeds the splits were written with.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not 0 <= index < MAX_VIDEOS_PER_SPLIT:
        raise ValueError(f"video index must be in [0, {MAX_VIDEOS_PER_SPLIT}), got {index}")
    return len(SPLITS) * (seed * MAX_VIDEOS_PER_SPLIT + index) + SPLITS.index(split)


def video_name(video_seed_value: int) -> str:
    """Folder name of a video: its seed, so any video can be regenerated in memory from its name."""
    return f"syn{video_seed_value:012d}"


def iter_split(split: str, num_videos: int, seed: int = 0,
               config: SyntheticConfig | None = None) -> Iterator[tuple[str, SyntheticVideo]]:
    """(video name, video) of a split in memory, generated lazily: the videos write_dataset puts on disk."""
    if not isinstance(num_videos, int) or not 0 <= num_videos <= MAX_VIDEOS_PER_SPLIT:
        raise ValueError(f"num_videos must be an integer in [0, {MAX_VIDEOS_PER_SPLIT}], got {num_videos!r}")
    seeds = [video_seed(split, seed, index) for index in range(num_videos)]  # checks arguments now
    config = config or SyntheticConfig()
    return ((video_name(s), generate_video(s, config)) for s in seeds)
