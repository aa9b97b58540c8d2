"""The streaming evaluation loop with the real tiny random model: scoring, resume, sharding, submission.

The model is StreamingRVOS at the "tiny" preset with deterministic random weights; frames are tiny and
videos have 2 frames, so each test costs a few model steps.
"""
from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from eval_layouts import load_fixture, make_refcoco, make_refytvos, make_revos, make_synthetic
from PIL import Image

from strvos_core import backends
from strvos_core.datasets import DatasetError, read_refcoco, read_video_benchmark
from strvos_core.datasets.files import load_rgb
from strvos_core.datasets.rle import decode_rle
from strvos_core.evaluation import (
    ImageEvaluator,
    IncompleteResults,
    ResultStore,
    Shard,
    VideoEvaluator,
    merge_image_results,
    merge_video_results,
)
from strvos_core.metrics import jaccard_per_frame


@pytest.fixture(scope="module")
def backend():
    b = backends.create("streamingrvos", model="random:tiny", device="cpu", dtype="float32")
    yield b
    b.release()


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    return make_synthetic(tmp_path_factory.mktemp("synthetic"), {"clip_a": (2, 24, 32), "clip_b": (2, 24, 32)})


def _lines(store: ResultStore) -> list[dict]:
    return list(store.records())


def test_streamed_masks_and_scores_equal_a_direct_session_run(backend, synthetic_root, tmp_path):
    """The evaluator's masks are exactly those of a fresh session fed the same frames, its J is their metric,
    and results.json (the reference's format) holds them."""
    bench = read_video_benchmark("synthetic", synthetic_root).limited(1)
    VideoEvaluator(bench, backend, tmp_path, expressions_per_session=2, progress=False,
                   save_predictions=True).run()
    summary = merge_video_results(bench, tmp_path, {})
    saved = json.loads(Path(summary["predictions"]).read_text())
    records = {r["exp_id"]: r for r in ResultStore(tmp_path / "items").records()}
    video = bench.videos[0]
    assert saved[video.video_id]["0"]["frames"] == list(video.frames)
    session = backend.start_session({e.exp_id: e.expression for e in video.expressions})
    js = {e.exp_id: [] for e in video.expressions}
    for i in range(len(video.frames)):
        result = session.step(load_rgb(video.frame_path(i)))
        for exp in video.expressions:
            mask = result.targets[exp.exp_id].mask
            stored = decode_rle(saved[video.video_id][exp.exp_id]["prediction_masks"][i], "results.json")
            np.testing.assert_array_equal(stored.astype(bool), mask)
            gt = bench.ground_truth.frame_mask(video, exp, i, (24, 32))
            js[exp.exp_id].append(float(jaccard_per_frame(gt, mask)))
    for exp_id, values in js.items():
        assert records[exp_id]["J"] == pytest.approx(float(np.mean(values)), abs=1e-12)
        assert 0.0 <= records[exp_id]["F"] <= 1.0
        assert records[exp_id]["num_frames"] == 2


def test_shards_then_resume_compute_each_item_once(backend, synthetic_root, tmp_path):
    """Rank 1 of 2 does clip_b; merging then reports the gap; an interrupted writer leaves a torn line; a
    single-process rerun computes only clip_a and keeps clip_b's records; merge then completes."""
    bench = read_video_benchmark("synthetic", synthetic_root)
    assert VideoEvaluator(bench, backend, tmp_path, Shard(1, 2), expressions_per_session=2, progress=False).run() == 2
    with pytest.raises(IncompleteResults, match="2 of 4 items have no result"):
        merge_video_results(bench, tmp_path, {})
    store = ResultStore(tmp_path / "items")
    before = _lines(store)
    part = next((tmp_path / "items").glob("part-rank*.jsonl"))
    with open(part, "ab") as f:
        f.write(b'{"video_id": "clip_a", "exp_id": "0", "J": 0.')

    with pytest.warns(UserWarning, match="torn result line"):
        assert VideoEvaluator(bench, backend, tmp_path, expressions_per_session=2, progress=False).run() == 2
    with pytest.warns(UserWarning, match="torn result line"):
        after = _lines(store)
    assert [r for r in after if r["video_id"] == "clip_b"] == before  # kept, not recomputed
    assert {r["video_id"]: r["rank"] for r in after} == {"clip_a": 0, "clip_b": 1}
    with pytest.warns(UserWarning, match="torn result line"):
        assert VideoEvaluator(bench, backend, tmp_path, progress=False).run() == 0  # nothing left to do

    with pytest.warns(UserWarning, match="torn result line"):
        summary = merge_video_results(bench, tmp_path, {"model": "random:tiny"})
    assert summary["num_expressions"] == 4
    assert 0.0 <= summary["metrics"]["J&F"] <= 1.0
    with open(tmp_path / "per_expression.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["video_id"], r["exp_id"]) for r in rows] == [("clip_a", "0"), ("clip_a", "1"), ("clip_b", "0"),
                                                             ("clip_b", "1")]
    assert json.loads((tmp_path / "summary.json").read_text())["metrics"]["J"] == summary["metrics"]["J"]


