"""What every backend provides (see docs/ARCHITECTURE.md, "Backend and session contract")."""
from __future__ import annotations

import gc

import numpy as np
import torch

from strvos_core.errors import StrvosError
from strvos_core.processing.image import as_rgb_frame
from strvos_core.processing.prompt import clean_expression
from strvos_core.session import Session, TargetResult


class Backend:
    """A loaded model that opens sessions. Subclasses set `self.model` and implement `start_session`."""

    name = "backend"

    def __init__(self) -> None:
        self.model = None

    def _require_model(self):
        if self.model is None:
            raise StrvosError(f"backend {self.name!r} was released; create a new one")
        return self.model

    def start_session(self, targets: dict[str, str] | list[str] | str | None = None) -> Session:
        raise NotImplementedError

    def segment_image(self, image: np.ndarray, expression: str, color_order: str = "rgb") -> TargetResult:
        """Image mode (RefCOCO, the reference's `predict_forward` on an image): tiled frame, RefCOCO's question,
        the learned time-context token, and the first [SEG]'s mask."""
        model = self._require_model()
        rgb = as_rgb_frame(image, color_order)
        expression = clean_expression(expression)
        out = model.segment(model.encode_frame(rgb), expression, None, mode="image")
        return TargetResult("image", expression, out.mask, out.score, out.has_seg, out.text, out.attention,
                            out.click)

    def release(self) -> None:
        """Free the model (and its GPU memory); the backend is unusable afterwards."""
        model, self.model = self.model, None
        device = getattr(model, "device", None)
        del model
        gc.collect()
        if device is not None and getattr(device, "type", "") == "cuda":
            torch.cuda.empty_cache()
