"""grounding.mask_refine_radius: SAM 2's low-res mask brought to the frame along the frame's colour edges."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from strvos_core.checkpoint import build_random_model, load_model, save_checkpoint
from strvos_core.config import GroundingConfig
from strvos_core.errors import StrvosError
from strvos_core.metrics.region import jaccard_per_frame
from strvos_core.modeling.mask_refine import guided_filter, refine_mask


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A grey noisy background with a red disc: (uint8 frame [120, 160, 3], the disc's mask)."""
    rng = np.random.default_rng(seed)
    frame = np.clip(rng.normal(128, 6, (120, 160, 3)), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:120, :160]
    disc = (yy - 55) ** 2 + (xx - 70) ** 2 < 17 ** 2
    frame[disc] = (200, 30, 40)
    return frame, disc


def _coarse_probability(mask: np.ndarray, cell: int = 8) -> np.ndarray:
    """What a 1/cell-resolution mask decoder gives at best: each cell's share of the object, bilinear back up."""
    small = F.avg_pool2d(torch.from_numpy(mask.astype(np.float32))[None, None], cell)
    logits = torch.logit(small.clamp(1e-3, 1 - 1e-3))
    return F.interpolate(logits, size=mask.shape, mode="bilinear", align_corners=False)[0, 0].sigmoid().numpy()


def test_the_filter_keeps_a_constant_and_the_fast_one_approximates_the_full_one():
    frame, _ = _scene()
    guide = frame.astype(np.float32) / 255.0
    constant = np.full(frame.shape[:2], 0.3, np.float32)
    np.testing.assert_allclose(guided_filter(guide, constant, 4, 1e-3), constant, atol=1e-4)
    source = _coarse_probability(_scene()[1]).astype(np.float32)
    full = guided_filter(guide, source, 8, 1e-3)
    fast = guided_filter(guide, source, 8, 1e-3, step=2)
    assert np.mean((full > 0.5) != (fast > 0.5)) < 0.01


@pytest.mark.parametrize("step", [1, 2])
def test_a_coarse_mask_follows_the_object_edge_after_refinement(step):
    frame, disc = _scene()
    probability = _coarse_probability(disc)
    plain = probability > 0.5
    refined = refine_mask(probability, frame, 8, step=step)
    assert float(jaccard_per_frame(disc, refined)) > float(jaccard_per_frame(disc, plain)) + 0.03
    assert float(jaccard_per_frame(disc, refined)) > 0.95


def test_only_the_box_around_the_uncertain_band_is_touched():
    frame, disc = _scene()
    certain = np.where(disc, 0.999, 0.001).astype(np.float32)  # nothing uncertain: the threshold, untouched
    assert np.array_equal(refine_mask(certain, frame, 8), disc)
    probability = _coarse_probability(disc)
    probability[:, 130:] = 0.99  # a far, certain strip outside the band's box keeps its own threshold
    refined = refine_mask(probability, frame, 4)
    assert refined[:, 130:].all()


def test_the_model_refines_its_mask_with_the_frame_and_the_radius_survives_export(tmp_path):
    model = build_random_model("tiny", answer="seg")
    frame = np.random.default_rng(7).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    plain = model.segment(model.encode_frame(frame), "the red circle", None)
    model.config.grounding.mask_refine_radius = 4
    features = model.encode_frame(frame)
    assert features.rgb is frame
    refined = model.segment(features, "the red circle", None)
    low_res = model.grounding_encoder.decode(features.sam, model.text_hidden_fcs(refined.state)).low_res_logits
    probability = F.interpolate(low_res, size=frame.shape[:2], mode="bilinear", align_corners=False)[0, 0].sigmoid()
    assert np.array_equal(refined.mask, refine_mask(probability.numpy(), frame, 4))
    assert refined.score == plain.score and refined.mask.shape == plain.mask.shape
    reloaded = load_model(save_checkpoint(model, model.tokenizer, tmp_path / "refined"))
    assert reloaded.config.grounding.mask_refine_radius == 4


def test_a_negative_radius_is_refused():
    with pytest.raises(StrvosError, match="mask_refine_radius"):
        GroundingConfig(mask_refine_radius=-2)
