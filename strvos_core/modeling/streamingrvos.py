"""StreamingRVOSModel: one frame + one expression + the previous [SEG] state -> mask, score, new state.

The forward of one frame, as the reference's `predict_forward_token` loop body:
  1. `encode_frame`: tiles -> InternViT -> 256 tokens/tile; the frame squashed for SAM 2 -> image features.
     Done once per frame, shared by every target; SAM 2's image encoder runs only when a target of the frame
     emits [SEG] (on demand, once), as the reference skips it for frames without [SEG].
  2. `segment`: prompt embeddings with the image tokens written over <IMG_CONTEXT> and, when a state exists, the
     state written over <TIME_CONTEXT>; greedy decoding; the hidden state at each generated [SEG]
     (post-norm last layer); text_hidden_fcs -> SAM 2 prompt -> 256x256-class logits -> bilinear to (H, W).
     With `grounding.attention_click` (ours) SAM 2 also gets a click where that [SEG]'s last-layer attention over
     the image tokens peaks (modeling/attention_click.py).
  The new state is that [SEG] hidden state when exactly one [SEG] was generated, otherwise None (the learned
  <TIME_CONTEXT> embedding is used next frame). With several [SEG], the mask of the last one is returned (the
  reference overwrites earlier ones).
Score (ours; the reference has none): SAM 2's predicted IoU of the kept mask times sigmoid(object score logit),
in [0, 1]; 0 when no [SEG] was generated. With `grounding.score_calibration` (a, b) it is
sigmoid(a * logit(score) + b), a map fitted to the chance that the mask is right (evaluation/score_calibration.py).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from strvos_core.config import StreamingRVOSConfig
from strvos_core.modeling.attention_click import attention_click, seg_image_attention, seg_image_mass
from strvos_core.modeling.grounding import GroundingModel, ImageFeatures
from strvos_core.modeling.language import build_language_model, greedy_decode
from strvos_core.modeling.mask_refine import refine_mask
from strvos_core.modeling.score_calibration import calibrate
from strvos_core.modeling.vision import (
    VisionProjector,
    build_motion_encoder,
    build_vision_model,
    image_tokens,
    token_grid_side,
)
from strvos_core.processing import image as image_processing
from strvos_core.processing.prompt import SpecialTokenIds, build_prompt
from strvos_core.processing.tiling import num_tiles


class TextHiddenFcs(nn.Sequential):
    """Linear(Cl, Cl), ReLU, Linear(Cl, 256), Dropout(0): [SEG] hidden state -> SAM 2 prompt token."""

    def __init__(self, llm_hidden: int, out_dim: int) -> None:
        super().__init__(nn.Linear(llm_hidden, llm_hidden), nn.ReLU(inplace=True), nn.Linear(llm_hidden, out_dim),
                         nn.Dropout(0.0))


class FrameFeatures:
    """Everything per frame that does not depend on the expression, shared by every target of the frame.

    SAM 2's image features (`sam`) are computed on first use, once: a frame on which no target emits [SEG]
    never runs SAM 2's image encoder, which is by far the largest per-frame cost of the released size on a
    CPU. The reference encodes only the frames it decodes too; the features are the same either way."""

    def __init__(self, height: int, width: int, num_tiles: int, image_tokens: torch.Tensor,
                 sam: ImageFeatures | Callable[[], ImageFeatures], tiles: torch.Tensor | None = None,
                 rgb: np.ndarray | None = None) -> None:
        self.height, self.width, self.num_tiles = height, width, num_tiles
        self.image_tokens = image_tokens  # [num_tiles * 256, Cl]
        self.tiles = tiles  # [num_tiles, 3, S, S] on the model's device: the next frame's motion input (else None)
        self.rgb = rgb  # the uint8 RGB frame, kept for grounding.mask_refine_radius (else None)
        self._sam, self._encode_sam = (None, sam) if callable(sam) else (sam, None)

    @property
    def sam_encoded(self) -> bool:
        """Whether SAM 2's image encoder has run for this frame."""
        return self._sam is not None

    @property
    def sam(self) -> ImageFeatures:
        if self._sam is None:
            self._sam, self._encode_sam = self._encode_sam(), None
        return self._sam


