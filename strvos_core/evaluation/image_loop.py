"""Image-mode evaluation (RefCOCO/+/g): one `segment_image` call per sentence, recorded per sentence."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from strvos_core.datasets.files import load_rgb
from strvos_core.datasets.refcoco import ImageBenchmark
from strvos_core.evaluation.results_store import ResultStore
from strvos_core.evaluation.sharding import Shard
from strvos_core.metrics import foreground_intersection_union, sentence_iou


def sentence_key(record: dict[str, Any]) -> tuple[int, int]:
    return (int(record["image_id"]), int(record["sentence"]))


class ImageEvaluator:
    def __init__(self, benchmark: ImageBenchmark, backend, out_dir: Path, shard: Shard | None = None,
                 progress: bool = True) -> None:
        self.benchmark = benchmark
        self.backend = backend
        self.out_dir = Path(out_dir)
        self.shard = shard or Shard()
        self.progress = progress
        self.store = ResultStore(self.out_dir / "items")

    def run(self) -> int:
        done = self.store.finished(sentence_key)
        work = [(img, [s for s in img.sentences if (img.image_id, s.index) not in done])
                for img in self.shard.take(self.benchmark.images)]
        work = [(img, todo) for img, todo in work if todo]
        bar = tqdm(total=sum(len(t) for _, t in work), desc=f"{self.benchmark.name} rank {self.shard.rank}",
                   unit="sent", position=self.shard.rank, disable=not self.progress)
        count = 0
        for image, todo in work:
            pixels = load_rgb(image.path)
            if pixels.shape[:2] != (image.height, image.width):
                raise ValueError(f"image {image.path} is {pixels.shape[1]}x{pixels.shape[0]}, "
                                 f"{self.benchmark.instances_file} says {image.width}x{image.height}")
            for sentence in todo:
                start = time.perf_counter()
                result = self.backend.segment_image(pixels, sentence.text)
                seconds = time.perf_counter() - start
                target = self.benchmark.sentence_mask(image, sentence)
                record: dict[str, Any] = {
                    "image_id": image.image_id, "sentence": sentence.index, "ann_id": sentence.ann_id,
                    "text": sentence.text, "has_seg": bool(result.has_seg), "seconds": seconds,
                    "rank": self.shard.rank, "intersection": None, "union": None, "iou": 0.0,
                }
                if result.has_seg:  # as the reference: no [SEG] means no mask, not an empty one
                    inter, union = foreground_intersection_union(np.asarray(result.mask, dtype=bool), target)
                    record.update(intersection=inter, union=union, iou=sentence_iou(inter, union))
                self.store.append(record, self.shard.rank)
                count += 1
                bar.update(1)
        bar.close()
        return count
