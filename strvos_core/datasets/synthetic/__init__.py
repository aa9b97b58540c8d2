"""Procedural synthetic referring-video world: scenes of shapes that move, appear, leave and occlude one
another, with appearance / relation / motion expressions that each refer to exactly one object.

    from strvos_core.datasets.synthetic import SyntheticConfig, generate_video, write_dataset
    video = generate_video(seed=7)                   # in memory: frames, depth_mm, masks, K, expressions
    write_dataset("data/synthetic", "train", 200, seed=0)   # Ref-YouTube-VOS layout plus depth
"""
from strvos_core.datasets.synthetic.config import SPLITS, SyntheticConfig
from strvos_core.datasets.synthetic.expressions import Expression, Query, evaluate, parse_expression
from strvos_core.datasets.synthetic.splits import iter_split, video_name, video_seed
from strvos_core.datasets.synthetic.video import SyntheticVideo, generate_video
from strvos_core.datasets.synthetic.vocabulary import vocabulary_words
from strvos_core.datasets.synthetic.writer import camera_info, write_dataset

__all__ = [
    "SPLITS",
    "Expression",
    "Query",
    "SyntheticConfig",
    "SyntheticVideo",
    "camera_info",
    "evaluate",
    "generate_video",
    "iter_split",
    "parse_expression",
    "video_name",
    "video_seed",
    "vocabulary_words",
    "write_dataset",
]
