"""Model configuration: one dataclass per part, and the presets "tiny", "1b" and "4b".

The released StreamingRVOS models are InternVL2.5-1B/4B (InternViT-300M + Qwen2.5-0.5B/3B) plus SAM 2.1 hiera-L;
"1b" and "4b" reproduce their shapes (parameter counts within 1%, see test/core/test_config.py) for random builds.
"tiny" keeps every mechanism (448 tiles, 256 tokens per tile, pixel shuffle, the full SAM 2 prompt path) at sizes
that run in milliseconds on a CPU, and one tile per frame (max_dynamic_patch=1): the released 1..12 tiles + thumbnail
turn a 4:3 frame into 13 tiles (3328 image tokens), 13x the vision and LLM work of every test step. The reference
hard-wires 12 in `preparing_for_generation`; ours follows the config: "1b"/"4b" and reference exports keep 12.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from strvos_core.errors import StrvosError

SAM2_VARIANTS: dict[str, str] = {
    "hiera-tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "hiera-small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "hiera-base-plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "hiera-large": "configs/sam2.1/sam2.1_hiera_l.yaml",
}
REFERENCE_SPECIAL_TOKENS = ["[SEG]", "<p>", "</p>", "<vp>", "</vp>", "<TIME_CONTEXT>", "<context>", "</context>"]


@dataclass
class VisionConfig:
    """InternViT (the reference's InternVisionModel), run by transformers' InternVLVisionModel."""

    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    image_size: int = 448
    patch_size: int = 14
    qkv_bias: bool = True
    qk_normalization: bool = False
    norm_type: str = "layer_norm"
    layer_norm_eps: float = 1e-6
    hidden_act: str = "gelu"
    initializer_factor: float = 0.1  # initial value of the layer scales (ls1/ls2)
    # "internvit" (the released models), "conv" or "vit+conv": modeling/conv_trunk.py, for the embedded model trained
    # from scratch (its small ViT never learned shape); conv_widths are its stem and level widths, the last deepest
    trunk: str = "internvit"
    conv_widths: tuple[int, ...] = (16, 32, 64, 128)
    # The embedded model's motion cue (modeling/conv_trunk.py, training README): a motion encoder, a conv trunk of
    # these widths, reads the tile and its difference from the stream's previous one and adds to the tokens
    motion_input: bool = False
    motion_widths: tuple[int, ...] = (16, 32, 64, 128)

    def __post_init__(self) -> None:
        if self.trunk not in ("internvit", "conv", "vit+conv"):
            raise StrvosError(f"vision.trunk must be 'internvit', 'conv' or 'vit+conv', got {self.trunk!r}")
        self.conv_widths = tuple(int(w) for w in self.conv_widths)  # JSON and YAML give lists
        if self.trunk != "internvit" and (len(self.conv_widths) < 2 or any(w < 8 or w % 8 for w in self.conv_widths)):
            raise StrvosError(f"vision.conv_widths needs >= 2 widths, each a multiple of 8 (GroupNorm(8)), "
                              f"got {list(self.conv_widths)}")
        self.motion_widths = tuple(int(w) for w in self.motion_widths)
        if self.motion_input and (len(self.motion_widths) < 2 or any(w < 8 or w % 8 for w in self.motion_widths)):
            raise StrvosError(f"vision.motion_widths needs >= 2 widths, each a multiple of 8 (GroupNorm(8)), "
                              f"got {list(self.motion_widths)}")


@dataclass
class LanguageConfig:
    """Qwen2ForCausalLM (Qwen2.5-0.5B for 1B, Qwen2.5-3B for 4B) with the reference's vocabulary of 151682."""

    vocab_size: int = 151682
    hidden_size: int = 896
    intermediate_size: int = 4864
    num_hidden_layers: int = 24
    num_attention_heads: int = 14
    num_key_value_heads: int = 2
    max_position_embeddings: int = 32768
    rope_theta: float = 1000000.0
    rms_norm_eps: float = 1e-6
    hidden_act: str = "silu"
    tie_word_embeddings: bool = False


@dataclass
class GroundingConfig:
    """SAM 2.1 from the `sam2` package. The reference hard-wires hiera-large at 1024; both are fields here."""

    sam2_variant: str = "hiera-large"
    image_size: int = 1024
    # Extra hydra overrides of the variant's `model` config, e.g. {"image_encoder.trunk.embed_dim": 32}: lets a
    # small CPU model shrink the Hiera trunk (the smallest released one, hiera-tiny, costs > 100 ms per frame).
    sam2_overrides: dict[str, Any] = field(default_factory=dict)
    # Ours (the reference has none): a positive click where the [SEG] token's last-layer attention over the image
    # tokens peaks takes the place of SAM 2's padding point, beside the [SEG] prompt token. A small LLM trained from
    # scratch finds the target (its attention) better than it can say where it is (the [SEG] state); SAM 2 follows
    # a click better than any token. Needs one whole-frame tile (the token grid is then the frame's grid).
    attention_click: bool = False
    # SAM 2's own absent-object gate (`pred_obj_scores` in its `_forward_sam_heads`), which the reference comments
    # out (REFERENCE_SPEC.md section 3, step 4): a [SEG] mask whose object score logit is <= 0 comes back empty, the
    # target judged out of view. Off by default, as in the reference; on for a model whose object score was trained
    # for it (training `loss.object_score_weight`).
    object_score_gate: bool = False
    # Ours: > 0 brings SAM 2's low-res mask to the frame with a colour guided filter of this radius (frame pixels)
    # instead of the reference's bilinear resize alone, so a small SAM 2's coarse grid gets the frame's edges
    # (modeling/mask_refine.py). 0: the reference's resize.
    mask_refine_radius: int = 0
    # Ours: (a, b) maps the score (SAM 2's predicted IoU times its object score) to sigmoid(a * logit(score) + b),
    # fitted on a train split so that it estimates the chance that the mask has J >= 0.5
    # (evaluation/score_calibration.py); None: the raw score. Masks are unchanged either way.
    score_calibration: tuple[float, float] | None = None
    # Ours: > 0 empties a [SEG] mask (score 0) where the [SEG] token's last-layer attention puts less than this share
    # of its mass on the image tokens (the heads' mean): the target judged out of view. Needs attention_click (that
    # row is kept only then); for a model trained with loss.seg_presence_weight. 0: off.
    presence_gate: float = 0.0

    def __post_init__(self) -> None:
        if self.sam2_variant not in SAM2_VARIANTS:
            raise StrvosError(f"unknown sam2_variant {self.sam2_variant!r}; choose one of {sorted(SAM2_VARIANTS)}")
        if self.image_size % 32 or self.image_size < 128:
            raise StrvosError(f"SAM 2 image_size must be a multiple of 32 and >= 128, got {self.image_size}")
        if not isinstance(self.mask_refine_radius, int) or self.mask_refine_radius < 0:
            raise StrvosError(f"mask_refine_radius must be an integer >= 0, got {self.mask_refine_radius!r}")
        if self.score_calibration is not None:
            values = self.score_calibration
            if (not isinstance(values, (list, tuple)) or len(values) != 2
                    or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values) or not values[0] > 0):
                raise StrvosError(f"score_calibration must be [a, b]: finite numbers, a > 0, got {values!r}")
            self.score_calibration = (float(values[0]), float(values[1]))
        if not isinstance(self.presence_gate, (int, float)) or not 0.0 <= self.presence_gate < 1.0:
            raise StrvosError(f"presence_gate must be in [0, 1), got {self.presence_gate!r}")
        if self.presence_gate > 0 and not self.attention_click:
            raise StrvosError("presence_gate reads the [SEG] attention row that attention_click keeps: "
                              "switch attention_click on")
        if not isinstance(self.sam2_overrides, dict) or not all(isinstance(k, str) for k in self.sam2_overrides):
            raise StrvosError(f"sam2_overrides must map config paths to values, got {self.sam2_overrides!r}")


