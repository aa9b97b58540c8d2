"""Ground-truth masks at the size of SAM 2's low-res logits (image_size / 4 per side)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from strvos_core.config import StreamingRVOSConfig


def low_res_mask(mask: np.ndarray, config: StreamingRVOSConfig, mode: str = "nearest") -> torch.Tensor:
    """The ground truth at the low-res logits' size: resized with nearest (the reference), or `mode="area"`: each
    cell's share of the object, a soft target whose perfect fit scores J&F 0.91 at 160 px where nearest's scores
    0.72 (training.ceiling)."""
    low = config.grounding.image_size // 4
    return F.interpolate(torch.from_numpy(mask.astype(np.float32))[None, None], size=(low, low), mode=mode)[0, 0]
