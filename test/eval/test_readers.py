"""Every reader on tiny folders in its published layout, and clear errors for malformed annotations."""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
from eval_layouts import (
    load_fixture,
    make_davis,
    make_mevis,
    make_refcoco,
    make_refytvos,
    make_revos,
    make_synthetic,
)
from PIL import Image

from strvos_core.datasets import DatasetError, read_refcoco, read_video_benchmark
from strvos_core.datasets.files import load_plain_pickle
from strvos_core.errors import StrvosError


@pytest.fixture(scope="module")
def vos_inputs() -> dict:
    inputs = load_fixture("reference_vos.json")["inputs"]
    # two small videos are enough here
    keep = ["vid00", "vid01"]
    meta = {"videos": {v: inputs["meta"]["videos"][v] for v in keep}}
    ids = {str(a) for v in keep for e in meta["videos"][v]["expressions"].values() for a in e["anno_id"]}
    return {"meta": meta, "mask_dict": {k: v for k, v in inputs["mask_dict"].items() if k in ids},
            "foreground": {v: inputs["foreground"][v] for v in keep}}


def test_mevis_valid_u_and_valid(tmp_path, vos_inputs):
    make_mevis(tmp_path, vos_inputs, "valid_u")
    make_mevis(tmp_path, vos_inputs, "valid", with_masks=False)
    scored = read_video_benchmark("MEVIS_U", tmp_path)
    assert (scored.name, scored.split, scored.scoring) == ("MEVIS_U", "valid_u", "jf")
    assert len(scored.expressions) == 14 and scored.videos[0].frames == ("00000", "00001", "00002")
    server = read_video_benchmark("MEVIS", tmp_path)
    assert (server.split, server.scoring, server.ground_truth) == ("valid", "submission", None)
    # the split folder itself can be given as the root
    assert len(read_video_benchmark("MEVIS_U", tmp_path / "valid_u").videos) == 2


def test_mevis_ground_truth_is_the_sum_of_anno_ids(tmp_path, vos_inputs):
    bench = read_video_benchmark("MEVIS_U", make_mevis(tmp_path, vos_inputs))
    video = bench.videos[0]
    exp = next(e for e in video.expressions if e.exp_id == "1")  # two objects
    masks = [bench.ground_truth.frame_mask(video, exp, i, (24, 32)) for i in range(len(video.frames))]
    assert all(m.dtype == np.uint8 for m in masks)
    empty = next(e for e in video.expressions if e.exp_id == "3")  # no object
    assert not bench.ground_truth.frame_mask(video, empty, 0, (24, 32)).any()


def test_revos_splits(tmp_path, vos_inputs):
    make_revos(tmp_path, vos_inputs)
    valid = read_video_benchmark("REVOS", tmp_path)
    assert valid.scoring == "revos" and {e.type_id for e in valid.expressions} == {0, 1, 2}
    assert {e.type_id for e in read_video_benchmark("REVOS", tmp_path, "referring").expressions} == {0}
    assert {e.type_id for e in read_video_benchmark("REVOS", tmp_path, "reasoning").expressions} == {1}
    assert valid.ground_truth.foreground(valid.videos[0], 0, (24, 32)).shape == (24, 32)
    with pytest.raises(DatasetError, match="unknown ReVOS split 'test'"):
        read_video_benchmark("REVOS", tmp_path, "test")


def test_davis_numbers_anno_ids_over_sorted_expressions(tmp_path, vos_inputs):
    n = sum(len(v["expressions"]) for v in vos_inputs["meta"]["videos"].values())
    bench = read_video_benchmark("DAVIS", make_davis(tmp_path, vos_inputs, {str(i): None for i in range(n)}))
    assert bench.ground_truth.anno_ids[("vid00", "0")] == [0]
    assert bench.ground_truth.anno_ids[("vid01", "6")] == [n - 1]


def test_refytvos_and_synthetic(tmp_path):
    yt = read_video_benchmark("REFYTVOS", make_refytvos(tmp_path / "yt", {"v": (3, 16, 20)}))
    assert yt.scoring == "submission" and yt.videos[0].frames == ("00000", "00005", "00010")
    syn = read_video_benchmark("synthetic", make_synthetic(tmp_path / "syn", {"c": (2, 24, 32)}))
    video = syn.videos[0]
    square = syn.ground_truth.frame_mask(video, video.expressions[0], 1, (24, 32))
    assert square.sum() == 8 * 10 and square[3, 2] == 1
    with pytest.raises(DatasetError, match=r"splits present: valid"):
        read_video_benchmark("synthetic", tmp_path / "syn", "train")


def test_refcoco_variants_and_splits(tmp_path):
    inputs = load_fixture("reference_refcoco.json")["inputs"]
    make_refcoco(tmp_path, inputs)
    bench = read_refcoco("refcoco", tmp_path)
    assert bench.split == "val" and len(bench.images) == 4
    assert sum(len(i.sentences) for i in bench.images) == 32
    maxima = [bench.sentence_mask(img, s).max() for img in bench.images for s in img.sentences]
    assert 2 in maxima  # overlapping polygon parts are summed, as the reference does
    assert 0 in maxima  # an annotation without segmentation is an empty mask
    with pytest.raises(DatasetError, match="no refs in split 'testA'"):
        read_refcoco("refcoco", tmp_path, "testA")
    with pytest.raises(DatasetError, match=r"refs\(umd\).p"):
        read_refcoco("refcocog", tmp_path)
    with pytest.raises(DatasetError, match="unknown refcocog split 'testA'"):
        read_refcoco("refcocog", tmp_path, "testA")


