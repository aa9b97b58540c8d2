"""strvos_core.realtime.pipeline without ROS: commands answered at once, targets, tracking states, depth and
poses, bad input, on the real tiny model (64x48 frames, as the node tests send)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from strvos_core.errors import StrvosError
from strvos_core.pose import create_pose_estimator, depth_to_metres
from strvos_core.processing.prompt import clean_expression
from strvos_core.realtime.commands import AddTarget, ClearTargets, RemoveTarget, ResetTracking, SetPrompt
from strvos_core.realtime.depth_input import DepthImage, Intrinsics
from strvos_core.realtime.pipeline import CameraFrame, Pipeline, PipelineSettings
from strvos_core.realtime.prompts import PromptError, clean_prompt
from strvos_core.realtime.tracking import TrackingState

WIDTH, HEIGHT, FOCAL = 64, 48, 60.0
ANY_SCORE = PipelineSettings(score_threshold=0.0)


def scene_rgb(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    rgb = np.full((height, width, 3), 90, np.uint8)
    rgb[height // 4: 3 * height // 4, width // 3: 2 * width // 3] = (220, 30, 30)
    return rgb


def info(width: int = WIDTH, height: int = HEIGHT, focal: float = FOCAL) -> Intrinsics:
    K = np.array([[focal, 0.0, (width - 1) / 2], [0.0, focal, (height - 1) / 2], [0.0, 0.0, 1.0]])
    return Intrinsics(K.reshape(-1), width, height)


def plane(z: float, width: int = WIDTH, height: int = HEIGHT, encoding: str = "16UC1") -> np.ndarray:
    if encoding == "16UC1":
        return np.full((height, width), int(round(z * 1000)), np.uint16)
    return np.full((height, width), z, np.float32)


def rgbd(z: float = 1.0, encoding: str = "16UC1", width: int = WIDTH, height: int = HEIGHT,
         focal: float = FOCAL) -> CameraFrame:
    """A colour frame with registered (or, at another size, scaled-intrinsics) depth and both CameraInfos."""
    depth = DepthImage(plane(z, width, height, encoding), encoding, info(width, height, focal * width / WIDTH))
    return CameraFrame(scene_rgb(), depth, info())


@pytest.fixture
def pipeline(backend):
    pipeline = Pipeline(ANY_SCORE)
    pipeline.attach(backend)
    yield pipeline
    pipeline.release()


def test_prompt_is_answered_at_once_and_applies_from_the_frame_it_names(pipeline):
    ack = pipeline.submit(SetPrompt("  the red\n square "))
    assert ack.accepted and not ack.applied and ack.frame_index == 0
    assert ack.prompt == "the red square" and ack.active_targets == ["default"] and ack.target_id == "default"
    result = pipeline.process(rgbd(1.25))
    assert result.frame_index == 0 and [a.applied for a in result.applied] == [True]
    assert result.applied[0].command == SetPrompt("  the red\n square ")
    (target,) = result.targets
    assert (target.target_id, target.prompt) == ("default", "the red square")
    assert target.mask.shape == (HEIGHT, WIDTH) and target.mask.dtype == bool
    assert target.area == int(target.mask.sum()) > 0 and target.has_seg
    assert target.state is TrackingState.TRACKING
    rows, cols = np.nonzero(target.mask)
    assert target.bbox == (cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1)
    # The pose is what strvos_core computes from the same mask and depth.
    K = info().K.reshape(3, 3)
    expected = create_pose_estimator("pca").estimate(target.mask, depth_to_metres(plane(1.25), "16UC1"), K)
    assert target.pose.position_valid and target.pose.num_points == target.area
    np.testing.assert_allclose(target.pose.position, expected.position, atol=1e-6)
    np.testing.assert_allclose(result.camera_K, K)
    assert result.has_depth and not result.problems and result.step_seconds > 0
    second = pipeline.process(rgbd())
    assert second.frame_index == 1 and second.applied == []


def test_a_prompt_before_any_frame_or_model_is_answered_at_once(backend):
    """Bug: a prompt sent before the first camera frame used to be acknowledged only with that frame (never,
    without a camera). The answer comes at once, whatever the camera or the model does."""
    pipeline = Pipeline(ANY_SCORE)
    ack = pipeline.submit(SetPrompt("the red square"))
    assert ack.accepted and ack.frame_index == 0 and "applies from frame 0" in ack.message
    pipeline.attach(backend)
    (target,) = pipeline.process(CameraFrame(scene_rgb())).targets
    assert target.prompt == "the red square"
    pipeline.release()


def test_a_special_token_prompt_is_refused_at_once_and_spoils_nothing(pipeline):
    """Bug: 'find the [SEG] token' passed the node's check, failed the core's while the frame was processed,
    and dropped that frame and the rest of the command batch, with no answer."""
    first = pipeline.submit(AddTarget("mug", "the mug"))
    refused = pipeline.submit(AddTarget("seg", "find the [SEG] token"))
    later = pipeline.submit(AddTarget("cup", "the cup"))
    assert first.accepted and later.accepted
    assert not refused.accepted and "special token [SEG]" in refused.message
    assert refused.active_targets == ["mug"] and later.active_targets == ["cup", "mug"]
    result = pipeline.process(CameraFrame(scene_rgb()))
    assert [t.target_id for t in result.targets] == ["mug", "cup"] and not result.problems
    assert [a.target_id for a in result.applied] == ["mug", "cup"]


@pytest.mark.parametrize("text", ["the mug", "  a\tb  ", "<img> cat", "why? [SEG]", "<TIME_CONTEXT>", "x" * 999,
                                  "</img>", "<|im_start|>", "caf\u00e9 \u2014 \U0001f600", "a [SEG", "\u00a0mug"])
def test_every_prompt_the_check_accepts_the_session_accepts(text):
    """One rule set: what clean_prompt lets through can never fail in the session later."""
    try:
        cleaned = clean_prompt(text, 5000)
    except PromptError:
        return
    assert clean_expression(cleaned) == cleaned


def test_add_replace_remove_clear_named_targets(pipeline):
    assert pipeline.submit(SetPrompt("the red square")).accepted
    pipeline.process(CameraFrame(scene_rgb()))
    added = pipeline.submit(AddTarget("mug", "the mug on the left"))
    assert added.accepted and added.frame_index == 1 and added.active_targets == ["default", "mug"]
    result = pipeline.process(CameraFrame(scene_rgb()))
    assert [t.target_id for t in result.targets] == ["default", "mug"]
    colours = {t.target_id: t.index for t in result.targets}

    replaced = pipeline.submit(AddTarget("mug", "the blue mug"))
    assert replaced.accepted and "replaced" in replaced.message
    result = pipeline.process(CameraFrame(scene_rgb()))
    assert {t.target_id: t.index for t in result.targets} == colours  # a target keeps its colour
    assert [t.prompt for t in result.targets] == ["the red square", "the blue mug"]

    removed = pipeline.submit(RemoveTarget("mug"))
    unknown = pipeline.submit(RemoveTarget("nothing_here"))
    assert removed.accepted and removed.active_targets == ["default"]
    assert not unknown.accepted and "no target 'nothing_here'" in unknown.message
    assert not pipeline.submit(AddTarget("2bad", "x")).accepted  # not a usable topic name
    assert [t.target_id for t in pipeline.process(CameraFrame(scene_rgb())).targets] == ["default"]

    cleared = pipeline.submit(ClearTargets())
    assert cleared.accepted and cleared.active_targets == []
    result = pipeline.process(CameraFrame(scene_rgb()))
    assert result.targets == [] and result.step_seconds == 0.0
    assert [type(a.command) for a in result.applied] == [ClearTargets]


def test_replacing_a_prompt_restarts_tracking_and_reset_restarts_everything(pipeline, backend):
    pipeline.settings = PipelineSettings(score_threshold=0.0)
    pipeline.submit(SetPrompt("the red square"))
    assert pipeline.process(CameraFrame(scene_rgb())).targets[0].state is TrackingState.TRACKING
    from strvos_core.modeling.steering import steer_answer

    model = backend.model
    steer_answer(model.language_model, model.tokenizer, "none")  # no [SEG] from now on: empty masks
    (target,) = pipeline.process(CameraFrame(scene_rgb())).targets
    assert target.state is TrackingState.LOST and not target.has_seg and target.area == 0 and target.pose is None
    pipeline.submit(SetPrompt("the red square"))  # the same prompt again: tracking starts over
    assert pipeline.process(CameraFrame(scene_rgb())).targets[0].state is TrackingState.NOT_FOUND
    steer_answer(model.language_model, model.tokenizer, "seg")
    assert pipeline.process(CameraFrame(scene_rgb())).targets[0].state is TrackingState.TRACKING
    assert pipeline.submit(ResetTracking()).accepted
    steer_answer(model.language_model, model.tokenizer, "none")
    assert pipeline.process(CameraFrame(scene_rgb())).targets[0].state is TrackingState.NOT_FOUND


def test_state_follows_the_score_threshold_set_at_run_time(pipeline):
    pipeline.submit(SetPrompt("the red square"))
    pipeline.settings = PipelineSettings(score_threshold=1.0)
    (target,) = pipeline.process(CameraFrame(scene_rgb())).targets
    assert target.area > 0 and target.score < 1.0 and target.state is TrackingState.NOT_FOUND
    pipeline.settings = PipelineSettings(score_threshold=0.0)
    assert pipeline.process(CameraFrame(scene_rgb())).targets[0].state is TrackingState.TRACKING
    assert [(s.target_id, s.state) for s in pipeline.targets()] == [("default", TrackingState.TRACKING)]


@pytest.mark.parametrize(("encoding", "z"), [("16UC1", 1.25), ("32FC1", 0.8)])
def test_depth_units_come_from_the_encoding(pipeline, encoding, z):
    pipeline.submit(SetPrompt("the red square"))
    (target,) = pipeline.process(rgbd(z, encoding)).targets
    assert target.pose.position_valid and target.pose.position[2] == pytest.approx(z, abs=1e-6)


def test_depth_at_half_resolution_is_scaled_by_the_intrinsics(pipeline):
    pipeline.submit(SetPrompt("the red square"))
    result = pipeline.process(rgbd(2.0, width=WIDTH // 2, height=HEIGHT // 2))
    (target,) = result.targets
    assert not result.problems and target.pose.position_valid
    assert target.pose.position[2] == pytest.approx(2.0, abs=1e-6)


def test_pose_only_for_the_targets_that_want_one(pipeline):
    pipeline.submit(AddTarget("a", "the red square"))
    pipeline.submit(AddTarget("b", "the red square"))
    result = pipeline.process(rgbd(), pose_for=lambda target_id: target_id == "b")
    assert [t.pose is not None for t in result.targets] == [False, True]
    assert all(t.pose is None for t in pipeline.process(rgbd(), pose_for=False).targets)


def _problems(pipeline, frame: CameraFrame) -> dict[str, str]:
    result = pipeline.process(frame)
    (target,) = result.targets
    assert target.pose is None or not target.pose.position_valid
    return {p.kind: p.message for p in result.problems}


def test_bad_depth_and_camera_infos_are_problems_not_failures(pipeline):
    pipeline.submit(SetPrompt("the red square"))
    rgb = scene_rgb()
    nan = np.full((HEIGHT, WIDTH), np.nan, np.float32)
    nan[:, : WIDTH // 3], nan[:, 2 * WIDTH // 3:] = np.inf, 0.0
    result = pipeline.process(CameraFrame(rgb, DepthImage(nan, "32FC1", info()), info()))
    assert not result.problems and result.targets[0].pose.num_points == 0  # no valid depth: no pose, no problem
    cases = [
        (CameraFrame(rgb, DepthImage(plane(1.0), "16UC1")), "camera_info", "no CameraInfo"),
        (CameraFrame(rgb, DepthImage(plane(1.0, WIDTH // 2, HEIGHT // 2), "16UC1")), "depth size",
         "both CameraInfos are needed"),
        (CameraFrame(rgb, DepthImage(plane(1.0), "16UC1", Intrinsics(np.zeros(9), WIDTH, HEIGHT)), info()),
         "depth", "focal length"),
        (CameraFrame(rgb, DepthImage(plane(1.0), "16UC1", info(WIDTH * 2, HEIGHT)), info()), "depth",
         "is 128x48 but its image is 64x48"),
        (CameraFrame(rgb, DepthImage(plane(1.0), "16UC1", Intrinsics(np.ones(9), 0, 0)), info()), "depth",
         "zero image size"),
        (CameraFrame(rgb, DepthImage(plane(1.0).astype(np.uint8), "mono8", info()), info()), "depth",
         "depth encoding 'mono8' is not supported"),
        (CameraFrame(rgb, DepthImage(plane(1.0, encoding="32FC1"), "16UC1", info()), info()), "depth",
         "must be uint16"),
    ]
    for frame, kind, needle in cases:
        problems = _problems(pipeline, frame)
        assert list(problems) == [kind] and needle in problems[kind], (kind, problems)


def test_frames_that_cannot_be_segmented_fail_before_taking_a_frame_index(backend):
    pipeline = Pipeline()
    with pytest.raises(StrvosError, match="no model attached"):
        pipeline.process(CameraFrame(scene_rgb()))
    pipeline.attach(backend)
    pipeline.submit(SetPrompt("the red square"))
    with pytest.raises(StrvosError, match="shape"):
        pipeline.process(CameraFrame(np.zeros((4, 4, 5), np.uint8)))
    result = pipeline.process(CameraFrame(scene_rgb()))
    assert result.frame_index == 0 and len(result.applied) == 1


def test_a_change_during_a_frame_applies_from_the_next_one(pipeline):
    """submit() runs on another thread than process(): the frame index it names is exact."""
    pipeline.submit(SetPrompt("the red square"))
    session = pipeline._session
    step = session.step
    acks = []

    def step_and_submit(rgb):
        worker = threading.Thread(target=lambda: acks.append(pipeline.submit(AddTarget("mug", "the mug"))))
        worker.start()
        worker.join()
        return step(rgb)

    session.step = step_and_submit
    first = pipeline.process(CameraFrame(scene_rgb()))
    session.step = step
    assert first.frame_index == 0 and [t.target_id for t in first.targets] == ["default"]
    assert acks[0].frame_index == 1 and acks[0].active_targets == ["default", "mug"]
    second = pipeline.process(CameraFrame(scene_rgb()))
    assert [t.target_id for t in second.targets] == ["default", "mug"]
    assert [a.target_id for a in second.applied] == ["mug"]


def test_a_prompt_flood_is_answered_prompt_by_prompt(pipeline):
    acks = [pipeline.submit(SetPrompt(["the red square", "   ", "x" * 5000][i % 3])) for i in range(150)]
    assert sum(a.accepted for a in acks) == 50
    refused = [a.message for a in acks if not a.accepted]
    assert any("empty" in m for m in refused) and any("limit of 500" in m for m in refused)
    result = pipeline.process(CameraFrame(scene_rgb()))
    assert len(result.targets) == 1 and len(result.applied) == 50


def test_targets_beyond_the_limit_are_refused_and_replacing_one_is_not(backend):
    """Found fuzzing the node (tools/soak.py, issue 15): 1,000 ADDs made 1,000 targets, each a model pass per frame (and two
    publishers in the node): one frame took minutes. Now the registry holds at most max_targets."""
    pipeline = Pipeline(PipelineSettings(max_targets=3))
    acks = [pipeline.submit(AddTarget(f"t{i}", "the red square")) for i in range(1000)]
    assert [a.accepted for a in acks[:4]] == [True, True, True, False]
    assert sum(a.accepted for a in acks) == 3 and "limit (max_targets) is 3" in acks[3].message
    assert pipeline.submit(AddTarget("t1", "the grey table")).accepted  # replacing one adds nothing
    assert pipeline.submit(RemoveTarget("t0")).accepted and pipeline.submit(AddTarget("t9", "a cup")).accepted
    pipeline.attach(backend)
    assert [t.target_id for t in pipeline.process(CameraFrame(scene_rgb())).targets] == ["t1", "t2", "t9"]


def test_targets_survive_release_and_attach(pipeline, backend):
    pipeline.submit(AddTarget("mug", "the mug"))
    pipeline.process(CameraFrame(scene_rgb()))
    pipeline.release()
    assert not pipeline.ready and backend.released == 1
    assert pipeline.submit(AddTarget("cup", "the cup")).accepted  # while unloaded
    pipeline.attach(backend)
    result = pipeline.process(CameraFrame(scene_rgb()))
    assert [t.target_id for t in result.targets] == ["mug", "cup"]
    assert all(t.state is TrackingState.TRACKING for t in result.targets)
