"""The embedded model's motion cue (vision.motion_input): a motion encoder reads the difference from the stream's
previous frame; the session keeps that frame (not the no-state ablation); training adds the encoder to an export
without changing what it computes, feeds each sample frame its predecessor and supervises the motion heads."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from strvos_core.checkpoint import load_model, save_checkpoint
from strvos_core.config import VisionConfig
from strvos_core.datasets.synthetic.vocabulary import MOTIONS
from strvos_core.errors import StrvosError
from strvos_core.modeling.conv_trunk import motion_pixels
from strvos_core.modeling.vision import image_tokens
from strvos_core.session import StreamingSession
from strvos_core.training.build import add_motion_encoder, build_model, configure_trainable, set_train_mode
from strvos_core.training.data import SyntheticPool
from strvos_core.training.forward import TrainingModel
from strvos_core.training.motion import STEP_CLASSES, frame_steps, said_motion, step_targets


def motion_config(micro_config, motion: bool = True, **sections):
    config = micro_config(**sections)
    config.model.overrides["vision"].update({"image_size": 224, "trunk": "vit+conv", "conv_widths": [8, 16, 16],
                                             "motion_input": motion})
    return config


def frames(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (64, 96, 3), dtype=np.uint8) for _ in range(count)]


def test_adding_the_encoder_to_an_export_keeps_what_it_computes_and_export_keeps_it(micro_config, tmp_path):
    plain = build_model(motion_config(micro_config, motion=False).model).eval()
    export = save_checkpoint(plain, plain.tokenizer, tmp_path / "plain")
    config = micro_config()
    config.model.init, config.model.motion_input = str(export), True
    widened = build_model(config.model).eval()
    assert widened.uses_previous_frame and widened.motion_encoder.stem[0].in_channels == 6
    first, second = frames(2)
    with torch.no_grad():
        before = plain.encode_frame(second).image_tokens
        after = widened.encode_frame(second, previous_tiles=widened.encode_frame(first).tiles).image_tokens
    torch.testing.assert_close(after, before, rtol=0, atol=0)  # the encoder's output starts at zero
    with torch.no_grad():
        widened.motion_encoder.project.weight.normal_()  # as training moves it
    reloaded = load_model(save_checkpoint(widened, widened.tokenizer, tmp_path / "widened")).eval()
    assert reloaded.config.vision.motion_input
    with torch.no_grad():
        a = widened.encode_frame(second, previous_tiles=widened.encode_frame(first).tiles).image_tokens
        b = reloaded.encode_frame(second, previous_tiles=reloaded.encode_frame(first).tiles).image_tokens
        no_previous = reloaded.encode_frame(second).image_tokens
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a - no_previous).abs().max() > 1e-4  # the previous frame now matters
    with pytest.raises(StrvosError, match="already reads"):
        add_motion_encoder(reloaded)


def test_motion_pixels_is_the_tile_and_its_difference_zero_without_a_previous_frame():
    tiles, previous = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8)
    both = motion_pixels(tiles, previous)
    torch.testing.assert_close(both[:, :3], tiles)
    torch.testing.assert_close(both[:, 3:], tiles - previous)
    assert motion_pixels(tiles, None)[:, 3:].abs().max() == 0
    assert motion_pixels(tiles, torch.randn(2, 3, 8, 8))[:, 3:].abs().max() == 0  # another tiling: no difference


def test_the_session_feeds_the_previous_frame_and_the_no_state_ablation_does_not(micro_config):
    model = build_model(motion_config(micro_config).model).eval()
    first, second = frames(2, seed=3)
    streamed = StreamingSession(model, ["the red circle"])
    ablation = StreamingSession(model, ["the red circle"], use_state=False)
    with torch.no_grad():
        for session in (streamed, ablation):
            session.step(first)
        seen = streamed._previous
        torch.testing.assert_close(seen, model.encode_frame(first).tiles, rtol=0, atol=0)
        assert ablation._previous is None
        expected = model.encode_frame(second, previous_tiles=seen).image_tokens
        got = []
        original = model.encode_frame
        model.encode_frame = lambda frame, timings=None, previous_tiles=None: got.append(
            original(frame, timings, previous_tiles)) or got[-1]
        try:
            streamed.step(second)
            ablation.step(second)
        finally:
            model.encode_frame = original
    torch.testing.assert_close(got[0].image_tokens, expected, rtol=0, atol=0)
    torch.testing.assert_close(got[1].image_tokens, model.encode_frame(second).image_tokens, rtol=0, atol=0)
    streamed.reset()
    assert streamed._previous is None
    streamed.clear()
    streamed.step(first)  # no target: the frame is not encoded, so the next one has no previous frame
    assert streamed._previous is None


def test_bad_motion_settings_are_refused_clearly(micro_config):
    with pytest.raises(StrvosError, match="motion_widths"):
        VisionConfig(motion_input=True, motion_widths=[8, 12])
    with pytest.raises(ValueError, match="model.motion_input"):
        micro_config(model={"motion_input": True})  # a random build takes it from the overrides
    plain = build_model(micro_config().model)
    with pytest.raises(ValueError, match="motion_cell_weight"):
        TrainingModel(plain, micro_config(loss={"motion_cell_weight": 1.0}).loss)
    model = build_model(motion_config(micro_config).model)
    with pytest.raises(ValueError, match="motion encoder"):
        image_tokens(model.vision_model, model.mlp1, torch.randn(1, 3, 224, 224), model.config)


def test_frame_steps_and_their_cell_targets():
    centres = {1: np.array([[10, 10], [13, 10]]), 2: np.array([[40, 40], [40, 36]]), 3: np.array([[5, 5], [5, 5]]),
               4: np.array([[30, 20], [26, 21]])}
    assert frame_steps(centres, 0) == {}
    assert frame_steps(centres, 1) == {1: "right", 2: "up", 3: "still", 4: "left"}
    labels = np.zeros((8, 8), np.uint8)
    labels[:4, :4] = 1  # the top-left quarter moved right
    labels[4:, 4:] = 3  # the bottom-right one stood still
    goal = step_targets(labels, frame_steps(centres, 1), (2, 2))
    torch.testing.assert_close(goal.sum(dim=1), torch.ones(4))
    assert goal[0, STEP_CLASSES.index("right")] == 1 and goal[3, STEP_CLASSES.index("still")] == 1
    assert goal[1, -1] == 1 and goal[2, -1] == 1  # background
    assert int(said_motion("the red circle moving left")) == MOTIONS.index("left")
    assert int(said_motion("the object entering the scene")) == MOTIONS.index("appearing")
    assert int(said_motion("the red circle")) == len(MOTIONS)


def test_samples_carry_the_frame_before_and_the_motion_losses_train_the_difference_channels(micro_config):
    config = motion_config(micro_config, data={"stage": "video", "clip_frames": 2, "num_videos": 3},
                           loss={"motion_cell_weight": 1.0, "seg_motion_weight": 1.0})
    config.trainable.vision = "full"
    pool = SyntheticPool(config.data)
    sample = next(s for s in (pool.sample(step, 0, 0, 0) for step in range(20)) if s.previous[0] is not None)
    video = pool.video(sample.video)
    index = next(i for i in range(len(video.frames)) if np.array_equal(video.frames[i], sample.frames[0]))
    assert np.array_equal(sample.previous[0], video.frames[index - 1])
    assert sample.steps[0] == frame_steps(video.centres, index)
    model = build_model(config.model)
    configure_trainable(model, config.trainable, config.lora)
    set_train_mode(model)
    trainer = TrainingModel(model, config.loss)
    out = trainer([sample], torch.Generator().manual_seed(0))
    assert torch.isfinite(out["motion_cells"]) and torch.isfinite(out["said_motion"])
    # the said-motion term is the cross-entropy of its head on each [SEG] query state against the word named
    head = trainer.training_heads["said_motion"]
    expected = torch.stack([F.cross_entropy(head(frame.seg_query_state.float())[None], said_motion(t.expression)[None])
                            for t, per_frame in zip(sample.targets, trainer.last_frames, strict=True)
                            for frame in per_frame]).mean()
    torch.testing.assert_close(out["said_motion"], expected)
    out["motion_cells"].backward()
    stem = model.motion_encoder.stem[0].weight
    assert stem.grad[:, 3:].abs().sum() > 0  # the difference channels learn from it


def test_motion_probe_pretrains_the_encoder_and_motion_init_loads_it_with_the_projection_zero(micro_config, tmp_path):
    from safetensors.torch import load_file

    from strvos_core.training.motion_probe import MotionProbe, run

    config = motion_config(micro_config)
    probe = MotionProbe(config, "fresh", batch=2, videos=4)
    path = tmp_path / "motion.safetensors"
    rows = run(probe, steps=2, eval_every=1, eval_frames=2, log=lambda *args, **kwargs: None, save=path)
    assert [row[0] for row in rows] == [1, 2] and all(0.0 <= row[2] <= 1.0 for row in rows)
    saved = load_file(str(path))
    assert saved and all(key.startswith("motion_encoder.") for key in saved)
    for key, value in probe.encoder.state_dict().items():
        torch.testing.assert_close(saved["motion_encoder." + key], value.float(), rtol=0, atol=0)

    config.model.motion_init = str(path)
    model = build_model(config.model).eval()  # a fresh build, then the file over it
    for key, value in probe.encoder.state_dict().items():
        expected = torch.zeros_like(value) if key.startswith("project.") else value
        torch.testing.assert_close(model.motion_encoder.state_dict()[key], expected.to(model.dtype), rtol=0, atol=0)
    first, second = frames(2, seed=5)
    with torch.no_grad():  # the projection zero: the previous frame changes nothing yet
        with_previous = model.encode_frame(second, previous_tiles=model.encode_frame(first).tiles).image_tokens
        torch.testing.assert_close(with_previous, model.encode_frame(second).image_tokens, rtol=0, atol=0)


def test_motion_init_refuses_a_model_without_the_encoder_another_shape_and_a_corrupt_file(micro_config, tmp_path):
    from strvos_core.training.export import load_motion_encoder, save_motion_encoder

    path = save_motion_encoder(build_model(motion_config(micro_config).model), tmp_path / "motion.safetensors")
    with pytest.raises(StrvosError, match="no motion encoder"):
        load_motion_encoder(build_model(motion_config(micro_config, motion=False).model), path)
    other = motion_config(micro_config)
    other.model.overrides["vision"]["motion_widths"] = [8, 16]
    with pytest.raises(StrvosError, match="config"):
        load_motion_encoder(build_model(other.model), path)
    (tmp_path / "bad.safetensors").write_bytes(path.read_bytes()[:100])
    with pytest.raises(StrvosError, match="cannot read"):
        load_motion_encoder(build_model(motion_config(micro_config).model), tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match="no motion encoder"):
        from strvos_core.training.motion_probe import MotionProbe

        MotionProbe(motion_config(micro_config, motion=False), "fresh", batch=1, videos=2)
