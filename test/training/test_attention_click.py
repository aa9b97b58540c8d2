"""grounding.attention_click: SAM 2 also gets a click where the [SEG] token's last-layer attention peaks. Inference
(greedy decoding, the [SEG] fed back) and the teacher-forced training forward compute the same attention, click and
mask; the option survives export; it needs one whole-frame tile."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from strvos_core.checkpoint import build_random_model, load_model, save_checkpoint
from strvos_core.config import StreamingRVOSConfig
from strvos_core.errors import StrvosError
from strvos_core.modeling.attention_click import attention_click, seg_image_attention
from strvos_core.modeling.language import greedy_decode
from strvos_core.training.build import add_attention_click, build_model
from strvos_core.training.config import LossSection
from strvos_core.training.data import prepare_frame
from strvos_core.training.forward import TrainingModel


def test_the_click_is_the_attention_weighted_centre_of_the_peak_and_its_neighbours():
    one_hot = torch.zeros(12 * 12)
    one_hot[3 * 12 + 7] = 1.0  # row 3, column 7
    torch.testing.assert_close(attention_click(one_hot, 120), torch.tensor([75.0, 35.0]))  # cell centre, 10 px cells
    split = torch.zeros(12 * 12)
    split[3 * 12 + 7], split[3 * 12 + 8] = 0.3, 0.2
    split[10 * 12 + 0] = 0.25  # below the peak but away from it: ignored
    x, y = attention_click(split, 120)
    assert float(x) == pytest.approx((7.5 * 0.3 + 8.5 * 0.2) / 0.5 * 10) and float(y) == pytest.approx(35.0)
    with pytest.raises(ValueError, match="square token grid"):
        attention_click(torch.ones(12 * 13), 120)


def test_the_image_attention_is_the_heads_mean_renormalised_over_the_image_slots():
    row = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.3, 0.1, 0.1, 0.5]])  # 2 heads, 4 keys (the last past the slots)
    slots = torch.tensor([False, True, True])
    torch.testing.assert_close(seg_image_attention(row, slots), torch.tensor([0.15, 0.2]) / 0.35)


@pytest.fixture()
def clicking():
    model = build_random_model("tiny", answer="seg")
    add_attention_click(model)
    return model


def test_inference_and_training_compute_the_same_attention_click_and_mask(clicking):
    frame = np.random.default_rng(5).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    features = clicking.encode_frame(frame)
    inference = clicking.segment(features, "the red circle", None)
    assert inference.num_seg == 1

    ids = clicking.prompt_ids("the red circle", features.num_tiles)
    decoded = greedy_decode(clicking.language_model, clicking.prompt_embeddings(ids, features.image_tokens, None),
                            clicking.config.max_new_tokens, clicking.token_ids.stop_ids, clicking.token_ids.seg)
    (kept,) = decoded.fed_attention.values()
    decoded_attention = seg_image_attention(kept, ids[0] == clicking.token_ids.img_context)

    trainer = TrainingModel(clicking, LossSection(seg_attention_weight=1.0))
    prepared = prepare_frame(frame, np.zeros(frame.shape[:2], dtype=bool), clicking.config)
    with torch.no_grad():
        out = trainer.frame_forward(prepared, "the red circle", trainer.answer_ids("[SEG]"), None)
    torch.testing.assert_close(out.seg_attention, decoded_attention, atol=1e-5, rtol=1e-4)
    size = frame.shape[:2]
    mask = F.interpolate(out.low_res_logits, size=size, mode="bilinear", align_corners=False)[0, 0].sigmoid() > 0.5
    assert np.array_equal(mask.numpy(), inference.mask)

    # the click changes SAM 2's prompt: the same token without it decodes other logits
    click = attention_click(decoded_attention, clicking.config.grounding.image_size)
    prompt = clicking.text_hidden_fcs(out.seg_hidden)
    with torch.no_grad():
        without = clicking.grounding_encoder.decode(features.sam, prompt).low_res_logits
        with_click = clicking.grounding_encoder.decode(features.sam, prompt, click).low_res_logits
    torch.testing.assert_close(with_click, out.low_res_logits, atol=1e-5, rtol=1e-4)
    assert (with_click - without).abs().max() > 1e-3


def test_the_option_survives_export_and_an_init_export_gains_it(clicking, tmp_path, micro_config):
    reloaded = load_model(save_checkpoint(clicking, clicking.tokenizer, tmp_path / "clicking"))
    assert reloaded.config.grounding.attention_click
    assert reloaded.language_model.config._attn_implementation == "eager"

    plain = build_random_model("tiny")
    export = save_checkpoint(plain, plain.tokenizer, tmp_path / "plain")
    assert not load_model(export).config.grounding.attention_click
    config = micro_config()
    config.model.init, config.model.attention_click = str(export), True
    assert build_model(config.model).config.grounding.attention_click


def test_the_click_needs_one_whole_frame_tile():
    data = StreamingRVOSConfig().to_dict()
    data["grounding"]["attention_click"] = True
    with pytest.raises(StrvosError, match="max_dynamic_patch 1"):
        StreamingRVOSConfig.from_dict(data)
    tiled = build_random_model("tiny")
    tiled.config.max_dynamic_patch = 4
    with pytest.raises(StrvosError, match="max_dynamic_patch 1"):
        add_attention_click(tiled)
