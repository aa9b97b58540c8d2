"""The demo's plan and scoring, on real synthetic clips (no ROS)."""
from __future__ import annotations

import json

import numpy as np

from strvos_core.demo.plan import make_plan
from strvos_core.demo.report import DemoRecording, FrameRecord, score, write_outputs


def _perfect(plan, drop_every: int = 0) -> DemoRecording:
    rec = DemoRecording(plan, model="test", launcher="test")
    for frame in range(plan.num_frames):
        if drop_every and frame % drop_every == 0:
            continue
        change = plan.prompt_at(frame)
        clip, t = plan.locate(frame)
        mask = plan.videos[clip].labels[t] == change.obj_id
        rec.records[frame] = FrameRecord(mask=mask, prompt=change.text, state=1, score=0.9,
                                         position=(0.1, 0.0, 1.5), latency=0.05)
    return rec


def test_plan_changes_target_mid_clip_with_different_objects():
    plan = make_plan(seed=3, clips=2, frames_per_clip=12, width=96, height=72)
    assert plan.num_frames == 24 and len(plan.prompts) == 4
    for first, second in zip(plan.prompts[::2], plan.prompts[1::2], strict=True):
        assert first.video == second.video and first.obj_id != second.obj_id
        assert second.frame - first.frame == 6
    assert plan.locate(13) == (1, 1)


def test_perfect_results_score_one_and_drops_are_counted():
    plan = make_plan(seed=1, clips=1, frames_per_clip=10, width=96, height=72)
    summary = score(_perfect(plan))
    assert summary["J&F"]["J&F"] == 1.0 and summary["frames_dropped"] == 0
    dropped = score(_perfect(plan, drop_every=2))
    assert dropped["frames_dropped"] == 5 and dropped["J&F"]["J&F"] < 1.0


def test_the_summary_says_plainly_where_the_mask_was():
    """Perfect masks are on the named object; masks of another object are counted as elsewhere, and the summary's
    first line says the model does not follow the prompt."""
    from strvos_core.demo.report import mask_placement, summary_markdown

    plan = make_plan(seed=1, clips=1, frames_per_clip=10, width=96, height=72)
    good = score(_perfect(plan))
    assert good["on_target"] == good["answered"] == 10 and good["elsewhere"] == 0
    assert summary_markdown(good).splitlines()[4].startswith("The mask was on the named object in 100 %")
    wrong = _perfect(plan)
    for frame, record in wrong.records.items():
        clip, t = plan.locate(frame)
        labels = plan.videos[clip].labels[t]
        others = (labels > 0) & (labels != plan.prompt_at(frame).obj_id)
        record.mask = others if others.any() else np.zeros_like(others)
    wrong.model_card = {"overall": 0.2, "by_kind": {"appearance": 0.21}}
    bad = score(wrong)
    assert bad["on_target"] == 0 and bad["elsewhere"] > 0
    text = summary_markdown(bad)
    assert "**The mask was on the named object in only 0 %" in text and "does not reliably follow" in text
    assert "(its model card): **0.200** (appearance 0.210)" in text
    labels = np.zeros((10, 10), np.uint8)
    labels[:5, :5], labels[5:, 5:] = 1, 2
    assert mask_placement(labels == 1, labels, 1) == "on_target"
    assert mask_placement(labels == 2, labels, 1) == "elsewhere"
    assert mask_placement(np.zeros_like(labels, bool), labels, 1) == "empty"
    half = np.zeros_like(labels, bool)
    half[:2, :5] = True  # 10 of the target's 25 pixels, nothing else
    assert mask_placement(half, labels, 1) == "partial"


def test_results_for_a_stale_prompt_do_not_count():
    plan = make_plan(seed=1, clips=1, frames_per_clip=10, width=96, height=72)
    rec = _perfect(plan)
    for r in rec.records.values():
        r.prompt = plan.prompts[0].text  # every result answered the first prompt only
    per_segment = score(rec)["segments"]
    assert per_segment[0]["answered"] == 5 and per_segment[1]["answered"] == 0


def test_outputs_are_written(tmp_path):
    plan = make_plan(seed=2, clips=1, frames_per_clip=8, width=96, height=72)
    summary = write_outputs(_perfect(plan), tmp_path)
    for name in ("overlay.mp4", "overlay.gif", "summary.json", "summary.md"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "summary.json").read_text())["J&F"] == summary["J&F"]
    assert np.isclose(summary["latency_s"]["p50"], 0.05)


def test_rendered_frames_show_the_state_the_mask_has():
    """A mask is filled only while TRACKING; below the threshold it is a dashed outline (the video used to show
    a filled mask under "NOT_FOUND"); the frame is enlarged twice before drawing."""
    from strvos_core.demo.render import SCALE, render_frame

    plan = make_plan(seed=2, clips=1, frames_per_clip=8)
    rec = _perfect(plan)
    rec.score_threshold = 0.5
    frame = 1
    mask = np.zeros((240, 320), bool)
    mask[80:160, 100:220] = True
    rec.records[frame].mask, rec.records[frame].position = mask, None
    tracked = render_frame(rec, frame)
    rec.records[frame].state, rec.records[frame].score = 0, 0.3
    untrusted = render_frame(rec, frame)
    rec.records.pop(frame)
    dropped = render_frame(rec, frame)
    assert tracked.shape == (240 * SCALE, 320 * SCALE, 3)
    inside = np.repeat(np.repeat(mask, SCALE, 0), SCALE, 1)
    inner = inside & np.roll(inside, 4, 0) & np.roll(inside, -4, 0)  # away from the outline
    inner &= np.roll(inside, 4, 1) & np.roll(inside, -4, 1)
    inner[:70], inner[-100:] = False, False  # away from the text boxes
    assert inner.sum() > 100
    assert (tracked[inner] != dropped[inner]).any()  # filled
    assert (untrusted[inner] == dropped[inner]).all()  # not filled
