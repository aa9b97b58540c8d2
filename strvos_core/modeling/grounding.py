"""SAM 2 prompted by the projected [SEG] embedding (the reference's `add_language_embd` path, without the state).

Per frame: the image encoder runs once (FPN levels + positional encodings, high-res levels projected by the mask
decoder's conv_s0/conv_s1), `no_mem_embed` is added to the lowest-resolution level (every reference frame is an
initial conditioning frame with `directly_add_no_mem_embed`; memory attention never runs). Per [SEG]: the prompt
encoder embeds one padding point (label -1) plus its own pad point -> two "not a point" tokens, the language
embedding is appended as the third sparse token, dense = no_mask_embed, the mask decoder runs with multimask output
and the mask with the highest predicted IoU is kept: low-res logits of image_size/4. With `grounding.attention_click`
(ours) a positive click where the [SEG] attention peaked takes the first padding point's place. With
`grounding.object_score_gate` a mask whose object score logit is <= 0 comes back empty, as SAM 2's own
`_forward_sam_heads` does and the reference's copy of it does not.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import torch
from torch import nn

from strvos_core.config import SAM2_VARIANTS, GroundingConfig

NO_OBJECT_LOGIT = -1024.0  # SAM 2's NO_OBJ_SCORE: every pixel of a gated mask far below the 0 threshold


def build_sam2_model(config: GroundingConfig) -> nn.Module:
    """SAM2Base with random weights from the sam2 package's SAM 2.1 config for `config.sam2_variant`."""
    import sam2  # noqa: F401  (registers its config directory with hydra)
    from hydra import compose
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    # What sam2.build_sam.build_sam2 does, minus its checkpoint loading and `.to(device)`.
    extra = [f"++model.{key}={json.dumps(value)}" for key, value in config.sam2_overrides.items()]
    cfg = compose(config_name=SAM2_VARIANTS[config.sam2_variant],
                  overrides=[f"++model.image_size={config.image_size}", *extra])
    OmegaConf.resolve(cfg)
    return instantiate(cfg.model, _recursive_=True).eval()


@dataclass
class ImageFeatures:
    """One frame's SAM 2 features, shared by every target of the frame."""

    image_embed: torch.Tensor  # [1, 256, S/16, S/16], no_mem_embed added
    high_res: list[torch.Tensor]  # [1, 32, S/4, S/4], [1, 64, S/8, S/8] (conv_s0 / conv_s1 applied)


@dataclass
class MaskPrediction:
    low_res_logits: torch.Tensor  # [1, 1, S/4, S/4], float32
    iou: torch.Tensor  # [1] predicted IoU of the chosen mask (sigmoid-ed: iou_prediction_use_sigmoid)
    object_score_logit: torch.Tensor  # [1]


