"""The tile budget follows the config: the released presets tile like the reference, "tiny" uses one tile."""
from __future__ import annotations

import dataclasses

import numpy as np

from strvos_core.checkpoint import config_from_reference, config_to_reference
from strvos_core.config import preset


def test_released_presets_keep_the_reference_tiling():
    for name in ("1b", "4b"):
        config = preset(name)
        assert (config.min_dynamic_patch, config.max_dynamic_patch, config.use_thumbnail) == (1, 12, True)


def test_tiny_model_encodes_one_tile_and_follows_a_changed_budget(tiny_backend, random_frame):
    model = tiny_backend.model
    frame = random_frame(240, 320)
    assert model.config.max_dynamic_patch == 1
    one = model.encode_frame(frame)
    assert one.num_tiles == 1 and one.image_tokens.shape[0] == 256
    original = model.config
    model.config = dataclasses.replace(original, max_dynamic_patch=12)
    try:
        thirteen = model.encode_frame(frame)  # 4:3 -> 4x3 grid + thumbnail, as the reference tiles it
        assert thirteen.num_tiles == 13 == model.frame_tiles(320, 240)
        assert thirteen.image_tokens.shape[0] == 13 * 256
        out = model.segment(thirteen, "the mug", None)
        assert out.mask.shape == (240, 320) and out.has_seg
    finally:
        model.config = original
    assert np.array_equal(model.encode_frame(frame).image_tokens, one.image_tokens)


def test_tile_budget_survives_the_export_config():
    config = preset("tiny")
    back = config_from_reference(config_to_reference(config))
    assert (back.min_dynamic_patch, back.max_dynamic_patch, back.use_thumbnail) == (1, 1, True)
    # a reference export (no "strvos" extension) gets the reference's hard-wired 1..12 tiles
    plain = config_to_reference(config)
    del plain["strvos"]
    assert config_from_reference(plain).max_dynamic_patch == 12
