"""Streaming evaluation on the paper's benchmarks: sharded, resumable, merged into CSV / JSON / archive."""
from strvos_core.evaluation.image_loop import ImageEvaluator
from strvos_core.evaluation.report import IncompleteResults, merge_image_results, merge_video_results
from strvos_core.evaluation.results_store import ResultStore
from strvos_core.evaluation.scoring import ExpressionScorer
from strvos_core.evaluation.sharding import Shard
from strvos_core.evaluation.video_loop import VideoEvaluator

__all__ = [
    "ExpressionScorer",
    "ImageEvaluator",
    "IncompleteResults",
    "ResultStore",
    "Shard",
    "VideoEvaluator",
    "merge_image_results",
    "merge_video_results",
]
