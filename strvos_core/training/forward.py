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

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from strvos_core.modeling.streamingrvos import StreamingRVOSModel
from strvos_core.modeling.vision import image_tokens
from strvos_core.processing.prompt import STOP_WORDS
from strvos_core.training import losses
from strvos_core.training.config import LossSection
from strvos_core.training.data import Click, PreparedFrame, Sample, low_res_mask, prepare_frame


@dataclass
class FrameOutput:
    low_res_logits: torch.Tensor  # [1, 1, S/4, S/4]
    lm_loss_sum: torch.Tensor
    lm_tokens: int
    seg_hidden: torch.Tensor  # [1, Cl], with grad
    state_in: torch.Tensor | None  # what was written over <TIME_CONTEXT>
    prompt: torch.Tensor | None = None  # [1, 256] text_hidden_fcs(seg_hidden): SAM 2's language token


class TrainingModel(nn.Module):
    """Wraps the model so DDP sees one module whose forward returns the losses of a list of samples."""

    def __init__(self, model: StreamingRVOSModel, loss_config: LossSection) -> None:
        super().__init__()
        self.model = model
        self.loss_config = loss_config
        self.last_frames: list[list[FrameOutput]] = []  # per sample target, per frame (for tests)
        cfg = model.config.language
        # training-only head (loss.seg_words_weight): which vocabulary words the expression holds
        prompt_dim = model.text_hidden_fcs[-2].out_features
        self.word_head = nn.Linear(prompt_dim, cfg.vocab_size) if loss_config.seg_words_weight > 0 else None

    def answer_ids(self, answer: str) -> torch.Tensor:
        """[A] ids of the answer plus the end-of-turn token that stops generation."""
        ids = self.model.tokenizer(answer + STOP_WORDS[0], add_special_tokens=False)["input_ids"]
        return torch.tensor(ids, device=self.model.device)

    def frame_forward(self, frame: PreparedFrame, expression: str, answer: torch.Tensor,
                      state: torch.Tensor | None, features: tuple | None = None) -> FrameOutput:
        """One expression on one frame; `features` (from `frame_features`) shares the image work between the
        expressions of a frame."""
        model = self.model
        tokens, sam = features if features is not None else self.frame_features(frame)
        prompt = model.prompt_ids(expression, frame.tiles.shape[0])
        ids = torch.cat([prompt, answer[None]], dim=1)
        embeds = model.prompt_embeddings(ids, tokens, state)
        hidden = model.language_model.model(inputs_embeds=embeds).last_hidden_state[0]
        start = prompt.shape[1]
        answer_states = hidden[start - 1:-1]
        if not self.loss_config.lm_backbone_grad:
            answer_states = answer_states.detach()
        logits = model.language_model.lm_head(answer_states)
        lm_sum, lm_tokens = losses.answer_cross_entropy(logits, ids[0, start:])
        seg_positions = torch.nonzero(ids[0] == model.token_ids.seg).flatten()
        if seg_positions.numel() != 1:
            raise ValueError(f"training answer must hold exactly one [SEG], found {seg_positions.numel()}")
        seg_hidden = hidden[seg_positions]
        prompt_token = model.text_hidden_fcs(seg_hidden)
        pred = model.grounding_encoder.predict_mask(sam, prompt_token)
        return FrameOutput(pred.low_res_logits, lm_sum, lm_tokens, seg_hidden, state, prompt_token)

    def frame_features(self, frame: PreparedFrame) -> tuple:
        """The LLM image tokens and the SAM 2 features of a frame (the per-frame work shared by its targets)."""
        model = self.model
        device = model.device
        tokens = image_tokens(model.vision_model, model.mlp1, frame.tiles.to(device, model.dtype), model.config)
        tokens = tokens.reshape(-1, tokens.shape[-1])
        encoder_trains = any(p.requires_grad for p in model.grounding_encoder.sam2_model.image_encoder.parameters())
        with torch.set_grad_enabled(encoder_trains and torch.is_grad_enabled()):
            sam = model.grounding_encoder.image_features(frame.sam_image.to(device, model.dtype))
        return tokens, sam

    def forward(self, samples: list[Sample], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        cfg = self.model.config
        lm_sum, lm_tokens = 0.0, 0
        logits, targets = [], []
        click_losses: list[torch.Tensor] = []
        seg_click: list[torch.Tensor] = []
        seg_words: list[torch.Tensor] = []
        self.last_frames = []
        for sample in samples:
            answers = [self.answer_ids(target.answer) for target in sample.targets]
            words = [self.expression_words(t.expression) for t in sample.targets] if self.word_head is not None else []
            states: list[torch.Tensor | None] = [None] * len(sample.targets)
            outputs: list[list[FrameOutput]] = [[] for _ in sample.targets]
            for t, frame in enumerate(sample.frames):
                prepared = prepare_frame(frame, sample.targets[0].masks[t], cfg)
                features = self.frame_features(prepared)
                if sample.clicks:
                    click_losses.extend(self.click_losses(features[1], sample.clicks[t], frame.shape[:2]))
                for k, target in enumerate(sample.targets):
                    out = self.frame_forward(prepared, target.expression, answers[k], states[k], features)
                    outputs[k].append(out)
                    lm_sum = lm_sum + out.lm_loss_sum
                    lm_tokens += out.lm_tokens
                    logits.append(out.low_res_logits)
                    targets.append(low_res_mask(target.masks[t], cfg))
                    if self.word_head is not None:  # on SAM 2's prompt token: what the decoder actually sees
                        seg_words.append(self.seg_words_loss(out.prompt, words[k]))
                    if self.loss_config.seg_click_weight > 0 and target.masks[t].any():
                        seg_click.append(self.seg_click_loss(out.prompt, target.masks[t]))
                    states[k] = out.seg_hidden.detach()
            self.last_frames.extend(outputs)
        lm = lm_sum / max(lm_tokens, 1)
        bce, dice = losses.mask_losses(torch.cat(logits), torch.stack(targets).to(logits[0].device),
                                       self.loss_config, generator)
        terms = losses.combine(self.loss_config, lm, bce, dice)
        out = {"loss": terms.total, "lm": terms.lm, "bce": terms.bce, "dice": terms.dice}
        extra = (("seg_words", seg_words, self.loss_config.seg_words_weight),
                 ("seg_click", seg_click, self.loss_config.seg_click_weight),
                 ("click", click_losses, self.loss_config.click_weight))
        for name, values, weight in extra:  # only the terms the config turned on (and had something to score)
            if values:
                out[name] = torch.stack(values).mean()
                out["loss"] = out["loss"] + weight * out[name]
        return out

    def expression_words(self, expression: str) -> torch.Tensor:
        """[vocab] multi-hot of the expression's token ids: the word head's target (once per target, not frame)."""
        ids = self.model.tokenizer(expression, add_special_tokens=False)["input_ids"]
        goal = torch.zeros(self.word_head.out_features, device=self.model.device)
        goal[torch.tensor(ids, device=goal.device)] = 1.0
        return goal

    def seg_words_loss(self, prompt: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """Multi-label BCE summed over the vocabulary (a mean would let "no word" win: ~5 of ~500 are positive)
        for the word head on the projected [SEG] prompt token against `expression_words`."""
        return F.binary_cross_entropy_with_logits(self.word_head(prompt[0].float()), words, reduction="sum")

    def seg_click_loss(self, prompt: torch.Tensor, mask: np.ndarray) -> torch.Tensor:
        """Normalised MSE between the [SEG] prompt token and SAM 2's click embedding at the mask's centre."""
        size = self.model.config.grounding.image_size
        ys, xs = np.nonzero(mask)
        point = torch.tensor([(xs.mean() + 0.5) * size / mask.shape[1], (ys.mean() + 0.5) * size / mask.shape[0]])
        with torch.no_grad():
            goal = self.model.grounding_encoder.click_embedding(point)
        return F.mse_loss(prompt[0].float(), goal) / goal.pow(2).mean().clamp_min(1e-6)

    def click_losses(self, sam, clicks: list[Click], frame_hw: tuple[int, int]) -> list[torch.Tensor]:
        """SAM 2's promptable loss per click: the best (lowest-loss) of the three candidate masks, as SAM 2 trains."""
        size = self.model.config.grounding.image_size
        height, width = frame_hw
        out = []
        for click in clicks:
            point = torch.tensor([click.x * size / width, click.y * size / height])
            candidates = self.model.grounding_encoder.point_masks(sam, point)[0]  # [3, h, w]
            gt = low_res_mask(click.mask, self.model.config).to(candidates.device).expand_as(candidates)
            per_mask = (self.loss_config.bce_weight
                        * F.binary_cross_entropy_with_logits(candidates, gt, reduction="none").mean(dim=(1, 2))
                        + self.loss_config.dice_weight * losses.dice_per_mask(candidates.flatten(1), gt.flatten(1)))
            out.append(per_mask.min())
        return out

