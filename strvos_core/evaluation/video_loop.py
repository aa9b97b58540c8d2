"""Streaming evaluation of a referring-video benchmark: each frame goes through the session as it would
arrive from a camera (no look-ahead), is scored against the truth at once, and each finished
(video, expression) is recorded, so an interrupted run resumes where it stopped."""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from strvos_core.datasets.errors import DatasetError
from strvos_core.datasets.files import load_rgb
from strvos_core.datasets.items import Video, VideoBenchmark, VideoExpression
from strvos_core.datasets.rle import encode_rle
from strvos_core.evaluation.results_store import ResultStore
from strvos_core.evaluation.scoring import ExpressionScorer
from strvos_core.evaluation.sharding import Shard


def video_key(record: dict[str, Any]) -> tuple[str, str]:
    return (record["video_id"], record["exp_id"])


def submission_png(out_dir: Path, video_id: str, exp_id: str, frame: str) -> Path:
    return out_dir / "Annotations" / video_id / exp_id / f"{frame}.png"


def _save_png(path: Path, mask: np.ndarray) -> None:
    """0/255 grey PNG, as the reference's `mask_save`; written then renamed, so no torn file remains."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(tmp, format="PNG")
    tmp.replace(path)


def _chunks(items: list[VideoExpression], size: int) -> list[list[VideoExpression]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class VideoEvaluator:
    """Runs one shard of a benchmark through a backend, appending one record per finished expression."""

    def __init__(self, benchmark: VideoBenchmark, backend, out_dir: Path, shard: Shard | None = None,
                 expressions_per_session: int = 1, progress: bool = True, save_predictions: bool = False) -> None:
        if expressions_per_session < 1:
            raise ValueError(f"expressions_per_session must be >= 1, got {expressions_per_session}")
        self.benchmark = benchmark
        self.backend = backend
        self.out_dir = Path(out_dir)
        self.shard = shard or Shard()
        self.expressions_per_session = expressions_per_session
        self.progress = progress
        self.save_predictions = save_predictions
        self.store = ResultStore(self.out_dir / "items")

    def pending(self) -> list[tuple[Video, list[VideoExpression]]]:
        done = self.store.finished(video_key)
        work = []
        for video in self.shard.take(self.benchmark.videos):
            todo = [e for e in video.expressions if e.key not in done]
            if todo:
                work.append((video, todo))
        return work

    def run(self) -> int:
        """Evaluate this shard's unfinished expressions; returns how many were evaluated now."""
        work = self.pending()
        total = sum(len(todo) for _, todo in work)
        bar = tqdm(total=total, desc=f"{self.benchmark.name} rank {self.shard.rank}", unit="expr",
                   position=self.shard.rank, disable=not self.progress)
        done = 0
        for video, todo in work:
            for group in _chunks(todo, self.expressions_per_session):
                for record in self._run_group(video, group):
                    self.store.append(record, self.shard.rank)
                    done += 1
                    bar.update(1)
        bar.close()
        return done

    def _run_group(self, video: Video, group: list[VideoExpression]) -> list[dict[str, Any]]:
        """Stream the video once for `group`; frame t's scoring (numpy, on a worker thread) overlaps the
        model step of frame t + 1, and its errors surface one frame later at most."""
        session = self.backend.start_session({e.exp_id: e.expression for e in group})
        scorers = {e.exp_id: ExpressionScorer(self.benchmark.scoring) for e in group}
        seg_frames = dict.fromkeys(scorers, 0)
        predictions: dict[str, list[dict[str, Any]]] = {e.exp_id: [] for e in group}
        step_seconds: list[float] = []
        size = None
        previous: Future | None = None
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="strvos-score") as worker:
            for index in range(len(video.frames)):
                path = video.frame_path(index)
                frame = load_rgb(path)
                if size is None:
                    size = frame.shape[:2]
                elif frame.shape[:2] != size:
                    raise DatasetError(f"frame {path} is {frame.shape[1]}x{frame.shape[0]}, earlier frames of "
                                       f"video {video.video_id!r} are {size[1]}x{size[0]}")
                start = time.perf_counter()
                result = session.step(frame)
                step_seconds.append(time.perf_counter() - start)
                masks = {}
                for exp in group:
                    target = result.targets[exp.exp_id]
                    masks[exp.exp_id] = np.asarray(target.mask, dtype=bool)
                    if masks[exp.exp_id].shape != size:
                        raise RuntimeError(f"backend returned a {masks[exp.exp_id].shape} mask for a {size} frame")
                    seg_frames[exp.exp_id] += bool(target.has_seg)
                if previous is not None:
                    previous.result()
                previous = worker.submit(self._score_frame, video, group, index, size, masks, scorers, predictions)
            if previous is not None:
                previous.result()
        return [
            {
                "video_id": video.video_id, "exp_id": exp.exp_id, "expression": exp.expression,
                "type_id": exp.type_id, "category": exp.category, "num_frames": len(video.frames), "seg_frames": seg_frames[exp.exp_id],
                "seconds_per_frame": float(np.mean(step_seconds)) / len(group),
                "targets_per_session": len(group), "rank": self.shard.rank,
                **scorers[exp.exp_id].summary(),
                **({"prediction_masks": predictions[exp.exp_id]} if self.save_predictions else {}),
            }
            for exp in group
        ]

    def _score_frame(self, video: Video, group: list[VideoExpression], index: int, size: tuple[int, int],
                     masks: dict[str, np.ndarray], scorers: dict[str, ExpressionScorer],
                     predictions: dict[str, list[dict[str, Any]]]) -> None:
        bench = self.benchmark
        foreground = None
        if bench.ground_truth is not None and bench.scoring == "revos":
            foreground = bench.ground_truth.foreground(video, index, size)
        for exp in group:
            mask = masks[exp.exp_id]
            if self.save_predictions:
                predictions[exp.exp_id].append(encode_rle(mask))
            if bench.scoring == "submission":
                _save_png(submission_png(self.out_dir, video.video_id, exp.exp_id, video.frames[index]), mask)
            else:
                scorers[exp.exp_id].add_frame(bench.ground_truth.frame_mask(video, exp, index, size), mask, foreground)
