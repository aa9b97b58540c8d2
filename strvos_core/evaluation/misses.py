"""Where a model's masks miss, frame by frame: frames whose target is out of view, frames where SAM 2's click (for
models with `grounding.attention_click`) lands off the target, and the target's visible size.

Streams a benchmark the way `strvos eval` does (the targets of a video in sessions of `--expressions-per-session`)
and scores every target-frame with the reference's frame J. The mean frame J splits exactly into the J each group of
frames loses (its share of the frames times one minus its mean J), which says which link costs what:

    python -m strvos_core.evaluation.misses --model default --data-root out/synthetic_eval --split test
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from strvos_core.datasets.items import VideoBenchmark
from strvos_core.errors import StrvosError
from strvos_core.evaluation.target_stream import add_stream_arguments, open_stream, stream_targets
from strvos_core.metrics.region import jaccard_per_frame

# bins of the target's visible area as a share of the frame (a 320x240 frame: 192, 384, 768, 1536 px)
AREA_EDGES = (0.0, 0.0025, 0.005, 0.01, 0.02, math.inf)


@dataclass
class TargetFrame:
    kind: str
    visible: float  # the target's share of the frame's pixels (0: out of view)
    j: float  # the reference's frame J (1 for an empty mask on an empty truth)
    click_on: bool | None = None  # SAM 2's click on the target's pixels (None: the model gives no click)
    peak_on: bool | None = None  # the [SEG] attention's peak cell overlaps the target


@dataclass
class FrameGroup:
    name: str
    frames: int
    share: float
    mean_j: float

    @property
    def j_lost(self) -> float:
        return self.share * (1.0 - self.mean_j)


@dataclass
class AreaBin:
    low: float
    high: float
    frames: int
    share: float  # of the in-view frames
    mean_j: float
    click_on: float | None
    peak_on: float | None


@dataclass
class KindSummary:
    kind: str
    frames: int
    mean_j: float
    groups: list[FrameGroup] = field(default_factory=list)
    bins: list[AreaBin] = field(default_factory=list)
    click_on: float | None = None  # of the in-view frames with a click
    peak_on: float | None = None
    missed_click_peak_on: float | None = None  # of the in-view frames whose click missed: the peak cell on target


def cell_overlaps(truth: np.ndarray, attention: np.ndarray) -> bool:
    """Whether the attention's peak cell (a square grid laid over the frame, as SAM 2's squashed input sees it) covers
    any target pixel."""
    side_y, side_x = attention.shape
    row, col = divmod(int(np.argmax(attention)), side_x)
    height, width = truth.shape
    r0, r1 = math.floor(row * height / side_y), math.ceil((row + 1) * height / side_y)
    c0, c1 = math.floor(col * width / side_x), math.ceil((col + 1) * width / side_x)
    return bool(truth[r0:r1, c0:c1].any())


def click_overlaps(truth: np.ndarray, click: tuple[float, float]) -> bool:
    """Whether the click (x, y px) lies on a target pixel; a click off the frame is clamped to its edge, a NaN one
    (a broken attention) is off the target."""
    if not np.isfinite(click).all():
        return False
    height, width = truth.shape
    x = min(max(int(click[0]), 0), width - 1)
    y = min(max(int(click[1]), 0), height - 1)
    return bool(truth[y, x])


def target_frame(kind: str, truth: np.ndarray, mask: np.ndarray, attention: np.ndarray | None,
                 click: tuple[float, float] | None) -> TargetFrame:
    truth = np.asarray(truth, bool)
    visible = float(truth.mean())
    j = float(jaccard_per_frame(truth.astype(np.uint8), np.asarray(mask, np.uint8)))
    if not visible or click is None or attention is None:
        return TargetFrame(kind, visible, j)
    return TargetFrame(kind, visible, j, click_overlaps(truth, click), cell_overlaps(truth, attention))


def _mean(values: list) -> float | None:
    return float(np.mean(values)) if values else None


def summarise(frames: list[TargetFrame], kind: str) -> KindSummary:
    """The split of `frames` (all of one kind, or any mix named `kind`) into out of view / click off / click on, and
    the in-view frames by the target's visible area."""
    if not frames:
        raise StrvosError(f"no target-frames of kind {kind!r} to summarise")
    total = len(frames)
    out = [f for f in frames if not f.visible]
    seen = [f for f in frames if f.visible]
    clicked = [f for f in seen if f.click_on is not None]
    summary = KindSummary(kind, total, float(np.mean([f.j for f in frames])))

    def group(name: str, members: list[TargetFrame]) -> None:
        if members:
            summary.groups.append(FrameGroup(name, len(members), len(members) / total,
                                             float(np.mean([f.j for f in members]))))

    group("target out of view", out)
    if clicked:
        group("in view, the click off the target", [f for f in clicked if not f.click_on])
        group("in view, the click on the target", [f for f in clicked if f.click_on])
        group("in view, no click (no [SEG] answered)", [f for f in seen if f.click_on is None])
        summary.click_on = _mean([f.click_on for f in clicked])
        summary.peak_on = _mean([f.peak_on for f in clicked])
        summary.missed_click_peak_on = _mean([f.peak_on for f in clicked if not f.click_on])
    else:
        group("in view", seen)
    for low, high in zip(AREA_EDGES[:-1], AREA_EDGES[1:], strict=True):
        members = [f for f in seen if low < f.visible <= high]
        if members:
            summary.bins.append(AreaBin(
                low, high, len(members), len(members) / len(seen), float(np.mean([f.j for f in members])),
                _mean([f.click_on for f in members if f.click_on is not None]),
                _mean([f.peak_on for f in members if f.peak_on is not None])))
    return summary


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _area(low: float, high: float, pixels: int | None) -> str:
    def one(edge: float) -> str:
        return f"{edge * 100:g} %" + (f" ({round(edge * pixels)} px)" if pixels else "")

    if low == 0:
        return f"<= {one(high)}"
    return f"> {one(low)}" if math.isinf(high) else f"{one(low)} - {one(high)}"