@dataclass
class SegmentOutput:
    mask: np.ndarray  # bool [H, W], on the host
    score: float
    has_seg: bool
    text: str
    num_seg: int
    state: torch.Tensor | None  # [1, Cl] on the model's device: the next frame's <TIME_CONTEXT> input, or None
    timings: dict[str, float]
    # with grounding.attention_click: the [SEG] row's attention over the square image-token grid (float32 [side,
    # side] on the host, sums to 1; row-major over the frame as SAM 2's squashed input sees it) and SAM 2's click in
    # frame pixels (x, y); None otherwise, or when no [SEG] was answered
    attention: np.ndarray | None = None
    click: tuple[float, float] | None = None


class StreamingRVOSModel(nn.Module):
    """InternVL2.5 + Qwen2 + SAM 2 joined by [SEG]; attribute names follow the reference checkpoint's prefixes."""

    def __init__(self, config: StreamingRVOSConfig) -> None:
        super().__init__()
        self.config = config
        self.vision_model = build_vision_model(config.vision, config.downsample_ratio)
        self.mlp1 = VisionProjector(config.vision.hidden_size, config.language.hidden_size, config.downsample_ratio)
        self.motion_encoder = build_motion_encoder(config.vision, config.downsample_ratio)  # None: no motion input
        self.language_model = build_language_model(config.language)
        if config.grounding.attention_click:  # the [SEG] row's attention weights are read: sdpa returns none
            self.language_model.set_attn_implementation("eager")
        self.grounding_encoder = GroundingModel(config.grounding)
        self.text_hidden_fcs = TextHiddenFcs(config.language.hidden_size, config.text_hidden_dim)
        self.tokenizer = None
        self.token_ids: SpecialTokenIds | None = None
        self._prompt_cache: dict[tuple[str, int], torch.Tensor] = {}

    # -- set-up ---------------------------------------------------------------------------------------------
    def attach_tokenizer(self, tokenizer) -> None:
        """The tokenizer whose ids the embedding table uses (checked against the vocabulary size)."""
        ids = SpecialTokenIds.from_tokenizer(tokenizer)
        vocab = self.language_model.get_input_embeddings().weight.shape[0]
        if len(tokenizer) > vocab:
            from strvos_core.errors import StrvosError

            raise StrvosError(f"tokenizer has {len(tokenizer)} tokens but the model's vocabulary is {vocab}")
        self.tokenizer, self.token_ids = tokenizer, ids
        self._prompt_cache.clear()

    @property
    def device(self) -> torch.device:
        return self.text_hidden_fcs[0].weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.text_hidden_fcs[0].weight.dtype

    def _autocast(self):
        """SAM 2 builds float32 positional encodings internally; autocast keeps half-precision runs consistent."""
        enabled = self.dtype != torch.float32
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=enabled)

    # -- per frame ------------------------------------------------------------------------------------------
    @property
    def uses_previous_frame(self) -> bool:
        """Whether the vision path also reads the stream's previous frame (`vision.motion_input`)."""
        return bool(self.config.vision.motion_input)

    @torch.no_grad()
    def encode_tiles(self, pixel_values: torch.Tensor, previous: torch.Tensor | None = None) -> torch.Tensor:
        return image_tokens(self.vision_model, self.mlp1, pixel_values.to(self.device, self.dtype), self.config,
                            previous, self.motion_encoder)

    @torch.no_grad()
    def encode_frame(self, frame: np.ndarray, timings: dict[str, float] | None = None,
                     previous_tiles: torch.Tensor | None = None) -> FrameFeatures:
        """An HxWx3 uint8 RGB frame (see processing.image.as_rgb_frame) -> the shared per-frame features.

        The ViT runs now; SAM 2's image encoder runs when a target first needs it (its preprocessing and
        encoding are then added to ``timings`` under "preprocess" and "sam2"). `previous_tiles`, the stream's previous
        frame's `FrameFeatures.tiles`, is read by a model with `vision.motion_input` (None: a first frame)."""
        timer = _Timer(self.device, timings)
        cfg = self.config
        with timer("preprocess"):
            tiles = image_processing.llm_tiles(frame, cfg.tile_size, cfg.min_dynamic_patch, cfg.max_dynamic_patch,
                                               cfg.use_thumbnail).to(self.device, self.dtype)
        with timer("vision"):
            tokens = self.encode_tiles(tiles, previous_tiles)
        return FrameFeatures(frame.shape[0], frame.shape[1], tiles.shape[0], tokens.reshape(-1, tokens.shape[-1]),
                             lambda: self.encode_sam(frame, timer), tiles if self.uses_previous_frame else None,
                             frame if cfg.grounding.mask_refine_radius else None)

    @torch.no_grad()
    def encode_sam(self, frame: np.ndarray, timer: _Timer | None = None) -> ImageFeatures:
        """SAM 2's image features of an HxWx3 uint8 RGB frame (the frame squashed to SAM 2's square input)."""
        timer = timer or _Timer(self.device, None)
        with timer("preprocess"):
            sam_input = image_processing.sam2_image(frame, self.config.grounding.image_size)
        with timer("sam2"), self._autocast():
            return self.grounding_encoder.encode_image(sam_input.to(self.device, self.dtype))

    def prompt_ids(self, expression: str, tiles: int, mode: str = "video") -> torch.Tensor:
        """[1, N] token ids of the chat prompt (cached per expression, tile count and mode)."""
        if self.tokenizer is None:
            raise RuntimeError("attach_tokenizer() first")
        key = (expression, tiles, mode)
        if key not in self._prompt_cache:
            text = build_prompt(expression, tiles, self.config.num_image_token, mode)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            self._prompt_cache[key] = torch.tensor([ids], device=self.device)
            if len(self._prompt_cache) > 256:
                self._prompt_cache.pop(next(iter(self._prompt_cache)))
        return self._prompt_cache[key]

    def prompt_embeddings(self, ids: torch.Tensor, tokens: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
        """Token embeddings with the image tokens and (when given) the time-context state written in."""
        assert self.token_ids is not None
        embeds = self.language_model.get_input_embeddings()(ids)[0].clone()
        image_slots = ids[0] == self.token_ids.img_context
        if int(image_slots.sum()) != tokens.shape[0]:
            raise RuntimeError(f"prompt has {int(image_slots.sum())} image slots for {tokens.shape[0]} image tokens")
        embeds[image_slots] = tokens.to(embeds.dtype)
        if state is not None:
            embeds[ids[0] == self.token_ids.time_context] = state.reshape(-1, embeds.shape[-1]).to(embeds.dtype)
        return embeds[None]

    @torch.no_grad()
    def segment(self, features: FrameFeatures, expression: str, state: torch.Tensor | None,
                max_new_tokens: int | None = None, mode: str = "video") -> SegmentOutput:
        """One target on one encoded frame.

        mode "video" is the streaming path (`predict_forward_token`): with several [SEG] the last one's mask is
        kept. mode "image" is RefCOCO's `predict_forward`: its own question and the first [SEG]'s mask.
        """
        assert self.token_ids is not None
        timings: dict[str, float] = {}
        timer = _Timer(self.device, timings)
        with timer("llm"):
            ids = self.prompt_ids(expression, features.num_tiles, mode)
            embeds = self.prompt_embeddings(ids, features.image_tokens, state)
            click_from = self.token_ids.seg if self.config.grounding.attention_click else None
            out = greedy_decode(self.language_model, embeds, max_new_tokens or self.config.max_new_tokens,
                                self.token_ids.stop_ids, attention_of=click_from)
            fed = torch.tensor(out.token_ids[:-1], device=self.device, dtype=torch.long)
            seg_hidden = out.fed_hidden[fed == self.token_ids.seg]
            text = self.tokenizer.decode(out.token_ids, skip_special_tokens=False).strip()
        num_seg = int(seg_hidden.shape[0])
        new_state = seg_hidden.clone() if num_seg == 1 else None
        if num_seg == 0:
            empty = np.zeros((features.height, features.width), dtype=bool)
            return SegmentOutput(empty, 0.0, False, text, 0, None, timings)
        click = None
        if click_from is not None:  # where the kept [SEG] looked, as a click for SAM 2
            kept = sorted(out.fed_attention)[0 if mode == "image" else -1]
            image_slots = ids[0] == self.token_ids.img_context
            gate = self.config.grounding.presence_gate
            if gate > 0 and float(seg_image_mass(out.fed_attention[kept], image_slots)) < gate:  # out of view
                empty = np.zeros((features.height, features.width), dtype=bool)
                return SegmentOutput(empty, 0.0, True, text, num_seg, new_state, timings)
            attention = seg_image_attention(out.fed_attention[kept], image_slots)
            click = attention_click(attention, self.config.grounding.image_size)
            grid = token_grid_side(attention.numel(), "grounding.attention_click")
            looked = attention.float().reshape(grid, grid).cpu().numpy()
            size = self.config.grounding.image_size  # SAM 2's input is the frame squashed to a square
            clicked = (float(click[0]) * features.width / size, float(click[1]) * features.height / size)
        sam = features.sam  # encoded here on the frame's first [SEG], timed by encode_frame's timer
        with timer("sam2"), self._autocast():
            prompt = self.text_hidden_fcs(seg_hidden[:1] if mode == "image" else seg_hidden[-1:])
            pred = self.grounding_encoder.decode(sam, prompt, click)
            logits = F.interpolate(pred.low_res_logits, size=(features.height, features.width), mode="bilinear",
                                   align_corners=False)
            probability = logits[0, 0].sigmoid()
            radius = self.config.grounding.mask_refine_radius
            if radius and features.rgb is not None:  # the frame's edges (ours); else the reference's threshold
                mask = refine_mask(probability.float().cpu().numpy(), features.rgb, radius)
            else:
                mask = (probability > 0.5).cpu().numpy()
            score = float((pred.iou * pred.object_score_logit.sigmoid()).clamp(0, 1)[0])
            if self.config.grounding.score_calibration is not None:
                score = float(calibrate(score, self.config.grounding.score_calibration))
        if click is None:
            return SegmentOutput(mask, score, True, text, num_seg, new_state, timings)
        return SegmentOutput(mask, score, True, text, num_seg, new_state, timings, looked, clicked)

    def frame_tiles(self, width: int, height: int) -> int:
        cfg = self.config
        return num_tiles(width, height, cfg.min_dynamic_patch, cfg.max_dynamic_patch, cfg.use_thumbnail,
                         cfg.tile_size)


class _Timer:
    """Adds wall seconds per stage into a dict, synchronising CUDA so GPU work is counted where it happens."""

    def __init__(self, device: torch.device, sink: dict[str, float] | None) -> None:
        self.device, self.sink = device, sink

    def __call__(self, stage: str):
        return _Stage(self, stage)


class _Stage:
    def __init__(self, timer: _Timer, stage: str) -> None:
        self.timer, self.stage = timer, stage

    def __enter__(self) -> None:
        import time

        self._sync()
        self.start = time.perf_counter()

    def __exit__(self, *exc) -> None:
        import time

        self._sync()
        if self.timer.sink is not None:
            self.timer.sink[self.stage] = self.timer.sink.get(self.stage, 0.0) + time.perf_counter() - self.start

    def _sync(self) -> None:
        if self.timer.device.type == "cuda":
            torch.cuda.synchronize(self.timer.device)


def count_parameters(config: StreamingRVOSConfig) -> dict[str, int]:
    """Parameter counts per part, without keeping any weight in memory (each parameter is moved to the meta
    device as soon as it is registered, so a 4B build costs almost nothing)."""
    original = nn.Module.register_parameter

    def to_meta(module, name, param):
        if param is not None:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    nn.Module.register_parameter = to_meta
    try:
        model = StreamingRVOSModel(config)
    finally:
        nn.Module.register_parameter = original
    parts = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    parts["total"] = sum(parts.values())
    return parts
