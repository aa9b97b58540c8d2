"""The `streamingrvos` backend: StreamingRVOS, one frame at a time, with the [SEG] state per target; and
`streamingrvos-no-state`, the same without the state (ablation)."""
from __future__ import annotations

import torch

from strvos_core.backends.base import Backend
from strvos_core.session import StreamingSession


class StreamingRVOSBackend(Backend):
    name = "streamingrvos"
    use_state = True  # feed each target's [SEG] state into its next frame (False: the no-state ablation)

    def __init__(self, model: str = "random:tiny", device: str = "cpu", dtype: str = "float32",
                 max_new_tokens: int | None = None) -> None:
        """model: "default" (the shipped model), "random:<preset>[:<answer>]", an export directory, or a hub id
        (see strvos_core.checkpoint.load_model)."""
        from strvos_core.checkpoint import load_model

        super().__init__()
        self.model = load_model(model, device, dtype)
        self.max_new_tokens = max_new_tokens

    @property
    def device(self) -> torch.device:
        return self._require_model().device

    def start_session(self, targets=None) -> StreamingSession:
        return StreamingSession(self._require_model(), targets, self.max_new_tokens, use_state=self.use_state)


class StreamingRVOSNoStateBackend(StreamingRVOSBackend):
    """`streamingrvos-no-state`, the ablation: the same model and session, but no [SEG] state is carried (and a
    model with `vision.motion_input` gets no previous frame), so every frame is segmented as a first frame (learned
    <TIME_CONTEXT>). Compared with `streamingrvos` on the same data, it measures what the streaming memory
    contributes."""

    name = "streamingrvos-no-state"
    use_state = False