def test_submission_archive_layout(backend, tmp_path):
    root = make_refytvos(tmp_path / "ytvos", {"vid1": (2, 24, 32)}, n_exps=1)
    bench = read_video_benchmark("REFYTVOS", root)
    assert bench.scoring == "submission" and bench.ground_truth is None
    out = tmp_path / "out"
    VideoEvaluator(bench, backend, out, progress=False).run()
    summary = merge_video_results(bench, out, {})
    with zipfile.ZipFile(summary["submission"]) as zf:
        names = sorted(zf.namelist())
        assert names == ["Annotations/vid1/0/00000.png", "Annotations/vid1/0/00005.png"]
        zf.extract(names[0], tmp_path / "unzipped")
    png = Image.open(tmp_path / "unzipped" / names[0])
    assert png.mode == "L" and png.size == (32, 24)
    assert set(np.unique(np.asarray(png))) <= {0, 255}


def test_refcoco_image_mode(backend, tmp_path):
    inputs = load_fixture("reference_refcoco.json")["inputs"]
    first = inputs["results"][0]
    small = {"images": inputs["images"][:1], "annotations": [a for a in inputs["annotations"] if a["image_id"] == 1],
             "results": [{**first, "sentences": first["sentences"][:2]}]}
    bench = read_refcoco("refcoco", make_refcoco(tmp_path / "coco", small), "val")
    out = tmp_path / "out"
    assert ImageEvaluator(bench, backend, out, progress=False).run() == 2
    summary = merge_image_results(bench, out, {})
    assert summary["num_sentences"] == 2
    assert 0.0 <= summary["metrics"]["cIoU"] <= 1.0 and 0.0 <= summary["metrics"]["gIoU"] <= 1.0


def test_revos_referring_split_end_to_end(backend, tmp_path):
    """ReVOS through the loop: A and R per expression, the breakdown, and null (not NaN) for an empty category."""
    inputs = load_fixture("reference_vos.json")["inputs"]
    small = {"meta": {"videos": {"vid00": inputs["meta"]["videos"]["vid00"]}}, "mask_dict": inputs["mask_dict"],
             "foreground": inputs["foreground"]}
    bench = read_video_benchmark("REVOS", make_revos(tmp_path / "revos", small), "referring")
    assert {e.type_id for e in bench.expressions} == {0}
    out = tmp_path / "out"
    VideoEvaluator(bench, backend, out, expressions_per_session=len(bench.expressions), progress=False).run()
    merge_video_results(bench, out, {})
    summary = json.loads((out / "summary.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert summary["revos"]["reason"]["J"] is None and summary["revos"]["overall"]["JF"] is None
    referring = summary["revos"]["referring"]
    assert all(0.0 <= referring[k] <= 100.0 for k in ("J", "F", "A", "R", "JF"))
    with open(out / "per_expression.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and all(0.0 <= float(r["A"]) <= 1.0 and 0.0 <= float(r["R"]) <= 1.0 for r in rows)


def test_bad_truth_mid_video_stops_with_the_file_named_and_records_nothing(backend, tmp_path):
    root = make_synthetic(tmp_path / "syn", {"c": (2, 24, 32)})
    Image.fromarray(np.zeros((12, 16), np.uint8), mode="L").save(root / "valid/Annotations/c/00001.png")
    bench = read_video_benchmark("synthetic", root)
    evaluator = VideoEvaluator(bench, backend, tmp_path / "out", expressions_per_session=2, progress=False)
    with pytest.raises(DatasetError, match=r"annotation .*c/00001.png: mask is 12x16 but the frame is 24x32"):
        evaluator.run()
    assert list(ResultStore(tmp_path / "out" / "items").records()) == []


@pytest.mark.slow
def test_sharing_a_session_between_expressions_changes_no_mask(backend, synthetic_root, tmp_path):
    """--expressions-per-session K > 1 (frame features computed once) gives the masks of one session per
    expression, the reference's way."""
    bench = read_video_benchmark("synthetic", synthetic_root).limited(1)
    runs = {}
    for k in (1, 2):
        out = tmp_path / f"k{k}"
        VideoEvaluator(bench, backend, out, expressions_per_session=k, progress=False, save_predictions=True).run()
        runs[k] = {r["exp_id"]: r for r in ResultStore(out / "items").records()}
    for exp_id, single in runs[1].items():
        shared = runs[2][exp_id]
        assert (single["targets_per_session"], shared["targets_per_session"]) == (1, 2)
        assert shared["prediction_masks"] == single["prediction_masks"]
        assert (shared["J"], shared["F"]) == (single["J"], single["F"])