def format_summary(summary: KindSummary, frame_pixels: int | None = None) -> str:
    """Markdown: the J each group of frames loses (they add up to 1 - mean frame J), then the in-view frames by the
    target's visible area."""
    lines = [f"**{summary.kind}**: {summary.frames} target-frames, mean frame J {summary.mean_j:.3f}", "",
             "| frames | count | share | frame J | J lost (share x (1 - J)) |", "|---|---|---|---|---|"]
    for g in summary.groups:
        lines.append(f"| {g.name} | {g.frames} | {g.share:.3f} | {g.mean_j:.3f} | {g.j_lost:.3f} |")
    if summary.click_on is not None:
        lines += ["", f"In view, of the frames with a click: the click on the target in {summary.click_on:.3f}, the "
                      f"attention's peak cell on it in {summary.peak_on:.3f}; where the click missed, the peak cell "
                      f"was on the target in {_fraction(summary.missed_click_peak_on)}."]
    lines += ["", "| target's visible area (of the frame) | in-view frames | share | click on target | "
                  "peak cell on target | frame J |", "|---|---|---|---|---|---|"]
    for b in summary.bins:
        lines.append(f"| {_area(b.low, b.high, frame_pixels)} | {b.frames} | {b.share:.3f} | {_fraction(b.click_on)} "
                     f"| {_fraction(b.peak_on)} | {b.mean_j:.3f} |")
    return "\n".join(lines)


def collect(benchmark: VideoBenchmark, backend, kinds: list[str] | None = None,
            expressions_per_session: int = 16) -> tuple[list[TargetFrame], int | None]:
    """Streams every video of `benchmark` (its expressions of `kinds`, all when None) and returns one record per
    target-frame, and the frames' pixel count when every frame has the same size (else None)."""
    frames: list[TargetFrame] = []
    sizes: set[int] = set()
    for item in stream_targets(benchmark, backend, expressions_per_session, kinds):
        sizes.add(item.frame_shape[0] * item.frame_shape[1])
        target = item.result
        frames.append(target_frame(item.kind, item.truth, target.mask, target.attention, target.click))
    return frames, (sizes.pop() if len(sizes) == 1 else None)


def report(frames: list[TargetFrame], frame_pixels: int | None) -> str:
    kinds = sorted({f.kind for f in frames})
    parts = [format_summary(summarise([f for f in frames if f.kind == kind], kind), frame_pixels) for kind in kinds]
    if len(kinds) > 1:
        parts.append(format_summary(summarise(frames, "all kinds"), frame_pixels))
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_stream_arguments(parser)
    parser.add_argument("--backend", default="streamingrvos", help="streamingrvos or streamingrvos-no-state")
    parser.add_argument("--kinds", nargs="+", default=None, help="expression kinds (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="also write the tables to this file")
    args = parser.parse_args(argv)

    try:
        benchmark, backend = open_stream(args, args.backend)
        frames, pixels = collect(benchmark, backend, args.kinds, args.expressions_per_session)
        if not frames:
            raise StrvosError(f"no expressions of kinds {args.kinds} in {args.data_root} {args.split}")
        text = (f"{args.model} on {args.dataset} {args.split} ({len(benchmark.videos)} videos), streamed with "
                f"{args.backend}\n\n" + report(frames, pixels))
        print(text, end="")
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text)
    except StrvosError as exc:
        print(f"misses: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