class GroundingModel(nn.Module):
    """Holds the sam2 model as `sam2_model` so checkpoint keys read grounding_encoder.sam2_model.* as upstream."""

    def __init__(self, config: GroundingConfig) -> None:
        super().__init__()
        self.sam2_model = build_sam2_model(config)
        self.image_size = config.image_size
        self.hidden_dim = self.sam2_model.hidden_dim
        self.config = config  # the model config's own section: switching the gate there switches it here

    def keep_norms_float32(self) -> None:
        """Cast SAM 2's LayerNorm modules back to float32 in a half-precision model. SAM 2 adds float32 positional
        encodings, so its LayerNorms see float32 inputs under autocast; PyTorch's CPU kernel accepts half inputs with
        float32 weights but not the reverse, and CUDA's autocast runs LayerNorm in float32 anyway (same maths)."""
        for module in self.sam2_model.modules():
            if isinstance(module, nn.LayerNorm):
                module.float()

    @torch.no_grad()
    def encode_image(self, image: torch.Tensor) -> ImageFeatures:
        """[1, 3, S, S] normalised image -> features (the reference's `forward_image` + no-memory conditioning)."""
        return self.image_features(image)

    def image_features(self, image: torch.Tensor) -> ImageFeatures:
        """`encode_image` with autograd left as the caller set it (training a trainable image encoder)."""
        sam = self.sam2_model
        backbone_out = sam.forward_image(image)
        _, feats, _, sizes = sam._prepare_backbone_features(backbone_out)
        batch = image.shape[0]
        high_res = [f.permute(1, 2, 0).reshape(batch, f.shape[2], *s) for f, s in zip(feats[:-1], sizes[:-1], strict=True)]
        lowest = feats[-1] + sam.no_mem_embed
        image_embed = lowest.permute(1, 2, 0).reshape(batch, sam.hidden_dim, *sizes[-1])
        return ImageFeatures(image_embed, high_res)

    @torch.no_grad()
    def decode(self, features: ImageFeatures, language_embedding: torch.Tensor,
               click: torch.Tensor | None = None) -> MaskPrediction:
        """One [1, 256] language embedding -> the best of three masks (reference `_forward_sam_heads`). `click`,
        [2] (x, y) in pixels of SAM 2's input, is a positive click in the padding point's place
        (`grounding.attention_click`; None: the reference's prompt). With `grounding.object_score_gate` a mask whose
        object score logit is <= 0 is replaced by an empty one (all logits NO_OBJECT_LOGIT); its scores are kept."""
        pred = self.predict_mask(features, language_embedding, click)
        if self.config.object_score_gate and not bool(pred.object_score_logit[0] > 0):
            pred.low_res_logits = torch.full_like(pred.low_res_logits, NO_OBJECT_LOGIT)
        return pred

    def predict_mask(self, features: ImageFeatures, language_embedding: torch.Tensor,
                     click: torch.Tensor | None = None) -> MaskPrediction:
        """`decode` with autograd left as the caller set it (training: gradients reach the prompt and decoder)."""
        sam = self.sam2_model
        device = features.image_embed.device
        if click is None:
            coords = torch.zeros(1, 1, 2, device=device)
            labels = -torch.ones(1, 1, dtype=torch.int32, device=device)
        else:
            coords = click.detach().reshape(1, 1, 2).to(device, torch.float32)
            labels = torch.ones(1, 1, dtype=torch.int32, device=device)
        sparse, dense = sam.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        sparse = torch.cat([sparse, language_embedding.reshape(1, 1, -1).to(sparse.dtype)], dim=1)
        masks, ious, _, object_logits = self._three_masks(features, sparse, dense)
        best = torch.argmax(ious, dim=-1)
        rows = torch.arange(masks.shape[0], device=device)
        return MaskPrediction(masks.float()[rows, best].unsqueeze(1), ious[rows, best].float(),
                              object_logits.float().reshape(-1))

    def click_embedding(self, point_xy: torch.Tensor) -> torch.Tensor:
        """[2] pixels of the SAM input -> [256]: the prompt encoder's sparse token for one positive click there."""
        sam = self.sam2_model
        coords = point_xy.reshape(1, 1, 2).to(sam.no_mem_embed.device, torch.float32)
        labels = torch.ones(1, 1, dtype=torch.int32, device=coords.device)
        sparse, _ = sam.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        return sparse[0, 0]

    def prompt_masks(self, features: ImageFeatures, points: torch.Tensor, labels: torch.Tensor,
                     multimask: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """N prompts on one frame's features (the image embedding shared, as SAM 2 decodes many prompts per image).
        points [N, K, 2] in pixels of the SAM input, labels [N, K]: 1 positive click, 0 negative click, 2 / 3 a
        box's top-left / bottom-right corner (SAM 2 encodes boxes as these two points). Returns low-res logits
        [N, 3 or 1, S/4, S/4], predicted IoUs [N, 3 or 1] and object score logits [N, 1]. Used only by training
        from scratch (promptable pre-training)."""
        sam = self.sam2_model
        device = features.image_embed.device
        sparse, dense = sam.sam_prompt_encoder(
            points=(points.to(device, torch.float32), labels.to(device, torch.int32)), boxes=None, masks=None)
        masks, ious, _, object_logits = self._decoder(features, sparse, dense, multimask)
        return masks.float(), ious.float(), object_logits.float()

    def token_masks(self, features: ImageFeatures, tokens: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`predict_mask`'s prompt layout for N tokens at once ([N, 256]: two "not a point" tokens, then the token),
        without choosing: (logits [N, 3, S/4, S/4], predicted IoUs [N, 3], object score logits [N, 1]). Used only by
        training from scratch (exemplar prompts, the [SEG] path's stand-in in promptable pre-training)."""
        sam = self.sam2_model
        device = features.image_embed.device
        count = tokens.shape[0]
        coords = torch.zeros(count, 1, 2, device=device)
        labels = -torch.ones(count, 1, dtype=torch.int32, device=device)
        sparse, dense = sam.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        sparse = torch.cat([sparse, tokens.reshape(count, 1, -1).to(sparse.dtype)], dim=1)
        masks, ious, _, object_logits = self._decoder(features, sparse, dense, multimask=True)
        return masks.float(), ious.float(), object_logits.float()

    def _three_masks(self, features: ImageFeatures, sparse: torch.Tensor, dense: torch.Tensor):
        """The mask decoder with multimask output: (masks [1, 3, h, w], ious, tokens, object logits)."""
        return self._decoder(features, sparse, dense, multimask=True)

    def _decoder(self, features: ImageFeatures, sparse: torch.Tensor, dense: torch.Tensor, multimask: bool):
        """SAM 2's mask decoder on one frame's features for a batch of prompts (the image repeated per prompt)."""
        sam = self.sam2_model
        return sam.sam_mask_decoder(
            image_embeddings=features.image_embed,
            image_pe=sam.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
            repeat_image=features.image_embed.shape[0] != sparse.shape[0],
            high_res_features=features.high_res,
        )