@dataclass
class StreamingRVOSConfig:
    """The whole model plus the inference settings of the reference's `preparing_for_generation`."""

    vision: VisionConfig = field(default_factory=VisionConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    grounding: GroundingConfig = field(default_factory=GroundingConfig)
    downsample_ratio: float = 0.5
    ps_version: str = "v2"
    select_layer: int = -1
    min_dynamic_patch: int = 1
    max_dynamic_patch: int = 12
    use_thumbnail: bool = True
    template: str = "qwen_chat"
    # The reference allows 2048 new tokens; trained models answer in < 10 ("Sure, [SEG]."). A bound keeps a
    # degenerate (e.g. random) model's per-frame latency finite. Parity runs set both sides to the same value.
    max_new_tokens: int = 32
    text_hidden_dim: int = 256  # SAM 2 prompt width (text_hidden_fcs output)

    def __post_init__(self) -> None:
        if self.grounding.attention_click and self.max_dynamic_patch != 1:
            raise StrvosError("grounding.attention_click reads the click off one whole-frame tile's token grid: "
                              f"it needs max_dynamic_patch 1, got {self.max_dynamic_patch}")

    @property
    def tile_size(self) -> int:
        return self.vision.image_size

    @property
    def num_image_token(self) -> int:
        """Tokens per tile after pixel shuffle: (448/14)^2 * 0.5^2 = 256."""
        grid = self.vision.image_size // self.vision.patch_size
        return int(grid * grid * self.downsample_ratio**2)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamingRVOSConfig:
        data = dict(data)
        parts = {
            "vision": VisionConfig(**data.pop("vision", {})),
            "language": LanguageConfig(**data.pop("language", {})),
            "grounding": GroundingConfig(**data.pop("grounding", {})),
        }
        return cls(**parts, **data)


def _preset_1b() -> StreamingRVOSConfig:
    return StreamingRVOSConfig()


def _preset_4b() -> StreamingRVOSConfig:
    return StreamingRVOSConfig(
        language=LanguageConfig(
            hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
            num_key_value_heads=2,
        )
    )


def _preset_tiny() -> StreamingRVOSConfig:
    return StreamingRVOSConfig(
        vision=VisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
        language=LanguageConfig(
            vocab_size=413, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=8192,
        ),
        grounding=GroundingConfig(sam2_variant="hiera-tiny", image_size=128),
        max_dynamic_patch=1,
        max_new_tokens=8,
    )


PRESETS = {"tiny": _preset_tiny, "1b": _preset_1b, "4b": _preset_4b}


def preset(name: str) -> StreamingRVOSConfig:
    """A fresh config for a preset name ("tiny", "1b", "4b")."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise StrvosError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}") from None
