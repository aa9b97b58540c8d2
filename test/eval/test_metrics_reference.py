"""Metrics and readers against numbers produced by RUNNING the reference's evaluation code.

The fixture comes from tools/reference_metrics/make_fixture.py (reference commit recorded inside):
per-frame values from third_parts/revos/utils/metrics.py, per-expression values from the `eval_queue`
of tools/eval/eval_{mevis,davis,revos}.py reading the files in their own formats, the scripts' printed
summaries, and cIoU/gIoU from RESDataset.evaluate.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from eval_layouts import load_fixture, make_davis, make_mevis, make_refcoco, make_revos

from strvos_core.datasets import read_refcoco, read_video_benchmark
from strvos_core.datasets.rle import decode_rle
from strvos_core.evaluation.scoring import ExpressionScorer
from strvos_core.metrics import (
    ReferringImageScores,
    boundary_f_per_frame,
    foreground_intersection_union,
    jaccard_per_frame,
    jf_summary,
    pixel_accuracy_per_frame,
    revos_breakdown,
    robustness_per_frame,
)

TOL = 1e-6


@pytest.fixture(scope="module")
def vos() -> dict:
    return load_fixture("reference_vos.json")


def _video_arrays(inputs: dict, vid: str, exp_id: str):
    entry = inputs["meta"]["videos"][vid]
    n, h, w = len(entry["frames"]), entry["height"], entry["width"]
    gt = np.zeros((n, h, w), np.uint8)
    for i in range(n):
        for a in entry["expressions"][exp_id]["anno_id"]:
            if inputs["mask_dict"][str(a)][i]:
                gt[i] += decode_rle(inputs["mask_dict"][str(a)][i], "fixture")
    pred = np.stack([decode_rle(r, "fixture") for r in inputs["predictions"][vid][exp_id]["prediction_masks"]])
    fg = np.stack([decode_rle(r, "fixture") for r in inputs["foreground"][vid]["masks_rle"]])
    return gt, pred, fg


def test_per_frame_values_match_reference(vos):
    assert len(vos["per_frame"]) >= 30
    overlapping = 0
    for key, expected in vos["per_frame"].items():
        vid, exp_id = key.split("/")
        gt, pred, fg = _video_arrays(vos["inputs"], vid, exp_id)
        overlapping += int((gt > 1).any())
        np.testing.assert_allclose(jaccard_per_frame(gt, pred), expected["J"], rtol=0, atol=TOL, err_msg=key)
        np.testing.assert_allclose(boundary_f_per_frame(gt, pred), expected["F"], rtol=0, atol=TOL, err_msg=key)
        np.testing.assert_allclose(pixel_accuracy_per_frame(gt, pred), expected["A"], rtol=0, atol=TOL, err_msg=key)
        np.testing.assert_allclose(robustness_per_frame(gt, pred, fg), expected["R"], rtol=0, atol=TOL, err_msg=key)
    assert overlapping > 0, "the fixture should exercise overlapping objects (uint8 sum ground truth)"


def _score_with_reader(benchmark, predictions: dict) -> dict[str, list[float]]:
    """Per-expression scores through the reader's ground truth and the evaluation loop's scorer."""
    out = {}
    for video in benchmark.videos:
        for exp in video.expressions:
            scorer = ExpressionScorer(benchmark.scoring)
            for i in range(len(video.frames)):
                pred = decode_rle(predictions[video.video_id][exp.exp_id]["prediction_masks"][i], "prediction")
                size = pred.shape
                fg = benchmark.ground_truth.foreground(video, i, size)
                scorer.add_frame(benchmark.ground_truth.frame_mask(video, exp, i, size), pred.astype(bool), fg)
            out[f"{video.video_id}_{exp.exp_id}"] = list(scorer.summary().values())
    return out


@pytest.mark.parametrize("dataset", ["MEVIS_U", "REVOS", "DAVIS"])
def test_readers_and_scoring_match_reference_per_expression(vos, tmp_path, dataset):
    inputs = vos["inputs"]
    if dataset == "MEVIS_U":
        root, script = make_mevis(tmp_path / "mevis", inputs), "eval_mevis"
    elif dataset == "REVOS":
        root, script = make_revos(tmp_path / "revos", inputs), "eval_revos"
    else:
        root, script = make_davis(tmp_path / "davis", inputs, vos["davis_anno_source"]), "eval_davis"
    benchmark = read_video_benchmark(dataset, root)
    ours = _score_with_reader(benchmark, inputs["predictions"])
    expected = vos["per_expression"][script]
    assert ours.keys() == expected.keys()
    for key, values in expected.items():
        np.testing.assert_allclose(ours[key], values, rtol=0, atol=TOL, err_msg=key)

    summary = jf_summary((v[0], v[1]) for v in ours.values())
    if script in ("eval_mevis", "eval_davis"):
        ref = vos["summary"][script]
        assert (summary["J%"], summary["F%"], summary["J&F%"]) == (ref["J"], ref["F"], ref["J&F"])
    else:
        types = {f"{v}_{e}": x["type_id"] for v, entry in inputs["meta"]["videos"].items()
                 for e, x in entry["expressions"].items()}
        breakdown = revos_breakdown((types[k], *v) for k, v in ours.items())
        for category, scores in vos["summary"]["eval_revos"].items():
            for name, value in scores.items():
                assert math.isclose(getattr(breakdown[category], name), value, abs_tol=TOL), (category, name)


def test_refcoco_ciou_giou_match_reference(tmp_path):
    fixture = load_fixture("reference_refcoco.json")
    inputs, ref = fixture["inputs"], fixture["reference"]
    benchmark = read_refcoco("refcoco", make_refcoco(tmp_path, inputs), "val")
    preds = {item["image_id"]: item["predictions"] for item in inputs["results"]}
    scores = ReferringImageScores()
    for image in benchmark.images:
        for sentence in image.sentences:
            rle = preds[image.image_id][sentence.index]
            if rle is None:
                scores.add(None, None)
                continue
            target = benchmark.sentence_mask(image, sentence)
            scores.add(*foreground_intersection_union(decode_rle(rle, "prediction").astype(bool), target))
    assert scores.count == sum(len(item["sentences"]) for item in inputs["results"])
    assert scores.missing > 0
    assert math.isclose(scores.ciou, ref["cIoU"], abs_tol=TOL)
    assert math.isclose(scores.giou, ref["gIoU"], abs_tol=TOL)
