"""The J&F that SAM 2's low-res logits grid allows at best, on synthetic videos.

    python -m strvos_core.training.ceiling [--grids 40,56,64,80] [--videos 40] [--seed 2000]

SAM 2 predicts logits at image_size / 4 per side (40x40 for the shipped 160 px input) and the model upsamples them
bilinearly to the frame. Each object's ground truth is taken to that grid and back, two ways:
* area: the grid cell's foreground fraction as the probability (the best a model can do from that grid);
* nearest: the training target itself (nearest resize, as the reference makes it), as a perfect fit would reproduce.
Scored with the benchmark's J&F against the full-resolution ground truth, per object (every frame of its video).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from strvos_core.datasets.synthetic import SyntheticConfig, generate_video
from strvos_core.metrics.summary import score_expression

MODES = ("area", "nearest")


def round_trip(masks: np.ndarray, grid: int, mode: str) -> np.ndarray:
    """[T, H, W] bool -> the same masks through a `grid` x `grid` logits map and back (threshold 0)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    stack = torch.from_numpy(masks.astype(np.float32))[:, None]
    low = F.interpolate(stack, size=(grid, grid), mode=mode)
    logits = torch.logit(low.clamp(1e-3, 1 - 1e-3))
    return (F.interpolate(logits, size=masks.shape[1:], mode="bilinear", align_corners=False)[:, 0] > 0).numpy()


def ceiling(grids: list[int], videos: int = 40, seed: int = 2000,
            config: SyntheticConfig | None = None) -> dict[int, dict[str, float]]:
    """grid -> {area, nearest, area_small, area_large, objects}: mean J&F over the objects of `videos` videos."""
    scores: dict[int, dict[str, list[float]]] = {g: {k: [] for k in (*MODES, "area_small", "area_large")}
                                                for g in grids}
    for index in range(videos):
        video = generate_video(seed + index, config)
        labels = np.stack(video.labels)
        for obj in video.objects:
            truth = labels == obj.obj_id
            if not truth.any():
                continue
            for grid in grids:
                for mode in MODES:
                    s = score_expression(truth, round_trip(truth, grid, mode))
                    value = (s.J + s.F) / 2
                    scores[grid][mode].append(value)
                    if mode == "area":
                        scores[grid][f"area_{obj.size}"].append(value)
    return {g: {**{k: float(np.mean(v)) if v else float("nan") for k, v in row.items()},
                "objects": float(len(row["area"]))} for g, row in scores.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grids", default="40,56,64,80", help="logit grid sides (SAM 2 input size / 4)")
    parser.add_argument("--videos", type=int, default=40)
    parser.add_argument("--seed", type=int, default=2000)
    args = parser.parse_args(argv)
    try:
        grids = [int(g) for g in args.grids.split(",")]
    except ValueError:
        parser.error(f"--grids must be comma-separated integers, got {args.grids!r}")
    if any(g < 1 for g in grids) or args.videos < 1:
        parser.error("grid sides and --videos must be >= 1")
    rows = ceiling(grids, args.videos, args.seed)
    print("| logits grid (SAM 2 input) | J&F, area logits | J&F, nearest target | area: small objects | "
          "area: large objects | objects |")
    print("|---|---|---|---|---|---|")
    for grid, row in rows.items():
        print(f"| {grid}x{grid} ({grid * 4} px) | {row['area']:.3f} | {row['nearest']:.3f} | {row['area_small']:.3f} | "
              f"{row['area_large']:.3f} | {int(row['objects'])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
