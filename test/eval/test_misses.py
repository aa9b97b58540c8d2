"""evaluation.misses: where a model's masks miss. The groups' lost J adds up to 1 - mean frame J, the click and peak
cell checks follow the pixels, and the collector streams a real benchmark through the real tiny model, whose
sessions now hand out where the [SEG] token looked and where SAM 2 was clicked."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from eval_layouts import make_synthetic
from PIL import Image

from strvos_core import backends
from strvos_core.checkpoint import build_random_model, save_checkpoint
from strvos_core.datasets import read_video_benchmark
from strvos_core.datasets.files import load_rgb
from strvos_core.errors import StrvosError
from strvos_core.evaluation.misses import (
    TargetFrame,
    cell_overlaps,
    click_overlaps,
    collect,
    format_summary,
    main,
    summarise,
    target_frame,
)
from strvos_core.metrics.region import jaccard_per_frame
from strvos_core.modeling.attention_click import attention_click
from strvos_core.training.build import add_attention_click


def test_the_peak_cell_and_the_click_are_checked_against_the_target_pixels():
    truth = np.zeros((24, 36), bool)
    truth[8:12, 24:30] = True  # rows 8-11, columns 24-29
    attention = np.zeros((3, 3))
    attention[1, 2] = 1.0  # the cell covering rows 8-15, columns 24-35
    assert cell_overlaps(truth, attention)
    attention = np.zeros((3, 3))
    attention[0, 2] = 1.0  # rows 0-7: above the target
    assert not cell_overlaps(truth, attention)
    assert click_overlaps(truth, (25.9, 8.0)) and not click_overlaps(truth, (23.9, 9.0))
    assert not click_overlaps(truth, (-5.0, 500.0))  # clamped to the frame, never an index error
    assert not click_overlaps(truth, (float("nan"), 9.0))


def test_the_lost_j_of_the_groups_adds_up_to_one_minus_the_mean():
    frames = ([TargetFrame("appearance", 0.0, 0.0)] * 2 + [TargetFrame("appearance", 0.0, 1.0)]
              + [TargetFrame("appearance", 0.001, 0.2, False, True)] * 2
              + [TargetFrame("appearance", 0.03, 0.9, True, True)] * 5)
    summary = summarise(frames, "appearance")
    assert [g.name for g in summary.groups] == ["target out of view", "in view, the click off the target",
                                                "in view, the click on the target"]
    assert [g.frames for g in summary.groups] == [3, 2, 5]
    assert sum(g.j_lost for g in summary.groups) == pytest.approx(1 - summary.mean_j)
    assert summary.groups[0].mean_j == pytest.approx(1 / 3)
    assert summary.click_on == pytest.approx(5 / 7) and summary.peak_on == 1.0
    assert summary.missed_click_peak_on == 1.0
    assert [(b.frames, b.click_on) for b in summary.bins] == [(2, 0.0), (5, 1.0)]
    assert sum(b.share for b in summary.bins) == pytest.approx(1.0)
    text = format_summary(summary, 76800)
    assert "| target out of view | 3 | 0.300 | 0.333 | 0.200 |" in text
    assert "<= 0.25 % (192 px)" in text and "> 2 % (1536 px)" in text

    unanswered = summarise(frames + [TargetFrame("appearance", 0.02, 0.0)], "appearance")  # no [SEG]: no click
    assert [g.frames for g in unanswered.groups] == [3, 2, 5, 1]
    assert unanswered.groups[-1].name == "in view, no click (no [SEG] answered)"
    assert unanswered.click_on == pytest.approx(5 / 7)
    assert sum(g.j_lost for g in unanswered.groups) == pytest.approx(1 - unanswered.mean_j)

    no_clicks = summarise([TargetFrame("motion", 0.0, 0.0), TargetFrame("motion", 0.01, 0.5)], "motion")
    assert [g.name for g in no_clicks.groups] == ["target out of view", "in view"]
    assert no_clicks.click_on is None and "the click on the target in" not in format_summary(no_clicks)
    with pytest.raises(StrvosError, match="no target-frames"):
        summarise([], "relation")


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    root = make_synthetic(tmp_path_factory.mktemp("synthetic"), {"clip_a": (3, 24, 32)})
    # object 1 leaves the view in the last frame: an out-of-view target-frame
    path = root / "valid" / "Annotations" / "clip_a" / "00002.png"
    labels = np.array(Image.open(path))
    labels[labels == 1] = 0
    image = Image.fromarray(labels, mode="P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    image.save(path)
    return root


@pytest.fixture(scope="module")
def clicking_export(tmp_path_factory):
    model = build_random_model("tiny", answer="seg")
    add_attention_click(model)
    return save_checkpoint(model, model.tokenizer, tmp_path_factory.mktemp("clicking") / "export")


def test_sessions_report_where_the_seg_token_looked_and_where_sam2_was_clicked(clicking_export, synthetic_root):
    backend = backends.create("streamingrvos", model=str(clicking_export))
    video = read_video_benchmark("synthetic", synthetic_root).videos[0]
    frame = load_rgb(video.frame_path(0))
    target = backend.start_session(["the red square"]).step(frame).targets["0"]
    assert target.attention is not None and target.attention.ndim == 2
    assert target.attention.shape[0] == target.attention.shape[1]
    assert float(target.attention.sum()) == pytest.approx(1.0, abs=1e-4)
    size = backend.model.config.grounding.image_size
    x, y = attention_click(torch.from_numpy(target.attention).flatten(), size).tolist()
    height, width = frame.shape[:2]
    assert target.click == pytest.approx((x * width / size, y * height / size), abs=1e-4)

    plain = backends.create("streamingrvos", model="random:tiny").start_session(["the red square"])
    without = plain.step(frame).targets["0"]
    assert without.attention is None and without.click is None


def test_collect_scores_every_target_frame_with_the_reference_j(clicking_export, synthetic_root, tmp_path):
    bench = read_video_benchmark("synthetic", synthetic_root)
    backend = backends.create("streamingrvos", model=str(clicking_export))
    frames, pixels = collect(bench, backend, expressions_per_session=1)
    assert pixels == 24 * 32 and len(frames) == 3 * 2
    assert [f.kind for f in frames] == ["appearance"] * 3 + ["relation"] * 3
    out_of_view = [f for f in frames if not f.visible]
    assert len(out_of_view) == 1 and out_of_view[0].click_on is None
    assert all(f.click_on is not None and f.peak_on is not None for f in frames if f.visible)

    # the same stream by hand: the records are what the session's masks score
    video = bench.videos[0]
    expression = video.expressions[0]
    session = backend.start_session({expression.exp_id: expression.expression})
    for index, record in enumerate(frames[:3]):
        rgb = load_rgb(video.frame_path(index))
        target = session.step(rgb).targets[expression.exp_id]
        truth = bench.ground_truth.frame_mask(video, expression, index, rgb.shape[:2])
        assert record == target_frame("appearance", truth, target.mask, target.attention, target.click)
        assert record.j == pytest.approx(float(jaccard_per_frame(truth, np.asarray(target.mask, np.uint8))))
    assert collect(bench, backend, ["motion"])[0] == []

    report = tmp_path / "misses.md"
    assert main(["--model", str(clicking_export), "--data-root", str(synthetic_root), "--split", "valid",
                 "--kinds", "appearance", "--out", str(report)]) == 0
    text = report.read_text()
    assert "**appearance**: 3 target-frames" in text and "target out of view | 1 |" in text
    assert "relation" not in text.split("\n\n", 1)[1]
    assert main(["--model", str(clicking_export), "--data-root", str(synthetic_root), "--split", "valid",
                 "--kinds", "motion"]) == 2
