"""The teacher-forced training forward, built from the inference model's own modules and helpers.

Per frame (as `StreamingRVOSModel.encode_frame` + `segment`, with the answer given instead of generated):
  tiles -> `image_tokens` (ViT, pixel shuffle, mlp1); prompt ids from `prompt_ids` (the inference prompt) followed
  by the answer ids ("Sure, [SEG].<|im_end|>"); `prompt_embeddings` writes the image tokens and the time-context
  state; one causal pass of the Qwen2 backbone gives post-norm last-layer hidden states; lm_head at the positions
  before each answer token -> cross-entropy. The [SEG] hidden state is the one AT the [SEG] token's own position:
  the state greedy decoding computes when it feeds the generated [SEG] back (language.greedy_decode), i.e. what
  inference carries and projects. text_hidden_fcs -> SAM 2 `predict_mask` -> low-res logits -> mask losses.
Streaming recurrence (stage 2): frame t's <TIME_CONTEXT> input is frame t-1's [SEG] hidden state, detached (no
backpropagation through time, as the reference's stage-1 video branch; `loss.state_grad` keeps the graph, so later
frames' losses train what the state carries); frame 0 uses the learned embedding.
Unlike the reference (loss on the last frame only), every frame's answer and mask are supervised.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import DynamicCache

from strvos_core.datasets.synthetic.vocabulary import MOTIONS
from strvos_core.modeling.attention_click import attention_click, seg_image_attention, seg_image_mass
from strvos_core.modeling.streamingrvos import StreamingRVOSModel
from strvos_core.modeling.vision import image_tokens, token_grid_side
from strvos_core.processing import image as image_processing
from strvos_core.processing.prompt import STOP_WORDS
from strvos_core.training import losses
from strvos_core.training.attributes import (
    CANDIDATE_GRID,
    GROUP_SIZES,
    AttributeHead,
    attribute_targets,
    candidate_map,
    cell_centres,
    object_cell_loss,
    said_attribute_loss,
    said_attributes,
)
from strvos_core.training.config import LossSection
from strvos_core.training.data import Click, PreparedFrame, Sample, low_res_mask, prepare_frame
from strvos_core.training.motion import STEP_CLASSES, said_motion, step_loss, step_targets
from strvos_core.training.promptable import NOT_A_POINT, POSITIVE, PromptableLoss, exemplar_tokens
from strvos_core.training.teacher import ExpressionTeacher


@dataclass
class FrameOutput:
    """One target on one frame. An answer without [SEG] (data.absent_answer: the target out of view) has only the
    language-model fields; everything from `low_res_logits` to the [SEG] ones is None."""

    low_res_logits: torch.Tensor | None  # [1, 1, S/4, S/4] (None also when SAM 2 does not run)
    lm_loss_sum: torch.Tensor
    lm_tokens: int
    seg_hidden: torch.Tensor | None  # [1, Cl], with grad
    state_in: torch.Tensor | None  # what was written over <TIME_CONTEXT>
    prompt: torch.Tensor | None = None  # [1, 256] text_hidden_fcs(seg_hidden): SAM 2's language token
    seg_attention: torch.Tensor | None = None  # [image tokens] last-layer [SEG] attention (loss.seg_attention_weight)
    image_values: torch.Tensor | None = None  # [image tokens, Cl] what each hands the last layer's attention output
    seg_query_state: torch.Tensor | None = None  # [Cl] the [SEG] state entering the last layer (its query's source)
    image_inputs: torch.Tensor | None = None  # [image tokens, Cl] the last layer's input there (keep_image_inputs)
    state_attention: torch.Tensor | None = None  # [] [SEG]'s attention on <TIME_CONTEXT>, mean of layers and heads
    object_score_logit: torch.Tensor | None = None  # [1] SAM 2's object score of the decoded mask
    seg_image_mass: torch.Tensor | None = None  # [] the [SEG] row's attention mass on the image tokens (heads' mean)


@contextmanager
def layer_inputs(layer: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, collects the hidden states `layer` (a decoder layer) receives, one per forward."""
    seen: list[torch.Tensor] = []
    hook = layer.register_forward_pre_hook(
        lambda _module, args, kwargs: seen.append(args[0] if args else kwargs["hidden_states"]), with_kwargs=True)
    try:
        yield seen
    finally:
        hook.remove()


