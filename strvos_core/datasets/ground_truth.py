"""Ground-truth sources: RLE mask dictionaries (MeViS, ReVOS, Ref-DAVIS17) and palette PNGs (synthetic)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from strvos_core.datasets.errors import DatasetError
from strvos_core.datasets.files import load_label_png
from strvos_core.datasets.items import Video, VideoExpression
from strvos_core.datasets.rle import check_mask_size, decode_rle


class MaskDictGroundTruth:
    """`mask_dict[str(anno_id)][frame]` = RLE or null; an expression's truth is the sum over its anno_ids.

    The optional foreground dictionary ({video: {"masks_rle": [RLE per frame]}}) is ReVOS's.
    """

    def __init__(self, mask_dict: Any, mask_file: Path, anno_ids: dict[tuple[str, str], list[int]],
                 foreground: Any = None, foreground_file: Path | None = None) -> None:
        if not isinstance(mask_dict, dict):
            raise DatasetError(f"mask file {mask_file} must hold an object keyed by anno_id")
        self.mask_dict = mask_dict
        self.mask_file = mask_file
        self.anno_ids = anno_ids
        self.foreground_dict = foreground
        self.foreground_file = foreground_file

    def validate(self, videos: list[Video]) -> None:
        """Every anno_id exists and covers every frame; every video has a foreground entry when needed."""
        for video in videos:
            n = len(video.frames)
            for exp in video.expressions:
                for anno_id in self.anno_ids.get(exp.key, []):
                    entry = self.mask_dict.get(str(anno_id))
                    if entry is None:
                        raise DatasetError(f"mask file {self.mask_file}: no anno_id {anno_id} "
                                           f"(video {video.video_id!r}, expression {exp.exp_id!r})")
                    if not isinstance(entry, list) or len(entry) < n:
                        got = len(entry) if isinstance(entry, list) else type(entry).__name__
                        raise DatasetError(f"mask file {self.mask_file}: anno_id {anno_id} has {got} frames, "
                                           f"video {video.video_id!r} has {n}")
            if self.foreground_dict is not None:
                fg = self.foreground_dict.get(video.video_id)
                if not isinstance(fg, dict) or len(fg.get("masks_rle") or []) < n:
                    raise DatasetError(f"foreground file {self.foreground_file}: video {video.video_id!r} "
                                       f"needs 'masks_rle' with {n} frames")

    def frame_mask(self, video: Video, expression: VideoExpression, index: int, size: tuple[int, int]) -> np.ndarray:
        total = np.zeros(size, dtype=np.uint8)
        ann_index = video.annotation_index[index] if video.annotation_index else index
        for anno_id in self.anno_ids.get(expression.key, []):
            rle = self.mask_dict[str(anno_id)][ann_index]
            if rle:
                where = f"mask file {self.mask_file}, anno_id {anno_id}, frame {video.frames[index]!r}"
                total += check_mask_size(decode_rle(rle, where), size, where)
        return total

    def foreground(self, video: Video, index: int, size: tuple[int, int]) -> np.ndarray | None:
        if self.foreground_dict is None:
            return None
        ann_index = video.annotation_index[index] if video.annotation_index else index
        rle = self.foreground_dict[video.video_id]["masks_rle"][ann_index]
        where = f"foreground file {self.foreground_file}, video {video.video_id!r}, frame {video.frames[index]!r}"
        return check_mask_size(decode_rle(rle, where), size, where)


class PaletteGroundTruth:
    """`<annotation_root>/<video>/<frame>.png` with value = object id; an expression names its obj_id(s)."""

    def __init__(self, annotation_root: Path, obj_ids: dict[tuple[str, str], list[int]]) -> None:
        self.annotation_root = annotation_root
        self.obj_ids = obj_ids

    def frame_mask(self, video: Video, expression: VideoExpression, index: int, size: tuple[int, int]) -> np.ndarray:
        path = self.annotation_root / video.video_id / f"{video.frames[index]}.png"
        labels = check_mask_size(load_label_png(path), size, f"annotation {path}")
        total = np.zeros(size, dtype=np.uint8)
        for obj_id in self.obj_ids.get(expression.key, []):
            total += (labels == obj_id).astype(np.uint8)
        return total

    def foreground(self, video: Video, index: int, size: tuple[int, int]) -> np.ndarray | None:
        return None


def parse_ids(value: Any, where: str) -> list[int]:
    """obj_id / anno_id fields come as an int, a numeric str, or a list of them."""
    values = value if isinstance(value, list) else [value]
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{where}: ids must be integers, got {value!r}") from e
