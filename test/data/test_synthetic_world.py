"""The synthetic world in memory: determinism, occlusion- and depth-consistent ground truth, expressions
that refer to exactly one object (re-checked from their text), motions that the masks actually show."""
from __future__ import annotations

import numpy as np
import pytest

from strvos_core.datasets.synthetic import (
    Query,
    SyntheticConfig,
    evaluate,
    generate_video,
    parse_expression,
    vocabulary_words,
)
from strvos_core.datasets.synthetic.render import intrinsics
from strvos_core.datasets.synthetic.sprites import shape_mask
from strvos_core.datasets.synthetic.vocabulary import SHAPES

SMALL = SyntheticConfig(width=160, height=120, num_frames=12)
SEEDS = range(24)


@pytest.fixture(scope="module")
def videos():
    return [generate_video(seed) for seed in SEEDS]


def test_same_seed_gives_identical_video_and_other_seeds_differ():
    a, b, c = generate_video(11, SMALL), generate_video(11, SMALL), generate_video(12, SMALL)
    for name in ("frames", "depth_mm", "labels", "K"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes(), name
    assert [(e.exp_id, e.text, e.obj_id, e.kind) for e in a.expressions] == \
           [(e.exp_id, e.text, e.obj_id, e.kind) for e in b.expressions]
    assert a.frames.tobytes() != c.frames.tobytes()


def test_arrays_have_the_documented_types_and_camera(videos):
    config = SyntheticConfig()
    for video in videos[:3]:
        t = config.num_frames
        assert video.frames.shape == (t, 240, 320, 3) and video.frames.dtype == np.uint8
        assert video.depth_mm.shape == (t, 240, 320) and video.depth_mm.dtype == np.uint16
        assert set(video.masks) == {o.obj_id for o in video.objects}
        assert all(m.shape == (t, 240, 320) and m.dtype == bool for m in video.masks.values())
        assert config.min_objects <= len(video.objects) <= config.max_objects
    K = videos[0].K
    # 60 degree horizontal field of view: fx = (W / 2) / tan(30 deg), principal point at the centre.
    assert K[0, 0] == pytest.approx(160 / np.tan(np.pi / 6)) and K[0, 0] == K[1, 1]
    assert (K[0, 2], K[1, 2]) == (159.5, 119.5) and list(K[2]) == [0, 0, 1]
    assert np.array_equal(intrinsics(SyntheticConfig(width=640, height=480)), np.diag([2, 2, 1]) @ K
                          + np.array([[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0]]))


def test_masks_follow_occlusion_order(videos):
    """Visible mask = own footprint minus every nearer object's footprint (recomputed independently)."""
    for video in videos:
        amodal = video.amodal_masks()
        masks = video.masks
        for obj in video.objects:
            nearer = [amodal[o.obj_id] for o in video.objects if o.depth_mm < obj.depth_mm]
            covered = np.logical_or.reduce(nearer) if nearer else np.zeros_like(amodal[obj.obj_id])
            assert np.array_equal(masks[obj.obj_id], amodal[obj.obj_id] & ~covered), (video.seed, obj.obj_id)


def test_some_objects_are_partly_and_fully_occluded(videos):
    partly = fully = 0
    for video in videos:
        amodal = video.amodal_masks()
        for obj_id, mask in video.masks.items():
            full, seen = amodal[obj_id].sum((1, 2)), mask.sum((1, 2))
            partly += int(np.sum((seen > 0) & (seen < full)))
            fully += int(np.sum((full > 0) & (seen == 0)))
    assert partly > 20 and fully > 0


def test_depth_is_the_object_depth_under_its_mask_and_the_plane_elsewhere(videos):
    config = SyntheticConfig()
    for video in videos:
        depth = video.depth_mm
        for obj in video.objects:
            under = depth[video.masks[obj.obj_id]]
            assert set(np.unique(under)) <= {0, obj.depth_mm}, (video.seed, obj.obj_id)
        background = depth[video.labels == 0]
        valid = background[background > 0]
        assert valid.min() > config.object_depth_mm[1] and valid.max() < 65535
        invalid_fraction = np.mean(depth == 0)
        assert 0.3 * config.invalid_depth_fraction < invalid_fraction < 3 * config.invalid_depth_fraction
        # The background is a plane seen through K: 1/Z is affine in the pixel coordinates.
        plane = depth[0].astype(np.float64)
        v, u = np.nonzero((video.labels[0] == 0) & (depth[0] > 0))
        design = np.stack([u, v, np.ones_like(u)], axis=1).astype(np.float64)
        coefficients, *_ = np.linalg.lstsq(design, 1.0 / plane[v, u], rcond=None)
        residual = np.abs(design @ coefficients - 1.0 / plane[v, u]) * plane[v, u]  # relative error
        assert residual.max() < 1e-3


def test_in_view_geometry_matches_rendered_footprints(videos):
    for video in videos:
        amodal = video.amodal_masks()
        for obj in video.objects:
            assert np.array_equal(obj.in_view(320, 240), amodal[obj.obj_id].any((1, 2))), (video.seed, obj.obj_id)


def test_appearing_and_leaving_objects_are_empty_exactly_outside_their_frames(videos):
    seen = {"appearing": 0, "leaving": 0}
    for video in videos:
        amodal = video.amodal_masks()
        for obj in video.objects:
            present = amodal[obj.obj_id].any((1, 2))
            visible = video.masks[obj.obj_id].any((1, 2))
            if obj.motion == "appearing":
                assert 0 < obj.enter_frame < video.num_frames
                assert not visible[:obj.enter_frame].any() and present[obj.enter_frame:].all()
            elif obj.motion == "leaving":
                assert 0 < obj.exit_frame < video.num_frames
                assert present[:obj.exit_frame].all() and not visible[obj.exit_frame:].any()
            else:
                assert present.all()
            seen[obj.motion] = seen.get(obj.motion, 0) + 1
    assert seen["appearing"] >= 3 and seen["leaving"] >= 3


def test_every_expression_parses_back_and_refers_to_exactly_its_object(videos):
    kinds = set()
    for video in videos:
        facts = video.facts()
        texts = [e.text for e in video.expressions]
        assert len(set(texts)) == len(texts)
        assert [e.exp_id for e in video.expressions] == [str(i) for i in range(len(texts))]
        for expression in video.expressions:
            query = parse_expression(expression.text)
            assert query == expression.query and query.kind == expression.kind
            assert evaluate(query, facts) == {expression.obj_id}, (video.seed, expression.text)
            # Only objects seen at least half unoccluded in some frame are referred to.
            best_view = video.masks[expression.obj_id].sum((1, 2)).max()
            assert best_view >= 0.5 * video.sprites[expression.obj_id].mask.sum()
            kinds.add(expression.kind)
    assert kinds == {"appearance", "relation", "motion"}


def test_appearance_expressions_match_exactly_one_object_by_attributes(videos):
    for video in videos:
        for expression in video.expressions:
            described = dict(parse_expression(expression.text).attributes)
            matching = [o.obj_id for o in video.objects
                        if all(getattr(o, name) == value for name, value in described.items())]
            if expression.kind == "appearance":
                assert matching == [expression.obj_id], expression.text
            else:  # the noun phrase alone is ambiguous: the relation or the motion is needed
                assert len(matching) > 1 and expression.obj_id in matching, expression.text


def _centroids(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    area = mask.sum((1, 2))
    frames = np.nonzero(area > 0)[0]
    ys, xs = np.mgrid[: mask.shape[1], : mask.shape[2]]
    cx = (mask[frames] * xs).sum((1, 2)) / area[frames]
    cy = (mask[frames] * ys).sum((1, 2)) / area[frames]
    return frames, np.stack([cx, cy], axis=1)


def _edge_steps(footprint: np.ndarray, axis: int) -> np.ndarray:
    """Per step between consecutive in-view frames: how far an edge of the footprint that the image border
    does not clip moved along `axis` (x = 0, y = 1). Unlike the centroid, that is rigid motion even while
    the object slides across the border."""
    extent = footprint.shape[2 - axis]
    other_axis = 1 if axis == 0 else 2  # the array axis to collapse: rows for x, columns for y
    lines = footprint.any(other_axis)  # [T, extent]: which columns (rows) the footprint covers
    frames = np.nonzero(lines.any(1))[0]
    low = np.array([np.nonzero(lines[t])[0][0] for t in frames])
    high = np.array([np.nonzero(lines[t])[0][-1] for t in frames])
    steps = []
    for i in range(len(frames) - 1):
        if high[i] < extent - 1 and high[i + 1] < extent - 1:
            steps.append(high[i + 1] - high[i])
        else:
            assert low[i] > 0 and low[i + 1] > 0, "footprint spans the whole image"
            steps.append(low[i + 1] - low[i])
    return np.array(steps)


def test_motion_expressions_describe_what_the_masks_do(videos):
    """The object's footprint moves along the stated direction at every step and far enough, its centroid
    stays on its line, and it is clearly visible at some point: at least half its footprint in one frame."""
    checked = set()
    axis_of = {"left": (0, -1), "right": (0, 1), "up": (1, -1), "down": (1, 1)}
    for video in videos:
        amodal = video.amodal_masks()
        for expression in video.expressions:
            if expression.kind != "motion":
                continue
            motion = expression.query.motion
            mask = video.masks[expression.obj_id]
            full = amodal[expression.obj_id]
            sprite_area = video.sprites[expression.obj_id].mask.sum()
            assert mask.sum((1, 2)).max() >= 0.5 * sprite_area, (video.seed, expression.text)
            if motion in axis_of:
                axis, sign = axis_of[motion]
                steps = _edge_steps(full, axis)
                assert np.all(sign * steps > 0), (video.seed, expression.text, steps)
                assert np.sum(sign * steps) >= 0.08 * 240, (video.seed, expression.text)
                frames, centres = _centroids(full)
                whole = full.sum((1, 2))[frames] == sprite_area  # entirely in view: no clipping
                assert np.ptp(centres[whole, 1 - axis]) < 1e-9
            elif motion == "still":
                # Same footprint in every frame; what is visible of it only ever shrinks by occlusion.
                assert full[0].any() and (full == full[0]).all(), expression.text
                assert not (mask & ~full[0]).any()
            elif motion == "appearing":
                assert not full[0].any() and full[-1].any()
            else:
                assert full[0].any() and not full[-1].any()
            checked.add(motion)
    assert checked >= {"left", "right", "up", "down", "still", "appearing", "leaving"}


def test_relation_expressions_hold_on_the_rendered_footprints(videos):
    for video in videos:
        amodal = video.amodal_masks()
        facts = video.facts()
        for expression in video.expressions:
            if expression.kind != "relation":
                continue
            query = expression.query
            landmarks = evaluate(Query("appearance", query.landmark), facts)
            assert len(landmarks) == 1, expression.text
            (landmark,) = landmarks
            both = amodal[expression.obj_id].any((1, 2)) & amodal[landmark].any((1, 2))
            assert both.sum() >= video.num_frames / 2
            for t in np.nonzero(both)[0]:
                ys_a, xs_a = np.nonzero(amodal[expression.obj_id][t])
                ys_b, xs_b = np.nonzero(amodal[landmark][t])
                a, b = (xs_a.mean(), ys_a.mean()), (xs_b.mean(), ys_b.mean())
                ok = {"left of": a[0] < b[0], "right of": a[0] > b[0], "above": a[1] < b[1], "below": a[1] > b[1]}
                assert ok[query.relation], (video.seed, expression.text, t)


def test_expressions_use_only_the_closed_vocabulary(videos):
    vocabulary = set(vocabulary_words())
    assert vocabulary_words() == sorted(vocabulary) and len(vocabulary) < 60
    used = {word for video in videos for e in video.expressions for word in e.text.split()}
    assert used <= vocabulary
    assert len(used) > 0.6 * len(vocabulary)


def test_every_shape_touches_all_four_sides_of_its_square():
    for shape in SHAPES:
        for radius in (3, 8, 25):
            mask = shape_mask(shape, radius)
            assert mask.shape == (2 * radius + 1,) * 2
            assert mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any(), (shape, radius)
            assert mask[radius, radius], shape


@pytest.mark.parametrize("text, problem", [
    ("red circle", "must start with 'the'"),
    ("the red", "without a noun"),
    ("the circle red", "neither a motion nor a relation"),
    ("the red small circle", "not a shape"),
    ("the circle left of the square now", "after the landmark"),
])
def test_off_grammar_expressions_are_rejected_with_a_reason(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_expression(text)


@pytest.mark.parametrize("kwargs, field", [
    ({"width": 32}, "width"),
    ({"num_frames": 3}, "num_frames"),
    ({"min_objects": 4, "max_objects": 2}, "min_objects"),
    ({"max_objects": 9}, "max_objects"),
    ({"background_depth_mm": (1000, 3000)}, "background_depth_mm"),
    ({"invalid_depth_fraction": 0.9}, "invalid_depth_fraction"),
])
def test_bad_config_is_a_clear_error(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SyntheticConfig(**kwargs)


def test_bad_seed_is_a_clear_error():
    for seed in (-1, 1.5, "3", True):
        with pytest.raises(ValueError, match="seed"):
            generate_video(seed)


@pytest.mark.parametrize("config", [
    SyntheticConfig(width=64, height=64, num_frames=8, min_objects=1, max_objects=1),
    SyntheticConfig(width=640, height=200, num_frames=24, min_objects=5, max_objects=8),
])
def test_other_sizes_keep_the_invariants(config):
    for seed in range(4):
        video = generate_video(seed, config)
        assert video.frames.shape == (config.num_frames, config.height, config.width, 3)
        amodal = video.amodal_masks()
        for obj in video.objects:
            assert np.array_equal(obj.in_view(config.width, config.height), amodal[obj.obj_id].any((1, 2)))
        for expression in video.expressions:
            assert evaluate(parse_expression(expression.text), video.facts()) == {expression.obj_id}


def test_expression_built_from_text_alone_gets_its_meaning():
    from strvos_core.datasets.synthetic import Expression

    expression = Expression("0", "the small red circle left of the blue square", 2, "relation")
    assert expression.query == Query("relation", (("size", "small"), ("colour", "red"), ("shape", "circle")),
                                     relation="left of", landmark=(("colour", "blue"), ("shape", "square")))
    with pytest.raises(ValueError, match="not 'motion'"):
        Expression("1", "the red circle", 1, "motion")
