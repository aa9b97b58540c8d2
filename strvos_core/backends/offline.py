"""The `sa2va-offline` baseline: Sa2VA's video path (the reference's `predict_forward` for video) run on the clip
seen so far, re-processed from scratch at every new frame.

At frame t: the first (up to) 5 frames of the clip, each one 448x448 resize (256 tokens, no tiling), go to the LLM
in one prompt ("<img>..</img><context><TIME_CONTEXT></context>" per frame, joined by newlines, learned
<TIME_CONTEXT> embedding); the [SEG] state after text_hidden_fcs prompts SAM 2 on every frame of the clip so far
(the image encoder runs on all t+1 frames). The mask returned is the current frame's. (The reference returns frame
0's mask only; returning the current one is what a per-frame comparison needs.) Per-frame cost therefore grows
linearly with the clip; nothing is carried between steps except the frames themselves. A model with
`grounding.attention_click` is decoded here without its click (the LLM's views are the clip's first frames, so its
attention says nothing about where the target is in the current one), and with the reference's bilinear resize
whatever its `grounding.mask_refine_radius` (the baseline is Sa2VA's path; it is compared for speed, not masks).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from strvos_core.backends.base import Backend
from strvos_core.modeling.language import greedy_decode
from strvos_core.processing.image import IMAGENET_MEAN, IMAGENET_STD, sam2_image
from strvos_core.processing.prompt import QWEN_CHAT_INSTRUCTION, image_block, question_text
from strvos_core.session import Session, TargetResult

LLM_FRAMES = 5


class OfflineSa2VASession(Session):
    def __init__(self, model, targets=None, max_new_tokens: int | None = None) -> None:
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.frames: list[np.ndarray] = []
        super().__init__(targets)

    def reset(self) -> None:
        super().reset()
        self.frames = []

    def _run(self, frame: np.ndarray, timings: dict[str, float]) -> dict[str, TargetResult]:
        import time

        model, cfg = self.model, self.model.config
        if self.frames and self.frames[0].shape != frame.shape:
            self.frames = []  # a new clip: frames of one clip share one size, as the reference asserts
        self.frames.append(frame)
        start = time.perf_counter()
        mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
        views = [np.asarray(Image.fromarray(f).resize((cfg.tile_size, cfg.tile_size))) for f in self.frames[:LLM_FRAMES]]
        pixels = torch.stack([(torch.from_numpy(v.copy()).permute(2, 0, 1).float() / 255 - mean) / std for v in views])
        sam_inputs = [sam2_image(f, cfg.grounding.image_size) for f in self.frames]
        timings["preprocess"] += time.perf_counter() - start
        start = time.perf_counter()
        # a motion-input model sees each view's difference from the one before (none for the first)
        previous = torch.cat([pixels[:1], pixels[:-1]]) if model.uses_previous_frame else None
        tokens = model.encode_tiles(pixels, previous).reshape(-1, cfg.language.hidden_size)
        timings["vision"] += time.perf_counter() - start
        start = time.perf_counter()
        with model._autocast():
            sam_features = [model.grounding_encoder.encode_image(x.to(model.device, model.dtype)) for x in sam_inputs]
        timings["sam2"] += time.perf_counter() - start
        height, width = frame.shape[:2]
        results = {}
        for target_id, expression in self._targets.items():
            start = time.perf_counter()
            blocks = "\n".join([image_block(1, cfg.num_image_token)] * len(views))
            text = QWEN_CHAT_INSTRUCTION.format(input=question_text(expression).replace("<image>", blocks))
            ids = torch.tensor([model.tokenizer(text, add_special_tokens=False)["input_ids"]], device=model.device)
            embeds = model.prompt_embeddings(ids, tokens, None)
            out = greedy_decode(model.language_model, embeds, self.max_new_tokens or cfg.max_new_tokens,
                                model.token_ids.stop_ids)
            fed = torch.tensor(out.token_ids[:-1], device=model.device, dtype=torch.long)
            seg = out.fed_hidden[fed == model.token_ids.seg]
            answer = model.tokenizer.decode(out.token_ids, skip_special_tokens=False).strip()
            timings["llm"] += time.perf_counter() - start
            mask, score = np.zeros((height, width), bool), 0.0
            if seg.shape[0]:
                start = time.perf_counter()
                with torch.no_grad(), model._autocast():
                    prompt = model.text_hidden_fcs(seg[-1:])
                    preds = [model.grounding_encoder.decode(feats, prompt) for feats in sam_features]
                    current = preds[-1]
                    logits = F.interpolate(current.low_res_logits, size=(height, width), mode="bilinear",
                                           align_corners=False)
                    mask = (logits[0, 0].sigmoid() > 0.5).cpu().numpy()
                    score = float((current.iou * current.object_score_logit.sigmoid()).clamp(0, 1)[0])
                timings["sam2"] += time.perf_counter() - start
            results[target_id] = TargetResult(target_id, expression, mask, score, bool(seg.shape[0]), answer)
        return results


class OfflineSa2VABackend(Backend):
    name = "sa2va-offline"

    def __init__(self, model: str = "random:tiny", device: str = "cpu", dtype: str = "float32",
                 max_new_tokens: int | None = None) -> None:
        from strvos_core.checkpoint import load_model

        super().__init__()
        self.model = load_model(model, device, dtype)
        self.max_new_tokens = max_new_tokens

    def start_session(self, targets=None) -> OfflineSa2VASession:
        return OfflineSa2VASession(self._require_model(), targets, self.max_new_tokens)
