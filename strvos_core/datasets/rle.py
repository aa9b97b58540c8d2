"""COCO run-length masks (pycocotools) with shape checks and readable errors."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask

from strvos_core.datasets.errors import DatasetError


def decode_rle(rle: Any, where: str, keep_parts: bool = False) -> np.ndarray:
    """H x W uint8 mask of one RLE dict ({"size": [h, w], "counts": str|bytes}); a list of RLEs is summed
    (or, with keep_parts, decoded as pycocotools does: H x W x N)."""
    if keep_parts:
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="__array__ implementation", category=DeprecationWarning)
                return coco_mask.decode(rle)
        except (TypeError, ValueError) as e:
            raise DatasetError(f"{where}: invalid RLE: {e}") from e
    if isinstance(rle, list):
        if not rle:
            raise DatasetError(f"{where}: empty RLE list")
        masks = [decode_rle(r, where) for r in rle]
        return np.sum(np.stack(masks, axis=-1), axis=-1).astype(np.uint8)
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise DatasetError(f"{where}: expected an RLE dict with 'size' and 'counts', got {type(rle).__name__}")
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed RLE
        rle = coco_mask.frPyObjects(rle, *rle["size"])
    elif isinstance(counts, str):
        rle = {"size": rle["size"], "counts": counts.encode()}
    try:
        with warnings.catch_warnings():  # pycocotools' own numpy-2 deprecation, once per call
            warnings.filterwarnings("ignore", message="__array__ implementation", category=DeprecationWarning)
            return coco_mask.decode(rle)
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{where}: invalid RLE: {e}") from e


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """JSON-ready RLE (counts as str) of an H x W mask, as the reference stores predictions."""
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode()
    return rle


def check_mask_size(mask: np.ndarray, size: tuple[int, int], where: str) -> np.ndarray:
    if mask.shape[:2] != tuple(size):
        raise DatasetError(f"{where}: mask is {mask.shape[0]}x{mask.shape[1]} but the frame is {size[0]}x{size[1]}")
    return mask
