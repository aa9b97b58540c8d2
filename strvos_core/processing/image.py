"""Frame validation and the two image inputs of the model, as the reference computes them with PIL.

* LLM view: dynamic tiles (tiling.py), each 448x448 (a no-op bicubic resize, as torchvision's Resize on a
  448 tile), /255, ImageNet mean/std.
* SAM 2 view: `DirectResize` squashes the frame to image_size x image_size with PIL's default resampling (no aspect
  kept), /255, then mean/std. The reference builds that mean/std as bfloat16 tensors (sam2.py `preprocess_image`),
  so even its float32 path normalises with the bf16-rounded constants; we do the same, for parity.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from strvos_core.errors import StrvosError
from strvos_core.processing.tiling import choose_grid

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Frames larger than this are rejected: the LLM view never uses more than 12 tiles and SAM 2 one squashed image,
# so a bigger frame only costs memory (8000x6000 is accepted).
MAX_FRAME_PIXELS = 100_000_000
MIN_FRAME_SIDE = 1


def as_rgb_frame(frame: object, color_order: str = "rgb") -> np.ndarray:
    """Any reasonable image array -> a contiguous HxWx3 uint8 RGB array, or a StrvosError naming the problem.

    Accepts HxW or HxWx1 (grey), HxWx3 (RGB or BGR per `color_order`), HxWx4 (RGBA/BGRA; alpha dropped), uint8 or
    float in [0, 1] (or [0, 255] when the maximum exceeds 1), bool, other integer types in 0..255, any strides.
    """
    if color_order not in ("rgb", "bgr"):
        raise StrvosError(f"color_order must be 'rgb' or 'bgr', got {color_order!r}")
    if isinstance(frame, Image.Image):
        frame = np.asarray(frame.convert("RGB"))
    if not isinstance(frame, np.ndarray):
        raise StrvosError(f"frame must be a numpy array (HxWx3 uint8 RGB), got {type(frame).__name__}")
    array = frame
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim != 3 or array.shape[2] not in (3, 4):
        raise StrvosError(f"frame must be HxW, HxWx1, HxWx3 or HxWx4, got shape {tuple(frame.shape)}")
    array = array[:, :, :3]
    height, width = array.shape[:2]
    if height < MIN_FRAME_SIDE or width < MIN_FRAME_SIDE:
        raise StrvosError(f"frame is empty: shape {tuple(frame.shape)}")
    if height * width > MAX_FRAME_PIXELS:
        raise StrvosError(f"frame of {width}x{height} exceeds the {MAX_FRAME_PIXELS} pixel limit")
    array = _to_uint8(array)
    if color_order == "bgr":
        array = array[:, :, ::-1]
    return np.ascontiguousarray(array)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise StrvosError("frame has NaN or infinite values")
        scale = 255.0 if float(array.max(initial=0.0)) <= 1.0 else 1.0
        return np.clip(np.rint(array * scale), 0, 255).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        if array.min(initial=0) < 0 or array.max(initial=0) > 255:
            raise StrvosError(f"integer frame of dtype {array.dtype} must hold values in 0..255")
        return array.astype(np.uint8)
    raise StrvosError(f"unsupported frame dtype {array.dtype}")


def normalisation_table(mean: tuple[float, ...], std: tuple[float, ...],
                        constants_dtype: torch.dtype = torch.float32) -> np.ndarray:
    """[3, 256] float32: (v / 255 - mean_c) / std_c for every uint8 value v, computed with the same float32 torch
    ops as ToTensor + Normalize. Each output depends only on (v, c), so a look-up is bit-identical to normalising
    the pixels, and costs one gather instead of four passes over the image."""
    mean_t = torch.tensor(mean, dtype=constants_dtype).float()
    std_t = torch.tensor(std, dtype=constants_dtype).float()
    values = torch.arange(256, dtype=torch.uint8).float() / 255.0
    return ((values[None, :] - mean_t[:, None]) / std_t[:, None]).numpy()


_LLM_TABLE = normalisation_table(IMAGENET_MEAN, IMAGENET_STD)
_SAM2_TABLE = normalisation_table(IMAGENET_MEAN, IMAGENET_STD, torch.bfloat16)


def _normalise_planes(planes: np.ndarray, table: np.ndarray) -> torch.Tensor:
    """[n, 3, H, W] uint8 -> [n, 3, H, W] float32 via the per-channel table (one contiguous gather per plane)."""
    planes = np.ascontiguousarray(planes)
    out = np.empty(planes.shape, dtype=np.float32)
    for i in range(planes.shape[0]):
        for c in range(3):
            np.take(table[c], planes[i, c], out=out[i, c], mode="clip")  # uint8 indices are always in range
    return torch.from_numpy(out)


def llm_tiles(frame: np.ndarray, tile: int = 448, min_tiles: int = 1, max_tiles: int = 12,
              use_thumbnail: bool = True) -> torch.Tensor:
    """[n_tiles, 3, tile, tile] float32, ImageNet-normalised (the reference's `transformer` over its tiles).

    The tiles of `tiling.tile_image`, cut by slicing the resized frame once instead of one PIL crop per tile.
    torchvision's Resize((448, 448), BICUBIC) on a 448x448 PIL tile is PIL's identity copy: nothing to do.
    """
    image = Image.fromarray(frame)
    cols, rows = choose_grid(image.width, image.height, min_tiles, max_tiles, tile)
    resized = np.asarray(image.resize((cols * tile, rows * tile)))
    planes = resized.reshape(rows, tile, cols, tile, 3).transpose(0, 2, 4, 1, 3).reshape(rows * cols, 3, tile, tile)
    if use_thumbnail and rows * cols != 1:
        thumbnail = np.asarray(image.resize((tile, tile))).transpose(2, 0, 1)[None]
        planes = np.concatenate([planes, thumbnail])
    return _normalise_planes(planes, _LLM_TABLE)


def sam2_image(frame: np.ndarray, size: int = 1024) -> torch.Tensor:
    """[1, 3, size, size] float32: DirectResize (PIL default resample) + normalisation with bf16-rounded constants."""
    squashed = np.asarray(Image.fromarray(frame).resize((size, size)))
    return _normalise_planes(squashed.transpose(2, 0, 1)[None], _SAM2_TABLE)
