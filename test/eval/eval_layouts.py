"""Builders of tiny benchmark folders in the published layouts (frames are small random JPEGs)."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "metrics"


def load_fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def write_frames(folder: Path, frames: list[str], height: int, width: int, seed: int = 0, ext: str = ".jpg") -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in frames:
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}{ext}")


def _frames_for(meta: dict, image_root: Path) -> None:
    for i, (vid, entry) in enumerate(meta["videos"].items()):
        write_frames(image_root / vid, entry["frames"], entry["height"], entry["width"], seed=i)


def make_mevis(root: Path, inputs: dict, split: str = "valid_u", with_masks: bool = True) -> Path:
    base = root / split
    base.mkdir(parents=True)
    (base / "meta_expressions.json").write_text(json.dumps(inputs["meta"]))
    if with_masks:
        (base / "mask_dict.json").write_text(json.dumps(inputs["mask_dict"]))
    _frames_for(inputs["meta"], base / "JPEGImages")
    return root


def make_revos(root: Path, inputs: dict) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta_expressions_valid_.json").write_text(json.dumps(inputs["meta"]))
    (root / "mask_dict.json").write_text(json.dumps(inputs["mask_dict"]))
    (root / "mask_dict_foreground.json").write_text(json.dumps(inputs["foreground"]))
    _frames_for(inputs["meta"], root / "JPEGImages")
    return root


def make_davis(root: Path, inputs: dict, davis_source: dict) -> Path:
    """Ref-DAVIS17: the pickle holds, per sequential anno_id, the mask list of the fixture's source object."""
    meta_dir = root / "meta_expressions" / "valid"
    meta_dir.mkdir(parents=True)
    (meta_dir / "meta_expressions.json").write_text(json.dumps(inputs["meta"]))
    masks, counter = {}, 0
    for vid in sorted(inputs["meta"]["videos"]):  # eval_davis numbers expressions in this order
        entry = inputs["meta"]["videos"][vid]
        for _ in sorted(entry["expressions"]):
            src = davis_source[str(counter)]
            masks[str(counter)] = [None] * len(entry["frames"]) if src is None else inputs["mask_dict"][str(src)]
            counter += 1
    (root / "valid").mkdir()
    with open(root / "valid" / "mask_dict.pkl", "wb") as f:
        pickle.dump(masks, f)
    _frames_for(inputs["meta"], root / "valid" / "JPEGImages")
    return root


def make_refytvos(root: Path, videos: dict[str, tuple[int, int, int]], n_exps: int = 2) -> Path:
    """Ref-YouTube-VOS valid: {vid: (frames, height, width)}; expressions without object ids."""
    meta = {"videos": {}}
    for i, (vid, (n, h, w)) in enumerate(videos.items()):
        frames = [f"{5 * k:05d}" for k in range(n)]
        meta["videos"][vid] = {"frames": frames,
                               "expressions": {str(e): {"exp": f"the thing number {e}"} for e in range(n_exps)}}
        write_frames(root / "valid" / "JPEGImages" / vid, frames, h, w, seed=i)
    (root / "meta_expressions" / "valid").mkdir(parents=True)
    (root / "meta_expressions" / "valid" / "meta_expressions.json").write_text(json.dumps(meta))
    return root


def make_synthetic(root: Path, videos: dict[str, tuple[int, int, int]], split: str = "valid") -> Path:
    """The synthetic layout: palette PNG annotations with two objects (ids 1, 2), depth and camera info."""
    meta = {"videos": {}}
    for i, (vid, (n, h, w)) in enumerate(videos.items()):
        frames = [f"{k:05d}" for k in range(n)]
        meta["videos"][vid] = {"frames": frames, "expressions": {
            "0": {"exp": "the red square", "obj_id": "1", "kind": "appearance"},
            "1": {"exp": "the blue disc right of the square", "obj_id": "2", "kind": "relation"}}}
        write_frames(root / split / "JPEGImages" / vid, frames, h, w, seed=i)
        ann_dir = root / split / "Annotations" / vid
        depth_dir = root / split / "Depth" / vid
        ann_dir.mkdir(parents=True)
        depth_dir.mkdir(parents=True)
        for k, frame in enumerate(frames):
            labels = np.zeros((h, w), np.uint8)
            labels[2 + k: 2 + k + h // 3, 2: 2 + w // 3] = 1
            yy, xx = np.mgrid[:h, :w]
            labels[(yy - h // 2) ** 2 + (xx - w * 2 // 3) ** 2 <= (min(h, w) // 5) ** 2] = 2
            im = Image.fromarray(labels, mode="P")
            im.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
            im.save(ann_dir / f"{frame}.png")
            Image.fromarray(np.full((h, w), 1500, np.uint16)).save(depth_dir / f"{frame}.png")
    (root / "meta_expressions" / split).mkdir(parents=True)
    (root / "meta_expressions" / split / "meta_expressions.json").write_text(json.dumps(meta))
    (root / split / "camera_info.json").write_text(json.dumps(
        {"width": 32, "height": 24, "K": [30, 0, 16, 0, 30, 12, 0, 0, 1], "distortion_model": "plumb_bob",
         "D": [0, 0, 0, 0, 0]}))
    return root


def make_refcoco(root: Path, inputs: dict, folder: str = "refcoco", split_by: str = "unc") -> Path:
    """REFER layout from the RefCOCO fixture: every image's sentences become refs (one per annotation)."""
    data = root / folder
    data.mkdir(parents=True)
    refs, ref_id = [], 0
    for item in inputs["results"]:
        by_ann: dict[int, list[str]] = {}
        for s in item["sentences"]:
            by_ann.setdefault(s["ann_id"], []).append(s["sent"])
        for ann_id, sents in by_ann.items():
            refs.append({"ref_id": ref_id, "ann_id": ann_id, "image_id": item["image_id"], "category_id": 1,
                         "split": "val", "sentences": [{"sent": t, "sent_id": 10 * ref_id + j, "tokens": t.split()}
                                                       for j, t in enumerate(sents)]})
            ref_id += 1
    with open(data / f"refs({split_by}).p", "wb") as f:
        pickle.dump(refs, f)
    (data / "instances.json").write_text(json.dumps(
        {"images": inputs["images"], "annotations": inputs["annotations"], "categories": [{"id": 1, "name": "x"}]}))
    image_dir = root / "images" / "mscoco" / "images" / "train2014"
    image_dir.mkdir(parents=True)
    for i, img in enumerate(inputs["images"]):
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 256, (img["height"], img["width"], 3), dtype=np.uint8)).save(
            image_dir / img["file_name"])
    return root
