"""Scores and renders what the node published during the demo: J&F against ground truth, latency, drops,
and an overlay video with the mask, the ground-truth outline and the 3D pose."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from strvos_core.demo.plan import DemoPlan
from strvos_core.demo.render import render_frame
from strvos_core.metrics import jf_summary, score_expression


@dataclass
class FrameRecord:
    """What came back for one played frame (None fields: nothing came back)."""

    mask: np.ndarray | None = None
    prompt: str = ""
    state: int = 0
    score: float = 0.0
    position: tuple[float, float, float] | None = None
    latency: float | None = None  # seconds from publishing the image to receiving its result
    orientation: tuple[float, float, float, float] | None = None  # x, y, z, w; None when not valid


@dataclass
class DemoRecording:
    plan: DemoPlan
    records: dict[int, FrameRecord] = field(default_factory=dict)
    acks: list[dict] = field(default_factory=list)
    model: str = ""
    launcher: str = ""
    rate_hz: float = 15.0
    score_threshold: float | None = None  # the node's, to say why a mask is not trusted


def score(recording: DemoRecording) -> dict:
    """J&F per prompt segment (frames without a result count as empty masks) plus latency and drops."""
    plan = recording.plan
    segments = []
    for i, change in enumerate(plan.prompts):
        end = plan.prompts[i + 1].frame if i + 1 < len(plan.prompts) else plan.num_frames
        clip, _ = plan.locate(change.frame)
        video = plan.videos[clip]
        gts, preds, answered = [], [], 0
        for frame in range(change.frame, end):
            _, t = plan.locate(frame)
            gt = video.labels[t] == change.obj_id
            rec = recording.records.get(frame)
            # a result computed for the previous prompt does not count for this one
            ok = rec is not None and rec.mask is not None and rec.prompt == change.text
            answered += ok
            gts.append(gt)
            preds.append(rec.mask if ok else np.zeros_like(gt))
        s = score_expression(np.stack(gts), np.stack(preds))
        segments.append({"prompt": change.text, "frames": end - change.frame, "answered": answered,
                         "J": s.J, "F": s.F, "J&F": s.JF})
    latencies = np.array([r.latency for r in recording.records.values() if r.latency is not None])
    received = len(recording.records)
    return {
        "model": recording.model,
        "launcher": recording.launcher,
        "camera_rate_hz": recording.rate_hz,
        "frames_played": plan.num_frames,
        "frames_with_result": received,
        "frames_dropped": plan.num_frames - received,
        "drop_rate": 1 - received / plan.num_frames,
        "latency_s": {"p50": float(np.percentile(latencies, 50)), "p95": float(np.percentile(latencies, 95)),
                      "max": float(latencies.max())} if latencies.size else None,
        "J&F": jf_summary((s["J"], s["F"]) for s in segments),
        "segments": segments,
        "prompt_acks": recording.acks,
    }


def write_outputs(recording: DemoRecording, out_dir: Path) -> dict:
    """overlay.mp4, overlay.gif, summary.json and summary.md in out_dir; returns the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = [render_frame(recording, i) for i in range(recording.plan.num_frames)]
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(out_dir / "overlay.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), recording.rate_hz,
                             (w, h))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    gif = [Image.fromarray(f).resize((w // 2, h // 2)) for f in frames[::2]]
    gif[0].save(out_dir / "overlay.gif", save_all=True, append_images=gif[1:],
                duration=int(2000 / recording.rate_hz), loop=0)
    summary = score(recording)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    (out_dir / "summary.md").write_text(summary_markdown(summary))
    return summary


def summary_markdown(summary: dict) -> str:
    lat = summary["latency_s"]
    rows = "\n".join(f"| {s['prompt']} | {s['frames']} | {s['answered']} | {s['J&F']:.3f} |"
                     for s in summary["segments"])
    return (
        f"# strvos demo\n\nmodel: `{summary['model']}`, started with {summary['launcher']}\n\n"
        f"- J&F over all prompt segments: **{summary['J&F']['J&F']:.3f}** (J {summary['J&F']['J']:.3f}, "
        f"F {summary['J&F']['F']:.3f})\n"
        f"- frames played at {summary['camera_rate_hz']:g} Hz: {summary['frames_played']}, with a result: "
        f"{summary['frames_with_result']}, dropped by the node (keep-newest): {summary['frames_dropped']} "
        f"({100 * summary['drop_rate']:.0f} %)\n"
        + (f"- latency image -> result: p50 {lat['p50'] * 1000:.0f} ms, p95 {lat['p95'] * 1000:.0f} ms\n" if lat else "")
        + f"\n| prompt | frames | answered | J&F |\n|---|---|---|---|\n{rows}\n"
    )
