"""The teacher-forced training forward, built from the inference model's own modules and helpers.

Per frame (as `StreamingRVOSModel.encode_frame` + `segment`, with the answer given instead of generated):
  tiles -> `image_tokens` (ViT, pixel shuffle, mlp1); prompt ids from `prompt_ids` (the inference prompt) followed
  by the answer ids ("Sure, [SEG].<|im_end|>"); `prompt_embeddings` writes the image tokens and the time-context
  state; one causal pass of the Qwen2 backbone gives post-norm last-layer hidden states; lm_head at the positions
  before each answer token -> cross-entropy. The [SEG] hidden state is the one AT the [SEG] token's own position:
  the state greedy decoding computes when it feeds the generated [SEG] back (language.greedy_decode), i.e. what
  inference carries and projects. text_hidden_fcs -> SAM 2 `predict_mask` -> low-res logits -> mask losses.
Streaming recurrence (stage 2): frame t's <TIME_CONTEXT> input is frame t-1's [SEG] hidden state, detached (no
backpropagation through time, as the reference's stage-1 video branch); frame 0 uses the learned embedding.
Unlike the reference (loss on the last frame only), every frame's answer and mask are supervised.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from strvos_core.modeling.streamingrvos import StreamingRVOSModel
from strvos_core.modeling.vision import image_tokens
from strvos_core.processing.prompt import STOP_WORDS
from strvos_core.training import losses
from strvos_core.training.config import LossSection
from strvos_core.training.data import PreparedFrame, Sample, prepare_frame


@dataclass
class FrameOutput:
    low_res_logits: torch.Tensor  # [1, 1, S/4, S/4]
    lm_loss_sum: torch.Tensor
    lm_tokens: int
    seg_hidden: torch.Tensor  # [1, Cl], with grad
    state_in: torch.Tensor | None  # what was written over <TIME_CONTEXT>


class TrainingModel(nn.Module):
    """Wraps the model so DDP sees one module whose forward returns the losses of a list of samples."""

    def __init__(self, model: StreamingRVOSModel, loss_config: LossSection) -> None:
        super().__init__()
        self.model = model
        self.loss_config = loss_config
        self.last_frames: list[list[FrameOutput]] = []  # per sample, per frame (for inspection in tests)

    def answer_ids(self, answer: str) -> torch.Tensor:
        """[A] ids of the answer plus the end-of-turn token that stops generation."""
        ids = self.model.tokenizer(answer + STOP_WORDS[0], add_special_tokens=False)["input_ids"]
        return torch.tensor(ids, device=self.model.device)

    def frame_forward(self, frame: PreparedFrame, expression: str, answer: torch.Tensor,
                      state: torch.Tensor | None) -> FrameOutput:
        model = self.model
        cfg = model.config
        device = model.device
        tokens = image_tokens(model.vision_model, model.mlp1, frame.tiles.to(device, model.dtype), cfg)
        tokens = tokens.reshape(-1, tokens.shape[-1])
        encoder_trains = any(p.requires_grad for p in model.grounding_encoder.sam2_model.image_encoder.parameters())
        with torch.set_grad_enabled(encoder_trains and torch.is_grad_enabled()):
            sam = model.grounding_encoder.image_features(frame.sam_image.to(device, model.dtype))
        prompt = model.prompt_ids(expression, frame.tiles.shape[0])
        ids = torch.cat([prompt, answer[None]], dim=1)
        embeds = model.prompt_embeddings(ids, tokens, state)
        hidden = model.language_model.model(inputs_embeds=embeds).last_hidden_state[0]
        start = prompt.shape[1]
        logits = model.language_model.lm_head(hidden[start - 1:-1])
        lm_sum, lm_tokens = losses.answer_cross_entropy(logits, ids[0, start:])
        seg_positions = torch.nonzero(ids[0] == model.token_ids.seg).flatten()
        if seg_positions.numel() != 1:
            raise ValueError(f"training answer must hold exactly one [SEG], found {seg_positions.numel()}")
        seg_hidden = hidden[seg_positions]
        pred = model.grounding_encoder.predict_mask(sam, model.text_hidden_fcs(seg_hidden))
        return FrameOutput(pred.low_res_logits, lm_sum, lm_tokens, seg_hidden, state)

    def forward(self, samples: list[Sample], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        cfg = self.model.config
        lm_sum, lm_tokens = 0.0, 0
        logits, targets = [], []
        self.last_frames = []
        for sample in samples:
            answer = self.answer_ids(sample.answer)
            state = None
            outputs = []
            for frame, mask in zip(sample.frames, sample.masks, strict=True):
                prepared = prepare_frame(frame, mask, cfg)
                out = self.frame_forward(prepared, sample.expression, answer, state)
                outputs.append(out)
                lm_sum = lm_sum + out.lm_loss_sum
                lm_tokens += out.lm_tokens
                logits.append(out.low_res_logits)
                targets.append(prepared.gt_low_res)
                state = out.seg_hidden.detach()
            self.last_frames.append(outputs)
        lm = lm_sum / max(lm_tokens, 1)
        bce, dice = losses.mask_losses(torch.cat(logits), torch.stack(targets).to(logits[0].device),
                                       self.loss_config, generator)
        terms = losses.combine(self.loss_config, lm, bce, dice)
        return {"loss": terms.total, "lm": terms.lm, "bce": terms.bce, "dice": terms.dice}

