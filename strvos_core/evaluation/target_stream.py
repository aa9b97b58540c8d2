"""A benchmark streamed target-frame by target-frame, for the analysis tools (`score_calibration`, `misses`): the
targets of each video in sessions of `expressions_per_session`, as `strvos eval` groups them, every frame stepped
once for its group, each result handed out with the ground truth beside it. Also the command-line options those
tools share."""
from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from strvos_core.datasets.files import load_rgb
from strvos_core.datasets.items import VideoBenchmark, VideoExpression
from strvos_core.errors import StrvosError
from strvos_core.session import TargetResult


@dataclass
class StreamedTarget:
    expression: VideoExpression
    index: int  # the frame's index in its video
    frame_shape: tuple[int, int]  # height, width
    result: TargetResult
    truth: np.ndarray  # the target's ground-truth mask at the frame's size

    @property
    def kind(self) -> str:
        return self.expression.category or "all"


def stream_targets(benchmark: VideoBenchmark, backend, expressions_per_session: int = 16,
                   kinds: list[str] | None = None) -> Iterator[StreamedTarget]:
    """Every target-frame of `benchmark` (its expressions of `kinds`; all when None). Refuses at once a benchmark
    without ground truth."""
    if benchmark.ground_truth is None:
        raise StrvosError(f"{benchmark.name} {benchmark.split} has no ground truth to score against")
    return _stream(benchmark, backend, max(1, expressions_per_session), kinds)


def _stream(benchmark: VideoBenchmark, backend, group_size: int, kinds: list[str] | None) -> Iterator[StreamedTarget]:
    for video in benchmark.videos:
        chosen = [e for e in video.expressions if kinds is None or (e.category or "all") in kinds]
        for start in range(0, len(chosen), group_size):
            group = chosen[start:start + group_size]
            session = backend.start_session({e.exp_id: e.expression for e in group})
            for index in range(len(video.frames)):
                rgb = load_rgb(video.frame_path(index))
                shape = rgb.shape[:2]
                result = session.step(rgb)
                for expression in group:
                    truth = benchmark.ground_truth.frame_mask(video, expression, index, shape)
                    yield StreamedTarget(expression, index, shape, result.targets[expression.exp_id], truth)


def add_stream_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --dataset, --data-root, --split, --limit, --expressions-per-session, --threads."""
    parser.add_argument("--model", required=True, help="default or a model folder")
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--split", required=True)
    parser.add_argument("--limit", type=int, default=None, help="the first N videos")
    parser.add_argument("--expressions-per-session", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def open_stream(args: argparse.Namespace, backend_name: str = "streamingrvos") -> tuple[VideoBenchmark, object]:
    """The benchmark (first `--limit` videos) and the backend those options name, torch's threads set."""
    from strvos_core import backends
    from strvos_core.datasets import read_video_benchmark

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    benchmark = read_video_benchmark(args.dataset, args.data_root, args.split).limited(args.limit)
    return benchmark, backends.create(backend_name, model=args.model)
