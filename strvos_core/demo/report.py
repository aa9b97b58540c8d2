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
    model_card: dict | None = None  # model_card_scores() of the model run, when it has a card


def score(recording: DemoRecording) -> dict:
    """J&F per prompt segment (frames without a result count as empty masks) plus latency and drops."""
    plan = recording.plan
    segments = []
    for i, change in enumerate(plan.prompts):
        end = plan.prompts[i + 1].frame if i + 1 < len(plan.prompts) else plan.num_frames
        clip, _ = plan.locate(change.frame)
        video = plan.videos[clip]
        gts, preds, answered, placement = [], [], 0, {"on_target": 0, "elsewhere": 0}
        for frame in range(change.frame, end):
            _, t = plan.locate(frame)
            gt = video.labels[t] == change.obj_id
            rec = recording.records.get(frame)
            # a result computed for the previous prompt does not count for this one
            ok = rec is not None and rec.mask is not None and rec.prompt == change.text
            answered += ok
            gts.append(gt)
            preds.append(rec.mask if ok else np.zeros_like(gt))
            if ok:
                where = mask_placement(rec.mask, video.labels[t], change.obj_id)
                if where in placement:
                    placement[where] += 1
        s = score_expression(np.stack(gts), np.stack(preds))
        segments.append({"prompt": change.text, "frames": end - change.frame, "answered": answered,
                         "J": s.J, "F": s.F, "J&F": s.JF, **placement})
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
        "on_target": sum(s["on_target"] for s in segments),
        "elsewhere": sum(s["elsewhere"] for s in segments),
        "answered": sum(s["answered"] for s in segments),
        "segments": segments,
        "prompt_acks": recording.acks,
        "model_card": recording.model_card,
    }


def mask_placement(mask: np.ndarray, labels: np.ndarray, obj_id: int) -> str:
    """Where a published mask lies: "on_target" (IoU with the named object >= 0.5), "elsewhere" (it covers more
    of other objects than of the named one), "partial" (neither), "empty"."""
    if not mask.any():
        return "empty"
    target = labels == obj_id
    inter = int((mask & target).sum())
    if inter / max(int((mask | target).sum()), 1) >= 0.5:
        return "on_target"
    return "elsewhere" if int((mask & (labels > 0) & ~target).sum()) > inter else "partial"


def model_card_scores(model_dir: Path) -> dict | None:
    """The J&F the model card measured on the synthetic test split (scores.json beside the weights), if any."""
    path = Path(model_dir) / "scores.json"
    if not path.is_file():
        return None
    streaming = json.loads(path.read_text())["streaming"]
    return {"overall": streaming["overall"], "by_kind": {k: v["JF"] for k, v in streaming["by_kind"].items()}}


def verdict(summary: dict) -> str:
    """One plain sentence on whether the masks were on the named objects."""
    answered = summary["answered"]
    if answered == 0:
        return "**No result came back for any prompt.**"
    share = summary["on_target"] / answered
    elsewhere = summary["elsewhere"] / answered
    if share >= 0.8:
        return f"The mask was on the named object in {100 * share:.0f} % of the answered frames."
    return (f"**The mask was on the named object in only {100 * share:.0f} % of the answered frames** "
            f"(on other objects instead in {100 * elsewhere:.0f} %): this model does not reliably follow the prompt.")


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
    rows = "\n".join(f"| {s['prompt']} | {s['frames']} | {s['answered']} | {s['on_target']} | {s['elsewhere']} | "
                     f"{s['J&F']:.3f} |" for s in summary["segments"])
    card = summary.get("model_card")
    card_line = ""
    if card:
        kinds = ", ".join(f"{k} {v:.3f}" for k, v in card["by_kind"].items())
        card_line = (f"- the model's J&F on the synthetic test split (its model card): **{card['overall']:.3f}** "
                     f"({kinds})\n")
    return (
        f"# strvos demo\n\nmodel: `{summary['model']}`, started with {summary['launcher']}\n\n"
        f"{verdict(summary)}\n\n"
        f"- J&F over all prompt segments of this demo: **{summary['J&F']['J&F']:.3f}** (J {summary['J&F']['J']:.3f}, "
        f"F {summary['J&F']['F']:.3f})\n"
        + card_line +
        f"- frames played at {summary['camera_rate_hz']:g} Hz: {summary['frames_played']}, with a result: "
        f"{summary['frames_with_result']}, dropped by the node (keep-newest): {summary['frames_dropped']} "
        f"({100 * summary['drop_rate']:.0f} %)\n"
        + (f"- latency image -> result: p50 {lat['p50'] * 1000:.0f} ms, p95 {lat['p95'] * 1000:.0f} ms\n" if lat else "")
        + f"\n| prompt | frames | answered | mask on the named object | mask on other objects | J&F |\n"
        f"|---|---|---|---|---|---|\n{rows}\n"
    )
