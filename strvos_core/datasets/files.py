"""Reading annotation files with errors that name the file (JSON, plain-data pickles, images)."""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from strvos_core.datasets.errors import DatasetError


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DatasetError(f"{what} not found: {path}")
    return path


def load_json(path: Path, what: str) -> Any:
    require_file(path, what)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"{what} {path} is not valid JSON: {e}") from e


# numpy arrays and scalars may appear in annotation pickles (e.g. RLE sizes); they are data, not code
_NUMPY_DATA_GLOBALS = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
}


class _PlainDataUnpickler(pickle.Unpickler):
    """Annotation pickles (refs(unc).p, mask_dict.pkl) hold only dicts/lists/str/bytes/numbers (and numpy
    data): refuse anything that could run code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_DATA_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: annotation pickles hold plain data only")


def load_plain_pickle(path: Path, what: str) -> Any:
    require_file(path, what)
    try:
        with open(path, "rb") as f:
            return _PlainDataUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, ValueError, UnicodeDecodeError) as e:
        raise DatasetError(f"{what} {path} could not be read as a plain-data pickle: {e}") from e


def load_rgb(path: Path) -> np.ndarray:
    """H x W x 3 uint8 RGB, decoded with PIL as the reference does (JPEG decoders differ slightly)."""
    require_file(path, "frame")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except OSError as e:
        raise DatasetError(f"frame {path} could not be decoded: {e}") from e


def load_label_png(path: Path) -> np.ndarray:
    """H x W integer labels of a palette (or grey) annotation PNG, read without colour conversion."""
    require_file(path, "annotation")
    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L", "I", "I;16", "1"):
                raise DatasetError(f"annotation {path} has mode {im.mode}; expected a palette or grey PNG")
            return np.asarray(im)
    except OSError as e:
        raise DatasetError(f"annotation {path} could not be decoded: {e}") from e


def image_size(path: Path) -> tuple[int, int]:
    """(height, width) of an image file, read from its header."""
    require_file(path, "frame")
    try:
        with Image.open(path) as im:
            return im.height, im.width
    except OSError as e:
        raise DatasetError(f"frame {path} could not be read: {e}") from e
