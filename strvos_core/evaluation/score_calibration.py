"""Does a target's score say when its mask is right? Scores against frame J, and a calibration of the score.

    python -m strvos_core.evaluation.score_calibration --model default --data-root out/synthetic_fit --split train \
        --limit 16 [--write]

Streams a video benchmark through the model (as `strvos eval` does, the targets of a video in sessions of
`--expressions-per-session`) and records, per target and frame, the model's raw score (SAM 2's predicted IoU times
its object score; `modeling/streamingrvos.py`) and the frame's J against the truth. It reports how well the score
tells masks with J >= 0.5 from the rest (AUROC), and what the node's `score_threshold` 0.5 makes of the raw score
and of the calibrated one: a logistic map of the raw score's logit, fitted on these frames, so that the calibrated
score estimates the chance that the mask has J >= 0.5. `--write` puts the map into the model folder's config.json
(`sam2_score_calibration`), where `grounding.score_calibration` applies it to every score the model returns.
Fit it on a train split, never on the split you report.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from strvos_core.datasets.items import VideoBenchmark
from strvos_core.errors import StrvosError
from strvos_core.evaluation.target_stream import add_stream_arguments, open_stream, stream_targets
from strvos_core.metrics.region import jaccard_per_frame
from strvos_core.modeling.score_calibration import calibrate, score_logit

GOOD_J = 0.5  # a mask "is right" from this frame J on (the threshold of the node's TRACKING state)


@dataclass
class FrameScores:
    """Per target-frame: the raw score, the frame's J, the expression's kind."""

    score: np.ndarray
    j: np.ndarray
    kind: list[str]

    @property
    def good(self) -> np.ndarray:
        return self.j >= GOOD_J


def fit_calibration(raw: np.ndarray, good: np.ndarray, l2: float = 1e-3, steps: int = 100) -> tuple[float, float]:
    """Logistic regression of `good` on logit(raw) (Newton's method, a small L2 on the slope): (a, b)."""
    x = score_logit(raw)
    y = np.asarray(good, dtype=np.float64)
    if x.size == 0 or y.min() == y.max():
        raise StrvosError("score calibration needs frames with good and with bad masks; got "
                          f"{int(y.sum())} good of {y.size}")
    design = np.stack([x, np.ones_like(x)], axis=1)
    w = np.zeros(2)
    penalty = np.diag([l2 * x.size, 0.0])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        gradient = design.T @ (p - y) + penalty @ w
        hessian = (design * (p * (1 - p))[:, None]).T @ design + penalty + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    a, b = float(w[0]), float(w[1])
    if not a > 0:
        raise StrvosError(f"the fitted slope is {a:.3g}: on these frames a higher score does not mean a better mask")
    return a, b


def auroc(score: np.ndarray, good: np.ndarray) -> float:
    """Area under the ROC curve of `score` separating good from bad (ties count half)."""
    score, good = np.asarray(score, dtype=np.float64), np.asarray(good, dtype=bool)
    positives, negatives = int(good.sum()), int((~good).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # 1-based ranks, ties given their average
    return float((ranks[good].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def threshold_table(frames: FrameScores, calibration: tuple[float, float] | None, threshold: float = 0.5) -> str:
    """Markdown: for the raw and (if given) the calibrated score, the share of frames at or above `threshold` (what
    the node reports TRACKING) and how many of those masks are right, per kind and overall."""
    rows = ["| score | kind | frames | masks right | at or above the threshold | of those right | of the right ones "
            "kept |", "|---|---|---|---|---|---|---|"]
    variants = [("raw", frames.score)]
    if calibration is not None:
        variants.append(("calibrated", calibrate(frames.score, calibration)))
    kinds = sorted(set(frames.kind)) + ["all"]
    for name, values in variants:
        for kind in kinds:
            keep = np.ones(len(frames.kind), bool) if kind == "all" else np.array([k == kind for k in frames.kind])
            good, above = frames.good[keep], values[keep] >= threshold
            precision = good[above].mean() if above.any() else float("nan")
            recall = above[good].mean() if good.any() else float("nan")
            rows.append(f"| {name} | {kind} | {int(keep.sum())} | {good.mean():.3f} | {above.mean():.3f} | "
                        f"{precision:.3f} | {recall:.3f} |")
    return "\n".join(rows)


def reliability_table(frames: FrameScores, calibration: tuple[float, float], bins: int = 5) -> str:
    """Markdown: calibrated-score bins against the share of right masks in each (the map's honesty)."""
    calibrated = calibrate(frames.score, calibration)
    edges = np.linspace(0, 1, bins + 1)
    rows = ["| calibrated score | frames | mean score | masks right |", "|---|---|---|---|"]
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        keep = (calibrated >= low) & ((calibrated < high) if high < 1 else (calibrated <= high))
        if keep.any():
            rows.append(f"| {low:.1f}-{high:.1f} | {int(keep.sum())} | {calibrated[keep].mean():.3f} | "
                        f"{frames.good[keep].mean():.3f} |")
    return "\n".join(rows)


def collect(benchmark: VideoBenchmark, backend, expressions_per_session: int = 16) -> FrameScores:
    """Streams every video of `benchmark` (the targets of a video in sessions of `expressions_per_session`) and
    records each target-frame's raw score and J. The model's own calibration, if any, is set aside meanwhile."""
    stream = stream_targets(benchmark, backend, expressions_per_session)
    grounding = backend._require_model().config.grounding
    kept, grounding.score_calibration = grounding.score_calibration, None
    scores, js, kinds = [], [], []
    try:
        for item in stream:
            scores.append(float(item.result.score))
            js.append(float(jaccard_per_frame(item.truth, np.asarray(item.result.mask, np.uint8))))
            kinds.append(item.kind)
    finally:
        grounding.score_calibration = kept
    return FrameScores(np.asarray(scores), np.asarray(js), kinds)


def write_calibration(model_dir: str | Path, calibration: tuple[float, float]) -> Path:
    """Sets `sam2_score_calibration` in a model folder's config.json (the strvos extension), other keys untouched."""
    path = Path(model_dir) / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise StrvosError(f"{path} not found: --write needs a model folder (an export)") from None
    config.setdefault("strvos", {})["sam2_score_calibration"] = [float(calibration[0]), float(calibration[1])]
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(config, indent=2) + "\n")
    temporary.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_stream_arguments(parser)
    parser.add_argument("--calibration", nargs=2, type=float, metavar=("A", "B"),
                        help="score this map instead of fitting one (check a fitted map on another split)")
    parser.add_argument("--write", action="store_true", help="write the fitted map into the model folder")
    args = parser.parse_args(argv)
    from strvos_core.checkpoint import DEFAULT_MODEL_SPEC, default_model_dir

    try:
        benchmark, backend = open_stream(args)
        frames = collect(benchmark, backend, args.expressions_per_session)
        calibration = tuple(args.calibration) if args.calibration else fit_calibration(frames.score, frames.good)
        print(f"{len(frames.kind)} target-frames of {len(benchmark.videos)} videos ({args.split}); masks with "
              f"J >= {GOOD_J}: {frames.good.mean():.3f}; AUROC of the raw score: {auroc(frames.score, frames.good):.3f}")
        print(f"calibration: sigmoid({calibration[0]:.4f} * logit(raw) + {calibration[1]:.4f})"
              + (" (given)" if args.calibration else " (fitted here)"))
        print(threshold_table(frames, calibration))
        print(reliability_table(frames, calibration))
        if args.write:
            if args.calibration:
                raise StrvosError("--write writes a fitted map; drop --calibration")
            folder = default_model_dir() if args.model == DEFAULT_MODEL_SPEC else Path(args.model)
            print(f"wrote {write_calibration(folder, calibration)}")
    except StrvosError as exc:
        print(f"score_calibration: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
