"""The conv vision trunk of the embedded model (vision.trunk: conv): same token interface as InternViT, saved and
loaded with the model, pre-trained alone by the attribute probe and handed to stage 1 (model.vision_init)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from strvos_core.checkpoint import load_model, save_checkpoint
from strvos_core.config import VisionConfig
from strvos_core.errors import StrvosError
from strvos_core.modeling.conv_trunk import ConvVisionTrunk
from strvos_core.modeling.vision import image_tokens, vit_features
from strvos_core.training.build import build_model
from strvos_core.training.config import TrainConfig
from strvos_core.training.export import load_vision, save_vision


def conv_config(micro_config, **vision):
    config = micro_config(data={"num_videos": 3})
    config.model.overrides["vision"].update({"image_size": 224, "trunk": "conv", "conv_widths": [8, 16, 16],
                                             **vision})
    return config


@pytest.mark.parametrize("trunk", ["conv", "vit+conv"])
def test_conv_trunk_hands_mlp1_the_vits_token_grid_and_width(micro_config, trunk):
    vit = build_model(micro_config().model)
    conv = build_model(conv_config(micro_config, image_size=112, trunk=trunk).model)
    assert isinstance(conv.vision_model if trunk == "conv" else conv.vision_model.conv, ConvVisionTrunk)
    tiles = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        a = image_tokens(vit.vision_model, vit.mlp1, tiles, vit.config)
        b = image_tokens(conv.vision_model, conv.mlp1, tiles, conv.config)
    assert a.shape == b.shape == (2, conv.config.num_image_token, conv.config.language.hidden_size)
    # a conv token reads its own part of the tile: changing the top-left corner moves the top-left token most (the
    # far corner moves too, a little: GroupNorm's statistics are the whole tile's); the ViT's attention is global
    moved = tiles.clone()
    moved[:, :, :28, :28] += 3.0
    with torch.no_grad():
        c = image_tokens(conv.vision_model, conv.mlp1, moved, conv.config)
    change = (c - b).norm(dim=-1)[0]
    if trunk == "conv":
        assert int(change.argmax()) == 0 and float(change[-1]) < float(change[0]) / 3
    else:  # the ViT's part is the plain ViT's, the conv trunk's is added to it
        conv.vision_model.vit.load_state_dict(vit.vision_model.state_dict())
        with torch.no_grad():
            joint = vit_features(conv.vision_model.vit, tiles, conv.config) + conv.vision_model.conv(tiles)
            torch.testing.assert_close(image_tokens(conv.vision_model, conv.mlp1, tiles, conv.config),
                                       conv.mlp1(joint), rtol=0, atol=0)
            torch.testing.assert_close(vit_features(vit.vision_model, tiles, vit.config),
                                       vit_features(conv.vision_model.vit, tiles, conv.config))


@pytest.mark.parametrize("trunk", ["conv", "vit+conv"])
def test_a_conv_trunk_model_segments_and_survives_export(micro_config, tmp_path, trunk):
    model = build_model(conv_config(micro_config, trunk=trunk).model).eval()
    frame = np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    out = save_checkpoint(model, model.tokenizer, tmp_path / "export")
    loaded = load_model(out).eval()
    assert loaded.config.vision.trunk == trunk and loaded.config.vision.conv_widths == (8, 16, 16)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0, msg=key)
    with torch.no_grad():
        a = model.segment(model.encode_frame(frame), "the red circle", None)
        b = loaded.segment(loaded.encode_frame(frame), "the red circle", None)
    np.testing.assert_array_equal(a.mask, b.mask)
    torch.testing.assert_close(a.state, b.state, rtol=0, atol=0)


def test_vision_config_refuses_an_unknown_trunk_and_bad_widths():
    with pytest.raises(StrvosError, match="vision.trunk"):
        VisionConfig(trunk="resnet")
    assert VisionConfig(conv_widths=[8, 16]).conv_widths == (8, 16)  # YAML/JSON lists become the tuple
    with pytest.raises(ValueError, match="multiple of 8"):
        ConvVisionTrunk((8, 12), side=4, out_dim=32)
    with pytest.raises(StrvosError, match="conv_widths"):
        VisionConfig(trunk="conv", conv_widths=[8, 12])
    assert VisionConfig(conv_widths=[12]).trunk == "internvit"  # widths matter only with a conv trunk


def test_saved_vision_path_loads_into_the_stage_that_names_it(micro_config, tmp_path):
    config = conv_config(micro_config)
    source = build_model(config.model)
    with torch.no_grad():
        for parameter in source.vision_model.parameters():
            parameter.add_(1.0)
    path = save_vision(source, tmp_path / "vision.safetensors")
    assert sorted({k.split(".")[0] for k in load_file(str(path))}) == ["mlp1", "vision_model"]

    config.model.vision_init = str(path)
    target = build_model(config.model)  # a fresh build, then the file over it
    for key, value in source.state_dict().items():
        if key.startswith(("vision_model.", "mlp1.")):
            torch.testing.assert_close(target.state_dict()[key], value, rtol=0, atol=0, msg=key)
    fresh = build_model(conv_config(micro_config).model)
    language = "language_model.model.layers.0.mlp.up_proj.weight"
    torch.testing.assert_close(target.state_dict()[language], fresh.state_dict()[language])  # the rest untouched


def test_vision_init_refuses_another_config_a_missing_file_and_a_corrupt_one(micro_config, tmp_path):
    path = save_vision(build_model(conv_config(micro_config).model), tmp_path / "vision.safetensors")
    other = build_model(conv_config(micro_config, conv_widths=[8, 16, 24]).model)
    with pytest.raises(StrvosError, match="config"):
        load_vision(other, path)
    with pytest.raises(StrvosError, match="does not exist"):
        load_vision(other, tmp_path / "absent.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(path.read_bytes()[:100])
    with pytest.raises(StrvosError, match="cannot read"):
        load_vision(other, tmp_path / "bad.safetensors")


def test_vision_init_and_position_init_conflicts_are_named(micro_config):
    config = conv_config(micro_config)
    config.model.vision_position_init = 0.5
    with pytest.raises(StrvosError, match="has none"):
        build_model(config.model)
    hybrid = conv_config(micro_config, trunk="vit+conv")
    hybrid.model.vision_position_init = 0.5  # a hybrid's ViT takes it
    table = build_model(hybrid.model).vision_model.vit.embeddings.position_embeddings[0, 1:]
    assert float(table.pow(2).mean().sqrt()) == pytest.approx(0.5, rel=1e-4)
    data = micro_config().to_dict()
    data["model"].update({"init": "some/export", "vision_init": "vision.safetensors"})
    with pytest.raises(StrvosError, match="vision_init"):
        TrainConfig.from_dict(data)


def test_attribute_probe_pretrains_the_conv_trunk_and_saves_it(micro_config, tmp_path):
    from strvos_core.training.attribute_probe import AttributeProbe, run

    probe = AttributeProbe(conv_config(micro_config), "vit", batch=2, videos=4)
    assert probe.side == 8
    path = tmp_path / "vision.safetensors"
    run(probe, steps=2, eval_every=1, eval_frames=2, log=lambda line: None, save=path)
    saved = load_file(str(path))
    for key, value in probe.model.state_dict().items():
        if key.startswith(("vision_model.", "mlp1.")):
            torch.testing.assert_close(saved[key], value.float(), rtol=0, atol=0)
    baseline = AttributeProbe(conv_config(micro_config), "conv", batch=2, videos=4)
    with pytest.raises(ValueError, match="not one"):
        run(baseline, steps=1, save=tmp_path / "no.safetensors")