def value_contributions(layer: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """[n, C] input of a Qwen2 decoder layer -> [n, C] what each token adds to a query's attention output when every
    head attends to it alone: o_proj of its value, each key/value head repeated for the query heads that share it
    (as repeat_kv lays them out). The attention output is the attention-weighted sum of these (one weight per head)."""
    attention = layer.self_attn
    values = attention.v_proj(layer.input_layernorm(hidden))
    n, groups, dim = values.shape[0], attention.num_key_value_groups, attention.head_dim
    values = values.view(n, -1, 1, dim).expand(-1, -1, groups, -1).reshape(n, -1)
    return attention.o_proj(values)


class TrainingModel(nn.Module):
    """Wraps the model so DDP sees one module whose forward returns the losses of a list of samples."""

    def __init__(self, model: StreamingRVOSModel, loss_config: LossSection) -> None:
        super().__init__()
        self.model = model
        self.loss_config = loss_config
        self.last_frames: list[list[FrameOutput]] = []  # per sample target, per frame (for tests)
        self.keep_image_inputs = False  # probes: keep each frame's last-layer input at the image tokens
        cfg = model.config.language
        # training-only heads (from-scratch aids, see training/README.md), saved with the checkpoints and never
        # exported: the word head reads the expression's words off the prompt token (loss.seg_words_weight), the
        # teacher makes a prompt token from the words alone (loss.teacher_weight), the position head reads the
        # target's centre off the [SEG] state (loss.seg_position_weight), the attribute heads read what is where off
        # SAM 2's image embedding and the LLM's image tokens (loss.attribute_weight), the said-attributes head reads
        # what the expression names off the [SEG] state entering the last layer (loss.seg_attribute_weight), the
        # candidates head where the objects the noun phrase fits are off the state fed back (loss.state_candidates_weight)
        prompt_dim = model.text_hidden_fcs[-2].out_features
        heads = {}
        if loss_config.seg_words_weight > 0:
            heads["word_head"] = nn.Linear(prompt_dim, cfg.vocab_size)
        if loss_config.teacher_weight > 0:
            heads["teacher"] = ExpressionTeacher(cfg.vocab_size, prompt_dim)
        if loss_config.seg_position_weight > 0 or loss_config.value_position_weight > 0:
            heads["seg_position"] = nn.Linear(cfg.hidden_size, 2)
        if loss_config.attribute_weight > 0:  # on what the decoder and the LLM look at
            heads["sam_attributes"] = AttributeHead(model.grounding_encoder.sam2_model.hidden_dim)
            heads["llm_attributes"] = AttributeHead(cfg.hidden_size, position=True)
        if loss_config.seg_attribute_weight > 0:
            heads["said_attributes"] = nn.Linear(cfg.hidden_size, sum(GROUP_SIZES))
        if loss_config.state_candidates_weight > 0:
            heads["state_candidates"] = nn.Linear(cfg.hidden_size, CANDIDATE_GRID ** 2)
        if loss_config.motion_cell_weight > 0:  # which way the objects under each image token moved
            if not model.uses_previous_frame:
                raise ValueError("loss.motion_cell_weight needs a model that sees the previous frame "
                                 "(vision.motion_input; model.motion_input widens an init export)")
            heads["motion_cells"] = nn.Linear(cfg.hidden_size, len(STEP_CLASSES) + 1)
        if loss_config.seg_motion_weight > 0:  # which motion word the expression names
            heads["said_motion"] = nn.Linear(cfg.hidden_size, len(MOTIONS) + 1)
        self.training_heads = nn.ModuleDict(heads) if heads else None
        if (loss_config.seg_attention_weight > 0 or loss_config.state_attention_weight > 0
                or loss_config.seg_presence_weight > 0 or model.config.grounding.attention_click):
            model.language_model.set_attn_implementation("eager")  # sdpa returns no attention weights

    @property
    def word_head(self) -> nn.Module | None:
        return self.training_heads["word_head"] if self.training_heads and "word_head" in self.training_heads else None

    @property
    def teacher(self) -> nn.Module | None:
        return self.training_heads["teacher"] if self.training_heads and "teacher" in self.training_heads else None

    def answer_ids(self, answer: str) -> torch.Tensor:
        """[A] ids of the answer plus the end-of-turn token that stops generation."""
        ids = self.model.tokenizer(answer + STOP_WORDS[0], add_special_tokens=False)["input_ids"]
        return torch.tensor(ids, device=self.model.device)

    def frame_forward(self, frame: PreparedFrame, expression: str, answer: torch.Tensor,
                      state: torch.Tensor | None, features: tuple | None = None) -> FrameOutput:
        """One expression on one frame; `features` (from `frame_features`) shares the image work between the
        expressions of a frame."""
        return self.frame_forward_many(frame, [expression], [answer], [state], features)[0]

    def frame_forward_many(self, frame: PreparedFrame, expressions: list[str], answers: list[torch.Tensor],
                           states: list[torch.Tensor | None], features: tuple | None = None) -> list[FrameOutput]:
        """Several expressions on one frame. The prompt's start (chat header and image tokens) is the same for
        all of them and, the attention being causal, so are its hidden states: the backbone runs it once and
        each expression's rest (its text, time context and answer) runs on that cache, the rests batched
        (right-padded: a causal row never sees the padding after it). Same maths as one pass per expression."""
        model = self.model
        tokens, sam = features if features is not None else self.frame_features(frame)
        prompts = [model.prompt_ids(e, frame.tiles.shape[0])[0] for e in expressions]
        sequences = [torch.cat([prompt, a]) for prompt, a in zip(prompts, answers, strict=True)]
        starts = [len(prompt) for prompt in prompts]
        shared = _shared_prefix(sequences, model.token_ids.time_context, min(starts) - 1)
        clicks = model.config.grounding.attention_click
        want_attention = (self.loss_config.seg_attention_weight > 0 or self.loss_config.state_attention_weight > 0
                          or self.loss_config.seg_presence_weight > 0 or clicks)
        last_layer = model.language_model.model.layers[-1]
        wants_input = (self.loss_config.value_position_weight > 0 or self.loss_config.seg_attribute_weight > 0
                       or self.loss_config.seg_motion_weight > 0 or self.keep_image_inputs)
        backbone = model.language_model.model
        image_slots = sequences[0][:shared] == model.token_ids.img_context
        # each sequence embedded once; the shared start stops before the time context, so no state is in it
        embeds = [model.prompt_embeddings(ids[None], tokens, state)[0] for ids, state in zip(sequences, states,
                                                                                           strict=True)]
        prefix_embeds = embeds[0][None, :shared]
        capture = layer_inputs(last_layer) if wants_input else nullcontext([])
        with capture as last_input:
            cache = backbone(inputs_embeds=prefix_embeds, past_key_values=DynamicCache(), use_cache=True).past_key_values
            length = max(len(ids) for ids in sequences) - shared
            rest = prefix_embeds.new_zeros(len(sequences), length, prefix_embeds.shape[-1])
            for b, embedded in enumerate(embeds):
                rest[b, : len(embedded) - shared] = embedded[shared:]
            if len(sequences) > 1:
                cache.batch_repeat_interleave(len(sequences))
            llm_out = backbone(inputs_embeds=rest, past_key_values=cache, use_cache=True,
                               output_attentions=want_attention)
        image_inputs = last_input[0][0][image_slots] if last_input else None
        image_values = None
        if image_inputs is not None and self.loss_config.value_position_weight > 0:
            image_values = value_contributions(last_layer, image_inputs)
        outputs = []
        for b, (ids, start, state) in enumerate(zip(sequences, starts, states, strict=True)):
            hidden = llm_out.last_hidden_state[b, : len(ids) - shared]
            answer_states = hidden[start - 1 - shared:-1]
            if not self.loss_config.lm_backbone_grad:
                answer_states = answer_states.detach()
            logits = model.language_model.lm_head(answer_states)
            lm_sum, lm_tokens = losses.answer_cross_entropy(logits, ids[start:])
            seg_positions = torch.nonzero(ids == model.token_ids.seg).flatten()
            if seg_positions.numel() == 0:  # "not in view": the answer is all there is to learn
                outputs.append(FrameOutput(None, lm_sum, lm_tokens, None, state))
                continue
            if seg_positions.numel() != 1:
                raise ValueError(f"training answer must hold one [SEG] or none, found {seg_positions.numel()}")
            seg = int(seg_positions[0]) - shared
            seg_hidden = hidden[seg][None]
            prompt_token = model.text_hidden_fcs(seg_hidden)
            # [heads, rest, shared + rest] -> the [SEG] row over the image tokens (the heads' mean, renormalised)
            attention = seg_image_attention(llm_out.attentions[-1][b, :, seg], image_slots) if want_attention else None
            click = attention_click(attention, model.config.grounding.image_size) if clicks else None
            pred = model.grounding_encoder.predict_mask(sam, prompt_token, click) if sam is not None else None
            low_res = pred.low_res_logits if pred is not None else None
            seg_attention = attention if self.loss_config.seg_attention_weight > 0 else None
            image_mass = None
            if self.loss_config.seg_presence_weight > 0:  # what grounding.presence_gate reads at inference
                image_mass = seg_image_mass(llm_out.attentions[-1][b, :, seg], image_slots)
            state_attention = None
            if self.loss_config.state_attention_weight > 0 and state is not None:
                slot = int(torch.nonzero(ids == model.token_ids.time_context)[0])
                state_attention = torch.stack([a[b, :, seg, slot].mean() for a in llm_out.attentions]).mean()
            seg_query_state = last_input[1][b, seg] if last_input else None
            outputs.append(FrameOutput(low_res, lm_sum, lm_tokens, seg_hidden, state, prompt_token, seg_attention,
                                       image_values, seg_query_state,
                                       image_inputs if self.keep_image_inputs else None, state_attention,
                                       pred.object_score_logit if pred is not None else None, image_mass))
        return outputs

    def frame_features(self, frame: PreparedFrame) -> tuple:
        """The LLM image tokens and the SAM 2 features of a frame (the per-frame work shared by its targets)."""
        model = self.model
        device = model.device
        tokens = image_tokens(model.vision_model, model.mlp1, frame.tiles.to(device, model.dtype), model.config,
                              frame.previous_tiles, model.motion_encoder)
        tokens = tokens.reshape(-1, tokens.shape[-1])
        if not self.uses_sam2:
            return tokens, None
        encoder_trains = any(p.requires_grad for p in model.grounding_encoder.sam2_model.image_encoder.parameters())
        with torch.set_grad_enabled(encoder_trains and torch.is_grad_enabled()):
            sam = model.grounding_encoder.image_features(frame.sam_image.to(device, model.dtype))
        return tokens, sam

    @property
    def uses_sam2(self) -> bool:
        """False where no loss looks at SAM 2 (`loss.seg_mask_weight: 0` and no SAM 2 aid): an LLM-side stage
        then skips SAM 2's image encoder and decoder altogether."""
        c = self.loss_config
        trains = any(p.requires_grad for p in self.model.grounding_encoder.parameters())
        return bool(c.seg_mask_weight > 0 or c.click_weight > 0 and trains or c.seg_click_weight > 0
                    or c.seg_exemplar_weight > 0 or c.teacher_weight > 0)

    def forward(self, samples: list[Sample], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        if samples and all(sample.prompts for sample in samples):
            return self.promptable_forward(samples)
        cfg = self.model.config
        lm_sum, lm_tokens = 0.0, 0
        logits, targets = [], []
        click_losses: list[torch.Tensor] = []
        seg_click: list[torch.Tensor] = []
        seg_exemplar: list[torch.Tensor] = []
        seg_words: list[torch.Tensor] = []
        teacher_logits: list[torch.Tensor] = []
        attribute_losses: list[torch.Tensor] = []
        attention_losses: list[torch.Tensor] = []
        presence_losses: list[torch.Tensor] = []
        position_losses: list[torch.Tensor] = []
        value_losses: list[torch.Tensor] = []
        said_losses: list[torch.Tensor] = []
        candidate_losses: list[torch.Tensor] = []
        state_attention_losses: list[torch.Tensor] = []
        object_scores: list[torch.Tensor] = []
        in_view: list[bool] = []
        motion_cell_losses: list[torch.Tensor] = []
        said_motion_losses: list[torch.Tensor] = []
        distill: list[torch.Tensor] = []
        self.last_frames = []
        for sample in samples:
            answers = [self.answer_ids(target.answer) for target in sample.targets]
            said = [said_attributes(t.expression) for t in sample.targets] \
                if self.loss_config.seg_attribute_weight > 0 else []
            named_motion = [said_motion(t.expression) for t in sample.targets] \
                if self.loss_config.seg_motion_weight > 0 else []
            words = [self.expression_words(t.expression) for t in sample.targets] if self.word_head is not None else []
            teacher_tokens = [self.teacher(self.expression_ids(t.expression)) for t in sample.targets] \
                if self.teacher is not None else []
            states: list[torch.Tensor | None] = [None] * len(sample.targets)
            outputs: list[list[FrameOutput]] = [[] for _ in sample.targets]
            for t, frame in enumerate(sample.frames):
                prepared = prepare_frame(frame, sample.targets[0].masks[t], cfg,
                                         sample.previous[t] if sample.previous else None)
                features = self.frame_features(prepared)
                if sample.clicks and features[1] is not None:
                    click_losses.extend(self.click_losses(features[1], sample.clicks[t], frame.shape[:2]))
                if self.loss_config.attribute_weight > 0:
                    attribute_losses.append(self.attribute_loss(features, sample.labels[t], sample.attributes))
                if self.loss_config.motion_cell_weight > 0 and sample.steps and sample.steps[t]:  # not a first frame
                    motion_cell_losses.append(self.motion_cell_loss(features[0], sample.labels[t], sample.steps[t]))
                blind = bool(sample.blind) and sample.blind[t]
                if blind:  # the LLM sees a blank image: where the target is must come from the state fed back
                    features = (torch.zeros_like(features[0]), features[1])
                frame_outputs = self.frame_forward_many(prepared, [t.expression for t in sample.targets], answers,
                                                        states, features)
                for k, (target, out) in enumerate(zip(sample.targets, frame_outputs, strict=True)):
                    outputs[k].append(out)
                    lm_sum = lm_sum + out.lm_loss_sum
                    lm_tokens += out.lm_tokens
                    if out.seg_hidden is None:  # answered "not in view": no [SEG], so no mask and no state
                        states[k] = None
                        continue
                    if out.object_score_logit is not None and self.loss_config.object_score_weight > 0:
                        object_scores.append(out.object_score_logit.reshape(()))
                    in_view.append(bool(target.masks[t].any()))
                    logits.append(out.low_res_logits)
                    targets.append(low_res_mask(target.masks[t], cfg, self.loss_config.mask_target))
                    if self.word_head is not None:  # on SAM 2's prompt token: what the decoder actually sees
                        seg_words.append(self.seg_words_loss(out.prompt, words[k]))
                    if self.loss_config.seg_position_weight > 0 and target.masks[t].any():
                        position_losses.append(self.position_loss(out.seg_hidden, target.masks[t]))
                    if out.image_values is not None and not blind:
                        value_losses.append(self.value_position_loss(out.image_values))
                    if said:  # every frame: the words are there whether or not the target is in view
                        said_losses.append(said_attribute_loss(
                            self.training_heads["said_attributes"](out.seg_query_state.float()), said[k]))
                    if named_motion:
                        said_motion_losses.append(F.cross_entropy(
                            self.training_heads["said_motion"](out.seg_query_state.float())[None],
                            named_motion[k][None].to(out.seg_query_state.device)))
                    if self.loss_config.state_candidates_weight > 0:  # every frame: no candidate in view is news too
                        candidate_losses.append(self.candidates_loss(out.seg_hidden, target.expression,
                                                                     sample.labels[t], sample.attributes))
                    if blind and out.state_attention is not None:  # only the state can say where the target is
                        state_attention_losses.append(-out.state_attention.float().clamp_min(1e-12).log())
                    if out.seg_attention is not None and target.masks[t].any() and not blind:
                        attention_losses.append(self.attention_loss(out.seg_attention, target.masks[t]))
                    if out.seg_image_mass is not None and not blind:  # a blank image shows no target either way
                        presence_losses.append(self.presence_loss(out.seg_image_mass, bool(target.masks[t].any())))
                    if teacher_tokens:  # the teacher's own masks, and the [SEG] token pulled onto its token
                        pred = self.model.grounding_encoder.predict_mask(features[1], teacher_tokens[k])
                        teacher_logits.append(pred.low_res_logits)
                        if self.loss_config.teacher_distill_weight > 0:
                            distill.append(normalised_mse(out.prompt, teacher_tokens[k].detach()))
                    if self.loss_config.seg_click_weight > 0 and target.masks[t].any():
                        seg_click.append(self.seg_click_loss(out.prompt, target.masks[t]))
                    if self.loss_config.seg_exemplar_weight > 0 and target.masks[t].any():
                        seg_exemplar.append(self.seg_exemplar_loss(out.prompt, features[1], target.masks[t]))
                    states[k] = out.seg_hidden if self.loss_config.state_grad else out.seg_hidden.detach()
            self.last_frames.extend(outputs)
        lm = lm_sum / max(lm_tokens, 1)
        if object_scores:  # SAM 2 scores masks only where the object is; its object score learns where that is
            keep = [k for k, visible in enumerate(in_view) if visible]
            logits, targets = [logits[k] for k in keep], [targets[k] for k in keep]
            teacher_logits = [teacher_logits[k] for k in keep] if teacher_logits else teacher_logits
        if logits and logits[0] is not None:
            bce, dice = losses.mask_losses(torch.cat(logits), torch.stack(targets).to(logits[0].device),
                                           self.loss_config, generator)
        else:  # an LLM-side stage (no loss looks at SAM 2): no masks were decoded
            bce = dice = torch.zeros((), device=self.model.device)
        terms = losses.combine(self.loss_config, lm, bce, dice)
        out = {"loss": terms.total, "lm": terms.lm, "bce": terms.bce, "dice": terms.dice}
        if teacher_logits:  # same targets, same order as the [SEG] masks
            t_bce, t_dice = losses.mask_losses(torch.cat(teacher_logits), torch.stack(targets).to(logits[0].device),
                                               self.loss_config, generator)
            out["teacher"] = losses.weighted_mask_loss(self.loss_config, t_bce, t_dice)
            out["teacher_dice"] = t_dice.detach()
            out["loss"] = out["loss"] + self.loss_config.teacher_weight * out["teacher"]
        extra = (("seg_words", seg_words, self.loss_config.seg_words_weight),
                 ("seg_click", seg_click, self.loss_config.seg_click_weight),
                 ("seg_exemplar", seg_exemplar, self.loss_config.seg_exemplar_weight),
                 ("click", click_losses, self.loss_config.click_weight),
                 ("distill", distill, self.loss_config.teacher_distill_weight),
                 ("attributes", attribute_losses, self.loss_config.attribute_weight),
                 ("seg_attention", attention_losses, self.loss_config.seg_attention_weight),
                 ("seg_presence", presence_losses, self.loss_config.seg_presence_weight),
                 ("seg_position", position_losses, self.loss_config.seg_position_weight),
                 ("value_position", value_losses, self.loss_config.value_position_weight),
                 ("said_attributes", said_losses, self.loss_config.seg_attribute_weight),
                 ("state_candidates", candidate_losses, self.loss_config.state_candidates_weight),
                 ("state_attention", state_attention_losses, self.loss_config.state_attention_weight),
                 ("motion_cells", motion_cell_losses, self.loss_config.motion_cell_weight),
                 ("said_motion", said_motion_losses, self.loss_config.seg_motion_weight),
                 ("object_score", [losses.object_score_loss(torch.stack(object_scores), in_view)]
                  if object_scores else [], self.loss_config.object_score_weight))
        for name, values, weight in extra:  # only the terms the config turned on (and had something to score)
            if values:
                out[name] = torch.stack(values).mean()
                out["loss"] = out["loss"] + weight * out[name]
        return out

    def promptable_forward(self, samples: list[Sample]) -> dict[str, torch.Tensor]:
        """Stage "promptable": SAM 2 alone on its own prompts (training/promptable.py); the LLM does not run."""
        cfg = self.model.config
        grounding = self.model.grounding_encoder
        criterion = PromptableLoss(grounding, cfg, self.loss_config)
        encoder_trains = any(p.requires_grad for p in grounding.sam2_model.image_encoder.parameters())
        parts = []
        for sample in samples:
            image = image_processing.sam2_image(sample.frames[0], cfg.grounding.image_size)
            with torch.set_grad_enabled(encoder_trains and torch.is_grad_enabled()):
                features = grounding.image_features(image.to(self.model.device, self.model.dtype))
            parts.append(criterion(features, sample.prompts, sample.frames[0].shape[:2]))
        out = {key: torch.stack([part[key] for part in parts]).mean() for key in parts[0]}
        zero = out["mask"].new_zeros(())
        out["loss"] = out["mask"] + self.loss_config.iou_weight * out["iou"]
        out["lm"] = zero
        return out

    def attribute_loss(self, features: tuple, labels: np.ndarray, attributes: dict[int, dict[str, str]]) -> torch.Tensor:
        """The attribute heads on SAM 2's image embedding and on the LLM's image tokens (one whole-frame tile)."""
        tokens, sam = features
        side = token_grid_side(tokens.shape[0], "loss.attribute_weight")
        loss = tokens.new_zeros(())
        if sam is not None:
            grid = tuple(sam.image_embed.shape[-2:])
            sam_cells = sam.image_embed[0].flatten(1).T  # [rows * cols, C], row-major
            loss = loss + self.training_heads["sam_attributes"].loss(
                sam_cells, attribute_targets(labels, attributes, grid).to(sam_cells.device))
        head, targets = self.training_heads["llm_attributes"], attribute_targets(labels, attributes, (side, side))
        targets = targets.to(tokens.device)
        loss = loss + head.loss(tokens, targets, (side, side))
        if self.loss_config.attribute_object_cells:
            loss = loss + object_cell_loss(head.linear(tokens.float()), targets)
        return loss

    def motion_cell_loss(self, tokens: torch.Tensor, labels: np.ndarray, steps: dict[int, str]) -> torch.Tensor:
        """The motion head on the LLM's image tokens (one whole-frame tile) against `motion.step_targets`."""
        side = token_grid_side(tokens.shape[0], "loss.motion_cell_weight")
        goal = step_targets(labels, steps, (side, side)).to(tokens.device)
        return step_loss(self.training_heads["motion_cells"](tokens.float()), goal)

    def position_loss(self, seg_hidden: torch.Tensor, mask: np.ndarray) -> torch.Tensor:
        """MSE of the position head on the [SEG] state against the mask's centre, (x, y) in [-1, 1]."""
        centre = torch.tensor(mask_centre(mask)) * 2 - 1
        return F.mse_loss(self.training_heads["seg_position"](seg_hidden[0].float()), centre.to(seg_hidden.device))

    def candidates_loss(self, seg_hidden: torch.Tensor, expression: str, labels: np.ndarray,
                        attributes: dict[int, dict[str, str]]) -> torch.Tensor:
        """Binary cross-entropy of the candidates head on the [SEG] state against `candidate_map`."""
        if not attributes:
            raise ValueError("loss.state_candidates_weight needs the samples' object labels and attributes "
                             "(synthetic video data)")
        goal = candidate_map(expression, labels, attributes).to(seg_hidden.device)
        logits = self.training_heads["state_candidates"](seg_hidden[0].float())
        return F.binary_cross_entropy_with_logits(logits, goal)

    def value_position_loss(self, image_values: torch.Tensor) -> torch.Tensor:
        """MSE of the position head on each image token's value contribution against its own cell's centre."""
        side = token_grid_side(image_values.shape[0], "loss.value_position_weight")
        centres = cell_centres((side, side)).to(image_values.device)
        return F.mse_loss(self.training_heads["seg_position"](image_values.float()), centres)

    @staticmethod
    def presence_loss(image_mass: torch.Tensor, in_view: bool) -> torch.Tensor:
        """BCE of the [SEG] row's attention mass on the image tokens (a probability: the rest of the row lies on
        the prompt's other tokens) against the target being in view."""
        goal = torch.tensor(1.0 if in_view else 0.0, device=image_mass.device)
        return F.binary_cross_entropy(image_mass.float().clamp(1e-6, 1 - 1e-6), goal)

    @staticmethod
    def attention_loss(attention: torch.Tensor, mask: np.ndarray) -> torch.Tensor:
        """Cross-entropy of the [SEG] attention over the (one whole-frame tile's) image tokens against the target's
        area share per token cell (row-major, as the pixel shuffle lays the tokens out)."""
        side = token_grid_side(attention.shape[0], "loss.seg_attention_weight")
        share = F.adaptive_avg_pool2d(torch.from_numpy(mask.astype(np.float32))[None, None], (side, side)).flatten()
        goal = (share / share.sum()).to(attention.device)
        return -(goal * attention.float().clamp_min(1e-12).log()).sum()

    def expression_ids(self, expression: str) -> torch.Tensor:
        ids = self.model.tokenizer(expression, add_special_tokens=False)["input_ids"]
        return torch.tensor(ids, device=self.model.device)

    def expression_words(self, expression: str) -> torch.Tensor:
        """[vocab] multi-hot of the expression's token ids: the word head's target (once per target, not frame)."""
        goal = torch.zeros(self.word_head.out_features, device=self.model.device)
        goal[self.expression_ids(expression)] = 1.0
        return goal

    def seg_words_loss(self, prompt: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
        """Multi-label BCE summed over the vocabulary (a mean would let "no word" win: ~5 of ~500 are positive)
        for the word head on the projected [SEG] prompt token against `expression_words`."""
        return F.binary_cross_entropy_with_logits(self.word_head(prompt[0].float()), words, reduction="sum")

    def seg_click_loss(self, prompt: torch.Tensor, mask: np.ndarray) -> torch.Tensor:
        """Normalised MSE between the [SEG] prompt token and SAM 2's click embedding at the mask's centre."""
        size = self.model.config.grounding.image_size
        point = torch.tensor(mask_centre(mask)) * size
        with torch.no_grad():
            goal = self.model.grounding_encoder.click_embedding(point)
        return normalised_mse(prompt[0], goal)

    def seg_exemplar_loss(self, prompt: torch.Tensor, sam, mask: np.ndarray) -> torch.Tensor:
        """Normalised MSE between the [SEG] prompt token and the target's exemplar token (detached)."""
        share = low_res_mask(mask, self.model.config, "area")[None]
        goal = exemplar_tokens(sam.image_embed, share)[0].detach()
        return normalised_mse(prompt[0], goal)

    def click_losses(self, sam, clicks: list[Click], frame_hw: tuple[int, int]) -> list[torch.Tensor]:
        """SAM 2's promptable loss per click: the best (lowest-loss) of the three candidate masks, as SAM 2 trains.
        A frame's clicks are decoded together, each led by a "not a point" token as in stage "promptable" (the
        [SEG] path's layout)."""
        if not clicks:
            return []
        size = self.model.config.grounding.image_size
        height, width = frame_hw
        points = torch.tensor([[[0.0, 0.0], [c.x * size / width, c.y * size / height]] for c in clicks])
        labels = torch.tensor([[NOT_A_POINT, POSITIVE]] * len(clicks))
        candidates = self.model.grounding_encoder.prompt_masks(sam, points, labels)[0]  # [N, 3, h, w]
        goals = torch.stack([low_res_mask(c.mask, self.model.config, self.loss_config.mask_target) for c in clicks])
        return list(losses.best_candidate_loss(self.loss_config, candidates, goals))


def normalised_mse(value: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
    """MSE relative to the goal's mean square: scale-free, so it cannot be won by shrinking both."""
    goal = goal.float()
    return F.mse_loss(value.float(), goal) / goal.pow(2).mean().clamp_min(1e-6)


def mask_centre(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of a non-empty mask's pixel-centre mean, as fractions of the width and height."""
    ys, xs = np.nonzero(mask)
    return float((xs.mean() + 0.5) / mask.shape[1]), float((ys.mean() + 0.5) / mask.shape[0])


def _shared_prefix(sequences: list[torch.Tensor], time_context: int, limit: int) -> int:
    """How many leading ids all sequences share, stopping before the time context (its state is per target) and
    at `limit` (the first position whose output an answer token is predicted from)."""
    shortest = min(len(ids) for ids in sequences)
    first = sequences[0][:shortest]
    same = torch.ones(shortest, dtype=torch.bool)
    for ids in sequences[1:]:
        same &= (ids[:shortest] == first).cpu()
    same &= (first != time_context).cpu()
    differs = torch.nonzero(~same).flatten()
    shared = int(differs[0]) if differs.numel() else shortest
    return max(min(shared, limit), 1)
