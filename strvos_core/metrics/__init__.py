"""Benchmark metrics, numerically identical to the reference evaluation scripts.

J (region IoU), F (DAVIS boundary F), J&F per expression and overall; ReVOS A/R and its
referring / reasoning breakdown; cIoU / gIoU for RefCOCO-style image benchmarks.
"""
from strvos_core.metrics.boundary import DEFAULT_BOUND_TH, boundary_f_per_frame, boundary_map, disk, f_measure
from strvos_core.metrics.refcoco import ReferringImageScores, foreground_intersection_union, sentence_iou
from strvos_core.metrics.region import jaccard_per_frame
from strvos_core.metrics.revos import (
    RevosScores,
    pixel_accuracy_per_frame,
    revos_breakdown,
    robustness_per_frame,
)
from strvos_core.metrics.summary import ExpressionScores, jf_summary, score_expression

__all__ = [
    "DEFAULT_BOUND_TH",
    "ExpressionScores",
    "ReferringImageScores",
    "RevosScores",
    "boundary_f_per_frame",
    "boundary_map",
    "disk",
    "f_measure",
    "foreground_intersection_union",
    "jaccard_per_frame",
    "jf_summary",
    "pixel_accuracy_per_frame",
    "revos_breakdown",
    "robustness_per_frame",
    "score_expression",
    "sentence_iou",
]
