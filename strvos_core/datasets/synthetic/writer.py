"""Writing a split in the Ref-YouTube-VOS layout plus depth (see docs/ARCHITECTURE.md)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from strvos_core.datasets.synthetic.config import SyntheticConfig
from strvos_core.datasets.synthetic.render import intrinsics
from strvos_core.datasets.synthetic.splits import iter_split
from strvos_core.datasets.synthetic.video import SyntheticVideo


def palette() -> list[int]:
    """768 palette entries (DAVIS-style bit-interleaved colours): id 0 black, ids 1.. distinct colours."""
    entries = []
    for index in range(256):
        r = g = b = 0
        value = index
        for bit in range(8):
            r |= ((value >> 0) & 1) << (7 - bit)
            g |= ((value >> 1) & 1) << (7 - bit)
            b |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        entries += [r, g, b]
    return entries


_PALETTE = palette()


def camera_info(config: SyntheticConfig) -> dict:
    """The split's camera: sensor_msgs/CameraInfo fields (no distortion)."""
    return {"width": config.width, "height": config.height, "K": intrinsics(config).reshape(-1).tolist(),
            "distortion_model": "plumb_bob", "D": [0.0, 0.0, 0.0, 0.0, 0.0]}


def frame_names(num_frames: int) -> list[str]:
    return [f"{t:05d}" for t in range(num_frames)]


def write_video(split_dir: Path, name: str, video: SyntheticVideo, jpeg_quality: int = 95) -> dict:
    """Frames, masks and depth of one video; returns its meta_expressions.json entry."""
    names = frame_names(video.num_frames)
    folders = {kind: split_dir / kind / name for kind in ("JPEGImages", "Annotations", "Depth")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for t, frame_name in enumerate(names):
        _write_image(folders["JPEGImages"] / f"{frame_name}.jpg", cv2.cvtColor(video.frames[t], cv2.COLOR_RGB2BGR),
                     [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        labels = np.ascontiguousarray(video.labels[t])
        mask = Image.frombytes("P", (labels.shape[1], labels.shape[0]), labels.tobytes())
        mask.putpalette(_PALETTE)
        mask.save(folders["Annotations"] / f"{frame_name}.png", optimize=False)
        _write_image(folders["Depth"] / f"{frame_name}.png", video.depth_mm[t], [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return {
        "frames": names,
        "expressions": {e.exp_id: {"exp": e.text, "obj_id": str(e.obj_id), "kind": e.kind}
                        for e in video.expressions},
        "seed": video.seed,
        "objects": {str(o.obj_id): {"shape": o.shape, "colour": o.colour, "size": o.size, "texture": o.texture,
                                    "motion": o.motion, "depth_mm": o.depth_mm} for o in video.objects},
    }


def write_dataset(root: str | os.PathLike, split: str, num_videos: int, seed: int = 0,
                  config: SyntheticConfig | None = None, progress: bool = False) -> Path:
    """Generate and write `num_videos` videos of `split` under `root`; returns the meta_expressions.json path.

    Rewriting a split replaces its meta_expressions.json; video folders are named by their seed.
    """
    config = config or SyntheticConfig()
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ValueError(f"dataset root {str(root)!r} exists and is not a directory")
    split_dir = root / split
    videos = iter_split(split, num_videos, seed, config)  # validates split / seed / count first
    split_dir.mkdir(parents=True, exist_ok=True)
    if progress:
        from tqdm import tqdm

        videos = tqdm(videos, total=num_videos, desc=f"synthetic {split}", unit="video")
    meta = {"videos": {}}
    for name, video in videos:
        meta["videos"][name] = write_video(split_dir, name, video, config.jpeg_quality)
    (split_dir / "camera_info.json").write_text(json.dumps(camera_info(config), indent=1) + "\n")
    meta_path = root / "meta_expressions" / split / "meta_expressions.json"
    meta_path.parent.mkdir(parents=True, exist_ok=True)
    partial = meta_path.with_suffix(".json.partial")
    partial.write_text(json.dumps(meta, indent=1) + "\n")
    partial.replace(meta_path)
    return meta_path


def _write_image(path: Path, image: np.ndarray, params: list[int]) -> None:
    if not cv2.imwrite(str(path), image, params):
        raise OSError(f"could not write {path}")
