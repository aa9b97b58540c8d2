"""Presets: the released shapes (parameter counts within 1%) counted without allocating the weights."""
from __future__ import annotations

import pytest

from strvos_core.config import StreamingRVOSConfig, preset
from strvos_core.errors import StrvosError
from strvos_core.modeling.streamingrvos import count_parameters

# Published sizes: InternVL2.5-1B 938M and -4B 3.7B (model cards; untied lm_head), SAM 2.1 hiera-L 224.4M,
# plus text_hidden_fcs (Cl*Cl + Cl*256 + biases).
RELEASED = {
    "1b": 938e6 + 224.4e6 + (896 * 896 + 896 + 896 * 256 + 256),
    "4b": 3.7e9 + 224.4e6 + (2048 * 2048 + 2048 + 2048 * 256 + 256),
}


@pytest.mark.parametrize("name", ["1b", "4b"])
def test_released_parameter_counts(name):
    counts = count_parameters(preset(name))
    assert abs(counts["total"] - RELEASED[name]) / RELEASED[name] < 0.01, counts
    assert abs(counts["grounding_encoder"] - 224.4e6) / 224.4e6 < 0.01
    assert abs(counts["vision_model"] - 304e6) / 304e6 < 0.01  # InternViT-300M


def test_tiny_is_small_and_round_trips():
    config = preset("tiny")
    assert config.num_image_token == 256
    assert StreamingRVOSConfig.from_dict(config.to_dict()) == config
    with pytest.raises(StrvosError):
        preset("7b")
