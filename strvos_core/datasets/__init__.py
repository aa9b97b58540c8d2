"""Readers for the benchmark layouts (Ref-DAVIS17, Ref-YouTube-VOS, MeViS, ReVOS, RefCOCO/+/g, synthetic).

The synthetic referring-video generator lives in `strvos_core.datasets.synthetic`.
"""
from strvos_core.datasets.errors import DatasetError
from strvos_core.datasets.items import Video, VideoBenchmark, VideoExpression
from strvos_core.datasets.refcoco import REFCOCO_VARIANTS, ImageBenchmark, RefImage, Sentence, read_refcoco
from strvos_core.datasets.video_benchmarks import VIDEO_READERS, read_video_benchmark

BENCHMARKS = (*VIDEO_READERS, *REFCOCO_VARIANTS)

__all__ = [
    "BENCHMARKS",
    "REFCOCO_VARIANTS",
    "VIDEO_READERS",
    "DatasetError",
    "ImageBenchmark",
    "RefImage",
    "Sentence",
    "Video",
    "VideoBenchmark",
    "VideoExpression",
    "read_refcoco",
    "read_video_benchmark",
]
