"""InternViT + pixel shuffle + mlp1: 448x448 tiles -> 256 LLM tokens each (the reference's `extract_feature`).

`vision.trunk` other than "internvit" swaps or joins a conv trunk in front of mlp1 for the embedded model
(conv_trunk.py); the released path is untouched."""
from __future__ import annotations

import torch
from torch import nn
from transformers import InternVLVisionConfig, InternVLVisionModel

from strvos_core.config import StreamingRVOSConfig, VisionConfig
from strvos_core.modeling.conv_trunk import (
    CONV_TRUNK,
    HYBRID_TRUNK,
    INTERNVIT,
    MOTION_CHANNELS,
    ConvVisionTrunk,
    HybridVisionTrunk,
    motion_pixels,
)


def internvl_vision_config(config: VisionConfig) -> InternVLVisionConfig:
    """Our InternViT fields -> transformers' InternVLVisionConfig (same maths as the reference InternVisionModel)."""
    return InternVLVisionConfig(
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        image_size=config.image_size,
        patch_size=config.patch_size,
        attention_bias=config.qkv_bias,
        use_qk_norm=config.qk_normalization,
        norm_type=config.norm_type,
        layer_norm_eps=config.layer_norm_eps,
        hidden_act=config.hidden_act,
        layer_scale_init_value=config.initializer_factor,
        use_mean_pooling=True,  # no final LayerNorm: InternViT has none
        use_absolute_position_embeddings=True,
    )


def pixel_shuffle(features: torch.Tensor, scale: float = 0.5, version: str = "v2") -> torch.Tensor:
    """[n, w, h, c] -> [n, h*s, w*s, c/s^2]; 'v2' swaps the two spatial axes back (InternVL2.5 uses v2)."""
    n, w, h, c = features.shape
    x = features.reshape(n, w, int(h * scale), int(c / scale))
    x = x.permute(0, 2, 1, 3).contiguous()
    x = x.reshape(n, int(h * scale), int(w * scale), int(c / (scale * scale)))
    if version != "v1":
        x = x.permute(0, 2, 1, 3).contiguous()
    return x


class VisionProjector(nn.Sequential):
    """mlp1: LayerNorm(4Cv), Linear(4Cv, Cl), GELU, Linear(Cl, Cl) (keys mlp1.0/1/3 as in the checkpoint)."""

    def __init__(self, vision_hidden: int, llm_hidden: int, downsample_ratio: float) -> None:
        width = vision_hidden * int(1 / downsample_ratio) ** 2
        super().__init__(nn.LayerNorm(width), nn.Linear(width, llm_hidden), nn.GELU(), nn.Linear(llm_hidden, llm_hidden))


def build_vision_model(config: VisionConfig, downsample_ratio: float = 0.5) -> nn.Module:
    """InternViT; for `trunk: conv` a conv trunk that hands mlp1 the same grid and width as pixel shuffle; for
    `trunk: vit+conv` both (conv_trunk.HybridVisionTrunk)."""
    if config.trunk == INTERNVIT:
        return InternVLVisionModel(internvl_vision_config(config))
    side = int(config.image_size // config.patch_size * downsample_ratio)
    conv = ConvVisionTrunk(config.conv_widths, side, config.hidden_size * int(1 / downsample_ratio) ** 2)
    if config.trunk == CONV_TRUNK:
        return conv
    return HybridVisionTrunk(InternVLVisionModel(internvl_vision_config(config)), conv)


def build_motion_encoder(config: VisionConfig, downsample_ratio: float = 0.5) -> ConvVisionTrunk | None:
    """`vision.motion_input`: a conv trunk over the tile and its difference from the previous one, handing mlp1 the
    same grid and width as the vision trunk (None without motion_input)."""
    if not config.motion_input:
        return None
    side = int(config.image_size // config.patch_size * downsample_ratio)
    return ConvVisionTrunk(config.motion_widths, side, config.hidden_size * int(1 / downsample_ratio) ** 2,
                           in_channels=MOTION_CHANNELS)


def image_tokens(vision_model: nn.Module, mlp1: nn.Module, pixel_values: torch.Tensor,
                 config: StreamingRVOSConfig, previous: torch.Tensor | None = None,
                 motion_encoder: nn.Module | None = None) -> torch.Tensor:
    """[n, 3, 448, 448] tiles -> [n, 256, Cl] LLM tokens: ViT, drop CLS, pixel shuffle, mlp1 (a conv trunk's
    output goes to mlp1 as it is; a hybrid's is added to the pixel-shuffled ViT tokens). With
    `vision.motion_input` the motion encoder's features of the tiles and `previous` (the stream's previous tiles,
    None on a first frame) are added before mlp1 too."""
    if config.vision.trunk == CONV_TRUNK:
        features = vision_model(pixel_values)
    elif config.vision.trunk == HYBRID_TRUNK:
        features = vit_features(vision_model.vit, pixel_values, config) + vision_model.conv(pixel_values)
    else:
        features = vit_features(vision_model, pixel_values, config)
    if config.vision.motion_input:
        if motion_encoder is None:
            raise ValueError("vision.motion_input: image_tokens needs the model's motion encoder")
        features = features + motion_encoder(motion_pixels(pixel_values, previous))
    return mlp1(features)


def vit_features(vision_model: nn.Module, pixel_values: torch.Tensor, config: StreamingRVOSConfig) -> torch.Tensor:
    """[n, 3, S, S] tiles -> [n, tokens, 4 Cv]: the ViT's selected layer, CLS dropped, pixel-shuffled."""
    if config.select_layer == -1:
        hidden = vision_model(pixel_values=pixel_values).last_hidden_state
    else:
        hidden = vision_model(pixel_values=pixel_values, output_hidden_states=True).hidden_states[config.select_layer]
    hidden = hidden[:, 1:, :]
    side = int(hidden.shape[1] ** 0.5)
    hidden = hidden.reshape(hidden.shape[0], side, side, -1)
    hidden = pixel_shuffle(hidden, config.downsample_ratio, config.ps_version)
    return hidden.reshape(hidden.shape[0], -1, hidden.shape[-1])


def token_grid_side(count: int, option: str) -> int:
    """The side of the square grid `count` image tokens form; only one whole-frame tile forms one (`option` names
    what needs it in the error)."""
    side = int(round(count ** 0.5))
    if side * side != count:
        raise ValueError(f"{option} needs a square token grid, i.e. one whole-frame tile (model.max_dynamic_patch: 1, "
                         f"no thumbnail); got {count} image tokens")
    return side