# ------------------------------------------------------------------------------------------------ malformed input
def test_missing_frame_names_the_file(tmp_path, vos_inputs):
    make_mevis(tmp_path, vos_inputs)
    os.remove(tmp_path / "valid_u" / "JPEGImages" / "vid01" / "00001.jpg")
    with pytest.raises(DatasetError, match=r"frame '00001' of video 'vid01' not found: .*vid01/00001.jpg"):
        read_video_benchmark("MEVIS_U", tmp_path)


def test_broken_json_names_the_file(tmp_path, vos_inputs):
    make_mevis(tmp_path, vos_inputs)
    (tmp_path / "valid_u" / "mask_dict.json").write_text('{"0": [')
    with pytest.raises(DatasetError, match=r"mask file .*mask_dict.json is not valid JSON"):
        read_video_benchmark("MEVIS_U", tmp_path)
    (tmp_path / "valid_u" / "meta_expressions.json").write_text(json.dumps({"videos": {"v": {"frames": []}}}))
    with pytest.raises(DatasetError, match=r"meta_expressions.json, video 'v': 'frames' must be a non-empty list"):
        read_video_benchmark("MEVIS_U", tmp_path)


def test_mask_dict_gaps_are_reported_before_evaluating(tmp_path, vos_inputs):
    inputs = json.loads(json.dumps(vos_inputs))
    del inputs["mask_dict"]["1"]
    make_mevis(tmp_path / "a", inputs)
    with pytest.raises(DatasetError, match=r"mask_dict.json: no anno_id 1 \(video 'vid00'"):
        read_video_benchmark("MEVIS_U", tmp_path / "a")
    inputs = json.loads(json.dumps(vos_inputs))
    inputs["mask_dict"]["0"] = inputs["mask_dict"]["0"][:1]
    make_mevis(tmp_path / "b", inputs)
    with pytest.raises(DatasetError, match=r"anno_id 0 has 1 frames, video 'vid00' has 3"):
        read_video_benchmark("MEVIS_U", tmp_path / "b")


def test_mask_of_the_wrong_size_names_the_file(tmp_path, vos_inputs):
    bench = read_video_benchmark("MEVIS_U", make_mevis(tmp_path, vos_inputs))
    video = bench.videos[0]
    with pytest.raises(DatasetError, match=r"mask_dict.json, anno_id 0, frame '00000': mask is 24x32 but the frame"):
        bench.ground_truth.frame_mask(video, video.expressions[0], 0, (48, 64))
    syn_root = make_synthetic(tmp_path / "syn", {"c": (2, 24, 32)})
    Image.fromarray(np.zeros((10, 10), np.uint8), mode="L").save(syn_root / "valid/Annotations/c/00001.png")
    syn = read_video_benchmark("synthetic", syn_root)
    with pytest.raises(DatasetError, match=r"annotation .*c/00001.png: mask is 10x10 but the frame is 24x32"):
        syn.ground_truth.frame_mask(syn.videos[0], syn.videos[0].expressions[0], 1, (24, 32))


def test_pickles_with_code_are_refused(tmp_path):
    path = tmp_path / "mask_dict.pkl"
    path.write_bytes(pickle.dumps({"0": [{"size": np.array([2, 3]), "n": np.int64(3)}]}))  # numpy data is fine
    loaded = load_plain_pickle(path, "mask file")
    assert loaded["0"][0]["n"] == 3 and loaded["0"][0]["size"].tolist() == [2, 3]
    path.write_bytes(pickle.dumps({"0": [os.getcwd]}))  # a callable is code, not data
    with pytest.raises(DatasetError, match=r"refusing to load posix.getcwd"):
        load_plain_pickle(path, "mask file")
    path.write_bytes(b"not a pickle")
    with pytest.raises(StrvosError, match="could not be read as a plain-data pickle"):
        load_plain_pickle(path, "mask file")


def test_refcoco_missing_image_and_annotation(tmp_path):
    inputs = load_fixture("reference_refcoco.json")["inputs"]
    make_refcoco(tmp_path, inputs)
    os.remove(tmp_path / "images/mscoco/images/train2014/img2.jpg")
    with pytest.raises(DatasetError, match=r"image 3 not found: .*img2.jpg"):
        read_refcoco("refcoco", tmp_path)
    instances = json.loads((tmp_path / "refcoco/instances.json").read_text())
    instances["annotations"] = instances["annotations"][1:]
    (tmp_path / "refcoco/instances.json").write_text(json.dumps(instances))
    with pytest.raises(DatasetError, match=r"instances.json: no annotation 100"):
        read_refcoco("refcoco", tmp_path)


def test_unknown_dataset_and_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="unknown video benchmark 'KITTI'"):
        read_video_benchmark("KITTI", tmp_path)
    with pytest.raises(DatasetError, match="data root of DAVIS not found"):
        read_video_benchmark("DAVIS", tmp_path / "nowhere")
